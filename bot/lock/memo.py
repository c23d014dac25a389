"""Memoised resolutions: the same inputs at the same past snapshot give the same lock.

A lock is a function of the set's inputs (its definition and the overrides library's build
requirements), the Python version, the index URLs, the bot's version, the snapshot time and
what the index listed at that time.  Metadata is cached by file hash and never changes; an
index page fetched well after the snapshot lists every file the snapshot can see (the
assumption :mod:`bot.lock.index.client` already makes).  So when every page a previous resolution
read is still in the cache, unchanged and complete for the snapshot, its result can be used
again without resolving: ``lock --check`` in CI and repeated locks cost a lookup.

Only past snapshots are memoised (the nightly always asks the index), nothing is memoised
with ``--refresh``, and a result records the exact page bodies (by sha256) it depended on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot import __version__
from bot.lock.index.cache import SNAPSHOT_SLACK, Cache

KIND = "results"


@functools.cache
def code_digest() -> str:
    """A digest of the bot's own source, so a changed resolver never reuses old results."""
    root = Path(__file__).resolve().parents[1]  # the whole bot package
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def result_key(
    inputs_hash: str, python: str, exclude_newer: datetime, indexes: Sequence[Any]
) -> str:
    """The memo key of one lock: everything it depends on except the index pages."""
    blob = json.dumps(
        {
            "inputs": inputs_hash,
            "python": python,
            "exclude-newer": exclude_newer.timestamp(),
            "indexes": [repr(i) for i in indexes],
            "bot": __version__,
            "code": code_digest(),
            "format": 1,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def lookup(cache: Cache, key: str, exclude_newer: datetime) -> str | None:
    """The lock text of an earlier resolution with this key, if it still holds."""
    if exclude_newer.timestamp() + SNAPSHOT_SLACK > time.time():
        return None  # a recent snapshot: the index may still show new files for it
    entry = cache.get_json(KIND, key)
    if not isinstance(entry, dict) or not isinstance(entry.get("pages"), dict):
        return None
    for url, digest in entry["pages"].items():
        page = cache.get_page(url, with_body=False)
        if page is None or page.sha256 != digest or not page.complete_for(exclude_newer):
            return None
    text = entry.get("lock")
    return text if isinstance(text, str) else None


def store(
    cache: Cache, key: str, exclude_newer: datetime, pages: Mapping[str, str], text: str
) -> bool:
    """Remember a resolution; only when it read pages complete for a past snapshot."""
    if not pages or any(not d for d in pages.values()):
        return False  # a page the cache does not hold (e.g. a 404 on an extra index)
    for url in pages:
        page = cache.get_page(url, with_body=False)
        if page is None or not page.complete_for(exclude_newer):
            return False  # fetched too close to (or before) the snapshot to be complete
    cache.put_json(KIND, key, {"pages": dict(sorted(pages.items())), "lock": text})
    return True
