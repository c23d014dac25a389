"""What a store has: closures, and which paths a cache already holds."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.cache.errors import CacheCommandError, CacheNixError, command_failed
from bot.cache.narinfo import (
    NARINFO_SUFFIX,
    STORE_DIR,
    Narinfo,
    complete_roots,
    read_narinfo,
    walk_closure,
)
from bot.cache.stores import CacheStore, parse_store, rsync_shell, ssh_options
from bot.core import nix
from bot.core.errors import CacheError
from bot.core.proc import run

log = logging.getLogger(__name__)


def hash_part(path: str) -> str:
    """The 32-character hash of a store path (the narinfo's file name stem)."""
    return path.removeprefix(STORE_DIR).split("-", 1)[0]


def store_paths(paths: Iterable[str]) -> list[str]:
    """Normalise ``paths`` to store paths (``./result`` symlinks are resolved)."""
    out: list[str] = []
    for p in paths:
        path = p if p.startswith(STORE_DIR) else os.path.realpath(p)
        if not path.startswith(STORE_DIR) or len(hash_part(path)) != 32:
            raise CacheError("not a Nix store path", where=p)
        # /nix/store/xxx-name/bin/foo -> /nix/store/xxx-name
        out.append(STORE_DIR + path.removeprefix(STORE_DIR).split("/", 1)[0])
    return sorted(set(out))


def local_closure(paths: Sequence[str], *, timeout: float | None = 600) -> list[str]:
    """The closure of ``paths`` in the local store (all must be valid there)."""
    infos = nix.path_info(paths, recursive=True, timeout=timeout, error=CacheNixError)
    missing = sorted(i["path"] for i in infos if i.get("valid") is False)
    if missing:
        raise CacheError(
            f"{len(missing)} path(s) are not in the local store",
            where=missing[0],
            hint="build them first",
        )
    return sorted(i["path"] for i in infos)


def nix_path_infos(
    store: str, paths: Sequence[str], *, env: Mapping[str, str], timeout: float | None = 600
) -> dict[str, dict[str, Any]]:
    """``nix path-info --json --store`` keyed by path; missing paths get ``valid: False``.

    Validity is checked first in one round trip (:func:`bot.core.nix.valid_paths`), so only
    paths the store has are asked about.
    """
    valid = nix.valid_paths(paths, store=store, env=env, timeout=timeout, error=CacheNixError)
    infos: dict[str, dict[str, Any]] = {p: {"path": p, "valid": False} for p in paths}
    found = nix.path_info(sorted(valid), store=store, env=env, timeout=timeout, error=CacheNixError)
    infos.update({i["path"]: i for i in found})
    return infos


def fetch_files(
    store: CacheStore,
    names: Iterable[str],
    dest: Path,
    *,
    env: Mapping[str, str],
    timeout: float | None = 600,
) -> set[str]:
    """Copy the files ``names`` (relative, e.g. ``<hash>.narinfo``) that exist in the remote
    cache directory of an rsync+ssh ``store`` into ``dest``; return the names found there.
    A cache directory that does not exist yet holds nothing."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", prefix="files-from-", suffix=".txt") as listing:
        listing.write("\n".join(wanted) + "\n")
        listing.flush()
        argv = [
            "rsync", "--archive", "--ignore-missing-args", "--files-from", listing.name,
            "-e", rsync_shell(dict(env)), store.rsync_target, f"{dest}/",
        ]  # fmt: skip
        proc = run(argv, timeout=timeout, check=False, error=CacheCommandError, what="rsync")
    if proc.returncode != 0:
        if "change_dir" in proc.stderr and "No such file or directory" in proc.stderr:
            return set()
        raise command_failed(store.uri, proc)
    return {n for n in wanted if (dest / n).exists()}


def has_paths(
    store: str,
    paths: Sequence[str],
    *,
    ssh_config: Path | None = None,
    timeout: float | None = 600,
) -> set[str]:
    """Which of ``paths`` (store paths) the cache ``store`` already has.

    For nix-readable stores this asks nix (``nix path-info --store``); for a file or
    rsync+ssh cache it checks which narinfo files exist in the directory.
    """
    cache = parse_store(store)
    wanted = store_paths(paths)
    with ssh_options(ssh_config) as env:
        return _has_paths(cache, wanted, env=env, timeout=timeout)


def _has_paths(
    cache: CacheStore, paths: Sequence[str], *, env: Mapping[str, str], timeout: float | None
) -> set[str]:
    if not paths:
        return set()
    if cache.kind == "rsync":
        tmp = Path(tempfile.mkdtemp(prefix="nixpkgs-python-query-"))
        try:
            names = {hash_part(p) + NARINFO_SUFFIX: p for p in paths}
            found = fetch_files(cache, names, tmp, env=env, timeout=timeout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {names[n] for n in found}
    if cache.kind == "file":
        return _file_cache_has(Path(cache.path or ""), paths)
    return nix.valid_paths(
        paths, store=cache.nix_uri, env=env, timeout=timeout, error=CacheNixError
    )


def has_closures(
    store: str,
    paths: Sequence[str],
    *,
    ssh_config: Path | None = None,
    timeout: float | None = 600,
) -> set[str]:
    """Which of ``paths`` the cache ``store`` has together with their whole closure.

    A Nix store (``ssh-ng://``, ``ssh://``) never holds a path without its references, so
    there this is :func:`has_paths`.  A ``file://`` or rsync+ssh cache directory is only a
    set of files: a push cut off part way may have left a path's narinfo without those of
    its references, which clients then fail to substitute.  There the closure is walked
    through the narinfos' ``References`` (read from the directory, or fetched with one rsync
    run per level of the closure), and a path counts only when every narinfo it reaches is
    there and names its path.  NARs are not looked at: every push uploads a path's NAR
    before its narinfo.
    """
    cache = parse_store(store)
    wanted = store_paths(paths)
    if not wanted:
        return set()
    if cache.kind not in ("file", "rsync"):
        return has_paths(store, wanted, ssh_config=ssh_config, timeout=timeout)
    if cache.kind == "file":
        root = Path(cache.path or "")
        return complete_roots(
            wanted, walk_closure(wanted, lambda todo: _read_file_cache(root, todo))
        )
    with ssh_options(ssh_config) as env:
        tmp = Path(tempfile.mkdtemp(prefix="nixpkgs-python-closure-"))
        try:
            deadline = None if timeout is None else time.monotonic() + timeout

            def fetch(todo: Sequence[str]) -> dict[str, Narinfo | None]:
                left = None if deadline is None else max(deadline - time.monotonic(), 1.0)
                names = [hash_part(p) + NARINFO_SUFFIX for p in todo]
                fetch_files(cache, names, tmp, env=env, timeout=left)
                return _read_file_cache(tmp, todo)

            return complete_roots(wanted, walk_closure(wanted, fetch))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _read_file_cache(root: Path, paths: Sequence[str]) -> dict[str, Narinfo | None]:
    return {p: read_narinfo(root / (hash_part(p) + NARINFO_SUFFIX), p) for p in paths}


def _file_cache_has(root: Path, paths: Sequence[str]) -> set[str]:
    """The paths a ``file://`` binary cache at ``root`` has: those with a narinfo naming
    them (``<hash>.narinfo`` with their ``StorePath:`` line), which is what nix itself asks of
    such a cache, read directly (nix-store --check-validity --store file://... took ~0.2 s
    a quiet night, for a few dozen small files)."""
    found: set[str] = set()
    for path in paths:
        try:
            text = (root / (hash_part(path) + NARINFO_SUFFIX)).read_text(
                encoding="utf-8", errors="replace"
            )
        except OSError:
            continue
        if f"StorePath: {path}" in text.splitlines():
            found.add(path)
    return found
