"""The one helper through which every subprocess runs."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bot.core.errors import CommandError, StoppedError

log = logging.getLogger(__name__)

TAIL_LINES = 25
#: seconds a child gets to exit after SIGTERM when the run is interrupted, before SIGKILL
GRACE_SECONDS = 5.0


class Children:
    """The subprocesses :func:`run` starts inside one :func:`stoppable` block, on whichever
    thread: the block's own, and any thread its work was handed to with the block's context
    (``pool.submit(contextvars.copy_context().run, fn)``).  A child of another thread cannot
    be stopped by that thread's exception (only the main thread gets Ctrl-C and SIGTERM),
    so the block's owner stops them when it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self.stopped = False

    def _enter(self, child: subprocess.Popen[str]) -> bool:
        with self._lock:
            if not self.stopped:
                self._running.add(child)
            return not self.stopped

    def _leave(self, child: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.discard(child)

    def stop(self) -> None:
        """Stop every child running now (SIGTERM, then SIGKILL for those still there after
        :data:`GRACE_SECONDS`, counted once for all) and start no other: :func:`run` then
        raises :class:`~bot.core.errors.StoppedError` in the thread that asked for it."""
        with self._lock:
            self.stopped = True
            running = list(self._running)
        for child in running:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for child in running:
            try:
                child.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


_CHILDREN: contextvars.ContextVar[Children | None] = contextvars.ContextVar(
    "bot_proc_children", default=None
)


@contextlib.contextmanager
def stoppable() -> Iterator[Children]:
    """A block whose subprocesses, on every thread working for it, are stopped when it ends
    (or earlier, by :meth:`Children.stop`)."""
    children = Children()
    token = _CHILDREN.set(children)
    try:
        yield children
    finally:
        _CHILDREN.reset(token)
        children.stop()


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """Last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    input_text: str | None = None,
    timeout: float | None = 3600,
    check: bool = True,
    capture: bool = True,
    error: type[CommandError] = CommandError,
    what: str | None = None,
    hint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; log ``$ cmd`` at debug level; raise ``error`` with the stderr tail on failure.

    ``env`` entries are added to the current environment; with ``inherit_env=False`` they are
    the child's whole environment (for a child running untrusted code, see
    :func:`bot.lock.index.hookenv.hook_environ`).  Secrets must be passed as files or
    environment entries, never in ``argv`` (which is logged).  Inside a :func:`stoppable`
    block that was stopped, the child is not started (or is stopped) and
    :class:`~bot.core.errors.StoppedError` is raised.
    """
    args = [os.fspath(a) for a in argv]
    cmd = shlex.join(args)
    log.debug("$ %s", cmd)
    if not inherit_env:
        full_env: Mapping[str, str] | None = dict(env or {})
    else:
        full_env = None if env is None else {**os.environ, **env}
    children = _CHILDREN.get()
    try:
        proc = _run(
            args,
            cwd=cwd,
            env=full_env,
            input_text=input_text,
            capture=capture,
            timeout=timeout,
            children=children,
        )
    except FileNotFoundError as exc:
        raise error(
            f"{what or args[0]}: command not found",
            command=cmd,
            hint=hint or f"install {args[0]!r} and make sure it is on PATH",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.stderr if isinstance(exc.stderr, str) else ""
        raise error(
            f"{what or args[0]} timed out after {timeout:.0f}s",
            command=cmd,
            stderr_tail=tail(out or ""),
            hint=hint,
        ) from exc
    if proc is None:
        raise StoppedError(f"{what or args[0]}: stopped, the work it was for has ended", where=cmd)
    if check and proc.returncode != 0:
        raise error(
            f"{what or args[0]} failed with exit code {proc.returncode}",
            command=cmd,
            returncode=proc.returncode,
            stderr_tail=tail(proc.stderr or proc.stdout or ""),
            hint=hint,
        )
    return proc


def _run(
    args: list[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    input_text: str | None,
    capture: bool,
    timeout: float | None,
    children: Children | None = None,
) -> subprocess.CompletedProcess[str] | None:
    """``subprocess.run`` that, when interrupted (Ctrl-C, SIGTERM, a timeout), stops the child
    with SIGTERM first, so that git and nix remove their own lock files, and SIGKILL only
    after :data:`GRACE_SECONDS`.  None when ``children`` were stopped (before the child
    started, or while it ran)."""
    if children is not None and children.stopped:
        return None
    pipe = subprocess.PIPE if capture else None
    with subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if input_text is not None else None,
        stdout=pipe,
        stderr=pipe,
        text=True,
    ) as child:
        if children is not None and not children._enter(child):
            _stop(child)  # stopped while it was being started
            return None
        try:
            stdout, stderr = child.communicate(input_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(child)
            stdout, stderr = child.communicate()
            raise subprocess.TimeoutExpired(args, timeout or 0, stdout, stderr) from None
        except BaseException:
            _stop(child)
            raise
        finally:
            if children is not None:
                children._leave(child)
        if children is not None and children.stopped:
            return None  # whatever it answered, nobody waits for it any more
        return subprocess.CompletedProcess(args, child.returncode, stdout, stderr)


def _stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
