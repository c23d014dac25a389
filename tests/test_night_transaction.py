"""A night is a transaction: real ``nixpkgs-python nightly`` processes are interrupted at each
phase (SIGTERM, SIGINT to the process group as Ctrl-C sends it, SIGKILL to the process
group) during the build, the commit (a slow pre-commit hook) and the push (a slow
pre-receive hook on the bare remote); the next night must then run without repair and
publish what was left.  Also: two nightlies at once, the signing key on disk, and a set
failing with an unexpected exception.

``NIXPKGS_PYTHON_TRIALS=N`` repeats every interruption N times (benchmarks/interrupts.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import cache
from bot.core.repolock import JOURNAL_NAME, LOCK_NAME
from bot.nightly.run import run_nightly
from tests.harness import git
from tests.plugins.fake_github import FakeGitHub
from tests.plugins.pypi import IndexServer, make_wheel
from tests.test_nightly import REPO, github, night_index, night_repo, options  # noqa: F401

pytestmark = pytest.mark.nix

LOCK = "sets/demo/pylock.py312.toml"
TRIALS = range(int(os.environ.get("NIXPKGS_PYTHON_TRIALS", "1")))
#: generous bounds for waiting on a child; not timing assertions
PHASE_TIMEOUT = 300.0


#: run argv with SIGINT at its default disposition, as from a terminal: a process started in
#: the background by a non-interactive shell (``.ci/run &``) inherits SIGINT *ignored*, and a
#: Python started that way keeps ignoring it (no KeyboardInterrupt), which is right for the bot
#: but would make the SIGINT cases here test nothing
SIGINT_DEFAULT_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


class Night:
    """A ``nixpkgs-python -v nightly`` child in its own process group; stderr is read by a
    thread so the test can wait for the command it is running (``$ nix-build ...``)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIGINT_DEFAULT_EXEC, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self.seen = threading.Condition()
        self.out = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.seen:
                self.lines.append(line)
                self.seen.notify_all()
        with self.seen:
            self.seen.notify_all()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str) -> None:
        with self.seen:
            ok = self.seen.wait_for(
                lambda: any(text in ln for ln in self.lines) or not self.reader.is_alive(),
                timeout=PHASE_TIMEOUT,
            )
        assert ok, self.stderr
        assert any(text in ln for ln in self.lines), self.stderr

    def wait_for_file(self, path: Path) -> None:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while not path.exists() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.exists(), self.stderr

    def signal(self, sig: signal.Signals, *, group: bool) -> None:
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def wait(self) -> int:
        code = self.proc.wait(timeout=PHASE_TIMEOUT)
        self.reader.join(PHASE_TIMEOUT)
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()
        return code


def nightly_argv(
    work: Path, index: IndexServer, tmp_path: Path, day: int, *extra: str
) -> list[str]:
    key = tmp_path / "keys" / "cache.sec"
    if not key.exists():
        cache.cache_keygen("nightly-test-1", key, key.with_suffix(".pub"))
    return [
        sys.executable,
        "-m",
        "bot.cli",
        "--repo",
        str(work),
        "-v",
        "nightly",
        "--exclude-newer",
        f"2025-03-{day:02d}T00:00:00Z",
        "--index-url",
        index.url,
        "--cache-dir",
        str(tmp_path / "metadata-cache"),
        "--to",
        f"file://{tmp_path / 'binary-cache'}",
        "--signing-key",
        str(key),
        "--no-revalidate",
        "--standalone",
        "--push-to",
        "main",
        *extra,
    ]


def blocking_hook(hook: Path, mark: Path, block: Path) -> None:
    """A hook that says it started (``mark``), waits while ``block`` exists, then refuses
    (so a hook that outlives its interrupted caller never lands anything afterwards)."""
    hook.write_text(
        f"#!/bin/sh\ntouch '{mark}'\nwhile [ -e '{block}' ]; do sleep 0.1; done\nexit 1\n"
    )
    hook.chmod(0o755)


@pytest.fixture
def released(tmp_path: Path) -> Iterator[Path]:
    """The file a blocking hook waits on; removed at the end so no hook outlives the test."""
    block = tmp_path / "block"
    block.touch()
    yield block
    block.unlink(missing_ok=True)


def next_night_heals(
    work: Path, remote: Path, index: IndexServer, tmp_path: Path, day: int
) -> None:
    """The next night runs without repair, leaves a clean tree and publishes everything."""
    result = run_nightly(options(work, index, tmp_path, day, push_to="main"))
    assert result.exit_code == 0, (result.errors, result.report)
    assert git(work, "status", "--porcelain") == ""
    assert git(remote, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "log", "-1", "--format=%s").startswith("demo: ")
    assert git(work, "show", f"HEAD:{LOCK}") == (work / LOCK).read_text().strip()
    assert not (work / ".git" / JOURNAL_NAME).exists()


