"""The index client the resolver uses: project pages and core metadata, fast and cached."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from bot.core.errors import (
    IndexError_,
    MetadataError,
    StoppedError,
    register_secrets,
    without_credentials,
)
from bot.core.files import default_cache_dir
from bot.lock.index import cache as c
from bot.lock.index import metadata as md
from bot.lock.index.buildenv import (
    WHEELS,
    Unpacked,
    WheelCache,
    WheelIndex,
    check_metadata,
    interpreter,
    requirement_text,
    resolve_wheels,
)
from bot.lock.index.cache import Cache, CachedPage
from bot.lock.index.limits import LimitExceeded, Limits
from bot.lock.index.models import (
    CoreMetadata,
    DistFile,
    IndexRoute,
    NotFound,
    Releases,
    UnverifiedMetadata,
)
from bot.lock.index.simple import ACCEPT, parse_page

__all__ = ["IndexClient", "IndexRoute", "ProjectNotFound"]

if TYPE_CHECKING:
    import ssl
    from datetime import datetime

    from bot.lock.index.http import Http, Response

log = logging.getLogger(__name__)

PYPI = "https://pypi.org/simple/"
T = TypeVar("T")
#: a 206's Content-Range (RFC 9110 14.4): ASCII digits (str.isdigit() also takes "²"), and
#: not so many that int() refuses them
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,20})-([0-9]{1,20})/([0-9]{1,20})")


def _load_certificates() -> Future[ssl.SSLContext]:
    from bot.lock.index.certificates import load_certificates  # ssl: only when online

    return load_certificates()


class ProjectNotFound(IndexError_):
    """No routed index knows the project (the resolver reports an unknown package)."""


class IndexClient:
    """:class:`~bot.lock.index.models.PackageIndex` over real simple-API indexes.

    Projects routed to an index (``IndexRoute.packages``) are looked up only there; every
    other project on all the unrestricted routes, merged (the first route listing a filename
    wins).  Use as a context manager: it owns one HTTP client and one thread pool.

    ``cache_dir`` defaults to ``$XDG_CACHE_HOME/nixpkgs-python``; ``offline`` serves
    everything from it; PEP 517 build environments are composed from verified wheels
    (:meth:`provision`), and ``uv`` is the installer for them when ``compose_builds`` is off
    or a backend has no wheels (None: find uv, else pip; "": always pip); ``backoff`` is the
    first retry delay in seconds;
    ``limits`` bound what the indexes may send (default: :meth:`Limits.from_env`).

    Core metadata decides a lock, so every entry says how its bytes were bound to the file
    (:data:`bot.lock.index.cache.VERIFICATIONS`).  Metadata no hash binds (range reads of a wheel
    on an index without PEP 658 hashes) comes with :attr:`CoreMetadata.unverified` set: the
    lock records it and the Nix build compares it with the file's own.
    """

    def __init__(
        self,
        indexes: Sequence[IndexRoute] = (IndexRoute(PYPI),),
        *,
        cache_dir: Path | None = None,
        offline: bool = False,
        concurrency: int = 16,
        timeout: float = 30,
        retries: int = 4,
        backoff: float = 0.5,
        uv: str | None = None,
        limits: Limits | None = None,
        compose_builds: bool = True,
    ) -> None:
        if not indexes:
            raise IndexError_("no package index configured", hint="configure at least one index")
        self.routes = tuple(indexes)
        register_secrets(r.url for r in self.routes)  # kept out of every message and log
        self.limits = limits if limits is not None else Limits.from_env()
        self.offline = offline
        self.cache = Cache(cache_dir if cache_dir is not None else default_cache_dir())
        self._http_options = (float(timeout), retries, float(backoff), concurrency)
        self._http: Http | None = None
        #: an online client will need the certificates: they load while the run goes on
        self._certificates = None if offline else _load_certificates()
        #: the index snapshot being resolved (exclude-newer): a cached page fetched well after
        #: it is complete for it, and is used without asking the index again
        self.snapshot: datetime | None = None
        self._digests: dict[str, str] = {}  #: page URL -> sha256 of the body served
        #: page URL -> the page as the index served it during this client's life
        self._fresh: dict[str, tuple[CachedPage, str]] = {}
        self._page_digests: dict[str, Future[str | None]] = {}
        #: page URL -> digest of every page :meth:`files` served since :meth:`record` started
        self.recorded: dict[str, str] | None = None
        self.uv = uv
        #: (minor version, executable) sdist metadata hooks run with: the lock's Python (see
        #: :attr:`build_python`)
        self._build_python: tuple[str, str] | Callable[[], tuple[str, str]] | None = None
        self._build_python_lock = threading.Lock()
        self._probing = False  #: the hooks' interpreter probe was started
        self.refresh = False  #: retry remembered metadata hook failures
        #: the lock's exclude-newer: build backends are installed as of it (None: the newest)
        self.build_cutoff: datetime | None = None
        self.compose_builds = compose_builds
        self._wheels = WheelCache(self.cache.root / WHEELS, self._download_wheel, self.limits)
        #: downloads of build backends' wheels (their own pool: the callers may be on ours)
        self._wheel_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wheel")
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="index")
        self._lock = threading.Lock()
        self._pages: dict[str, Future[Releases]] = {}
        self._metadata: dict[str, Future[CoreMetadata]] = {}
        self._build_systems: dict[str, tuple[tuple[Requirement, ...], bool]] = {}
        self._backends: dict[str, str] = {}  #: sdist sha256 -> build-backend ("": none named)
        self._sdist_locks: dict[str, threading.Lock] = {}
        #: sdist sha256 -> its (PKG-INFO, pyproject.toml), read out of it once
        self._sdist_parts: dict[str, tuple[bytes | None, bytes | None]] = {}

    @property
    def build_python(self) -> tuple[str, str] | None:
        """(minor version, executable) that sdist hooks run with, None for this interpreter.

        It may be set to a function that finds them: it is called the first time a hook
        needs them, once (finding an interpreter may run it, ~15 ms, which a lock whose
        sdists need no hook never pays)."""
        with self._build_python_lock:
            if callable(self._build_python):
                self._build_python = self._build_python()
            return self._build_python

    @build_python.setter
    def build_python(self, value: tuple[str, str] | Callable[[], tuple[str, str]] | None) -> None:
        with self._build_python_lock:
            self._build_python = value

    # --- lifecycle ---

    @property
    def http(self) -> Http:
        """The HTTP client, made on first use (a run served from the cache never needs it)."""
        with self._lock:
            if self._http is None:
                from bot.lock.index.http import Http  # http.client and ssl: only when online

                timeout, retries, backoff, concurrency = self._http_options
                self._http = Http(
                    timeout=timeout,
                    retries=retries,
                    backoff=backoff,
                    max_connections=concurrency,
                    certificates=self._certificates,
                    limits=self.limits,
                )
            return self._http

    def close(self) -> None:
        """Stop background work and close connections."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._wheel_pool.shutdown(wait=True, cancel_futures=True)
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- futures bookkeeping ---

    def _future(self, table: dict[str, Future[T]], key: str, work: Callable[[], T]) -> Future[T]:
        with self._lock:
            fut = table.get(key)
            if fut is None:
                # in the asker's context: a metadata hook the work runs is one of the asking
                # resolution's children, stopped with them (bot.core.proc.stoppable)
                context = contextvars.copy_context()
                fut = self._pool.submit(context.run, self._unless_stopped, table, key, work)
                table[key] = fut
            return fut

    def _unless_stopped(self, table: dict[str, Future[T]], key: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except StoppedError:
            with self._lock:  # given up, not failed: whoever asks later does the work again
                table.pop(key, None)
            raise

    # --- project pages ---

    def routes_for(self, name: NormalizedName) -> list[IndexRoute]:
        """The indexes a project is looked up on."""
        pinned = [r for r in self.routes if r.packages is not None and name in r.packages]
        return pinned or [r for r in self.routes if r.packages is None]

    def prefetch(self, names: list[NormalizedName]) -> None:
        """Start fetching these project pages in the background."""
        for name in names:
            key = canonicalize_name(name)
            self._future(self._pages, key, functools.partial(self._fetch_releases, key))

    def releases(self, name: NormalizedName) -> Releases:
        """Every usable file of a project across the indexes routed to it (yanked included),
        by version."""
        key = canonicalize_name(name)
        releases = self._future(self._pages, key, lambda: self._fetch_releases(key)).result()
        if self.recorded is not None:
            with self._lock:
                for route in self.routes_for(key):
                    url = f"{route.url}{key}/"
                    self.recorded[without_credentials(url)] = self._digests.get(url, "")
        return releases

    def files(self, name: NormalizedName) -> list[DistFile]:
        """Every usable file of a project, newest version first (builds them all)."""
        return self.releases(name).all_files()

    def record(self) -> None:
        """Start recording which pages (and which versions of them) :meth:`files` serves."""
        self.recorded = {}

    def _fetch_releases(self, name: NormalizedName) -> Releases:
        routes = self.routes_for(name)
        if not routes:
            raise ProjectNotFound(
                f"no index is configured for {name}",
                hint="every index has a package list; add an unrestricted index or route it",
            )
        pages: list[Releases] = []
        missing: list[str] = []
        for route in routes:
            try:
                pages.append(self._fetch_page(route, name))
            except NotFound:
                missing.append(route.url)
        if not pages:
            raise ProjectNotFound(
                f"no project named {name} on {', '.join(missing)}",
                where=name,
                hint="check the spelling, or route the package to the index that has it",
            )
        return Releases.merge(pages)

    def _complete_for_snapshot(self, page: CachedPage | None) -> bool:
        return page is not None and self.snapshot is not None and page.complete_for(self.snapshot)

    def _fetch_page(self, route: IndexRoute, name: NormalizedName) -> Releases:
        url = f"{route.url}{name}/"
        cached = self.cache.get_page(url, with_body=False)
        if cached is not None and not self.offline and self._complete_for_snapshot(cached):
            full = self.cache.get_page(url)
            if full is not None:
                log.debug("%s: cached page is newer than the snapshot", url)
                self._digests[url] = full.sha256 or ""
                base = _base(full.final_url, url)
                return parse_page(full.body, full.content_type, base, route.url, name)
        if self.offline:
            cached = self.cache.get_page(url)
            if cached is None:
                raise IndexError_(
                    f"offline, and the page of {name} is not in the cache",
                    where=url,
                    hint="run once online with the same cache directory, or drop --offline",
                )
            base = _base(cached.final_url, url)
            self._digests[url] = cached.sha256 or ""
            return parse_page(cached.body, cached.content_type, base, route.url, name)
        page, base = self._fresh_page(route, name, cached)
        self._digests[url] = page.sha256 or hashlib.sha256(page.body).hexdigest()
        releases = parse_page(page.body, page.content_type, base, route.url, name)
        if page.sha256:
            # parsed: the body (a quarter of the run's memory in a big set) need not stay;
            # its digest does, and the cache holds the bytes should anyone ask again
            with self._lock:
                self._fresh[url] = (dataclasses.replace(page, body=b""), base)
        return releases

    def _fresh_page(
        self, route: IndexRoute, name: NormalizedName, cached: CachedPage | None
    ) -> tuple[CachedPage, str]:
        """The page as the index serves it now and the base of its links, fetched at most
        once per client (a later ask in the same run, e.g. resolving after
        :meth:`page_digests`, gets the same body).  An unchanged body is not written to the
        cache again."""
        url = f"{route.url}{name}/"
        with self._lock:
            known = self._fresh.get(url)
        if known is not None:
            if known[0].body or not known[0].sha256:
                return known
            # parsed already, its body dropped: the cache's copy if it is still those bytes
            stored = self.cache.get_page(url)
            if stored is not None and hashlib.sha256(stored.body).hexdigest() == known[0].sha256:
                return dataclasses.replace(stored, sha256=known[0].sha256), known[1]
        headers = {"Accept": ACCEPT}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        elif cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        resp = self._get_page(url, route, name, headers)
        page = self.cache.get_page(url) if resp.status_code == 304 else None
        if page is None:
            if resp.status_code == 304:  # the cached body vanished: fetch the page whole
                resp = self._get_page(url, route, name, {"Accept": ACCEPT})
            page = CachedPage(
                url=url,
                content_type=resp.headers.get("Content-Type", ""),
                body=resp.content,
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
                final_url=str(resp.url),
                fetched=time.time(),
                sha256=hashlib.sha256(resp.content).hexdigest(),
            )
            final = without_credentials(page.final_url or url)
            if cached is None or (cached.sha256, cached.content_type, cached.final_url) != (
                page.sha256,
                page.content_type,
                final,
            ):
                self.cache.put_page(page)
        fresh = (page, str(resp.url))
        with self._lock:
            self._fresh[url] = fresh
        return fresh

    def page_digests(self, urls: Iterable[str]) -> dict[str, str | None]:
        """The sha256 of each page's body as the index serves it now (None: the page is
        gone, or the URL is on no route of this client), fetched concurrently on the kept-open
        connections; nothing is parsed.  A resolution with this client afterwards reads
        these same bodies."""
        urls = list(dict.fromkeys(urls))
        wanted = self._digest_futures(urls)
        out: dict[str, str | None] = dict.fromkeys(urls)
        for url, fut in wanted.items():
            out[url] = fut.result()
        return out

    def prefetch_page_digests(self, urls: Iterable[str]) -> None:
        """Start :meth:`page_digests` of these pages in the background."""
        self._digest_futures(urls)

    def _digest_futures(self, urls: Iterable[str]) -> dict[str, Future[str | None]]:
        out: dict[str, Future[str | None]] = {}
        for url in urls:
            found = self._route_of(url)
            if found is not None:
                route, name = found
                work = functools.partial(self._page_digest, route, name)
                out[url] = self._future(self._page_digests, url, work)
        return out

    def _page_digest(self, route: IndexRoute, name: NormalizedName) -> str | None:
        url = f"{route.url}{name}/"
        cached = self.cache.get_page(url, with_body=False)
        if self.offline:
            return cached.sha256 if cached is not None else None
        try:
            page, _ = self._fresh_page(route, name, cached)
        except NotFound:
            return None
        return page.sha256 or hashlib.sha256(page.body).hexdigest()

    def _route_of(self, url: str) -> tuple[IndexRoute, NormalizedName] | None:
        """The route and project of a page URL as :attr:`recorded` states it (without
        credentials), if the page is one this client would read."""
        for route in self.routes:
            prefix = without_credentials(route.url)
            if url.startswith(prefix) and url.endswith("/"):
                name = canonicalize_name(url[len(prefix) : -1])
                if f"{prefix}{name}/" == url and route in self.routes_for(name):
                    return route, name
        return None

    def _get_page(
        self, url: str, route: IndexRoute, name: NormalizedName, headers: dict[str, str]
    ) -> Response:
        try:
            return self.http.get(
                url, headers=headers, what=f"the project page of {name}", kind="page"
            )
        except NotFound:
            raise NotFound(f"no project named {name} on {route.url}", where=url) from None

    # --- metadata ---

    def metadata(self, file: DistFile) -> CoreMetadata:
        """Core metadata of one file (cached by :meth:`metadata_key`)."""
        key = self.metadata_key(file)
        return self._future(self._metadata, key, lambda: self._fetch_metadata(file, key)).result()

    def metadata_key(self, file: DistFile) -> str:
        """What a file's metadata is kept by: a wheel's by its sha256; an sdist's by its
        sha256 and the Python its PEP 517 hook runs on (:attr:`build_python`), since a
        ``setup.py`` may answer differently on another Python (one client serves the locks
        of every Python of a run, and a cache directory every run)."""
        if file.kind == "wheel":
            return file.sha256
        python = self.build_python
        version = python[0] if python else f"{sys.version_info[0]}.{sys.version_info[1]}"
        return f"{file.sha256}-py{version}"

    def _fetch_metadata(self, file: DistFile, key: str) -> CoreMetadata:
        data, how = self._cached_metadata(file, key)
        if data is None:
            if self.offline:
                state = "not in the cache" if not how else "in the cache unverified (" + how + ")"
                raise MetadataError(
                    f"offline, and the metadata of {file.filename} is {state}",
                    where=file.url,
                    hint="run once online with the same cache directory, or drop --offline",
                )
            data, how = self._download_metadata(file)
            self.cache.put_metadata(key, data, how)
        meta = md.parse_core_metadata(data, file)
        if how in c.VERIFIED:
            return meta
        log.debug("%s: metadata not bound to the file by a hash (%s)", file.filename, how)
        unverified = UnverifiedMetadata(
            file=file.filename,
            sha256=hashlib.sha256(data).hexdigest(),
            requires_dist=tuple(md.headers(data).get("requires-dist", ())),
        )
        return dataclasses.replace(meta, unverified=unverified)

    def _cached_metadata(self, file: DistFile, key: str) -> tuple[bytes | None, str]:
        """Cached metadata of ``file`` (kept by ``key``) and how it was verified, re-checked
        against the PEP 658 hash the index states now; (None, why) when there is none to use
        (why: "" when there is none at all)."""
        cached = self.cache.get_metadata(key)
        if cached is None:
            return None, ""
        data, how = cached
        if how != c.WHOLE_FILE_HASH and file.core_metadata:
            # the index states the metadata's hash (only bytes read out of the file itself
            # are bound closer): a cached copy must match it
            if hashlib.sha256(data).hexdigest() != file.core_metadata:
                log.debug("%s: cached metadata does not match its PEP 658 hash", file.filename)
                return None, "not matching its PEP 658 hash"
            if how != c.PEP658_HASH:
                self.cache.put_metadata(key, data, c.PEP658_HASH)
            how = c.PEP658_HASH
        elif how is None:  # an older cache's entry: only an sdist's came from the file itself
            if file.kind != "sdist" or file.core_metadata is not None:
                return None, "an older cache's entry"
            how = c.WHOLE_FILE_HASH
        return data, how

    def _download_metadata(self, file: DistFile) -> tuple[bytes, str]:
        if file.core_metadata is not None:
            data = self._pep658(file)
            if data is not None:
                return data, c.PEP658_HASH if file.core_metadata else c.UNVERIFIED_PEP658
        if file.kind != "wheel":
            return self._sdist_metadata(file), c.WHOLE_FILE_HASH
        data, how = self._wheel_metadata(file)
        if how == c.UNVERIFIED_RANGE and file.core_metadata:
            if hashlib.sha256(data).hexdigest() != file.core_metadata:
                raise MetadataError(
                    f"the METADATA of {file.filename} read with range requests does not match "
                    "the sha256 the index states for it (PEP 658)",
                    where=file.url,
                    hint="the index (or a proxy) serves ranges of the file inconsistent with "
                    "it; report it, or use another index",
                )
            how = c.PEP658_HASH
        return data, how

    def _pep658(self, file: DistFile) -> bytes | None:
        url = file.url + ".metadata"
        try:
            data = self.http.get(
                url, what=f"the metadata of {file.filename}", kind="metadata"
            ).content
        except NotFound:
            log.debug("%s advertised but missing; reading the file instead", url)
            return None
        if file.core_metadata and hashlib.sha256(data).hexdigest() != file.core_metadata:
            raise MetadataError(
                f"the .metadata of {file.filename} does not match its advertised sha256",
                where=url,
                hint="the index is inconsistent or the download was tampered with",
            )
        return data

    def _range(self, file: DistFile, first: int | None, last: int) -> tuple[bytes, int, bool]:
        """Bytes ``first``-``last`` of ``file`` (``first`` None: its last ``last`` bytes), the
        file's size, and whether it is a part (a 200 is the whole file, its hash checked).
        A part must be the one asked for, as its Content-Range states: the bytes are stored
        at the offset asked for, and zipfile reads them as what is there."""
        spec = f"bytes=-{last}" if first is None else f"bytes={first}-{last}"
        # identity: Content-Range must count the file's own bytes, not a compressed stream
        headers = {"Range": spec, "Accept-Encoding": "identity"}
        resp = self.http.get(file.url, headers=headers, what=f"a range of {file.filename}")
        if resp.status_code != 206:
            self._check_hash(file, resp.content)
            return resp.content, len(resp.content), False
        stated = resp.headers.get("Content-Range", "").strip()
        match = _CONTENT_RANGE.fullmatch(stated)
        if match is None:
            raise _bad_range(file, spec, stated, "not of the form 'bytes FIRST-LAST/SIZE'")
        start, end, total = (int(n) for n in match.groups())
        size = len(resp.content)
        expected = max(total - last, 0) if first is None else first
        wanted = last if first is None else last - first + 1
        if start != expected:
            raise _bad_range(file, spec, stated, f"it starts at {start}, not {expected}")
        if not 0 < size <= wanted or end != start + size - 1 or end >= total:
            raise _bad_range(file, spec, stated, f"{size} bytes came with it")
        if first is None and end != total - 1:
            raise _bad_range(file, spec, stated, "a suffix range must end the file")
        return resp.content, total, True

    def _wheel_metadata(self, file: DistFile) -> tuple[bytes, str]:
        limit = self.limits.metadata
        try:
            reader = md.RangeReader(
                lambda first, last: self._range(file, first, last), max_span=limit
            )
        except NotFound:
            raise
        except IndexError_ as exc:
            if isinstance(exc, LimitExceeded):
                raise
            # e.g. 416/501 for a suffix range: read the whole file instead
            log.debug("%s: range read refused (%s); downloading it whole", file.filename, exc)
            data = self.http.get(file.url, what=f"download of {file.filename}").content
            self._check_hash(file, data)
            return md.wheel_metadata(BytesIO(data), file, limit=limit), c.WHOLE_FILE_HASH
        if reader.whole:
            data = md.wheel_metadata(BytesIO(reader.read()), file, limit=limit)
            return data, c.WHOLE_FILE_HASH
        data = md.wheel_metadata(reader, file, limit=limit)
        if reader.whole:  # a later read was answered with the whole file: read that alone
            reader.seek(0)
            return md.wheel_metadata(BytesIO(reader.read()), file, limit=limit), c.WHOLE_FILE_HASH
        log.debug("%s: METADATA in %d range requests", file.filename, reader.requests)
        return data, c.UNVERIFIED_RANGE

    def _check_hash(self, file: DistFile, data: bytes) -> None:
        if hashlib.sha256(data).hexdigest() != file.sha256:
            raise IndexError_(
                f"{file.filename} does not match its sha256 on the index",
                where=file.url,
                hint="the index or a proxy served different bytes; retry, or report it",
            )

    def _sdist_bytes(self, file: DistFile) -> bytes:
        """The sdist, from the cache or downloaded once (concurrent callers wait)."""
        with self._lock:
            lock = self._sdist_locks.setdefault(file.sha256, threading.Lock())
        with lock:
            data = self.cache.get_sdist(file.sha256)
            if data is not None:
                return data
            if self.offline:
                raise MetadataError(
                    f"offline, and {file.filename} is not in the cache",
                    where=file.url,
                    hint="run once online with the same cache directory, or drop --offline",
                )
            data = self.http.get(file.url, what=f"download of {file.filename}").content
            self._check_hash(file, data)
            self.cache.put_sdist(file.sha256, data)
            return data

    def _sdist_files(self, file: DistFile) -> tuple[bytes | None, bytes | None]:
        """(PKG-INFO, pyproject.toml) of an sdist, read out of it once for both its metadata
        and its build system: a tar is decompressed until both are found, often most of it
        (the big sets' four sdists: members 41-512 of 66-533), tens of milliseconds that
        hold the interpreter lock the resolution needs; concurrent callers wait for one read."""
        with self._lock:
            known = self._sdist_parts.get(file.sha256)
            lock = self._sdist_locks.setdefault(f"{file.sha256} parts", threading.Lock())
        if known is not None:
            return known
        with lock:
            with self._lock:
                known = self._sdist_parts.get(file.sha256)
            if known is None:
                data = self._sdist_bytes(file)
                known = md.sdist_files(data, file, limit=self.limits.metadata)
                with self._lock:
                    self._sdist_parts[file.sha256] = known
            return known

    def _sdist_metadata(self, file: DistFile) -> bytes:
        pkg_info, _ = self._sdist_files(file)
        if pkg_info is not None and md.pkg_info_trusted(pkg_info):
            return pkg_info
        log.debug("%s: PKG-INFO not reliable (PEP 643); asking the PEP 517 backend", file.filename)
        from bot.lock.index.pep517 import cached_metadata  # imports the hook machinery

        return cached_metadata(
            self.cache,
            self._sdist_bytes(file),
            file,
            self.build_index_urls(),
            python=self.build_python,
            uv=self.uv,
            refresh=self.refresh,
            provision=self.provision if self.compose_builds else None,
            limits=self.limits,
        )

    def build_index_urls(self) -> list[str]:
        """Indexes build requirements are installed from: routed indexes first (a name they
        carry is taken from them), then the unrestricted ones."""
        routed = [r.url for r in self.routes if r.packages is not None]
        general = [r.url for r in self.routes if r.packages is None]
        return list(dict.fromkeys(routed + general))

    # --- build environments ---

    def provision(self, requirements: Sequence[str], python: str) -> list[Unpacked]:
        """Build requirements resolved for the interpreter ``python`` (wheels only, as of
        :attr:`build_cutoff`, from these indexes), each wheel downloaded with its sha256
        checked and unpacked once into the cache: what a PEP 517 hook's environment is
        composed of (:mod:`bot.lock.index.buildenv`)."""
        # a metadata hook runs on one of this client's own threads: it must not wait for
        # work queued behind it on the same pool
        index: WheelIndex = _Direct(self) if _on_pool_thread() else self
        wanted = requirement_text(requirements)
        index.prefetch([canonicalize_name(r.name) for r in wanted])  # while the probe runs
        files, used = resolve_wheels(index, wanted, interpreter(python), self.build_cutoff)
        # fetched side by side (each streamed to disk, so memory stays flat)
        wheels = list(self._wheel_pool.map(self._wheels.get, files))
        for file, wheel in zip(files, wheels, strict=True):
            meta = used.get(file.sha256)
            if meta is not None and meta.unverified is not None:
                check_metadata(wheel, file, meta)
        log.debug("build environment: %s", ", ".join(f.filename for f in files))
        return wheels

    def _download_wheel(self, file: DistFile, path: Path) -> None:
        """Download ``file`` into ``path`` (streamed: a backend's wheel may be big), its
        sha256 checked."""
        if self.offline:
            raise MetadataError(
                f"offline, and {file.filename} (a build requirement) is not in the cache",
                where=file.url,
                hint="run once online with the same cache directory, or drop --offline",
            )
        with path.open("wb") as out:
            self.http.get(file.url, what=f"download of {file.filename}", sink=out)
        digest = hashlib.sha256()
        with path.open("rb") as written:
            while chunk := written.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != file.sha256:
            raise IndexError_(
                f"{file.filename} does not match its sha256 on the index",
                where=file.url,
                hint="the index or a proxy served different bytes; retry, or report it",
            )

    # --- build requirements ---

    def build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        """PEP 518 ``[build-system] requires`` of an sdist (``setuptools>=40.8.0`` if absent)."""
        if file.kind == "sdist":
            self._probe_build_python()
        return self._build_system(file)[0]

    def _probe_build_python(self) -> None:
        """Start asking the hooks' interpreter for its tags, once, in the background: a
        composed environment needs them, and the first sdist whose build requirements are
        asked for is seen while it still has to be downloaded and read (the probe, 40-60 ms,
        then no longer lies on the hook's path)."""
        with self._lock:
            if self._probing or not self.compose_builds or self.offline:
                return
            self._probing = True
        self._wheel_pool.submit(self._quiet_probe)

    def _quiet_probe(self) -> None:
        python = self.build_python
        if python is not None and not python[1]:
            return  # no interpreter: no hook runs
        with contextlib.suppress(MetadataError):  # the hook meets it again and says so
            interpreter(python[1] if python is not None else sys.executable)

    def dynamic_build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        """What an sdist's backend asks for while building (get_requires_for_build_wheel)."""
        if file.kind != "sdist":
            return ()
        from bot.lock.index.pep517 import STATIC_BACKENDS, cached_build_requires

        if self.build_python is not None and not self.build_python[1]:
            # no interpreter here: fine for a backend known to add nothing, else an error
            _, in_tree = self._build_system(file)
            with self._lock:
                backend = self._backends.get(file.sha256)
            if backend in STATIC_BACKENDS and not in_tree:
                return ()
        return cached_build_requires(
            self.cache,
            lambda: self._sdist_bytes(file),
            file,
            self.build_index_urls(),
            python=self.build_python,
            uv=self.uv,
            refresh=self.refresh,
            offline=self.offline,
            provision=self.provision if self.compose_builds else None,
            early=self._early_requires(file) if self.compose_builds else None,
            limits=self.limits,
        )

    def _early_requires(self, file: DistFile) -> list[str] | None:
        """The static build requirements of an sdist whose backend will be asked (their
        wheels are then fetched while the sdist is unpacked and its environment made);
        None when it will not be (a backend known to add nothing) or it is not known."""
        from bot.lock.index.pep517 import STATIC_BACKENDS

        requires, in_tree = self._build_system(file)
        with self._lock:
            backend = self._backends.get(file.sha256)
        if backend is None or (backend in STATIC_BACKENDS and not in_tree):
            return None
        return [str(r) for r in requires]

    def in_tree_backend(self, file: DistFile) -> bool:
        """Whether an sdist's build backend is the package itself (``backend-path``)."""
        return self._build_system(file)[1]

    def _build_system(self, file: DistFile) -> tuple[tuple[Requirement, ...], bool]:
        if file.kind != "sdist":
            return (), False
        with self._lock:
            known = self._build_systems.get(file.sha256)
        if known is not None:
            return known
        cached = self.cache.get_json("build-system", file.sha256)
        backend: str | None = None
        if isinstance(cached, dict) and isinstance(cached.get("requires"), list):
            result = (
                tuple(Requirement(r) for r in cached["requires"]),
                bool(cached.get("in-tree")),
            )
            if isinstance(cached.get("backend"), str):  # (not in an older cache's entries)
                backend = cached["backend"]
        else:
            _, pyproject = self._sdist_files(file)
            result = (md.build_requires_of(pyproject, file), md.in_tree_backend_of(pyproject))
            backend = md.backend_of(pyproject)
            self.cache.put_json(
                "build-system",
                file.sha256,
                {"requires": [str(r) for r in result[0]], "in-tree": result[1], "backend": backend},
            )
        with self._lock:
            self._build_systems[file.sha256] = result
            if backend is not None:
                self._backends[file.sha256] = backend
        return result


def _bad_range(file: DistFile, asked: str, stated: str, problem: str) -> IndexError_:
    return IndexError_(
        f"a range read of {file.filename} ({asked}) was answered with Content-Range "
        f"{stated[:80]!r}: {problem}",
        where=file.url,
        hint="the index (or a proxy) serves ranges inconsistent with the file; report it, "
        "or use another index",
    )


def _on_pool_thread() -> bool:
    return threading.current_thread().name.startswith("index")


class _Direct:
    """The client's pages and metadata for a caller on the client's own pool: what is
    already known is used, the rest fetched on the calling thread (never queued)."""

    def __init__(self, client: IndexClient) -> None:
        self.client = client

    def releases(self, name: NormalizedName) -> Releases:
        key = canonicalize_name(name)
        with self.client._lock:
            fut = self.client._pages.get(key)
        if fut is not None and fut.done():
            return fut.result()
        return self.client._fetch_releases(key)

    def metadata(self, file: DistFile) -> CoreMetadata:
        key = self.client.metadata_key(file)
        with self.client._lock:
            fut = self.client._metadata.get(key)
        if fut is not None and fut.done():
            return fut.result()
        return self.client._fetch_metadata(file, key)

    def prefetch(self, names: list[NormalizedName]) -> None:
        """Nothing: a pool thread must not queue work it may then wait for."""


def _base(stored: str | None, url: str) -> str:
    """The base of a cached page's links: where its redirects ended (stored without
    credentials), with the page URL's credentials again when on the same origin."""
    if not stored:
        return url
    page, final = urlsplit(url), urlsplit(stored)
    host = page.netloc.rpartition("@")[2]
    if "@" not in page.netloc or "@" in final.netloc or final[:2] != (page.scheme, host):
        return stored
    return urlunsplit(final._replace(netloc=page.netloc))
