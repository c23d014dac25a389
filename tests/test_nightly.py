"""The nightly end to end: loopback index, real Nix builds, a signed file cache, a bare git
remote and the fake GitHub; several nights in a row."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import cache
from bot.core.errors import BotError
from bot.nightly.options import NightlyOptions
from bot.nightly.run import run_nightly
from tests.harness import git
from tests.plugins.fake_github import FakeGitHub
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel

ROOT = Path(__file__).resolve().parent.parent
REPO = "nixpkgs-python/nixpkgs-python"

pytestmark = pytest.mark.nix


def when(day: int) -> datetime:
    return datetime(2025, 3, day, tzinfo=UTC)


@pytest.fixture
def night_repo(tmp_path: Path, interpreters: dict[str, str]) -> tuple[Path, Path]:
    """A clone of a bare remote holding the project's Nix library and one demo set."""
    if shutil.which("nix-build") is None:
        pytest.skip("nix is not installed (.ci/run installs nix-bin)")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    shutil.copytree(ROOT / "nix", work / "nix", ignore=shutil.ignore_patterns("local.json"))
    shutil.copytree(ROOT / "overrides", work / "overrides")
    for name in ("default.nix", "overlay.nix", ".gitignore"):
        shutil.copy(ROOT / name, work / name)
    (work / "nix" / "local.json").write_text(json.dumps({"interpreters": interpreters}))
    (work / "sets" / "demo").mkdir(parents=True)
    (work / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: ['nb-app']\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "origin", "main")
    return work, remote


