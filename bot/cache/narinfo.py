"""Narinfo files: what a binary cache directory says about a path, the order to publish them
in (references first), and whether a cache holds a path's whole closure.

A narinfo is what makes a path visible to clients: a client that finds one fetches its NAR
and then the narinfos of its ``References``.  So a cache is only safe to read while every
narinfo it serves has its references' narinfos (and its NAR) beside it; :func:`layers`
orders an upload so that this holds at every moment, and :func:`complete_roots` checks it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STORE_DIR = "/nix/store/"
NARINFO_SUFFIX = ".narinfo"

#: a narinfo is a few hundred bytes; one with thousands of references a few hundred KiB
NARINFO_MAX_BYTES = 1 << 20

# nix's base32 alphabet (no e, o, u, t) and the characters a store path name may hold
_BASENAME = re.compile(r"[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+")


@dataclass(frozen=True)
class Narinfo:
    """The fields of a narinfo that say what it is of and what else a client needs."""

    store_path: str
    references: tuple[str, ...]  #: store paths, the path itself left out
    url: str  #: the NAR, relative to the cache directory


def parse_narinfo(text: str) -> Narinfo | None:
    """The narinfo in ``text``; None when it names no store path or a reference is not one
    (a cache is not trusted to be well formed: such a narinfo counts as absent)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields.setdefault(key, value.strip())
    path = fields.get("StorePath", "")
    if not (path.startswith(STORE_DIR) and _BASENAME.fullmatch(path.removeprefix(STORE_DIR))):
        return None
    refs = fields.get("References", "").split()
    if not all(_BASENAME.fullmatch(r) for r in refs):
        return None
    references = tuple(sorted({STORE_DIR + r for r in refs} - {path}))
    return Narinfo(path, references, fields.get("URL", ""))


def read_narinfo(file: Path, path: str | None = None) -> Narinfo | None:
    """The narinfo in ``file`` (None: missing, unreadable, too large, malformed, or not the
    narinfo of ``path`` when that is given)."""
    try:
        with file.open("rb") as f:
            data = f.read(NARINFO_MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > NARINFO_MAX_BYTES:
        return None
    info = parse_narinfo(data.decode("utf-8", errors="replace"))
    if info is None or (path is not None and info.store_path != path):
        return None
    return info


def layers(infos: Mapping[str, Narinfo]) -> list[list[str]]:
    """The paths of ``infos`` in layers, each path after all of its references among them:
    the first layer refers to none of them, each further one only to earlier layers.
    Publishing the layers in order (each one complete before the next starts) never shows a
    narinfo whose references among ``infos`` are not there yet.  Store paths cannot refer to
    each other in a cycle; should malformed input do so, its paths come last, together."""
    pending = {p: {r for r in i.references if r in infos} for p, i in infos.items()}
    out: list[list[str]] = []
    while pending:
        ready = sorted(p for p, refs in pending.items() if not refs)
        if not ready:
            out.append(sorted(pending))
            break
        out.append(ready)
        for p in ready:
            del pending[p]
        for refs in pending.values():
            refs.difference_update(ready)
    return out


def walk_closure(
    roots: Iterable[str], fetch: Callable[[Sequence[str]], Mapping[str, Narinfo | None]]
) -> dict[str, Narinfo | None]:
    """Every path reachable from ``roots`` through the References of the narinfos ``fetch``
    returns (None: the cache has no narinfo for it).  ``fetch`` is asked once per level of
    the closure, with every path of that level not asked about before."""
    seen: dict[str, Narinfo | None] = {}
    todo = sorted(set(roots))
    while todo:
        found = fetch(todo)
        for p in todo:
            seen[p] = found.get(p)
        todo = sorted({r for p in todo if (i := seen[p]) for r in i.references} - seen.keys())
    return seen


def complete_roots(roots: Iterable[str], seen: Mapping[str, Narinfo | None]) -> set[str]:
    """The ``roots`` whose every path reachable in ``seen`` (from :func:`walk_closure`) has
    its narinfo."""
    found = {p: i for p, i in seen.items() if i is not None}
    broken: dict[str, bool] = {}
    for layer in layers(found):  # references before the paths referring to them
        for p in layer:
            broken[p] = any(r not in found or broken.get(r, False) for r in found[p].references)
    return {r for r in roots if r in found and not broken[r]}