def leftovers(work: Path) -> set[str]:
    """What an interrupted night may leave in the tree: only its own lock file."""
    return {line[3:] for line in git(work, "status", "--porcelain").splitlines()}


# --- interruptions ------------------------------------------------------------------------------

BUILD_CASES = [("SIGTERM", False), ("SIGINT", True), ("SIGKILL", True)]


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize(("sig", "group"), BUILD_CASES, ids=[c[0] for c in BUILD_CASES])
def test_interrupted_build_heals(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    sig: str,
    group: bool,
    trial: int,
) -> None:
    work, remote = night_repo
    report = tmp_path / "report.md"
    night = Night(nightly_argv(work, night_index, tmp_path, 2, "--report-markdown", str(report)))
    night.wait_for_line("$ nix-build")
    assert (work / LOCK).exists()  # the new lock is in the tree while it builds
    night.signal(signal.Signals[sig], group=group)
    code = night.wait()
    assert code != 0
    if sig == "SIGKILL":  # no handler ran: the stray lock is the next night's to heal
        assert leftovers(work) <= {LOCK}
        assert (work / ".git" / JOURNAL_NAME).exists()
    else:  # the run put back what it wrote
        assert code == 128 + signal.Signals[sig], night.stderr
        assert git(work, "status", "--porcelain") == ""
        assert "Traceback" not in night.stderr
        assert f"interrupted ({sig}) before the last sets ran" in report.read_text()
    assert git(work, "rev-list", "--count", "HEAD") == "1"
    next_night_heals(work, remote, night_index, tmp_path, 2)


COMMIT_CASES = [("SIGTERM", False), ("SIGINT", True), ("SIGKILL", True)]


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize(("sig", "group"), COMMIT_CASES, ids=[c[0] for c in COMMIT_CASES])
def test_interrupted_commit_heals(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    released: Path,
    sig: str,
    group: bool,
    trial: int,
) -> None:
    work, remote = night_repo
    mark = tmp_path / "committing"
    blocking_hook(work / ".git" / "hooks" / "pre-commit", mark, released)
    night = Night(nightly_argv(work, night_index, tmp_path, 2))
    night.wait_for_file(mark)
    night.signal(signal.Signals[sig], group=group)
    code = night.wait()
    assert code != 0
    if sig == "SIGKILL":
        assert leftovers(work) <= {LOCK}
    else:
        assert code == 128 + signal.Signals[sig], night.stderr
        # the lock is put back, and the index is as it was: nothing staged, nothing deleted
        assert git(work, "status", "--porcelain") == ""
        assert git(work, "diff", "--cached", "--name-only") == ""
    assert git(work, "rev-list", "--count", "HEAD") == "1"
    released.unlink()
    (work / ".git" / "hooks" / "pre-commit").unlink()
    next_night_heals(work, remote, night_index, tmp_path, 2)


PUSH_CASES = [("SIGTERM", False), ("SIGINT", True), ("SIGKILL", True)]


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize(("sig", "group"), PUSH_CASES, ids=[c[0] for c in PUSH_CASES])
def test_interrupted_push_is_published_next_night(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    released: Path,
    sig: str,
    group: bool,
    trial: int,
) -> None:
    work, remote = night_repo
    mark = tmp_path / "pushing"
    hook = remote / "hooks" / "pre-receive"
    blocking_hook(hook, mark, released)
    before = git(remote, "rev-parse", "main")
    night = Night(nightly_argv(work, night_index, tmp_path, 2))
    night.wait_for_file(mark)
    night.signal(signal.Signals[sig], group=group)
    # stops while the remote still holds the push (not after GitPython's 600 s kill timer)
    code = night.wait()
    assert released.exists()
    assert code != 0
    if sig != "SIGKILL":
        assert code == 128 + signal.Signals[sig], night.stderr
    assert git(work, "status", "--porcelain") == ""
    committed = git(work, "rev-parse", "HEAD")
    assert git(work, "log", "-1", "--format=%s").startswith("demo: ")
    released.unlink()
    hook.unlink()
    assert git(remote, "rev-parse", "main") == before
    # nothing changed tonight, yet the commit left behind is published
    result = run_nightly(options(work, night_index, tmp_path, 2, push_to="main"))
    assert result.exit_code == 0, result.errors
    assert [s.status for s in result.report.sets] == ["unchanged"]
    assert git(remote, "rev-parse", "main") == committed
    assert git(work, "rev-parse", "HEAD") == committed
    assert "publishing 1 commit(s) an earlier run left unpublished" in result.report.notes