@pytest.fixture
def night_index(
    pypi_index_with_backend: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> IndexServer:
    index = pypi_index_with_backend
    for wheel in frontend_wheels.values():
        index.publish(wheel, upload_time="2025-01-01T00:00:00Z")
    dist = tmp_path / "dist"
    index.publish(
        make_wheel(
            dist,
            "nb-app",
            "1.0",
            requires_dist=["nb-lib"],
            project_urls={"Changelog": "https://nb.invalid/changes"},
        ),
        upload_time="2025-01-01T00:00:00Z",
    )
    index.publish(make_wheel(dist, "nb-lib", "1.0"), upload_time="2025-01-01T00:00:00Z")
    return index


def options(
    work: Path, index: IndexServer, tmp_path: Path, day: int, **extra: object
) -> NightlyOptions:
    key = tmp_path / "keys" / "cache.sec"
    if not key.exists():
        cache.cache_keygen("nightly-test-1", key, key.with_suffix(".pub"))
    return NightlyOptions(
        repo=work,
        exclude_newer=when(day),
        index_url=index.url,
        cache_dir=tmp_path / "metadata-cache",
        signing_key=key,
        retries=0,
        github_throttle=False,
        **{
            "revalidate_budget": None,
            "nixpkgs": False,
            "store": f"file://{tmp_path / 'binary-cache'}",
            **extra,
        },  # type: ignore[arg-type]
    )


def github(fake: FakeGitHub, **extra: object) -> dict[str, object]:
    """NightlyOptions fields that point the night at the fake GitHub."""
    return {
        "github_repo": REPO,
        "github_token": fake.token,
        "github_api": fake.base_url,
        **extra,
    }


def test_nights(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    fake_github: FakeGitHub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    work, remote = night_repo
    dist = tmp_path / "dist"
    gh = github(fake_github, pull_request=True)

    # night 1: the set is locked, built, pushed and committed locally (embedded defaults)
    result = run_nightly(
        options(work, night_index, tmp_path, 2, report_json=tmp_path / "night1.json")
    )
    assert result.exit_code == 0, result
    assert [s.status for s in result.report.sets] == ["ok"]
    night1 = json.loads((tmp_path / "night1.json").read_text())
    assert night1["build"]["source"] == "standalone"
    assert "3.12" in night1["build"]["interpreters"]
    assert night1["sets"][0]["freshness"]["total"] == night1["sets"][0]["freshness"]["current"]
    assert night1["sets"][0]["pushed_bytes"] > 0  # the whole closure went to an empty cache
    assert git(work, "log", "-1", "--format=%s").startswith("demo: ")
    assert git(work, "status", "--porcelain") == ""
    assert (tmp_path / "binary-cache" / "nix-cache-info").exists()
    commits = int(git(work, "rev-list", "--count", "HEAD"))

    # night 2: one new version was published; exactly that bump, one pull request
    night_index.publish(make_wheel(dist, "nb-lib", "1.1"), upload_time="2025-03-03T00:00:00Z")
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 0, result.errors
    assert git(work, "log", "-1", "--format=%s") == "demo: nb-lib 1.0 → 1.1"
    night2 = result.report.sets[0]
    assert night2.pushed_bytes is not None
    assert night2.closure_bytes is not None
    assert 0 < night2.pushed_bytes < night2.closure_bytes  # only what the bump changed
    assert "2025-03-04T00:00:00Z" in git(work, "log", "-1", "--format=%b")
    assert int(git(work, "rev-list", "--count", "HEAD")) == commits + 1
    assert len(fake_github.pulls[REPO]) == 1
    branch = fake_github.pulls[REPO][0]["head"]["ref"]
    assert git(remote, "rev-parse", branch) == git(work, "rev-parse", "HEAD")
    assert "nb-lib" in fake_github.pulls[REPO][0]["body"]

    # night 3: a newly added package does not build (nothing to hold back): the set fails,
    # one issue, nothing committed
    (work / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: ['nb-app', 'nb-broken']\n"
    )
    git(work, "commit", "-q", "-am", "demo: add nb-broken")
    night_index.publish(
        make_sdist(dist, "nb-broken", "1.0", build_backend="no_such_backend"),
        upload_time="2025-03-05T00:00:00Z",
    )
    head = git(work, "rev-parse", "HEAD")
    result = run_nightly(options(work, night_index, tmp_path, 6, **gh))
    assert result.exit_code == 2
    assert result.report.sets[0].status == "failed"
    assert result.report.sets[0].failing_package == "nb-broken"
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "status", "--porcelain") == ""
    failures = [i for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])]
    issues = [i for i in failures if i["state"] == "open"]
    assert len(issues) == 1
    assert "nb-broken" in issues[0]["body"]

    # night 4: a fixed release builds again; committed, and the issue is closed
    night_index.publish(make_wheel(dist, "nb-broken", "1.1"), upload_time="2025-03-07T00:00:00Z")
    result = run_nightly(options(work, night_index, tmp_path, 8, **gh))
    assert result.exit_code == 0, result.errors
    assert git(work, "log", "-1", "--format=%s") == "demo: +nb-broken 1.1"
    night4_freshness = result.report.sets[0].freshness
    failures = [i for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])]
    assert [i["state"] for i in failures] == ["closed"]

    # night 5: nothing new: nothing resolved, built, pushed or committed
    head = git(work, "rev-parse", "HEAD")
    cached = sorted(p.name for p in (tmp_path / "binary-cache").iterdir())
    lock = (work / "sets" / "demo" / "pylock.py312.toml").read_bytes()
    seen = len(night_index.requests)
    with caplog.at_level(logging.DEBUG, logger="bot.lock.command"):
        caplog.clear()
        result = run_nightly(options(work, night_index, tmp_path, 9))
    assert result.exit_code == 0
    assert [s.status for s in result.report.sets] == ["unchanged"]
    locker = [r.getMessage() for r in caplog.records if r.name == "bot.lock.command"]
    assert "demo (Python 3.12): every page unchanged: not resolving" in locker
    assert "demo (Python 3.12): resolving" not in locker
    assert all(r.path.startswith("/simple/") for r in night_index.requests[seen:])
    assert (work / "sets" / "demo" / "pylock.py312.toml").read_bytes() == lock
    assert result.report.sets[0].freshness == night4_freshness
    assert git(work, "rev-parse", "HEAD") == head
    assert sorted(p.name for p in (tmp_path / "binary-cache").iterdir()) == cached


def test_dirty_tree_is_refused(
    night_repo: tuple[Path, Path], night_index: IndexServer, tmp_path: Path
) -> None:
    work, _ = night_repo
    (work / "sets" / "demo" / "set.yaml").write_text("description: changed\n")
    with pytest.raises(Exception, match="uncommitted changes"):
        run_nightly(options(work, night_index, tmp_path, 2))


