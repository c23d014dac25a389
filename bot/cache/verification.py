"""Verify a cache the way a consumer meets it: substitute into a fresh store that trusts one key."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from bot.cache.errors import CacheNixError
from bot.cache.keys import parse_key, public_key_text
from bot.cache.narinfo import NARINFO_SUFFIX
from bot.cache.query import fetch_files, hash_part, nix_path_infos, store_paths
from bot.cache.stores import CacheStore, parse_store, ssh_options
from bot.core import nix
from bot.core.errors import CacheError, NixError
from bot.core.proc import tail

log = logging.getLogger(__name__)

Reason = Literal[
    "missing",  # the cache has no narinfo for the path
    "unsigned",  # the narinfo carries no signature at all
    "untrusted-key",  # signed, but by none of the trusted keys
    "bad-signature",  # a signature by the trusted key's name that does not verify
    "hash-mismatch",  # the NAR does not match the narinfo's NarHash
    "dependency-failed",  # fine itself, but something in its closure failed
    "error",  # substitution failed for a reason not classified above
]

_UNTRUSTED = re.compile(r"path '(/nix/store/[^']+)' is untrusted")
_MODIFIED = re.compile(r"path '(/nix/store/[^']+)' was modified! (.*)")
_STORE_PATH = re.compile(r"/nix/store/[0-9a-z]{32}-[^'\"\s]+")


@dataclass(frozen=True)
class PathFailure:
    """One path that a consumer trusting only the given key could not substitute, and why."""

    path: str
    reason: Reason
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found."""

    store: str
    public_key: str
    requested: tuple[str, ...]
    checked: tuple[str, ...]
    failures: tuple[PathFailure, ...]
    duration: float

    @property
    def ok(self) -> bool:
        """Whether every requested path (and its closure) substitutes."""
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        return {**asdict(self), "ok": self.ok}


def verify(
    paths: Sequence[str],
    *,
    from_: str,
    public_key: str | Path,
    ssh_config: Path | None = None,
    timeout: float = 3600,
) -> VerifyResult:
    """Substitute ``paths`` from the cache ``from_`` into a fresh, empty store that requires
    signatures and trusts only ``public_key`` (text ``name:base64`` or a ``.pub`` file).

    Returns which paths failed and why (:data:`Reason`); never raises for a verification
    failure, only when the cache cannot be read at all.  The temporary store is removed.
    """
    start = time.monotonic()
    key = public_key_text(public_key)
    key_name = parse_key(key, secret=False, where="public key")
    cache = parse_store(from_)
    requested = store_paths(paths)
    if not requested:
        raise CacheError("no store paths to verify", where=from_)
    workdir = Path(tempfile.mkdtemp(prefix="nixpkgs-python-verify-"))
    try:
        with ssh_options(ssh_config) as env:
            source = cache.uri
            if cache.kind == "rsync":
                source = _mirror(cache, requested, workdir / "mirror", env, timeout)
            infos = _closure_infos(source, requested, env, timeout)
            failures = _metadata_failures(infos, key_name)
            valid = [p for p in requested if infos[p].get("valid") is not False]
            fresh = f"local?root={workdir / 'store'}"
            substituted, stderr = _substitute(valid, source, fresh, key, env, timeout)
            if not substituted or failures:
                checkable = sorted(p for p, i in infos.items() if i.get("valid") is not False)
                if checkable:
                    checked = nix.store_verify(
                        checkable, store=source, trusted_public_keys=key, env=env, timeout=timeout
                    )
                    _content_failures(checked.stderr, failures)
                if not failures:
                    named = _STORE_PATH.findall(stderr)
                    path = named[-1] if named else requested[0]
                    failures[path] = PathFailure(path, "error", tail(stderr, 5))
            _dependency_failures(requested, infos, failures)
    finally:
        _remove_tree(workdir)
    result = VerifyResult(
        store=from_,
        public_key=key,
        requested=tuple(requested),
        checked=tuple(sorted(infos)),
        failures=tuple(failures[p] for p in sorted(failures)),
        duration=time.monotonic() - start,
    )
    log.info("verify %s: %d paths checked, %d failed", from_, len(result.checked), len(failures))
    return result


def _substitute(
    paths: Sequence[str], source: str, fresh: str, key: str, env: Mapping[str, str], timeout: float
) -> tuple[bool, str]:
    """Copy ``paths`` from ``source`` into the empty store ``fresh`` requiring signatures by
    ``key`` only; return (all of them arrived, nix's stderr)."""
    if not paths:
        return True, ""
    options = {"require-sigs": "true", "trusted-public-keys": key, "secret-key-files": ""}
    proc = nix.copy_paths(
        paths, from_=source, to=fresh, options=options, env=env, timeout=timeout, check=False,
        error=CacheNixError,
    )  # fmt: skip
    if proc.returncode != 0:
        return False, proc.stderr
    have = nix.valid_paths(paths, store=fresh, env=env, timeout=timeout, error=CacheNixError)
    return len(have) == len(paths), proc.stderr


