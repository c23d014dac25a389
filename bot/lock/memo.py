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
import html
import importlib
import json
import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot import __version__
from bot.lock.index.cache import SNAPSHOT_SLACK, Cache
from bot.lock.index.fields import Malformed, upload_time
from bot.lock.index.models import IndexRoute

log = logging.getLogger(__name__)

KIND = "results"


#: the libraries a resolution's outcome depends on besides the bot's own code (backtracking
#: order; marker, specifier and tag rules; the lock document's writer and checker), by
#: distribution name, with the module that says its version
RESOLVER_LIBRARIES = {"resolvelib": "resolvelib", "packaging": "packaging", "tomli-w": "tomli_w"}


def library_version(name: str) -> str:
    """The installed version of one of :data:`RESOLVER_LIBRARIES` ("" when not installed):
    its module's ``__version__``, else its distribution's metadata.  (Importing
    ``importlib.metadata`` cost 15-20 ms of every lock, on its main thread, and the three
    modules are imported by a lock anyway.)"""
    try:
        module = importlib.import_module(RESOLVER_LIBRARIES[name])
    except ImportError:
        return ""
    found = getattr(module, "__version__", None)
    if isinstance(found, str) and found:
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


@functools.cache
def code_digest() -> str:
    """A digest of the bot's own source, the versions of the libraries its resolver and lock
    writer use and the interpreter running it, so a changed resolver never reuses old
    results."""
    root = Path(__file__).resolve().parents[1]  # the whole bot package
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    for name in RESOLVER_LIBRARIES:
        digest.update(f"{name}=={library_version(name)}\0".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def result_key(
    inputs_hash: str, python: str, exclude_newer: datetime, indexes: Sequence[IndexRoute]
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


# --- the night's memo ---------------------------------------------------------------------
#
# The nightly always asks the index (its snapshot is the night's start, so ``lookup`` above
# never applies), and a quiet night is one where the index serves the same page bodies as
# on the night that resolved.  Then the resolution is the same, as long as the snapshot
# moving on shows and hides the same files: a night's entry records the window of snapshot
# times that see exactly the files its resolution saw, from the upload times on its pages
# (at least the newest visible upload, before the oldest one it left out).
#
# The key is everything else that decides a lock; the entry holds the page digests, that
# window and a digest of the lock's text without its exclude-newer line (a quiet night keeps
# the lock on disk as it is, so only a lock whose content is the memo's is taken as is).

NIGHT_KIND = "night-results"
NIGHT_FORMAT = 1

_EXCLUDE_NEWER_LINE = re.compile(rb'^exclude-newer = "[^"\n]*"$', re.MULTILINE)
_HTML_UPLOAD = re.compile(rb"""data-upload-time\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def lock_digest(text: bytes) -> str:
    """sha256 of a lock's text with its exclude-newer line blanked (two locks that differ only
    in their snapshot time have the same digest; see :func:`bot.lock.same_content`)."""
    return hashlib.sha256(_EXCLUDE_NEWER_LINE.sub(b'exclude-newer = ""', text)).hexdigest()


def night_key(parts: Mapping[str, Any]) -> str:
    """The night memo's key: ``parts`` (the set's inputs, holds, targets, indexes...) and the
    bot's version and code; not the snapshot time (the entry's window decides that)."""
    blob = json.dumps(
        {
            **parts,
            "bot": __version__,
            "code": code_digest(),
            "rule": "snapshot-window",
            "format": NIGHT_FORMAT,
        },
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class NightEntry:
    """What a night's resolution left for the next quiet night."""

    pages: dict[str, str]  #: page URL (without credentials) -> sha256 of the body read
    lock: str  #: :func:`lock_digest` of the lock it made
    packages: int
    #: name -> [locked, newest allowed, days behind] (the report's freshness figures)
    freshness: dict[str, list[Any]]
    refusals: list[dict[str, str]]
    after: float  #: the window: snapshots at or after this (epoch seconds) ...
    before: float | None  #: ... and before this (None: no file was left out)