def test_commit_only_commits_what_ci_jobs_made(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    fake_github: FakeGitHub,
) -> None:
    """CI's final job: the (set, system) jobs left outcomes and locks; commit, PR, issues."""
    from bot.lock.command import LockOptions, lock_sets

    work, _ = night_repo
    outcomes = tmp_path / "outcomes"
    gh = github(fake_github, pull_request=True, commit_only=True, outcomes_dir=outcomes)
    systems = ("x86_64-linux", "aarch64-linux")

    def job(day: int, system: str, build: str, failed_package: str | None = None) -> None:
        """What one build job uploads: its step outcomes, build.json and the new locks."""
        folder = outcomes / f"outcome-demo-{system}"
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "locks").mkdir(parents=True)
        lock_sets(
            LockOptions(
                repo=work,
                exclude_newer=when(day),
                index_url=night_index.url,
                cache_dir=tmp_path / "metadata-cache",
                refresh=True,  # as the workflow's lock step: a fresh index page
            )
        )
        lock = work / "sets" / "demo" / "pylock.py312.toml"
        shutil.copy(lock, folder / "locks")
        if git(work, "ls-files", str(lock)):
            git(work, "checkout", "--", str(lock))  # the job's checkout is not this one
        else:
            lock.unlink()
        step = {"set": "demo", "system": system, "lock": "success", "build": build}
        step |= {"push": "skipped" if build != "success" else "success", "pushed": True}
        (folder / "outcome.json").write_text(json.dumps(step))
        result = {"set": "demo", "python": "3.12", "system": system, "ok": build == "success"}
        result |= {"failed_package": failed_package, "log_tail": "the build log's end"}
        (folder / "build.json").write_text(json.dumps({"system": system, "results": [result]}))

    plan = {
        "sets": ["demo"],
        "built": [{"set": "demo", "system": s} for s in systems],
        "not-built": [{"system": "x86_64-darwin", "reason": "no remote builder"}],
    }
    outcomes.mkdir()
    (outcomes / "plan.json").write_text(json.dumps(plan))

    # every system built: the lock is committed and the pull request opened; the job runs
    # without --exclude-newer, as CI's does, so the night is dated by its locks' snapshot
    # (a re-run of the job the next day is still that night), not by the wall clock
    for system in systems:
        job(2, system, "success")
    opts = dataclasses.replace(options(work, night_index, tmp_path, 2, **gh), exclude_newer=None)
    result = run_nightly(opts)
    assert result.exit_code == 0, result.errors
    assert git(work, "log", "-1", "--format=%s").startswith("demo: +nb-app 1.0")
    assert git(work, "status", "--porcelain") == ""
    assert len(fake_github.pulls[REPO]) == 1
    assert result.report.date == "2025-03-02"
    assert fake_github.pulls[REPO][0]["head"]["ref"].endswith("2025-03-02")

    # one system failed: nothing is committed; one failure issue names the package and
    # every system's outcome
    night_index.publish(
        make_wheel(tmp_path / "dist", "nb-lib", "2.0"), upload_time="2025-03-03T00:00:00Z"
    )
    job(4, "x86_64-linux", "success")
    job(4, "aarch64-linux", "failure", "nb-lib")
    head = git(work, "rev-parse", "HEAD")
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 2
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "status", "--porcelain") == ""
    failures = [i for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])]
    assert len(failures) == 1
    body = failures[0]["body"]
    assert "Failing package: `nb-lib`" in body
    assert "aarch64-linux: build failed (package nb-lib)" in body
    assert "x86_64-linux: built and pushed" in body
    assert "x86_64-darwin: not built: no remote builder" in body

    # a scheduled job that recorded nothing (cancelled, runner lost) fails the set too
    shutil.rmtree(outcomes / "outcome-demo-aarch64-linux")
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 2
    assert git(work, "rev-parse", "HEAD") == head
    assert "aarch64-linux: no outcome recorded" in result.report.sets[0].log_tail

    # systems that locked differently (they share one snapshot time) are not committed
    job(4, "aarch64-linux", "success")
    job(2, "x86_64-linux", "success")
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 2
    assert "differs from the one locked on" in result.report.sets[0].log_tail
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "status", "--porcelain") == ""

    # the hold-back step broke after a good build: that system failed (not "built")
    job(4, "x86_64-linux", "success")
    step = json.loads((outcomes / "outcome-demo-x86_64-linux" / "outcome.json").read_text())
    (outcomes / "outcome-demo-x86_64-linux" / "outcome.json").write_text(
        json.dumps({**step, "holdback": "failure"})
    )
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 2
    assert "x86_64-linux: hold-back failed" in (result.report.sets[0].log_tail or "")
    # a malformed holdback.json is no hold: the failed build stays a failure
    job(4, "x86_64-linux", "success")
    job(4, "aarch64-linux", "failure", "nb-lib")
    folder = outcomes / "outcome-demo-aarch64-linux"
    step = json.loads((folder / "outcome.json").read_text())
    (folder / "outcome.json").write_text(json.dumps({**step, "holdback": "success"}))
    (folder / "holdback.json").write_text(json.dumps({"held": "nb-lib", "configs": "0"}))
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 2
    assert "aarch64-linux: build failed (package nb-lib)" in (result.report.sets[0].log_tail or "")
    assert result.report.sets[0].systems[:2] == (
        "x86_64-linux: built and pushed", "aarch64-linux: build failed (package nb-lib)",
    )  # fmt: skip
    assert git(work, "rev-parse", "HEAD") == head
    job(4, "aarch64-linux", "success")

    # a lock a job uploaded that does not parse fails that set, and the tree is left clean
    for system in systems:
        (outcomes / f"outcome-demo-{system}" / "locks" / "pylock.py312.toml").write_text("[x")
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 2
    assert "pylock.py312.toml" in result.report.sets[0].log_tail
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "status", "--porcelain") == ""

    # a broken plan is one clear error
    (outcomes / "plan.json").write_text("{")
    with pytest.raises(BotError, match="unreadable night plan"):
        run_nightly(options(work, night_index, tmp_path, 4, **gh))


