"""The one helper through which every subprocess runs."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.core.errors import CommandError

log = logging.getLogger(__name__)

TAIL_LINES = 25
#: seconds a child gets to exit after SIGTERM when the run is interrupted, before SIGKILL
GRACE_SECONDS = 5.0


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
    environment entries, never in ``argv`` (which is logged).
    """
    args = [os.fspath(a) for a in argv]
    cmd = shlex.join(args)
    log.debug("$ %s", cmd)
    if not inherit_env:
        full_env: Mapping[str, str] | None = dict(env or {})
    else:
        full_env = None if env is None else {**os.environ, **env}
    try:
        proc = _run(
            args, cwd=cwd, env=full_env, input_text=input_text, capture=capture, timeout=timeout
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
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` that, when interrupted (Ctrl-C, SIGTERM, a timeout), stops the child
    with SIGTERM first, so that git and nix remove their own lock files, and SIGKILL only
    after :data:`GRACE_SECONDS`."""
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
        try:
            stdout, stderr = child.communicate(input_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(child)
            stdout, stderr = child.communicate()
            raise subprocess.TimeoutExpired(args, timeout or 0, stdout, stderr) from None
        except BaseException:
            _stop(child)
            raise
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
