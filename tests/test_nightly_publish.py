"""A night against a remote that moves: a maintainer's merge between nights (and during one),
a checkout that diverged, earlier nights' pull requests, and a HEAD GitHub never got.  Real
nights, a bare git remote with other clones pushing to it, and the fake GitHub."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.core.errors import GitError
from bot.nightly.run import run_nightly
from tests.harness import git
from tests.plugins.fake_github import FakeGitHub
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel
from tests.test_nightly import REPO, github, night_index, night_repo, options  # noqa: F401

pytestmark = pytest.mark.nix

LOCK = "sets/demo/pylock.py312.toml"


def locked(work: Path) -> dict[str, str]:
    """Package name -> version in demo's lock as checked out."""
    doc = tomllib.loads((work / LOCK).read_text())
    return {p["name"]: p["version"] for p in doc["packages"]}


def maintainer(remote: Path, tmp_path: Path) -> Path:
    """A maintainer's clone of the remote, up to date."""
    other = tmp_path / "maintainer"
    if not other.exists():
        git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "pull", "-q", "--ff-only", "origin", "main")
    return other


def merge(remote: Path, tmp_path: Path, path: str, text: str, *, push: bool = True) -> str:
    """A maintainer's commit of ``path`` to main (pushed unless ``push`` is False)."""
    other = maintainer(remote, tmp_path)
    (other / path).parent.mkdir(parents=True, exist_ok=True)
    (other / path).write_text(text)
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", f"maintainer: {path}")
    if push:
        git(other, "push", "-q", "origin", "main")
    return git(other, "rev-parse", "HEAD")


WITH_EXTRA = "description: demo\npython: ['3.12']\nrequirements: ['nb-app', 'nb-extra']\n"


@pytest.fixture
def extra(night_index: IndexServer, tmp_path: Path) -> IndexServer:  # noqa: F811
    """The index with one more project a maintainer adds to the set."""
    night_index.publish(
        make_wheel(tmp_path / "dist", "nb-extra", "1.0"), upload_time="2025-01-01T00:00:00Z"
    )
    return night_index


def test_a_maintainers_merge_between_nights_is_locked_by_the_next(
    night_repo: tuple[Path, Path],  # noqa: F811
    extra: IndexServer,
    tmp_path: Path,
) -> None:
    """``--push-to`` on a persistent clone: the second night starts from the remote's main,
    so the set.yaml a maintainer merged is what it locks and pushes on top of."""
    work, remote = night_repo
    result = run_nightly(options(work, extra, tmp_path, 2, push_to="main"))
    assert result.exit_code == 0, result.errors
    assert "nb-extra" not in locked(work)

    theirs = merge(remote, tmp_path, "sets/demo/set.yaml", WITH_EXTRA)
    result = run_nightly(options(work, extra, tmp_path, 3, push_to="main"))
    assert result.exit_code == 0, result.errors
    assert any(n.startswith("updated to origin/main (1 new commit(s)") for n in result.report.notes)
    assert locked(work)["nb-extra"] == "1.0"
    assert git(remote, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "rev-parse", "HEAD~1") == theirs  # the lock commit sits on the merge
    assert git(work, "log", "-1", "--format=%s").startswith("demo: ")
    assert git(work, "status", "--porcelain") == ""