def test_hold_back_one_bump_advance_the_other(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    fake_github: FakeGitHub,
) -> None:
    work, _ = night_repo
    dist = tmp_path / "dist"
    night_index.publish(make_wheel(dist, "nb-extra", "1.0"), upload_time="2025-01-01T00:00:00Z")
    (work / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: ['nb-app', 'nb-extra']\n"
    )
    git(work, "commit", "-q", "-am", "demo: add nb-extra")
    gh = github(fake_github)
    assert run_nightly(options(work, night_index, tmp_path, 2)).exit_code == 0

    # a breaking nb-lib and a good nb-extra: the good bump lands, nb-lib is held
    night_index.publish(
        make_sdist(dist, "nb-lib", "2.0", build_backend="no_such_backend"),
        upload_time="2025-03-03T00:00:00Z",
    )
    night_index.publish(make_wheel(dist, "nb-extra", "1.1"), upload_time="2025-03-03T00:00:00Z")
    result = run_nightly(options(work, night_index, tmp_path, 4, **gh))
    assert result.exit_code == 0, result.errors
    demo = result.report.sets[0]
    assert demo.status == "held"
    assert [(h.name, h.kept, h.wanted) for h in demo.held] == [("nb-lib", "1.0", "2.0")]
    assert git(work, "log", "-1", "--format=%s") == "demo: nb-extra 1.0 → 1.1"
    lock = tomllib.loads((work / "sets/demo/pylock.py312.toml").read_text())
    versions = {p["name"]: p["version"] for p in lock["packages"]}
    assert versions["nb-lib"] == "1.0"
    assert versions["nb-extra"] == "1.1"
    [record] = lock["tool"]["nixpkgs-python"]["held"]
    assert record == {
        "name": "nb-lib",
        "version": "1.0",
        "first-failing": "2.0",
        "reason": "nb-lib failed to build",
        "since": record["since"],
    }
    # the night is of its snapshot's day (--exclude-newer 2025-03-04), whenever it runs
    assert record["since"] == "2025-03-04"
    assert result.report.date == "2025-03-04"
    assert git(work, "status", "--porcelain") == ""
    # `lock --check` (ci.yml) resolves with the holds the lock records: the held lock is current
    from bot.lock.command import LockOptions, lock_sets

    check = LockOptions(repo=work, index_url=night_index.url, cache_dir=tmp_path / "metadata-cache",
                        check=True)  # fmt: skip
    assert [o.status for o in lock_sets(check)] == ["unchanged"]
    # freshness by hand: every member is at its newest version except the held nb-lib
    fresh = demo.freshness
    assert fresh is not None
    assert (fresh.current, fresh.total) == (len(versions) - 1, len(versions))
    assert fresh.behind == (("nb-lib", "1.0", "2.0"),)
    assert fresh.oldest is not None
    assert fresh.oldest[:3] == ("nb-lib", "1.0", "2.0")
    assert fresh.oldest[3] == 61.0  # uploaded 2025-01-01 and 2025-03-03
    assert fresh.held == ("nb-lib",)
    failures = [i for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])]
    assert len(failures) == 1
    assert failures[0]["state"] == "open"
    assert "nb-lib" in failures[0]["body"]

    # the next night retries: still broken, the hold stays and nothing is committed
    head = git(work, "rev-parse", "HEAD")
    result = run_nightly(options(work, night_index, tmp_path, 5, **gh))
    assert result.report.sets[0].status == "held"
    assert result.report.sets[0].held[0].reason == "(nb-lib failed to build, held since 2025-03-04)"
    assert result.report.date == "2025-03-05"
    assert git(work, "rev-parse", "HEAD") == head

    # a fixed release: the hold is released and the issue closed
    night_index.publish(make_wheel(dist, "nb-lib", "2.1"), upload_time="2025-03-06T00:00:00Z")
    result = run_nightly(options(work, night_index, tmp_path, 7, **gh))
    assert result.exit_code == 0, result.errors
    assert result.report.sets[0].status == "ok"
    assert git(work, "log", "-1", "--format=%s") == "demo: nb-lib 1.0 → 2.1"
    lock = tomllib.loads((work / "sets/demo/pylock.py312.toml").read_text())
    assert "held" not in lock["tool"]["nixpkgs-python"]
    assert [i["state"] for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])] == [
        "closed"
    ]