# --- two nightlies at once ----------------------------------------------------------------------


@pytest.mark.parametrize("trial", TRIALS)
def test_concurrent_nightlies_never_lose_commits(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    trial: int,
) -> None:
    work, remote = night_repo
    first = Night(nightly_argv(work, night_index, tmp_path, 2))
    first.wait_for_line("$ nix-build")
    # a second one that does not wait: one clear message, nothing touched
    busy = Night(nightly_argv(work, night_index, tmp_path, 2), {"NIXPKGS_PYTHON_LOCK_WAIT": "0"})
    assert busy.wait() == 75
    assert "another nixpkgs-python command is writing this repository" in busy.stderr
    assert f"pid {first.proc.pid}: nightly" in busy.stderr
    assert "Traceback" not in busy.stderr
    # a third one waits for the first, then finds everything done
    third = Night(nightly_argv(work, night_index, tmp_path, 2), {"NIXPKGS_PYTHON_LOCK_WAIT": "600"})
    assert first.wait() == 0, first.stderr
    assert third.wait() == 0, third.stderr
    assert "demo: ok" in first.out
    assert "demo: unchanged" in third.out
    assert git(work, "status", "--porcelain") == ""
    assert git(work, "rev-list", "--count", "HEAD") == "2"
    assert git(remote, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "show", f"HEAD:{LOCK}") == (work / LOCK).read_text().strip()
    assert (work / ".git" / LOCK_NAME).exists()  # the lock file stays; the flock is gone


# --- the signing key never outlives the process ---------------------------------------------


def _files_holding(roots: list[Path], needle: bytes) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_signing_key_from_the_environment_never_on_disk(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    sig: str,
    trial: int,
) -> None:
    work, _ = night_repo
    keys = tmp_path / "env-keys"
    cache.cache_keygen("env-key-1", keys / "k.sec", keys / "k.pub")
    secret = (keys / "k.sec").read_text().strip()
    (keys / "k.sec").unlink()  # from now on only the environment has it
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    argv = nightly_argv(work, night_index, tmp_path, 2)
    i = argv.index("--signing-key")
    del argv[i : i + 2]
    night = Night(argv, {cache.SIGNING_KEY_ENV: secret, "TMPDIR": str(scratch)})
    night.wait_for_line("store sign --key-file")
    signing = next(ln for ln in night.lines if "store sign --key-file" in ln)
    assert "--key-file /proc/" in signing  # a memfd, not a file
    night.signal(signal.Signals[sig], group=sig == "SIGKILL")
    assert night.wait() != 0
    needle = secret.split(":", 1)[1].encode()
    assert needle not in night.stderr.encode()
    # everything the run could write: its TMPDIR, the repository, the caches, the test's home
    assert _files_holding([tmp_path, Path(os.environ["XDG_CACHE_HOME"]).parent], needle) == []


# --- an unexpected exception is contained -------------------------------------------------------