def night_lookup(
    cache: Cache, key: str, snapshot: datetime, *, warn: bool = True
) -> NightEntry | None:
    """The entry for ``key`` when ``snapshot`` lies in its window (a corrupt entry is one
    warning, unless not ``warn``, and a miss; the next resolution writes it again)."""
    path = cache._path(NIGHT_KIND, key, ".json")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if warn:
            log.warning("cannot read the night memo %s (%s): resolving again", path, exc)
        return None
    try:
        entry = _night_entry(json.loads(raw))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        if warn:
            log.warning("the night memo %s is corrupt (%s): resolving again", path, exc)
        return None
    t = snapshot.timestamp()
    if t < entry.after or (entry.before is not None and t >= entry.before):
        return None  # the snapshot moved past an upload: other files are visible now
    return entry


def _night_entry(data: Any) -> NightEntry:
    """An entry read back (ValueError, TypeError, KeyError...: not one)."""
    entry = NightEntry(
        pages={str(k): str(v) for k, v in data["pages"].items()},
        lock=str(data["lock"]),
        packages=int(data["packages"]),
        freshness={str(k): list(v) for k, v in data["freshness"].items()},
        refusals=[{str(k): str(v) for k, v in r.items()} for r in data["refusals"]],
        after=float(data["after"]),
        before=None if data["before"] is None else float(data["before"]),
    )
    if data.get("format") != NIGHT_FORMAT or not entry.pages:
        raise ValueError("not an entry of this format")
    if any(len(v) != 3 for v in entry.freshness.values()):
        raise ValueError("a freshness record is not [locked, newest, days]")
    return entry


def _upload_times(body: bytes, content_type: str) -> list[float] | None:
    """Every upload time a page states (None: one the bot could not read, so no window)."""
    values: list[object] = []
    if "json" in content_type.lower():
        try:
            data = json.loads(body)
        except ValueError:
            return None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, list):
            return None
        values = [f.get("upload-time") for f in files if isinstance(f, dict)]
    else:
        found = _HTML_UPLOAD.findall(body)
        if len(found) != body.lower().count(b"data-upload-time"):
            return None  # an attribute written in a way the pattern does not read
        values = [html.unescape((a or b).decode("utf-8", "replace")) for a, b in found]
    out: list[float] = []
    for value in values:
        try:
            when = upload_time(value)
        except Malformed:
            return None
        if when is not None:
            out.append(when.timestamp())
    return out


def night_window(
    cache: Cache, pages: Mapping[str, str], snapshot: datetime
) -> tuple[float, float | None] | None:
    """The snapshot times that see the same files of ``pages`` as ``snapshot`` does: (at or
    after, before); None when a page is not in the cache as read, or states a time the bot
    cannot read."""
    t = snapshot.timestamp()
    after, before = float("-inf"), None
    for url, digest in pages.items():
        page = cache.get_page(url)
        if page is None or page.sha256 != digest:
            return None
        times = _upload_times(page.body, page.content_type)
        if times is None:
            return None
        for u in times:
            if u <= t:
                after = max(after, u)
            elif before is None or u < before:
                before = u
    return after, before


def night_store(
    cache: Cache,
    key: str,
    snapshot: datetime,
    pages: Mapping[str, str],
    text: str,
    packages: int,
    freshness: Mapping[str, Sequence[Any]],
    refusals: Sequence[Mapping[str, str]],
) -> bool:
    """Remember a night's resolution (not when a page it read is not in the cache as read,
    e.g. a 404 on an extra index, or its upload times cannot be read)."""
    if not pages or any(not d for d in pages.values()):
        return False
    window = night_window(cache, pages, snapshot)
    if window is None:
        return False
    after, before = window
    cache.put_json(
        NIGHT_KIND,
        key,
        {
            "format": NIGHT_FORMAT,
            "pages": dict(sorted(pages.items())),
            "lock": lock_digest(text.encode()),
            "packages": packages,
            "freshness": {k: list(v) for k, v in sorted(freshness.items())},
            "refusals": [dict(r) for r in refusals],
            "after": after if after != float("-inf") else -1e18,
            "before": before,
        },
    )
    return True
