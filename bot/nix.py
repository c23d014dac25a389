"""The one place that runs nix commands.

Every nix invocation goes through :func:`nix_command`, which pins the options this project
relies on (no substituters unless asked, no negative narinfo caching, experimental features
for ``nix copy`` / ``nix store``), so behaviour does not depend on the caller's nix.conf.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.errors import NixError
from bot.proc import run

#: options passed to every nix command
COMMON_OPTIONS: tuple[tuple[str, str], ...] = (
    ("narinfo-cache-negative-ttl", "0"),
)

NEW_CLI = {"nix"}


def nix_command(
    tool: str,
    args: Sequence[str | os.PathLike[str]],
    *,
    substituters: str | None = "",
    options: Mapping[str, str] | None = None,
) -> list[str]:
    """Build an argv for ``tool`` (``nix``, ``nix-build``, ``nix-instantiate``, ``nix-store``...).

    ``substituters=""`` (the default) disables substitution; pass a URL list to allow it, or
    ``None`` to leave the machine's setting alone.
    """
    argv: list[str] = [tool]
    if tool in NEW_CLI:
        argv += ["--extra-experimental-features", "nix-command"]
    opts = dict(COMMON_OPTIONS)
    if substituters is not None:
        opts["substituters"] = substituters
    opts.update(options or {})
    for key, value in opts.items():
        argv += ["--option", key, value]
    argv += [os.fspath(a) for a in args]
    return argv


def run_nix(
    tool: str,
    args: Sequence[str | os.PathLike[str]],
    *,
    substituters: str | None = "",
    options: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = 3600,
    check: bool = True,
    what: str | None = None,
    hint: str | None = None,
    error: type[NixError] = NixError,
) -> subprocess.CompletedProcess[str]:
    """Run a nix tool; failures raise ``error`` carrying the command and its stderr tail."""
    return run(
        nix_command(tool, args, substituters=substituters, options=options),
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=check,
        error=error,
        what=what or tool,
        hint=hint,
    )


def eval_json(
    file: Path,
    *,
    attr: str | None = None,
    args: Mapping[str, str] | None = None,
    argstrs: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """``nix-instantiate --eval --strict --json`` of ``file`` (optionally ``-A attr``)."""
    argv: list[str] = ["--eval", "--strict", "--json", os.fspath(file)]
    if attr:
        argv += ["-A", attr]
    for key, value in (args or {}).items():
        argv += ["--arg", key, value]
    for key, value in (argstrs or {}).items():
        argv += ["--argstr", key, value]
    proc = run_nix("nix-instantiate", argv, env=env, what="nix-instantiate --eval")
    return json.loads(proc.stdout)
