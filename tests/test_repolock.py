"""bot.core.repolock against real git and real processes: the writer lock, the journalled
transaction, recovery of what a killed run left, and bot.core.proc's gentle stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.errors import BotError, GitError
from bot.core.git import commit_set
from bot.core.proc import run
from bot.core.repolock import (
    BUSY_EXIT,
    JOURNAL_NAME,
    LOCK_NAME,
    Terminated,
    Transaction,
    handle_signals,
    lock_if_in_repository,
    recover,
    repository_lock,
)
from tests.test_git import git, remote, work, write  # noqa: F401

ALPHA = "sets/alpha/pylock.py312.toml"


def hold_lock(repo: Path) -> subprocess.Popen[str]:
    """Another process holding the repository lock until it is killed."""
    code = (
        "import sys, time; from pathlib import Path;\n"
        "from bot.core.repolock import repository_lock\n"
        "with repository_lock(Path(sys.argv[1]), 'holder', wait=0):\n"
        "    print('held', flush=True); time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(repo)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_gets_one_clear_error_and_a_killed_holder_frees_the_lock(
    work: Path,  # noqa: F811
) -> None:
    holder = hold_lock(work)
    try:
        with pytest.raises(BotError) as busy, repository_lock(work, "nightly", wait=0):
            pass
        assert busy.value.exit_code == BUSY_EXIT
        assert f"pid {holder.pid}: holder" in str(busy.value)
        assert "NIXPKGS_PYTHON_LOCK_WAIT" in str(busy.value)
    finally:
        holder.send_signal(signal.SIGKILL)  # no handler runs; the kernel drops the flock
        holder.wait()
    with repository_lock(work, "nightly", wait=0) as path:
        assert path == work / ".git" / LOCK_NAME
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_lock_command_waits_for_the_repository(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.cli import main

    (work / "nix").mkdir()
    write(work / "sets/alpha/set.yaml", "description: a\npython: ['3.12']\nrequirements: []\n")
    monkeypatch.setenv("NIXPKGS_PYTHON_LOCK_WAIT", "0")
    holder = hold_lock(work)
    try:
        assert main(["--repo", str(work), "lock", "alpha"]) == BUSY_EXIT
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert "another nixpkgs-python command is writing this repository" in err
    assert "Traceback" not in err


def test_generate_locks_only_inside_a_repository(
    work: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    (work / "nix").mkdir()
    with lock_if_in_repository(tmp_path / "elsewhere" / "out", "generate") as held:
        assert held is None  # not in a nixpkgs-python checkout: nothing to hold
    with lock_if_in_repository(work / "mine" / "out", "generate") as held:
        assert held == work / ".git" / LOCK_NAME
        with pytest.raises(BotError), repository_lock(work, "nightly", wait=0):
            pass


def test_not_a_git_checkout_locks_outside_it(tmp_path: Path) -> None:
    with repository_lock(tmp_path, "lock", wait=0) as path:
        assert tmp_path not in path.parents
        with pytest.raises(BotError), repository_lock(tmp_path, "lock", wait=0):
            pass
    assert list(tmp_path.iterdir()) == []


def test_undo_puts_back_only_what_this_run_wrote(work: Path) -> None:  # noqa: F811
    tx = Transaction(work)
    alpha, beta, new = work / ALPHA, work / "sets/beta/pylock.py312.toml", work / "sets/c.toml"
    tx.write(alpha, "# alpha 2\n")
    tx.write(beta, "# beta 2\n")
    tx.write(new, "# new\n")
    assert (work / ".git" / JOURNAL_NAME).exists()
    beta.write_text("# someone else's beta\n")  # changed since this run wrote it
    notes = tx.undo()
    assert alpha.read_text() == "# alpha 1\n"
    assert not new.exists()
    assert beta.read_text() == "# someone else's beta\n"
    assert notes == ["sets/beta/pylock.py312.toml changed since this run wrote it; left as it is"]
    assert not (work / ".git" / JOURNAL_NAME).exists()


def test_undo_never_reverts_a_committed_file(work: Path) -> None:  # noqa: F811
    """The lost-locks race: a commit landed (here: by another writer) with what this run wrote;
    undoing must not put the old content back over it."""
    tx = Transaction(work)
    tx.write(work / ALPHA, "# alpha 2\n")
    git(work, "commit", "-qam", "alpha 2")
    assert tx.undo() == []
    assert (work / ALPHA).read_text() == "# alpha 2\n"
    assert git(work, "status", "--porcelain") == ""


def test_recover_heals_a_killed_commit(
    work: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run killed inside ``git commit``: its lock written and staged, the index locked."""
    monkeypatch.setattr("bot.core.repolock.INDEX_LOCK_GRACE", 0.0)  # no git survives here
    tx = Transaction(work)
    tx.write(work / ALPHA, "# alpha 2\n")
    tx.write(work / "sets/new/pylock.py312.toml", "# new\n")
    tx.commit([work / ALPHA]).__enter__()  # killed inside the block: it never ends
    git(work, "add", "-A")
    (work / ".git" / "index.lock").write_text("")  # what SIGKILL leaves
    notes = recover(work)
    assert not (work / ".git" / "index.lock").exists()
    assert git(work, "status", "--porcelain") == ""
    assert (work / ALPHA).read_text() == "# alpha 1\n"
    assert not (work / ".git" / JOURNAL_NAME).exists()
    assert any("index.lock" in n for n in notes)
    assert any(ALPHA in n and "restored" in n for n in notes)
    assert recover(work) == []  # nothing left to do


def test_recover_leaves_a_file_someone_changed(work: Path) -> None:  # noqa: F811
    tx = Transaction(work)
    tx.write(work / ALPHA, "# alpha 2\n")
    (work / ALPHA).write_text("# edited by hand\n")
    notes = recover(work)
    assert (work / ALPHA).read_text() == "# edited by hand\n"
    assert notes == [
        f"interrupted run (pid {os.getpid()}): {ALPHA} changed since this run wrote it; "
        "left as it is"
    ]


def test_failed_commit_leaves_the_index_as_it_was(work: Path) -> None:  # noqa: F811
    write(work / "notes.txt", "staged by the user\n")
    git(work, "add", "notes.txt")
    hook = work / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    write(work / ALPHA, "# alpha 2\n")
    write(work / "sets/new/pylock.py312.toml", "# new\n")
    with pytest.raises(GitError, match="hook says no"):
        commit_set(work, "alpha", [work / ALPHA, work / "sets/new/pylock.py312.toml"], "s", "")
    assert git(work, "diff", "--cached", "--name-only") == "notes.txt"
    assert git(work, "rev-list", "--count", "HEAD") == "1"


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pause()  # the handler raises before this returns


def test_sigterm_unwinds_like_ctrl_c() -> None:
    with handle_signals(), pytest.raises(Terminated) as stopped:
        _terminate_self()
    assert stopped.value.signum == signal.SIGTERM
    assert isinstance(stopped.value, KeyboardInterrupt)


def test_interrupted_child_gets_sigterm_first(tmp_path: Path) -> None:
    """bot.core.proc stops a child gently (git removes its index.lock on SIGTERM, not SIGKILL)."""
    done = tmp_path / "terminated"
    script = f"trap 'echo term > {done}; kill $!; exit 0' TERM; sleep 600 & wait"
    with pytest.raises(BotError, match="timed out"):
        run(["sh", "-c", script], timeout=1)
    assert done.read_text() == "term\n"
