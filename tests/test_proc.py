"""The one subprocess helper: children of a stoppable block are stopped with it, on every
thread working for it."""

from __future__ import annotations

import contextvars
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.core import proc
from bot.core.errors import StoppedError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(30)"


def _start_sleeper(pool: ThreadPoolExecutor, pidfile: Path, *script: str) -> Future[Any]:
    argv = [sys.executable, "-c", "; ".join([*script, SLEEPER]), str(pidfile)]
    future = pool.submit(contextvars.copy_context().run, proc.run, argv, timeout=60)
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        assert not future.done(), future
        time.sleep(0.02)
    return future


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def test_stopping_a_block_stops_its_children_on_other_threads(
    pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    with proc.stoppable() as children:
        running = _start_sleeper(pool, pidfile)
        started = time.monotonic()
        children.stop()
        assert time.monotonic() - started < 3
        with pytest.raises(StoppedError, match="stopped"):
            running.result(timeout=5)
        assert not _alive(int(pidfile.read_text()))
        # and nothing starts in a stopped block
        marker = tmp_path / "started"
        code = f"open({str(marker)!r}, 'w')"
        with pytest.raises(StoppedError):
            proc.run([sys.executable, "-c", code])
        assert not marker.exists()


def test_a_child_deaf_to_sigterm_is_killed_after_the_grace(
    pool: ThreadPoolExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proc, "GRACE_SECONDS", 0.3)
    pidfile = tmp_path / "child.pid"
    with proc.stoppable():
        deaf = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
        running = _start_sleeper(pool, pidfile, deaf)
    # the block's end stopped it
    with pytest.raises(StoppedError):
        running.result(timeout=5)
    assert not _alive(int(pidfile.read_text()))


def test_children_outside_a_block_are_not_stopped(pool: ThreadPoolExecutor, tmp_path: Path) -> None:
    with proc.stoppable():
        pass  # a block that ended before this child started
    done = pool.submit(proc.run, [sys.executable, "-c", "print('ok')"])
    assert done.result(timeout=30).stdout == "ok\n"