def test_hold_back_a_bump_that_breaks_another_packages_import(
    night_repo: tuple[Path, Path], night_index: IndexServer, tmp_path: Path
) -> None:
    """nb-lib 2.0 drops the module nb-user imports: nb-lib's own derivation builds, the
    environment's check of nb-user fails and names nb-user; the search holds nb-lib and
    nb-extra's bump lands."""
    work, _ = night_repo
    dist = tmp_path / "dist"
    night_index.publish(make_wheel(dist, "nb-extra", "1.0"), upload_time="2025-01-01T00:00:00Z")
    night_index.publish(
        make_wheel(
            dist,
            "nb-user",
            "1.0",
            requires_dist=["nb-lib"],
            modules={"nb_user/__init__.py": "import nb_lib\n"},
        ),
        upload_time="2025-01-01T00:00:00Z",
    )
    (work / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: ['nb-user', 'nb-extra']\n"
    )
    git(work, "commit", "-q", "-am", "demo: nb-user and nb-extra")
    assert run_nightly(options(work, night_index, tmp_path, 2)).exit_code == 0

    night_index.publish(
        make_wheel(dist, "nb-lib", "2.0", modules={"nb_lib_renamed/__init__.py": ""}),
        upload_time="2025-03-03T00:00:00Z",
    )
    night_index.publish(make_wheel(dist, "nb-extra", "1.1"), upload_time="2025-03-03T00:00:00Z")
    result = run_nightly(options(work, night_index, tmp_path, 4))
    assert result.exit_code == 0, result.errors
    demo = result.report.sets[0]
    assert demo.status == "held"
    assert [(h.name, h.kept, h.wanted) for h in demo.held] == [("nb-lib", "1.0", "2.0")]
    assert git(work, "log", "-1", "--format=%s") == "demo: nb-extra 1.0 → 1.1"
    lock = tomllib.loads((work / "sets/demo/pylock.py312.toml").read_text())
    [record] = lock["tool"]["nixpkgs-python"]["held"]
    # named by the environment's check pass: the package whose import broke
    assert record["reason"] == "nb-user failed to build"


