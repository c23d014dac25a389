"""The one place that runs nix commands.

Every nix invocation goes through :func:`nix_command`, which pins the options this project
relies on (no substituters unless asked, no negative narinfo caching, experimental features
for ``nix copy`` / ``nix store``), so behaviour does not depend on the caller's nix.conf.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.core.errors import NixError
from bot.core.proc import run

#: options passed to every nix command
COMMON_OPTIONS: tuple[tuple[str, str], ...] = (("narinfo-cache-negative-ttl", "0"),)

NEW_CLI = {"nix"}

log = logging.getLogger(__name__)

#: Nix failing on its own narinfo disk cache (``~/.cache/nix/binary-cache-v6.sqlite``), which
#: concurrent nix processes race on (NixOS/nix#3898: an ``insert or replace`` into NARs
#: whose cache row another process has just replaced, "constraint failed"; seen in a CI run of
#: this project, Nix 2.8).  That file is only a cache of what binary caches hold: the same
#: command run again meets a settled row, so such a failure is retried once, not reported as
#: a build failure of the set.
NARINFO_CACHE_RACE = re.compile(
    r"error: executing SQLite (statement|query) .*\(in '[^']*binary-cache-v\d+\.sqlite'\)"
)


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
    """Run a nix tool; failures raise ``error`` carrying the command and its stderr tail.
    A failure on Nix's own narinfo disk cache (:data:`NARINFO_CACHE_RACE`) is run once more."""
    argv = nix_command(tool, args, substituters=substituters, options=options)
    for attempt in (1, 2):
        try:
            proc = run(
                argv,
                env=env,
                cwd=cwd,
                timeout=timeout,
                check=check,
                error=error,
                what=what or tool,
                hint=hint,
            )
        except NixError as exc:
            if attempt == 2 or not NARINFO_CACHE_RACE.search(exc.stderr_tail):
                raise
        else:
            if attempt == 2 or proc.returncode == 0 or not NARINFO_CACHE_RACE.search(proc.stderr):
                return proc
        log.warning("%s: nix failed on its narinfo cache database; once more", tool)
    raise AssertionError("unreachable")  # the second attempt returns or raises


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


def sandboxed(timeout: float = 60) -> bool:
    """Whether this machine's nix builds in a sandbox (its ``sandbox`` setting, read with
    ``nix show-config --json``, or ``nix config show --json`` where that was renamed):
    ``true`` or ``relaxed`` (only fixed-output and ``__noChroot`` derivations escape it,
    which the packages' derivations are not).  ``false``, or a setting that cannot be read,
    is ``False``: callers take the build to be impure, the safe side.  (A daemon reads its
    own nix.conf; on a multi-user install it is normally the same file.)"""
    for args in (["show-config", "--json"], ["config", "show", "--json"]):
        try:
            proc = run_nix("nix", args, timeout=timeout, check=False, what="nix show-config")
        except NixError:
            return False
        if proc.returncode != 0:
            continue
        try:
            setting = json.loads(proc.stdout).get("sandbox")
        except (ValueError, AttributeError):
            return False
        value = setting.get("value") if isinstance(setting, dict) else setting
        return value is True or value in ("true", "relaxed")
    return False


# --- store paths, signing and copying (used by bot.cache) ---------------------------------


def path_info(
    paths: Sequence[str],
    *,
    store: str | None = None,
    recursive: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600,
    error: type[NixError] = NixError,
) -> list[dict[str, Any]]:
    """``nix path-info --json`` of ``paths`` in ``store`` (the local store when ``None``).

    Paths the store does not have come back as ``{"path": ..., "valid": false}``.
    """
    if not paths:
        return []
    argv: list[str] = ["path-info", "--json"]
    if store is not None:
        argv += ["--store", store]
    if recursive:
        argv.append("--recursive")
    proc = run_nix(
        "nix",
        [*argv, *paths],
        env=env,
        timeout=timeout,
        error=error,
        what=f"nix path-info --store {store or 'local'}",
    )
    infos: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return infos


def store_sign(
    paths: Sequence[str],
    *,
    key_file: Path,
    store: str | None = None,
    recursive: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600,
    error: type[NixError] = NixError,
) -> None:
    """``nix store sign --key-file`` ``paths`` (the key is read from a file, never argv)."""
    if not paths:
        return
    argv: list[str] = ["store", "sign", "--key-file", os.fspath(key_file)]
    if store is not None:
        argv += ["--store", store]
    if recursive:
        argv.append("--recursive")
    run_nix("nix", [*argv, *paths], env=env, timeout=timeout, error=error, what="nix store sign")


def copy_paths(
    paths: Sequence[str],
    *,
    to: str | None = None,
    from_: str | None = None,
    recursive: bool = True,
    options: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 3600,
    check: bool = True,
    error: type[NixError] = NixError,
) -> subprocess.CompletedProcess[str]:
    """``nix copy [--from URI] [--to URI] paths`` (their closures unless ``recursive=False``)."""
    argv: list[str] = ["copy"]
    if from_ is not None:
        argv += ["--from", from_]
    if to is not None:
        argv += ["--to", to]
    if not recursive:
        argv.append("--no-recursive")
    return run_nix(
        "nix",
        [*argv, *paths],
        options=options,
        env=env,
        timeout=timeout,
        check=check,
        error=error,
        what="nix copy",
    )


def store_verify(
    paths: Sequence[str],
    *,
    store: str,
    trusted_public_keys: str,
    contents: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 3600,
) -> subprocess.CompletedProcess[str]:
    """``nix store verify`` ``paths`` in ``store`` trusting only ``trusted_public_keys``.

    Never raises on a verification failure: the caller parses stderr (``path 'X' is
    untrusted`` / ``path 'X' was modified! ...``) and the exit code.
    """
    argv: list[str] = ["store", "verify", "--store", store]
    if not contents:
        argv.append("--no-contents")
    return run_nix(
        "nix",
        [*argv, *paths],
        env=env,
        timeout=timeout,
        check=False,
        what="nix store verify",
        options={"trusted-public-keys": trusted_public_keys, "secret-key-files": ""},
    )


def generate_binary_cache_key(
    name: str, secret_key: Path, public_key: Path, *, error: type[NixError] = NixError
) -> None:
    """``nix-store --generate-binary-cache-key name secret public``."""
    run_nix(
        "nix-store",
        ["--generate-binary-cache-key", name, secret_key, public_key],
        timeout=60,
        error=error,
        what="nix-store --generate-binary-cache-key",
    )


def valid_paths(
    paths: Sequence[str],
    *,
    store: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600,
    error: type[NixError] = NixError,
) -> set[str]:
    """Which of ``paths`` are valid in ``store``, in one round trip.

    Uses ``nix-store --check-validity --print-invalid``: unlike ``nix path-info``, it does not
    reconnect after every missing path over ``ssh-ng://`` (about a second per path in 2.8).
    """
    if not paths:
        return set()
    argv: list[str] = [] if store is None else ["--store", store]
    proc = run_nix(
        "nix-store",
        [*argv, "--check-validity", "--print-invalid", *paths],
        env=env,
        timeout=timeout,
        error=error,
        what=f"nix-store --check-validity --store {store or 'local'}",
    )
    invalid = set(proc.stdout.split())
    return {p for p in paths if p not in invalid}
