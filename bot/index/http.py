"""One HTTP client for a whole run: connection reuse, retries with backoff, clear errors."""

from __future__ import annotations

import email.utils
import importlib.util
import logging
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

from bot import __version__
from bot.errors import IndexError_
from bot.index.models import NotFound
from bot.index.transport import ResolvingTransport

log = logging.getLogger(__name__)

#: the longest Retry-After we honour; a server asking for more is treated as down
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _h2_available() -> bool:
    return importlib.util.find_spec("h2") is not None


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
        http2: bool = False,
    ) -> None:
        self.retries = retries
        self.backoff = backoff
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            # HTTP/2 (needs the optional h2 package) measured no faster against PyPI here
            transport=ResolvingTransport(limits=limits, http2=http2 and _h2_available()),
            headers={"User-Agent": f"nixpkgs-python/{__version__} (+httpx)"},
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self.client.close()

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
    ) -> httpx.Response:
        """GET ``url``, retrying transient failures; 404/410 raise :class:`NotFound`.

        Any status in ``ok`` is returned; any other final status raises :class:`IndexError_`.
        """
        last = ""
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                resp = self.client.get(url, headers=dict(headers or {}))
            except httpx.UnsupportedProtocol as exc:
                raise IndexError_(
                    f"{what}: unsupported URL ({exc})",
                    where=url,
                    hint="index URLs must be http:// or https://",
                ) from exc
            except httpx.TimeoutException as exc:
                last = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__}: {exc})"
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