def test_a_diverged_checkout_is_one_clear_error(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    work, remote = night_repo
    (work / "overrides" / "local-hack.yaml").write_text("{}\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "a local hack")
    mine = git(work, "rev-parse", "HEAD")
    merge(remote, tmp_path, "README.md", "moved on\n")
    with pytest.raises(GitError) as info:
        run_nightly(options(work, night_index, tmp_path, 2, push_to="main"))
    text = str(info.value)
    assert "diverged from origin/main: 1 local commit(s)" in text
    assert mine[:12] in text
    assert "hint: " in text
    assert git(work, "rev-parse", "HEAD") == mine  # nothing locked, built or moved
    assert not (work / LOCK).exists()


def test_a_push_rejected_over_a_non_lock_change_waits_for_the_next_night(
    night_repo: tuple[Path, Path],  # noqa: F811
    extra: IndexServer,
    tmp_path: Path,
) -> None:
    """main moves during the night (a post-commit hook pushes a maintainer's set.yaml change
    right after the bot's commit): the rejected push is not rebased over it and pushed; the
    next night locks against it and pushes."""
    work, remote = night_repo
    theirs = merge(remote, tmp_path, "sets/demo/set.yaml", WITH_EXTRA, push=False)
    hook = work / ".git" / "hooks" / "post-commit"
    hook.write_text(
        "#!/bin/sh\nenv -u GIT_DIR -u GIT_INDEX_FILE -u GIT_WORK_TREE "
        f"git -C '{tmp_path / 'maintainer'}' push -q origin main\n"
    )
    hook.chmod(0o755)
    result = run_nightly(options(work, extra, tmp_path, 2, push_to="main"))
    hook.unlink()
    assert result.exit_code == 0, result.errors
    assert git(remote, "rev-parse", "main") == theirs  # the bot's commit is not on main
    [note] = [n for n in result.report.notes if n.startswith("not pushed")]
    assert "origin/main changed sets/demo/set.yaml while the night ran" in note
    assert "next night" in note
    assert "nb-extra" not in locked(work)
    assert git(work, "log", "-1", "--format=%s").startswith("demo: ")  # committed, kept local
    assert theirs not in git(work, "rev-list", "HEAD")  # on the old base, as it was made

    result = run_nightly(options(work, extra, tmp_path, 3, push_to="main"))
    assert result.exit_code == 0, result.errors
    [note] = [n for n in result.report.notes if n.startswith("updated to origin/main")]
    assert "changed sets/demo/set.yaml" in note
    assert "1 unpublished commit(s) made against the old tree were dropped" in note
    assert locked(work)["nb-extra"] == "1.0"
    assert git(remote, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "rev-parse", "HEAD~1") == theirs  # one lock commit, on the new tree
    pushed = tomllib.loads(git(remote, "show", f"main:{LOCK}"))
    assert "nb-extra" in {p["name"] for p in pushed["packages"]}
    assert git(work, "status", "--porcelain") == ""


def test_three_nights_without_merging_leave_one_open_pull_request(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    fake_github: FakeGitHub,
) -> None:
    work, remote = night_repo
    gh = github(fake_github, pull_request=True)
    dist = tmp_path / "dist"
    for n, day in enumerate((2, 3, 4)):
        if n:
            wheel = make_wheel(dist, "nb-lib", f"1.{n}")
            night_index.publish(wheel, upload_time=f"2025-03-0{day - 1}T12:00:00Z")
        if n == 2:  # the base moves too: the last branch is built on it
            moved = merge(remote, tmp_path, "README.md", "moved on\n")
        result = run_nightly(options(work, night_index, tmp_path, day, **gh))
        assert result.exit_code == 0, result.errors
        assert result.report.sets[0].status == "ok"

    pulls = fake_github.pulls[REPO]
    assert [(p["head"]["ref"], p["state"]) for p in pulls] == [
        ("nightly/2025-03-02", "closed"),
        ("nightly/2025-03-03", "closed"),
        ("nightly/2025-03-04", "open"),
    ]
    issues = {i["number"]: i for i in fake_github.issues[REPO]}
    for pull, by in ((pulls[0], pulls[1]), (pulls[1], pulls[2])):
        assert [c["body"] for c in issues[pull["number"]]["comments_list"]] == [
            f"Superseded by #{by['number']}; closing."
        ]
        assert issues[pull["number"]]["state"] == "closed"
    assert git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/nightly/") == (
        "nightly/2025-03-04"
    )
    tip = git(remote, "rev-parse", "nightly/2025-03-04")
    assert tip == git(work, "rev-parse", "HEAD")
    assert git(remote, "merge-base", "main", tip) == moved  # on the base as it is now
    doc = tomllib.loads(git(remote, "show", f"{tip}:{LOCK}"))
    assert {p["name"]: p["version"] for p in doc["packages"]}["nb-lib"] == "1.2"
    assert any(n.startswith("closed the pull request(s) #") for n in result.report.notes)


@pytest.mark.parametrize("how", ["push rejected", "local night"])
def test_an_unpushed_head_still_files_and_closes_issues(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    fake_github: FakeGitHub,
    how: str,
) -> None:
    """GitHub does not know HEAD (the push failed, or the night never pushes): no status is
    set on it, and every failure issue is still filed and every fixed one closed."""
    work, remote = night_repo
    fake_github.git_dir = remote
    (work / "sets" / "zeta").mkdir()
    (work / "sets" / "zeta" / "set.yaml").write_text(
        "description: zeta\npython: ['3.12']\nrequirements: ['nb-broken']\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "add set zeta")
    night_index.publish(
        make_sdist(tmp_path / "dist", "nb-broken", "1.0", build_backend="no_such_backend"),
        upload_time="2025-01-01T00:00:00Z",
    )
    extra: dict[str, object] = {"push_to": "main"} if how == "push rejected" else {}
    if how == "push rejected":
        hook = remote / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
        hook.chmod(0o755)
    fixed = _open_failure_issue(fake_github, "demo")
    result = run_nightly(options(work, night_index, tmp_path, 2, **github(fake_github, **extra)))

    assert result.exit_code == 2
    status = {s.name: s.status for s in result.report.sets}
    assert status == {"demo": "ok", "zeta": "failed"}
    issues = {i["title"]: i for i in fake_github.issues[REPO]}
    assert issues["Set zeta fails to build (py312)"]["state"] == "open"
    assert "nb-broken" in issues["Set zeta fails to build (py312)"]["body"]
    assert issues[fixed]["state"] == "closed"
    assert fake_github.statuses == {}
    head = git(work, "rev-parse", "HEAD")
    assert f"commit statuses not set: HEAD {head[:12]} was not pushed" in result.report.notes
    assert not any("No commit found" in e for e in result.errors)
    if how == "push rejected":
        assert any("the remote rejected the push" in e for e in result.errors)


def _open_failure_issue(fake: FakeGitHub, set_name: str) -> str:
    """An open failure issue of ``set_name`` from an earlier night; its title."""
    from bot.nightly.github import GitHubClient

    client = GitHubClient(fake.token, REPO, base_url=fake.base_url, throttle=False)
    try:
        client.report_failure(set_name, "3.12", "nb-lib", "an earlier failure", None)
    finally:
        client.close()
    return f"Set {set_name} fails to build (py312)"
