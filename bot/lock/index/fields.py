"""The fields of a simple-API file entry, each checked: everything an index sends is untrusted.

Each function takes the raw value of one field (from PEP 691 JSON or a PEP 503 anchor) and
returns it in the form a :class:`~bot.lock.index.models.DistFile` holds, or raises
:class:`Malformed` naming the field and the problem; the page parser skips that file with one
warning.  Bounds keep pathological values (a 5000-digit version, a megabyte specifier) from
costing more than a well-formed page.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: the longest version text a filename may carry (PyPI's longest is under 40 characters;
#: a long run of digits would otherwise cost an int conversion Python refuses past 4300)
MAX_VERSION = 128
#: the longest requires-python value read (a real one is a few dozen characters)
MAX_REQUIRES_PYTHON = 1024
MAX_FILENAME = 255
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")  # control characters and whitespace


class Malformed(Exception):  # noqa: N818 (not an error the user sees: a reason to skip a file)
    """One field of a file entry is unusable; the file is skipped with a warning."""

    def __init__(self, fld: str, problem: str) -> None:
        super().__init__(f"{fld}: {problem}")
        self.field = fld
        self.problem = problem


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters, for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


@functools.lru_cache(maxsize=4096)
def _specifier(value: str) -> SpecifierSet | None:
    """The specifier set, or None if ``value`` is not one."""
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        return None


def requires_python(value: object) -> SpecifierSet | None:
    """A requires-python field (absent or empty: None)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed("requires-python", f"expected a string, got {_type(value)} {shown(value)}")
    if len(value) > MAX_REQUIRES_PYTHON:
        raise Malformed("requires-python", f"longer than {MAX_REQUIRES_PYTHON} characters")
    spec = _specifier(value)
    if spec is None:
        raise Malformed("requires-python", f"{shown(value)} is not a PEP 440 specifier set")
    return spec


def upload_time(value: object) -> datetime | None:
    """An upload-time field (absent or empty: None), timezone-aware UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed("upload-time", f"expected an ISO 8601 string, got {_type(value)}")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Malformed("upload-time", f"{shown(value)} is not an ISO 8601 time") from None


def yanked(value: object) -> str | None:
    """A PEP 691 ``yanked`` field: None = not yanked, else the reason ("" if none given).
    A string yanks only when it is not empty (PEP 691: a truthy value means yanked)."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    if isinstance(value, str):
        return value or None
    raise Malformed("yanked", f"expected true, false or a reason, got {_type(value)}")


def size(value: object) -> int | None:
    """A PEP 700 size field: a byte count (absent: None)."""
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise Malformed("size", f"expected a byte count, got {_type(value)} {shown(value)}")
    return value


def sha256(value: object) -> str:
    """A sha256 hex digest (lowercased)."""
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        raise Malformed("hashes", f"the sha256 {shown(value)} is not 64 hex digits")
    return value.lower()


def metadata_hash(value: object) -> str | None:
    """A PEP 658/714 core-metadata field -> sha256 hex, "" when advertised without a hash,
    None when absent.  An unusable value raises :class:`BadMetadata` carrying what to take
    instead (the file stays usable: its metadata is then read and checked another way)."""
    if isinstance(value, str):  # HTML: "true", "false", "sha256=<hex>"
        lowered = value.lower()
        if lowered in ("true", "false", ""):
            value = lowered == "true"
        else:
            algo, _, digest = value.partition("=")
            return _metadata_sha(digest) if algo.lower() == "sha256" else ""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    if isinstance(value, Mapping):
        sha = value.get("sha256")
        return "" if sha is None else _metadata_sha(sha)
    raise BadMetadata(None, f"expected true, false or hashes, got {_type(value)}")


def _metadata_sha(value: object) -> str:
    if isinstance(value, str) and _SHA256.match(value.lower()):
        return value.lower()
    raise BadMetadata("", f"the sha256 {shown(value)} is not 64 hex digits")


class BadMetadata(Malformed):
    """A core-metadata field the file can do without: ``use`` is taken instead."""

    def __init__(self, use: str | None, problem: str) -> None:
        super().__init__("core-metadata", problem)
        self.use = use


def download_url(base: str, url: object) -> str:
    """The absolute download URL of a file entry's URL, without its fragment; raises
    :class:`Malformed` for anything but a well-formed http(s) URL."""
    if not isinstance(url, str) or not url:
        raise Malformed("url", f"expected a URL, got {_type(url)} {shown(url)}")
    if _UNSAFE.search(url) or not url.isascii():
        raise Malformed("url", f"{shown(url)} has spaces, control or non-ASCII characters")
    try:
        # urljoin + urldefrag, with a fast path for absolute URLs (PyPI's case)
        if url.startswith(("https://", "http://")):
            joined = url.partition("#")[0]
        else:
            joined = urldefrag(urljoin(base, url))[0]
        parts = urlsplit(joined)
        port = parts.port
    except ValueError as exc:  # a bad IPv6 address or port
        raise Malformed("url", f"{shown(url)}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Malformed("url", f"{shown(joined)} is not an http(s) URL with a host")
    if port == 0:
        raise Malformed("url", f"{shown(joined)}: port 0")
    return joined


def plain_filename(filename: object) -> str:
    """A file name that is only a name: no directory part, no control characters."""
    if not isinstance(filename, str) or not filename:
        raise Malformed("filename", f"expected a file name, got {_type(filename)}")
    if (
        len(filename) > MAX_FILENAME
        or "/" in filename
        or "\\" in filename
        or not filename.isprintable()
    ):
        raise Malformed("filename", f"{shown(filename)} is not a plain file name")
    return filename


def json_sha256(entry: dict[str, Any]) -> str | None:
    """The sha256 of a PEP 691 entry's ``hashes`` (None when it gives none: refused later)."""
    hashes = entry.get("hashes")
    if hashes is None:
        return None
    if not isinstance(hashes, Mapping):
        raise Malformed("hashes", f"expected an object, got {_type(hashes)}")
    sha = hashes.get("sha256")
    return None if sha is None else sha256(sha)
