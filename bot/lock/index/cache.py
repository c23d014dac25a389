"""A content-addressed on-disk cache for the index client.

Layout under the cache root (``$XDG_CACHE_HOME/nixpkgs-python`` by default,
:func:`bot.core.files.default_cache_dir`)::

    index-v1/metadata/ab/<sha256 of the dist file>        METADATA / PKG-INFO bytes
    index-v1/metadata/ab/<sha256 of the dist file>.json   {verified, sha256 of those bytes}
    index-v1/build-requires/ab/<sha256 of the sdist>.json  ["setuptools>=61", ...]
    index-v1/sdists/ab/<sha256 of the sdist>               the sdist itself
    index-v1/wheels/ab/<sha256 of the wheel>/              a build backend's wheel, unpacked
                                                           (:mod:`bot.lock.index.buildenv`)
    index-v1/pages/ab/<sha256 of the page URL>.json        {url, content-type, etag, sha256}
    index-v1/pages/ab/<sha256 of the page URL>.body        the page as served

Distribution files are immutable, so entries keyed by their sha256 never go stale.  Pages
are kept so that an offline run can work from the cache alone; online runs revalidate them
with the stored ETag / Last-Modified.  Every write is atomic (temp file, then rename).

Nothing written here carries credentials: page URLs are stored (and keyed) without the user
and password an index URL may have.  Each metadata entry records how its bytes were bound to
the file (:data:`VERIFICATIONS`); one without that record (an older cache) is not trusted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core.errors import IndexError_, without_credentials
from bot.core.files import write_bytes_atomic

VERSION_DIR = "index-v1"

#: how a metadata entry's bytes were bound to the file: the index's PEP 658 hash of them,
#: read out of (or built from) the whole file checked against its sha256, or not at all (HTTP
#: range reads of the file; a ``.metadata`` file the index states no hash for)
PEP658_HASH = "pep658-hash"
WHOLE_FILE_HASH = "whole-file-hash"
UNVERIFIED_RANGE = "unverified-range"
UNVERIFIED_PEP658 = "unverified-pep658"
VERIFICATIONS = frozenset({PEP658_HASH, WHOLE_FILE_HASH, UNVERIFIED_RANGE, UNVERIFIED_PEP658})
VERIFIED = frozenset({PEP658_HASH, WHOLE_FILE_HASH})


#: how long after a snapshot a page must have been fetched to be trusted for it (slack for
#: indexes that publish an upload a little after its upload time)
SNAPSHOT_SLACK = 600.0


@dataclass(frozen=True)
class CachedPage:
    """A project page as last fetched."""

    url: str
    content_type: str
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None  #: where redirects ended: the base of relative links
    fetched: float | None = None  #: when the index answered with this body (epoch seconds)
    sha256: str | None = None  #: of the body, as recorded (set on read; computed on write)

    def complete_for(self, snapshot: datetime) -> bool:
        """Whether this copy lists every file an index snapshot at ``snapshot`` can see:
        uploads only ever add files, so a copy fetched well after the snapshot does."""
        return self.fetched is not None and self.fetched >= snapshot.timestamp() + SNAPSHOT_SLACK


class Cache:
    """Content-addressed storage; every method is safe to call from several threads."""

    def __init__(self, root: Path) -> None:
        self.root = root / VERSION_DIR

    def _path(self, kind: str, key: str, suffix: str = "") -> Path:
        key = key.lower()
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def _read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexError_(f"cannot read the cache: {exc}", where=str(path)) from exc

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_bytes_atomic(path, data)
        except OSError as exc:
            raise IndexError_(
                f"cannot write the cache: {exc}",
                where=str(path),
                hint="check the permissions and free space of the cache directory",
            ) from exc

    def get_metadata(self, key: str) -> tuple[bytes, str | None] | None:
        """Core metadata bytes kept by ``key`` (a wheel's sha256; an sdist's sha256 and the
        hook's Python: :meth:`~bot.lock.index.client.IndexClient.metadata_key`) and how they
        were verified (None: an entry of an older cache, or one whose record does not
        match), if cached."""
        data = self._read(self._path("metadata", key))
        if data is None:
            return None
        record = self.get_json("metadata", key)
        how = record.get("verified") if isinstance(record, dict) else None
        if how not in VERIFICATIONS or record.get("sha256") != hashlib.sha256(data).hexdigest():
            return data, None
        return data, str(how)

    def put_metadata(self, key: str, data: bytes, verified: str) -> None:
        """Store core metadata bytes by ``key`` (as :meth:`get_metadata`; the bytes first,
        then the record saying how they were verified: ``verified``, one of
        :data:`VERIFICATIONS`)."""
        if verified not in VERIFICATIONS:
            raise ValueError(f"unknown verification {verified!r}")
        self._write(self._path("metadata", key), data)
        digest = hashlib.sha256(data).hexdigest()
        self.put_json("metadata", key, {"sha256": digest, "verified": verified})

    def sdist_path(self, sha256: str) -> Path:
        """Where the sdist with this sha256 is (or would be) stored."""
        return self._path("sdists", sha256)

    def get_sdist(self, sha256: str) -> bytes | None:
        """The sdist with this sha256, if cached (and it still has that sha256)."""
        data = self._read(self.sdist_path(sha256))
        if data is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
            return None
        return data

    def put_sdist(self, sha256: str, data: bytes) -> None:
        """Store an sdist (the caller has verified its sha256)."""
        self._write(self.sdist_path(sha256), data)

    def get_json(self, kind: str, key: str) -> Any:
        """A small JSON record by key (None when absent or unreadable)."""
        data = self._read(self._path(kind, key, ".json"))
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    def put_json(self, kind: str, key: str, value: Any) -> None:
        """Store a small JSON record."""
        self._write(self._path(kind, key, ".json"), json.dumps(value, sort_keys=True).encode())

    def _page_path(self, url: str, suffix: str) -> Path:
        key = without_credentials(url)  # a user's token is no part of the key either
        return self._path("pages", hashlib.sha256(key.encode()).hexdigest(), suffix)

    def get_page(self, url: str, *, with_body: bool = True) -> CachedPage | None:
        """The last stored copy of a project page (``body`` is b"" unless ``with_body``)."""
        data = self._read(self._page_path(url, ".json"))
        if data is None:
            return None
        try:
            raw = json.loads(data)
            page = CachedPage(
                url=raw["url"],
                content_type=raw["content-type"],
                body=b"",
                etag=raw.get("etag"),
                last_modified=raw.get("last-modified"),
                final_url=raw.get("final-url"),
                fetched=raw.get("fetched"),
                sha256=raw.get("sha256"),
            )
        except (ValueError, KeyError, TypeError):
            return None  # a corrupt entry is a miss
        if not with_body:
            return page
        body = self._read(self._page_path(url, ".body"))
        if body is None or hashlib.sha256(body).hexdigest() != raw.get("sha256"):
            return None  # torn by a concurrent writer: a miss
        return dataclasses.replace(page, body=body)

    def put_page(self, page: CachedPage) -> str:
        """Store a project page (the body first, then the small record that points at it);
        returns the body's sha256."""
        digest = hashlib.sha256(page.body).hexdigest()
        final_url = without_credentials(page.final_url) if page.final_url else page.final_url
        raw = {
            "url": without_credentials(page.url),
            "content-type": page.content_type,
            "etag": page.etag,
            "last-modified": page.last_modified,
            "final-url": final_url,
            "fetched": page.fetched,
            "sha256": digest,
        }
        self._write(self._page_path(page.url, ".body"), page.body)
        self._write(self._page_path(page.url, ".json"), json.dumps(raw).encode())
        return digest
