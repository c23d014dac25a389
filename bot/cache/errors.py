"""Cache errors that also carry a failed command (they are :class:`CacheError` too)."""

from __future__ import annotations

import shlex
import subprocess

from bot.core.errors import CacheError, CommandError, NixError
from bot.core.proc import tail


class CacheNixError(NixError, CacheError):
    """A nix command run for the binary cache failed."""


class CacheCommandError(CommandError, CacheError):
    """Another command (rsync, ssh) failed while talking to a cache."""


def command_failed(
    store: str, proc: subprocess.CompletedProcess[str], what: str | None = None
) -> CacheCommandError:
    """An error naming ``store``, the command and the tail of its output."""
    argv = [str(a) for a in proc.args]
    return CacheCommandError(
        f"{what or argv[0]} failed with exit code {proc.returncode}",
        where=store,
        command=shlex.join(argv),
        returncode=proc.returncode,
        stderr_tail=tail(proc.stderr or proc.stdout or ""),
    )
