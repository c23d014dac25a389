"""Reading an HTTP answer within bounds: a size limit on the body as sent and once decoded, and
one deadline for the whole response (:mod:`bot.lock.index.limits`).

A per-read socket timeout never ends a server that sends one byte every few seconds, so a
:class:`Watchdog` thread (one per HTTP client) shuts the socket of a request down when its
deadline passes; the blocked read then returns and the request fails with
:class:`~bot.lock.index.limits.LimitExceeded`.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from bot.core.errors import IndexError_
from bot.lock.index.limits import too_big

#: a Content-Length: ASCII digits only (str.isdigit() also takes "²", which int() refuses),
#: and not so many that int() refuses them either
_DIGITS = re.compile(r"[0-9]{1,20}")
#: bytes read from the socket at a time
CHUNK = 64 * 1024


class DecodeError(Exception):
    """A corrupt or unsupported Content-Encoding (a transport failure for the caller)."""


class _HasSock(Protocol):
    sock: socket.socket | None


@dataclass(eq=False)
class Watch:
    """One request being watched; ``fired`` once its deadline passed."""

    conn: _HasSock
    deadline: float
    fired: bool = field(default=False)


class Watchdog:
    """Shuts down the sockets of requests that outlive their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: dict[int, Watch] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, conn: _HasSock, seconds: float) -> Iterator[Watch]:
        """Watch ``conn`` for ``seconds`` (until the block ends)."""
        watch = Watch(conn, time.monotonic() + seconds)
        with self._cond:
            self._watches[id(watch)] = watch
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="deadline", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield watch
        finally:
            with self._cond:
                self._watches.pop(id(watch), None)

    def close(self) -> None:
        """Stop the thread (watches still open are no longer enforced)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                wake: float | None = None
                for watch in self._watches.values():
                    if watch.deadline <= now:
                        watch.fired = True
                        _shutdown(watch.conn.sock)
                        wake = now + 0.05  # again, should the socket not exist yet
                    elif wake is None or watch.deadline < wake:
                        wake = watch.deadline
                self._cond.wait(None if wake is None else max(wake - now, 0.001))


def _shutdown(sock: socket.socket | None) -> None:
    if sock is None:
        return
    # the plain socket's method, also for a TLS socket: its own shutdown changes its state
    # under the thread reading it; this only wakes that read up
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _decoder(encoding: str, first: bytes) -> zlib._Decompress | None:
    if encoding in ("identity", ""):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        # a zlib stream, or the raw deflate some servers send under that name
        is_zlib = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
        return zlib.decompressobj() if is_zlib else zlib.decompressobj(-zlib.MAX_WBITS)
    raise DecodeError(f"an unsupported Content-Encoding {encoding!r}")


def read_body(
    raw: http.client.HTTPResponse,
    url: str,
    limit: int,
    what: str,
    kind: str,
    sink: BinaryIO | None = None,
) -> bytes:
    """The decoded body of ``raw``, refusing more than ``limit`` bytes sent or decoded;
    written to ``sink`` as it arrives instead when one is given (then b"" is returned, and
    a big download never sits in memory whole)."""
    length = (raw.getheader("Content-Length") or "").strip()
    if length and not _DIGITS.fullmatch(length):
        raise IndexError_(
            f"{what} failed: the server sent a malformed Content-Length {length[:40]!r}",
            where=url,
            hint="the index (or a proxy) broke the HTTP protocol; report it, or use another index",
        )
    if length and int(length) > limit:
        raise too_big(what, url, limit, kind)
    encoding = (raw.getheader("Content-Encoding") or "identity").strip().lower()
    decoder: zlib._Decompress | None = None
    out = bytearray()
    sent = decoded = 0  # decoded: what went to the sink
    first = True
    try:
        while chunk := raw.read(CHUNK):
            sent += len(chunk)
            if sent > limit:
                raise too_big(what, url, limit, kind)
            if first:
                decoder, first = _decoder(encoding, chunk), False
            if decoder is None:
                out += chunk
            else:
                while chunk:  # a MiB of output at a time: no second copy of a big answer
                    out += decoder.decompress(chunk, min(limit + 1 - decoded - len(out), 1 << 20))
                    if decoded + len(out) > limit:
                        raise too_big(f"{what} (decompressed)", url, limit, kind)
                    chunk = decoder.unconsumed_tail
            if sink is not None:
                sink.write(out)
                decoded += len(out)
                out.clear()
        if decoder is not None:
            out += decoder.flush()
            if decoded + len(out) > limit:
                raise too_big(f"{what} (decompressed)", url, limit, kind)
            if sink is not None:
                sink.write(out)
                out.clear()
    except zlib.error as exc:
        raise DecodeError(f"a corrupt {encoding} body: {exc}") from exc
    if raw.length:  # http.client ends a short read quietly: the body was cut off
        raise http.client.IncompleteRead(bytes(out[-16:]), raw.length)
    if first and encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise DecodeError(f"an unsupported Content-Encoding {encoding!r}")
    return bytes(out)