def test_pull_request_proposes_override_edits(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    fake_github: FakeGitHub,
) -> None:
    """An override whose range matches no locked version is proposed for removal."""
    work, _ = night_repo
    stale = work / "overrides" / "packages" / "nb-lib.toml"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text(
        '[[override]]\nuntil = "0.5"\nreason = "old releases lacked a module"\n'
        "imports-check = false\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "overrides: nb-lib")
    gh = github(fake_github, pull_request=True, revalidate_budget=0)
    result = run_nightly(options(work, night_index, tmp_path, 2, **gh))
    assert result.exit_code == 0, result.errors
    assert [(f.package, f.kind) for f in result.findings if f.package == "nb-lib"] == [
        ("nb-lib", "unmatched")
    ]
    assert not stale.exists()
    assert git(work, "log", "-1", "--format=%s").startswith("overrides:")
    assert git(work, "status", "--porcelain") == ""
    body = fake_github.pulls[REPO][0]["body"]
    assert "nb-lib" in body
    assert "Overrides re-validation" in body


def test_faults_are_reported_and_contained(
    night_repo: tuple[Path, Path], night_index: IndexServer, tmp_path: Path
) -> None:
    """A set whose index pages fail, and a remote that rejects the push: clear errors, the
    other set still advances, the tree stays clean."""
    work, remote = night_repo
    (work / "sets" / "other").mkdir()
    (work / "sets" / "other" / "set.yaml").write_text(
        "description: other\npython: ['3.12']\nrequirements: ['nb-lib']\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "add set other")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    night_index.fail("/simple/nb-app/", 503, times=1000)
    head = git(work, "rev-parse", "HEAD")
    remote_main = git(remote, "rev-parse", "main")

    result = run_nightly(options(work, night_index, tmp_path, 2, push_to="main"))

    assert result.exit_code == 2
    status = {s.name: s for s in result.report.sets}
    assert status["demo"].status == "failed"
    assert f"{night_index.url}nb-app/" in (status["demo"].log_tail or "")
    assert status["other"].status == "ok"
    # other's lock was committed locally; the rejected push is one clear error
    assert git(work, "log", "-1", "--format=%s").startswith("other: ")
    assert git(work, "rev-parse", "HEAD~1") == head
    [error] = result.errors
    assert "origin" in error
    assert "protected branch" in error
    assert git(remote, "rev-parse", "main") == remote_main
    assert git(work, "status", "--porcelain") == ""


def test_nightly_command(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli import main

    work, _ = night_repo
    key = tmp_path / "keys" / "cli.sec"
    cache.cache_keygen("nightly-cli-1", key, key.with_suffix(".pub"))
    argv = [
        "--repo",
        str(work),
        "-q",
        "nightly",
        "--exclude-newer",
        "2025-03-02T00:00:00Z",
        "--index-url",
        night_index.url,
        "--cache-dir",
        str(tmp_path / "meta"),
        "--to",
        f"file://{tmp_path / 'cache'}",
        "--signing-key",
        str(key),
        "--no-revalidate",
        "--standalone",
        "--report-json",
        str(tmp_path / "report.json"),
        "--report-markdown",
        str(tmp_path / "report.md"),
    ]
    assert main(argv) == 0
    assert "demo: ok (" in capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["status"] for s in report["sets"]] == ["ok"]
    assert "# nixpkgs-python nightly" in (tmp_path / "report.md").read_text()
    assert main(argv) == 0
    assert "demo: unchanged" in capsys.readouterr().out


def test_nightly_on_its_defaults_says_it_uses_the_standalone_interpreters(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's main job: no nixpkgs to be had here (the pin's host does not resolve),
    the embedded file cache: one line says so, and the night builds standalone."""
    from bot.cli import main

    work, _ = night_repo
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the default cache key
    argv = ["--repo", str(work), "nightly", "--exclude-newer", "2025-03-02T00:00:00Z"]
    argv += ["--index-url", night_index.url, "--cache-dir", str(tmp_path / "meta")]
    argv += ["--no-revalidate", "--report-json", str(tmp_path / "report.json")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "the pinned nixpkgs is not available on this machine" in captured.err
    assert "using the standalone interpreters" in captured.err
    assert "demo: ok (" in captured.out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["build"]["source"] == "standalone"

    # with a shared cache there is no falling back: standalone outputs are for this machine
    key = tmp_path / "keys" / "k.sec"
    cache.cache_keygen("fallback-1", key, key.with_suffix(".pub"))
    remote = ["--to", f"file://{tmp_path / 'shared'}", "--signing-key", str(key)]
    assert main([*argv, *remote]) == 1
    err = capsys.readouterr().err
    assert "nix/nixpkgs.json" in err
    assert "--standalone" in err
    assert "Traceback" not in err


def test_nightly_with_nixpkgs_substitutes_the_interpreter_and_pushes_the_closure(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    interpreters: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A night against a stand-in nixpkgs, as on a runner: its interpreter is substituted
    from the (loopback) public cache, never built, and the pushed closure holds it."""
    from tests.plugins.standin import make_standin, serve

    work, _ = night_repo
    standin = make_standin(tmp_path / "standin", {"3.12": interpreters["3.12"]})
    python = next(p for p in standin.outputs if p.endswith("python3-3.12-standin"))
    with serve(standin):
        monkeypatch.setenv("NIX_CONFIG", standin.nix_config)
        # compression=none: xz takes minutes over the interpreter's 90 MB here
        store = f"file://{tmp_path / 'binary-cache'}?compression=none"
        result = run_nightly(
            options(
                work, night_index, tmp_path, 2, nixpkgs=True, nixpkgs_path=standin.path, store=store
            )
        )
    assert result.exit_code == 0, result.errors
    [row] = result.report.sets
    assert row.status == "ok"
    narinfo = tmp_path / "binary-cache" / f"{Path(python).name.split('-')[0]}.narinfo"
    assert narinfo.exists()  # the interpreter came with the set's closure
    assert "Sig: nightly-test-1:" in narinfo.read_text()


def test_a_quiet_night_evaluates_every_unchanged_set_at_once(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two sets, nothing new: no resolution, one evaluation and one cache query for both."""
    work, _ = night_repo
    (work / "sets" / "other").mkdir()
    (work / "sets" / "other" / "set.yaml").write_text(
        "description: other\npython: ['3.12']\nrequirements: ['nb-lib']\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "other")
    result = run_nightly(options(work, night_index, tmp_path, 2))
    assert [s.status for s in result.report.sets] == ["ok", "ok"]
    head = git(work, "rev-parse", "HEAD")
    with caplog.at_level(logging.DEBUG, logger="bot"):
        caplog.clear()
        result = run_nightly(options(work, night_index, tmp_path, 3))
    assert result.exit_code == 0
    assert [s.status for s in result.report.sets] == ["unchanged", "unchanged"]
    assert all(s.freshness.total for s in result.report.sets)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if m.endswith("): resolving")]
    evaluations = [m for m in messages if m.startswith("$ nix-instantiate ")]
    assert len(evaluations) == 1
    assert "demo.py312.python.outPath" in evaluations[0]
    assert "other.py312.python.outPath" in evaluations[0]
    assert not [m for m in messages if m.startswith("$ nix-build ")]
    assert git(work, "rev-parse", "HEAD") == head

    # the next quiet night takes the out paths of that identical evaluation: no evaluation
    def quiet_night(n: int) -> list[str]:
        with caplog.at_level(logging.DEBUG, logger="bot"):
            caplog.clear()
            result = run_nightly(options(work, night_index, tmp_path, n))
        assert [s.status for s in result.report.sets] == ["unchanged", "unchanged"]
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("$ nix-")]

    assert not [m for m in quiet_night(4) if m.startswith("$ nix-instantiate ")]
    # any file the evaluation reads changed (here one more file in a set's directory, which
    # Nix never looks at, but the rule does not know that): evaluated again
    (work / "sets" / "other" / "NOTES").write_text("notes\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "notes")
    assert len([m for m in quiet_night(5) if m.startswith("$ nix-instantiate ")]) == 1
    assert not [m for m in quiet_night(6) if m.startswith("$ nix-instantiate ")]


def test_a_hold_that_cannot_be_locked_is_a_failed_probe_not_a_failed_night(
    night_repo: tuple[Path, Path],
    night_index: IndexServer,
    tmp_path: Path,
) -> None:
    """Holding nb-lib back cannot be resolved tonight (nb-app's new release needs the new
    nb-lib and its old one was yanked): that probe does not build, as CI's hold-back counts
    it, and the search goes on instead of the set failing with the resolution error."""
    work, _ = night_repo
    dist = tmp_path / "dist"
    assert run_nightly(options(work, night_index, tmp_path, 2)).exit_code == 0
    night_index.publish(
        make_sdist(dist, "nb-lib", "2.0", build_backend="no_such_backend"),
        upload_time="2025-03-03T00:00:00Z",
    )
    night_index.publish(
        make_wheel(dist, "nb-app", "1.1", requires_dist=["nb-lib>=2"]),
        upload_time="2025-03-03T00:00:00Z",
    )
    night_index.yank("nb_app-1.0-py3-none-any.whl", "broken")
    result = run_nightly(options(work, night_index, tmp_path, 4))
    assert result.exit_code == 2
    demo = result.report.sets[0]
    assert demo.status == "failed"
    # the search went past the probe that could not be locked (holding nb-lib alone) to
    # the last one it tries, holding both, which cannot be locked either (nb-app 1.0 yanked)
    assert (demo.log_tail or "").startswith("locking with nb-app, nb-lib held failed: ")
    assert git(work, "status", "--porcelain") == ""