def _closure_infos(
    store: str, paths: Sequence[str], env: Mapping[str, str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Path infos of the closure of ``paths`` as the cache describes it (breadth first, so a
    missing reference is reported instead of failing the whole query)."""
    infos = nix_path_infos(store, paths, env=env, timeout=timeout)
    valid = sorted(p for p, i in infos.items() if i.get("valid") is not False)
    try:
        # one round trip when the closure is complete (the usual case)
        closure = nix.path_info(valid, store=store, recursive=True, env=env, timeout=timeout)
    except NixError:
        closure = None  # a reference is missing: find out which, breadth first
    if closure is not None and all(i.get("valid") is not False for i in closure):
        infos.update({i["path"]: i for i in closure})
        if all(r in infos for i in closure for r in i.get("references", [])):
            return infos
    todo = sorted({r for i in infos.values() for r in i.get("references", [])} - infos.keys())
    while todo:
        found = nix_path_infos(store, todo, env=env, timeout=timeout)
        infos.update(found)
        refs = {r for i in found.values() for r in i.get("references", [])}
        todo = sorted(refs - infos.keys())
    return infos


def _metadata_failures(
    infos: Mapping[str, dict[str, Any]], key_name: str
) -> dict[str, PathFailure]:
    failures: dict[str, PathFailure] = {}
    for path, info in infos.items():
        sigs: list[str] = info.get("signatures", [])
        names = sorted({s.split(":", 1)[0] for s in sigs})
        if info.get("valid") is False:
            failures[path] = PathFailure(path, "missing", "the cache has no narinfo for it")
        elif not sigs:
            failures[path] = PathFailure(path, "unsigned", "the narinfo has no signature")
        elif key_name not in names:
            failures[path] = PathFailure(
                path, "untrusted-key", f"signed only by untrusted key(s): {', '.join(names)}"
            )
    return failures


def _content_failures(stderr: str, failures: dict[str, PathFailure]) -> None:
    for line in stderr.splitlines():
        if m := _MODIFIED.search(line):
            failures.setdefault(
                m.group(1), PathFailure(m.group(1), "hash-mismatch", "NAR " + m.group(2))
            )
        elif (m := _UNTRUSTED.search(line)) and m.group(1) not in failures:
            failures[m.group(1)] = PathFailure(
                m.group(1),
                "bad-signature",
                "the signature by the trusted key's name does not match this path's narinfo",
            )


def _dependency_failures(
    requested: Sequence[str], infos: Mapping[str, dict[str, Any]], failures: dict[str, PathFailure]
) -> None:
    failed = set(failures)
    for path in requested:
        if path in failed:
            continue
        seen, todo = {path}, [path]
        while todo:
            for ref in infos.get(todo.pop(), {}).get("references", []):
                if ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
        bad = sorted(seen & failed)
        if bad:
            failures[path] = PathFailure(
                path, "dependency-failed", f"{len(bad)} path(s) in its closure failed: {bad[0]}"
            )


def _mirror(
    cache: CacheStore, paths: Sequence[str], dest: Path, env: Mapping[str, str], timeout: float
) -> str:
    """Fetch the narinfos and NARs of the closure of ``paths`` from an rsync+ssh cache into a
    local file cache, exactly as stored remotely; return its ``file://`` URI."""
    dest.mkdir(parents=True)
    fetch_files(cache, ["nix-cache-info"], dest, env=env, timeout=timeout)
    seen: set[str] = set()
    todo = {hash_part(p) for p in paths}
    nars: set[str] = set()
    while todo:
        seen |= todo
        found = fetch_files(
            cache, [h + NARINFO_SUFFIX for h in todo], dest, env=env, timeout=timeout
        )
        todo = set()
        for name in found:
            for line in (dest / name).read_text(encoding="utf-8").splitlines():
                field, _, value = line.partition(": ")
                if field == "URL":
                    nars.add(value.strip())
                elif field == "References":
                    todo |= {hash_part(r) for r in value.split()}
        todo -= seen
    fetch_files(cache, sorted(nars), dest, env=env, timeout=timeout)
    return f"file://{dest}"


def _remove_tree(root: Path) -> None:
    """Remove a temporary store: store paths are read-only, so make them writable first."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    if os.path.isdir(root):
        os.chmod(root, os.stat(root).st_mode | stat.S_IWUSR)
    shutil.rmtree(root, ignore_errors=True)
