"""One HTTP client for a whole run: pooled keep-alive connections, retries, clear errors.

Built on the standard library's :mod:`http.client`: a lock talks to two or three hosts with
plain GETs, and a general-purpose client costs more than the run itself.  Measured on a
cold lock of the pytest set (BENCHMARKS.md): importing httpx took ~0.1 s (rich and pygments
for its command line, h2) and each request ~1 ms of CPU more, all of it holding the GIL the
resolver and the other fetches need.  This client keeps what the index client relies on:

* connections reused per (scheme, host, port), at most ``max_connections`` per host, each
  host name resolved once per run (a dozen concurrent look-ups in a burst is where a lossy
  resolver drops one and costs the libc retry timeout);
* certificates verified against ``$SSL_CERT_FILE`` / ``$NIX_SSL_CERT_FILE`` when set, else
  the system's store (else certifi's, if installed), loaded in the background
  (:func:`load_certificates`) by clients that know they will go online;
* redirects followed, gzip answers decoded, a reused connection the server closed retried
  at once on a new one;
* every answer bounded (:mod:`bot.lock.index.limits`, :mod:`bot.lock.index.bounded`):
  its size as sent
  and decoded, and one deadline for the whole response (not per read);
* HTTP proxies from the environment (:mod:`bot.lock.index.proxies`): ``CONNECT`` tunnels for HTTPS,
  absolute URLs for plain HTTP, ``no_proxy`` honoured;
* timeouts, connection errors and 408/425/429/5xx retried with exponential backoff and
  jitter (honouring Retry-After), then one :class:`IndexError_` naming the URL.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import logging
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import SplitResult, urljoin, urlsplit

from bot import __version__
from bot.core.errors import IndexError_
from bot.lock.index.bounded import DecodeError, Watchdog, read_body
from bot.lock.index.certificates import load_certificates, ssl_context
from bot.lock.index.limits import Limits, too_slow
from bot.lock.index.models import NotFound
from bot.lock.index.proxies import Proxies, Proxy, basic_auth

__all__ = ["Http", "Response", "load_certificates", "ssl_context"]

log = logging.getLogger(__name__)

#: a header number (Retry-After, Content-Length): ASCII digits only; str.isdigit() also takes
#: "²" (a 0xB2 byte, as http.client decodes headers), which int() and float() then refuse
DIGITS = re.compile(r"[0-9]+")
#: what no URL may contain: whitespace, control characters (http.client refuses them
#: with an error of its own, or cannot even encode a non-ASCII one)
_UNSAFE_URL = re.compile(r"[\x00-\x20\x7f]")
#: the longest Retry-After we honour; a server asking for more is treated as down
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
USER_AGENT = f"nixpkgs-python/{__version__} (+http.client)"


class TransportError(Exception):
    """A request failed below HTTP (name resolution, connection, TLS, a torn response)."""


class RequestTimeoutError(TransportError):
    """Connecting or reading timed out."""


@dataclass(frozen=True)
class Response:
    """A complete response (the body is read and decoded)."""

    status_code: int
    reason_phrase: str
    headers: http.client.HTTPMessage  #: case-insensitive ``get``
    content: bytes
    url: str  #: the final URL, after redirects


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when
    there is none or it is malformed (then the usual backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if DIGITS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class UnusableHost(Exception):  # noqa: N818 (turned into an IndexError_ naming the URL)
    """A host name no look-up can take (an empty or over-long label): not worth a retry."""


class _Resolver:
    """Resolves each (host, port) once per run; concurrent callers wait for the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[tuple[str, int], threading.Lock] = {}
        self._addresses: dict[tuple[str, int], list[tuple[int, Any]]] = {}

    def addresses(self, host: str, port: int) -> list[tuple[int, Any]]:
        """(family, socket address) pairs of ``host``, looked up once."""
        key = (host, port)
        with self._lock:
            host_lock = self._hosts.setdefault(key, threading.Lock())
        with host_lock:
            known = self._addresses.get(key)
            if known is None:
                try:
                    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                except OSError as exc:  # a failed look-up is not cached
                    raise TransportError(f"cannot resolve {host}: {exc}") from exc
                except (UnicodeError, ValueError) as exc:  # the name cannot be encoded (IDNA)
                    raise UnusableHost(f"{host!r} is not a usable host name ({exc})") from None
                known = list(dict.fromkeys((int(info[0]), info[4]) for info in infos))
                self._addresses[key] = known
            return known

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        error: OSError | None = None
        for family, address in self.addresses(host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            return sock
        raise error or TransportError(f"no address for {host}")


class _Connection(http.client.HTTPConnection):
    """An HTTP connection made through the run's resolver (to a proxy, when it has one)."""

    def __init__(
        self, host: str, port: int, timeout: float, resolver: _Resolver, proxy: Proxy | None
    ) -> None:
        target = (proxy.host, proxy.port) if proxy is not None else (host, port)
        super().__init__(*target, timeout=timeout)
        self._resolver = resolver
        self._create_connection = self._open  # http.client's hook for making the socket
        #: a plain-HTTP request through a proxy names the whole URL and carries the proxy's
        #: credentials; an HTTPS one goes through a CONNECT tunnel instead
        self.proxy = proxy

    def _open(
        self, address: tuple[str, int], timeout: float | None = None, source: Any = None
    ) -> socket.socket:
        return self._resolver.connect(address[0], address[1], timeout or 30)


class _TLSConnection(_Connection):
    """An HTTPS connection made through the run's resolver (tunnelled through a proxy, when
    it has one)."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        resolver: _Resolver,
        proxy: Proxy | None,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, timeout, resolver, proxy)
        if proxy is not None:
            headers = {"Proxy-Authorization": proxy.auth} if proxy.auth else None
            self.set_tunnel(host, port, headers=headers)
        self._server_name = host
        self._context = context

    def connect(self) -> None:
        super().connect()  # to the host, or to the proxy and then CONNECT through it
        try:
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)
        except BaseException:
            self.sock.close()
            raise


_Key = tuple[str, str, int]


class _Pool:
    """Idle keep-alive connections per (scheme, host, port), at most ``size`` per host."""

    def __init__(
        self,
        size: int,
        timeout: float,
        context: Future[ssl.SSLContext] | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        self.size = size
        self.timeout = timeout
        self.resolver = _Resolver()
        self.proxies = proxies if proxies is not None else Proxies()
        self._loading = context
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[_Connection]] = {}
        self._slots: dict[_Key, threading.BoundedSemaphore] = {}
        self.opened = 0  #: connections made so far (for tests and benchmarks)

    def context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                loading, self._loading = self._loading, None
                self._context = loading.result() if loading is not None else ssl_context()
            return self._context

    @contextlib.contextmanager
    def connection(self, key: _Key, *, fresh: bool = False) -> Iterator[tuple[_Connection, bool]]:
        """A connection to ``key`` (and whether it was reused; ``fresh``: never reuse); kept if
        the caller finishes without an exception and the response allows keep-alive."""
        with self._lock:
            slots = self._slots.setdefault(key, threading.BoundedSemaphore(self.size))
        slots.acquire()
        try:
            conn: _Connection | None = None
            if not fresh:
                with self._lock:
                    idle = self._idle.get(key)
                    conn = idle.pop() if idle else None
            reused = conn is not None
            if conn is None:
                conn = self._new(key)
            try:
                yield conn, reused
            except BaseException:
                conn.close()
                raise
            if conn.sock is not None:
                with self._lock:
                    self._idle.setdefault(key, []).append(conn)
        finally:
            slots.release()

    def _new(self, key: _Key) -> _Connection:
        scheme, host, port = key
        with self._lock:
            self.opened += 1
        proxy = self.proxies.for_target(scheme, host, port)
        if scheme == "https":
            context = self.context()
            return _TLSConnection(host, port, self.timeout, self.resolver, proxy, context)
        return _Connection(host, port, self.timeout, self.resolver, proxy)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


#: failures of a reused connection the server had already closed: retried at once
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Http:
    """A thread-safe HTTP client with retries.

    Retries timeouts, connection errors, 408/425/429/5xx with exponential backoff and jitter
    (honouring Retry-After); then raises :class:`IndexError_` naming the URL.
    """

    def __init__(
        self,
        *,
        timeout: float = 30,
        retries: int = 4,
        backoff: float = 0.5,
        max_connections: int = 16,
        certificates: Future[ssl.SSLContext] | None = None,
        proxies: Proxies | None = None,
        limits: Limits | None = None,
    ) -> None:
        """``certificates``: a context being loaded (:func:`load_certificates`), if any;
        ``proxies``: default, from the environment; ``limits``: default, from the environment."""
        self.retries = retries
        self.backoff = backoff
        self.limits = limits if limits is not None else Limits.from_env()
        self.pool = _Pool(max_connections, timeout, certificates, proxies)
        self._watchdog = Watchdog()

    def close(self) -> None:
        """Close every pooled connection."""
        self._watchdog.close()
        self.pool.close()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return float(self.backoff * (2**attempt) * random.uniform(0.5, 1.5))  # noqa: S311

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        what: str = "download",
        ok: frozenset[int] = frozenset({200, 206, 304}),
        kind: str = "download",
        sink: BinaryIO | None = None,
    ) -> Response:
        """GET ``url``, retrying transient failures; 404/410 raise :class:`NotFound`.

        Any status in ``ok`` is returned; any other final status raises :class:`IndexError_`.
        The body is bounded by the ``kind`` limit (``page``, ``download`` or ``metadata``) and
        the response by the deadline: exceeding either raises :class:`LimitExceeded`, at once.
        With a ``sink`` (a seekable file) the body is written there, not kept (``content``
        is then empty); it holds the final response's body only.
        """
        last = ""
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                resp = self._follow(url, headers or {}, what, kind, sink)
            except RequestTimeoutError as exc:
                last = f"timed out ({exc})"
            except TransportError as exc:
                last = f"connection failed ({exc})"
            else:
                log.debug("GET %s %s", url, resp.status_code)
                if resp.status_code in ok:
                    return resp
                if resp.status_code in (404, 410):
                    raise NotFound(f"{what}: {resp.status_code} Not Found", where=url)
                last = f"HTTP {resp.status_code} {resp.reason_phrase}"
                if resp.status_code not in RETRY_STATUSES:
                    raise IndexError_(
                        f"{what} failed: {last}",
                        where=url,
                        hint="check the index URL and any credentials it needs",
                    )
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                    break
            if attempt < self.retries:
                delay = self._delay(attempt, retry_after)
                log.debug("GET %s: %s; retrying in %.2fs", url, last, delay)
                time.sleep(delay)
        raise IndexError_(
            f"{what} failed after {self.retries + 1} attempts: {last}",
            where=url,
            hint="the index may be down or unreachable; check the network and retry later",
        )

    def _follow(
        self,
        url: str,
        headers: Mapping[str, str],
        what: str,
        kind: str,
        sink: BinaryIO | None = None,
    ) -> Response:
        """One GET, following redirects.

        Credentials in the URL (``https://user:token@host/simple/``, as private indexes are
        often given) are sent as HTTP Basic auth, also to redirects on the same origin, and
        never to another one.
        """
        origin: _Key | None = None
        auth: str | None = None
        for _ in range(MAX_REDIRECTS + 1):
            if _UNSAFE_URL.search(url) or not url.isascii():
                raise IndexError_(
                    f"unusable URL {url!r} (spaces, control or non-ASCII characters)",
                    where=url,
                    hint="an index (or a redirect it sent) named a malformed URL; "
                    "a URL's special characters must be percent-encoded",
                )
            try:
                parts = urlsplit(url)
                key = _key(parts)  # reads the port: a bad one (or IPv6 literal) is a ValueError
            except ValueError as exc:
                raise IndexError_(
                    f"unusable URL {url!r} ({exc})",
                    where=url,
                    hint="an index (or a redirect it sent) named a malformed URL",
                ) from None
            if key is None:
                raise IndexError_(
                    f"unsupported URL {url!r}",
                    where=url,
                    hint="index URLs must be http:// or https://",
                )
            if origin is None:
                origin, auth = key, basic_auth(parts)
            sent = dict(headers)
            hop_auth = basic_auth(parts) or (auth if key == origin else None)
            if hop_auth is not None:
                sent.setdefault("Authorization", hop_auth)
            resp = self._once(url, parts, key, sent, what, kind, sink)
            location = resp.headers.get("Location")
            if resp.status_code not in REDIRECTS or not location:
                return resp
            if _UNSAFE_URL.search(location) or not location.isascii():
                raise IndexError_(
                    f"{what} failed: a redirect to an unusable URL {location!r} "
                    "(spaces, control or non-ASCII characters)",
                    where=url,
                    hint="the index (or a proxy) sent a malformed Location; report it",
                )
            try:
                url = urljoin(url, location)
            except ValueError as exc:
                raise IndexError_(
                    f"unusable URL {location!r} ({exc})",
                    where=url,
                    hint="an index (or a redirect it sent) named a malformed URL",
                ) from None
        raise TransportError(f"more than {MAX_REDIRECTS} redirects")

    def _via(self, key: _Key) -> str:
        """How a failed request was sent, when not directly (for its error message)."""
        proxy = self.pool.proxies.for_target(*key)
        return "" if proxy is None else f", through the proxy in ${proxy.var}"

    def _once(
        self,
        url: str,
        parts: SplitResult,
        key: _Key,
        headers: Mapping[str, str],
        what: str,
        kind: str,
        sink: BinaryIO | None = None,
    ) -> Response:
        """One request on a pooled connection to ``key`` (a new one if a kept-alive one was
        closed under it); the body read whole (within the limits) and decoded (into
        ``sink``, emptied first, when given)."""
        limit = int(getattr(self.limits, kind))
        deadline = self.limits.deadline
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip", **headers}
        for fresh in (False, True):
            watch = None
            try:
                with (
                    self.pool.connection(key, fresh=fresh) as (conn, reused),
                    self._watchdog.watch(conn, deadline) as watch,
                ):
                    path, request_headers = target, sent
                    if conn.proxy is not None and key[0] == "http":
                        path = f"http://{_netloc(key)}{target}"
                        if conn.proxy.auth:
                            request_headers = {**sent, "Proxy-Authorization": conn.proxy.auth}
                    try:
                        if sink is not None:
                            sink.seek(0)
                            sink.truncate()
                        conn.request("GET", path, headers=request_headers)
                        raw = conn.getresponse()
                        content = read_body(raw, url, limit, what, kind, sink)
                    except _STALE:
                        if reused and not watch.fired:
                            raise _StaleError from None
                        raise
                    if watch.fired:  # the socket was shut down under the last read
                        raise TimeoutError("deadline")
            except _StaleError:
                log.debug("GET %s: the kept-alive connection was closed; reconnecting", url)
                continue
            except UnusableHost as exc:
                raise IndexError_(
                    f"{what} failed: {exc}{self._via(key)}",
                    where=url,
                    hint="check the host name in the index URL (or the proxy setting)",
                ) from None
            except (OSError, http.client.HTTPException, DecodeError) as exc:
                if watch is not None and watch.fired:
                    raise too_slow(what + self._via(key), url, deadline) from None
                if isinstance(exc, TimeoutError):
                    raise RequestTimeoutError(type(exc).__name__ + self._via(key)) from exc
                if isinstance(exc, DecodeError):
                    raise TransportError(f"{exc} from {url}") from exc
                raise TransportError(f"{type(exc).__name__}: {exc}{self._via(key)}") from exc
            return Response(raw.status, raw.reason, raw.headers, content, url)
        raise AssertionError("unreachable: a fresh connection is never stale")  # pragma: no cover


def _key(parts: SplitResult) -> _Key | None:
    """The pool key (scheme, host, port) of an http(s) URL; None for any other URL."""
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80)


def _netloc(key: _Key) -> str:
    """``host:port`` of a pool key, the host bracketed if it is an IPv6 address."""
    _, host, port = key
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _StaleError(Exception):
    """A reused connection turned out closed before any response."""