def test_unexpected_exception_is_contained_and_reported(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A set whose lock raises a non-BotError (a bug) fails alone; the other set advances,
    the console gets one line, the report file the traceback."""
    import bot.nightly.per_set
    from bot.cli import main

    work, remote = night_repo
    (work / "sets" / "other").mkdir()
    (work / "sets" / "other" / "set.yaml").write_text(
        "description: other\npython: ['3.12']\nrequirements: ['nb-lib']\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "add set other")
    real = bot.nightly.per_set.lock_one

    def lock_one(pset, *args, **kwargs):  # type: ignore[no-untyped-def]
        if pset.name == "demo":
            raise ZeroDivisionError("a bug in locking demo")
        return real(pset, *args, **kwargs)

    monkeypatch.setattr(bot.nightly.per_set, "lock_one", lock_one)
    argv = nightly_argv(work, night_index, tmp_path, 2)[3:]
    argv.remove("-v")
    argv += ["--report-markdown", str(tmp_path / "report.md")]
    caplog.set_level(logging.INFO)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "demo: failed" in out
    assert "other: ok" in out
    assert "Traceback" not in err + out
    [line] = [r for r in caplog.records if "demo" in r.getMessage()]
    assert line.exc_info is None  # one line, not a traceback
    assert "\n" not in line.getMessage()
    assert "unexpected error ZeroDivisionError: a bug in locking demo" in line.getMessage()
    assert str(tmp_path / "report.md") in line.getMessage()
    text = (tmp_path / "report.md").read_text()
    assert "Traceback (most recent call last)" in text
    assert "ZeroDivisionError: a bug in locking demo" in text
    assert git(work, "log", "-1", "--format=%s").startswith("other: ")
    assert git(remote, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "status", "--porcelain") == ""


def test_report_is_written_without_a_report_option(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    work, _ = night_repo
    night_index.publish(
        make_wheel(tmp_path / "dist", "nb-lib", "1.1"), upload_time="2025-03-01T00:00:00Z"
    )
    assert run_nightly(options(work, night_index, tmp_path, 2)).exit_code == 0
    report = work / ".git" / "nixpkgs-python-report.md"
    assert "# nixpkgs-python nightly" in report.read_text()
    assert "nb-lib" in report.read_text()


def test_malformed_lock_fails_its_set_alone(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A committed lock that is valid TOML of the wrong shape (it was a real path to an
    unexpected exception until locks were checked before use: the test above covers that
    path): its set fails with one error naming the lock and what to do, and the
    other set is locked, built, committed and pushed."""
    work, remote = night_repo
    (work / "sets" / "other").mkdir()
    (work / "sets" / "other" / "set.yaml").write_text(
        "description: other\npython: ['3.12']\nrequirements: ['nb-lib']\n"
    )
    (work / LOCK).write_text('packages = "not a table"\n')
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "add set other, break demo's lock")
    report = tmp_path / "report.md"
    argv = nightly_argv(work, night_index, tmp_path, 2, "--report-markdown", str(report))
    argv.remove("-v")
    night = Night(argv)
    assert night.wait() == 2, night.stderr
    assert "demo: failed" in night.out
    assert "other: ok" in night.out
    assert "Traceback" not in night.stderr
    assert "unexpected error" not in night.stderr + night.out
    text = report.read_text()
    assert "Traceback (most recent call last)" not in text
    assert "pylock.py312.toml" in text
    assert "git checkout --" in text
    assert git(work, "log", "-1", "--format=%s").startswith("other: ")
    assert git(remote, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "status", "--porcelain") == ""


def test_pull_request_mode_publishes_left_over_commits_once(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    fake_github: FakeGitHub,
) -> None:
    """A night whose pull-request push failed left its commit local; the next night, with
    nothing new, pushes it and opens the pull request; the night after does nothing."""
    work, remote = night_repo
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'remote is down' >&2\nexit 1\n")
    hook.chmod(0o755)
    gh = github(fake_github, pull_request=True)
    result = run_nightly(options(work, night_index, tmp_path, 2, **gh))
    assert result.exit_code == 2
    assert "the remote rejected the push" in result.errors[0]
    committed = git(work, "rev-parse", "HEAD")
    hook.unlink()

    result = run_nightly(options(work, night_index, tmp_path, 2, **gh))
    assert result.exit_code == 0, result.errors
    assert [s.status for s in result.report.sets] == ["unchanged"]
    [pull] = fake_github.pulls[REPO]
    assert git(remote, "rev-parse", pull["head"]["ref"]) == committed
    assert "publishing 1 commit(s) an earlier run left unpublished" in result.report.notes

    result = run_nightly(options(work, night_index, tmp_path, 2, **gh))
    assert result.exit_code == 0, result.errors
    assert result.report.notes == ()
    assert len(fake_github.pulls[REPO]) == 1


def test_a_lock_changed_by_hand_is_left_and_its_set_sits_out(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A changed lock with no journal (a hand edit, an older bot killed mid-night) is not the
    night's to touch: that set is reported and skipped, the others run and are published."""
    work, remote = night_repo
    (work / "sets" / "other").mkdir()
    (work / "sets" / "other" / "set.yaml").write_text(
        "description: other\npython: ['3.12']\nrequirements: ['nb-lib']\n"
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "add set other")
    (work / LOCK).write_text("# a lock someone is editing\n")
    result = run_nightly(options(work, night_index, tmp_path, 2, push_to="main"))
    assert result.exit_code == 2
    status = {s.name: s for s in result.report.sets}
    assert status["demo"].status == "failed"
    assert "uncommitted changes this bot did not make" in (status["demo"].log_tail or "")
    assert status["other"].status == "ok"
    assert (work / LOCK).read_text() == "# a lock someone is editing\n"
    assert leftovers(work) == {LOCK}
    assert git(remote, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "log", "-1", "--format=%s").startswith("other: ")
