"""The static index's manifest (``.nixpkgs-python-index.json``): what
:mod:`bot.nightly.static_index` wrote, what it was made from and the sha256 of every file, so
that an index made from the same sources and still intact is left as it is."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.model import locks
from bot.model.sets import list_sets

MANIFEST = ".nixpkgs-python-index.json"
#: the manifest's format: 2 records the sources and every file's sha256 (1: the files only)
MANIFEST_FORMAT = 2


@dataclass(frozen=True)
class IndexResult:
    """What :func:`write_index` wrote."""

    path: Path
    sets: tuple[str, ...]
    projects: int
    files: int
    mirrored: int  #: files downloaded (or reused from the previous index) into files/
    size: int  #: bytes under ``path``
    unchanged: bool = False  #: the index was already this one: nothing was written

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json``)."""
        return {
            "path": str(self.path),
            "sets": list(self.sets),
            "projects": self.projects,
            "files": self.files,
            "mirrored": self.mirrored,
            "size": self.size,
            "unchanged": self.unchanged,
        }


def listing(root: Path) -> list[str]:
    """Every file under ``root``, relative, sorted."""
    out = []
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            out.append(Path(base, name).relative_to(root).as_posix())
    return out


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sources(repo: Path, names: Sequence[str], mirror: bool) -> dict[str, Any]:
    """What decides the bytes of the index of the sets ``names``: the bot's code, the mode,
    the repository's sets and the sha256 of every lock of every set (read as bytes, not
    parsed; an unreadable lock is recorded as such)."""
    from bot.lock.memo import code_digest

    every = list_sets(repo)
    digests: dict[str, str] = {}
    for name in every:
        for path in locks.locks_in(repo / "sets" / name):
            try:
                digests[f"{name}/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                digests[f"{name}/{path.name}"] = "unreadable"
    return {
        "code": code_digest(),
        "mirror": mirror,
        "sets": list(names),
        "all-sets": every,
        "locks": digests,
    }


def _manifest(dest: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((dest / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    return data


def recorded_sets(repo: Path, dest: Path, mirror: bool) -> list[str] | None:
    """The sets the index at ``dest`` was written for, when nothing it was made from has
    changed since (the same code, mode, sets and lock bytes: then the same sets are the
    ones to index, and a caller need not read every lock to find them); else None."""
    manifest = _manifest(dest)
    source = manifest.get("source") if manifest is not None else None
    if not isinstance(source, dict) or not isinstance(source.get("sets"), list):
        return None
    names = [str(n) for n in source["sets"]]
    return names if sources(repo, names, mirror) == source else None


def current(dest: Path, source: Mapping[str, Any]) -> IndexResult | None:
    """The index at ``dest`` when it was made from ``source`` and is intact: exactly the files
    its manifest lists, each with the sha256 recorded when it was written; else None."""
    manifest = _manifest(dest)
    if manifest is None or manifest.get("source") != source:
        return None
    try:
        digests = {str(k): str(v) for k, v in manifest["sha256"].items()}
        summary = manifest["summary"]
        result = IndexResult(
            dest,
            tuple(str(s) for s in summary["sets"]),
            int(summary["projects"]),
            int(summary["files"]),
            int(summary["mirrored"]),
            0,
            unchanged=True,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if set(listing(dest)) != {*digests, MANIFEST}:
        return None
    size = (dest / MANIFEST).stat().st_size
    for name, digest in digests.items():
        path = dest / name
        try:
            if path.is_symlink() or file_sha256(path) != digest:
                return None
            size += path.stat().st_size
        except OSError:
            return None
    return dataclasses.replace(result, size=size)
