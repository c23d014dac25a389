"""The one helper through which every subprocess runs."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.errors import CommandError

log = logging.getLogger(__name__)

TAIL_LINES = 25


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """Last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    timeout: float | None = 3600,
    check: bool = True,
    capture: bool = True,
    error: type[CommandError] = CommandError,
    what: str | None = None,
    hint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; log ``$ cmd`` at debug level; raise ``error`` with the stderr tail on failure.

    ``env`` entries are added to the current environment.  Secrets must be passed as files or
    environment entries, never in ``argv`` (which is logged).
    """
    args = [os.fspath(a) for a in argv]
    cmd = shlex.join(args)
    log.debug("$ %s", cmd)
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=full_env,
            input=input_text,
            text=True,
            capture_output=capture,
            timeout=timeout,
            check=False,
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
