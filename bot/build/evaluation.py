"""Remembered evaluations: the out paths one ``nix-instantiate --eval`` gave, for its inputs.

A quiet night evaluates every unchanged set's environment (one ``nix-instantiate`` for all
of them, ~0.7 s here) only to learn the out paths it asks the binary cache for.  With the
standalone interpreters those paths are a function of what the evaluation reads: the files
of the repository's Nix library and data (``default.nix``, ``pyproject.toml``, ``nix/``,
``sets/``, ``overrides/``: every byte of every file under them), the arguments (the
interpreters by path, the attributes, the directories), the Nix installation that evaluates
(the ``nix-instantiate`` binary, by its file's identity) and its ``NIX_*`` environment, and
the bot's own code.  An evaluation whose every input is the same gives the same paths, so
they are kept (``<cache dir>/evaluations.json``, the :data:`KEEP` stored last) and taken
from there.

Builds with nixpkgs are never remembered: importing nixpkgs reads the user's nixpkgs
configuration and overlays from outside the repository.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.core.files import default_cache_dir, read_cache, write_cache

log = logging.getLogger(__name__)

FILE = "evaluations.json"
KEEP = 32  #: evaluations kept (those stored last)
#: what the evaluation reads from the repository, relative to it: files, or trees walked whole
READS = ("default.nix", "pyproject.toml", "nix", "sets", "overrides")


def _files(root: Path) -> list[tuple[Path, str | None]] | None:
    """Every file under ``root`` (``root`` itself if a file), sorted, each with the target of
    the symbolic link it is or lies under (None: none).  Links are followed, as Nix follows
    them when it reads, and their targets are part of the key, so a re-pointed link moves
    it; None when a directory is reached twice (a link loop)."""
    if not root.is_dir():
        return [(root, os.readlink(root) if root.is_symlink() else None)] if root.exists() else []
    out: list[tuple[Path, str | None]] = []
    seen: set[str] = set()
    for top, _dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            return None
        seen.add(real)
        here = Path(top)
        links = [
            os.readlink(q)
            for q in [here, *here.parents]
            if q.is_symlink() and root in [q, *q.parents]
        ]
        for name in files:
            path = here / name
            via = [os.readlink(path)] if path.is_symlink() else []
            out.append((path, "\0".join(via + links) or None))
    return sorted(out)


def _tree_digest(repo: Path) -> str | None:
    """sha256 over the path and bytes of every file the evaluation can read and the targets
    of the links on the way (None: one that cannot be read, so nothing is remembered)."""
    digest = hashlib.sha256()
    for top in READS:
        paths = _files(repo / top)
        if paths is None:
            return None
        for path, link in paths:
            try:
                data = path.read_bytes()
            except OSError:
                return None
            digest.update(f"\0{path.relative_to(repo).as_posix()}\0{link}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def _nix_identity() -> list[object] | None:
    found = shutil.which("nix-instantiate")
    if found is None:
        return None
    try:
        real = Path(found).resolve()
        st = real.stat()
    except OSError:
        return None
    return [str(real), st.st_size, st.st_mtime_ns, st.st_ino]


def _nix_conf() -> list[list[str | None]]:
    """The nix.conf files Nix reads (system and user), each with the sha256 of its bytes
    (None: absent): a ``system =`` line there changes ``builtins.currentSystem``."""
    conf_dir = os.environ.get("NIX_CONF_DIR", "/etc/nix")
    user_dirs = [os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")]
    user_dirs += [d for d in os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":") if d]
    out: list[list[str | None]] = []
    for path in [Path(conf_dir, "nix.conf"), *(Path(d, "nix", "nix.conf") for d in user_dirs)]:
        try:
            out.append([str(path), hashlib.sha256(path.read_bytes()).hexdigest()])
        except FileNotFoundError:
            out.append([str(path), None])
        except OSError:
            out.append([str(path), "unreadable"])
    return out


def evaluation_key(repo: Path, argv: Sequence[str], interpreters: Mapping[str, str]) -> str | None:
    """The key of one standalone evaluation (``argv`` without its interpreters file, which is
    a new temporary file every run: ``interpreters`` stands for it); None: not memoisable."""
    from bot.lock.memo import code_digest

    tree = _tree_digest(repo)
    nix = _nix_identity()
    if tree is None or nix is None:
        return None
    blob = json.dumps(
        {
            "argv": list(argv),
            "interpreters": dict(sorted(interpreters.items())),
            "tree": tree,
            "nix": nix,
            "nix.conf": _nix_conf(),
            "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("NIX_")},
            "code": code_digest(),
            "format": 2,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _read(path: Path) -> dict[str, dict[str, object]]:
    data = read_cache(path)
    entries = data.get("evaluations") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def remembered(key: str, count: int) -> list[str] | None:
    """The ``count`` out paths kept for ``key``, if any (a damaged file is a miss)."""
    entry = _read(default_cache_dir() / FILE).get(key)
    paths = entry.get("paths") if isinstance(entry, dict) else None
    if not isinstance(paths, list) or len(paths) != count:
        return None
    if not all(isinstance(p, str) and p.startswith("/") for p in paths):
        return None
    log.debug("the out paths of an identical evaluation: not evaluating")
    return [str(p) for p in paths]


def remember(key: str, paths: Sequence[str]) -> None:
    """Keep the out paths of ``key`` (and the :data:`KEEP` newest others)."""
    file = default_cache_dir() / FILE
    entries = _read(file)
    entries[key] = {"paths": list(paths), "used": time.time()}

    def used(item: tuple[str, dict[str, object]]) -> float:
        value = item[1].get("used") if isinstance(item[1], dict) else None
        return float(value) if isinstance(value, int | float) else 0.0

    kept = dict(sorted(entries.items(), key=used, reverse=True)[:KEEP])
    write_cache(file, {"evaluations": kept})


__all__ = ["evaluation_key", "remember", "remembered"]
