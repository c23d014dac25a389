"""Parse simple-API project pages: PEP 691 JSON and PEP 503 HTML, into :class:`DistFile`."""

from __future__ import annotations

import functools
import html
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urldefrag, urljoin

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
)
from packaging.version import InvalidVersion, Version

from bot import SUPPORTED_PYTHONS
from bot.errors import IndexError_
from bot.index.models import Builder, DistFile, Releases, cached_version

log = logging.getLogger(__name__)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
#: what we ask for: JSON first, HTML as the fallback every index speaks
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"

_ANCHOR = re.compile(r"<a\s+([^>]*)>([^<]*)</a\s*>", re.IGNORECASE | re.DOTALL)
_BASE = re.compile(r"<base\s+[^>]*href\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HREF = re.compile(r"""href\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_WHEEL_NAME = re.compile(r"^[\w\d._]*$", re.UNICODE)
#: sdist formats we accept (PEP 625 .tar.gz, and legacy .zip)
SDIST_SUFFIXES = (".tar.gz", ".zip")


@functools.lru_cache(maxsize=4096)
def _specifier(value: str) -> SpecifierSet | None:
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        log.debug("ignoring invalid requires-python %r", value)
        return None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _metadata_hash(value: object) -> str | None:
    """PEP 658/714 value -> sha256 hex, "" when advertised without a hash, None when absent."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    if isinstance(value, Mapping):
        sha = value.get("sha256")
        return sha.lower() if isinstance(sha, str) else ""
    if isinstance(value, str):
        if value.lower() in ("", "false"):
            return None
        algo, _, digest = value.partition("=")
        return digest.lower() if algo.lower() == "sha256" and digest else ""
    return None


@functools.lru_cache(maxsize=4096)
def _tags(text: str) -> frozenset[Tag]:
    return parse_tag(text)


def parse_filename(
    filename: str,
) -> tuple[NormalizedName, Version, Literal["wheel", "sdist"], frozenset[Tag]] | None:
    """(name, version, kind, tags) of a wheel or sdist filename; None for anything else.

    Equivalent to :func:`packaging.utils.parse_wheel_filename` /
    :func:`~packaging.utils.parse_sdist_filename`, with versions and tag sets memoised
    (a project page repeats them thousands of times).
    """
    try:
        if filename.endswith(".whl"):
            parts = filename[:-4].split("-")
            if len(parts) not in (5, 6) or (len(parts) == 6 and not parts[2][:1].isdigit()):
                return None
            if not _WHEEL_NAME.match(parts[0]):
                return None
            return (
                canonicalize_name(parts[0]),
                cached_version(parts[1]),
                "wheel",
                _tags("-".join(parts[-3:])),
            )
        if filename.endswith(SDIST_SUFFIXES):
            name, version = parse_sdist_filename(filename)
            return name, version, "sdist", frozenset()
    except (InvalidSdistFilename, InvalidVersion):
        pass
    return None


#: wheel platform tags no Nix system of a lock can use (Windows, musl, other architectures)
_FOREIGN_PLATFORMS = ("win", "musllinux", "cygwin", "android", "ios", "emscripten", "pyodide")
_FOREIGN_ARCHES = (
    "_i686",
    "_i386",
    "_ppc64le",
    "_ppc64",
    "_ppc",
    "_s390x",
    "_armv7l",
    "_armv6l",
    "_riscv64",
    "_loongarch64",
    "_x86",
)


#: the oldest Python 3 minor version a lock can be for
_OLDEST_MINOR = min(int(v.split(".")[1]) for v in SUPPORTED_PYTHONS)


@functools.lru_cache(maxsize=1024)
def _old_python(tag: str) -> bool:
    if tag.startswith(("pp", "cp2", "py2", "graalpy", "ip")):
        return True
    digits = tag[3:]
    return tag.startswith("cp3") and digits.isdigit() and int(digits) < _OLDEST_MINOR


@functools.lru_cache(maxsize=4096)
def _foreign_tags(python: str, abi: str, platform: str) -> bool:
    if all(
        p.startswith(_FOREIGN_PLATFORMS) or p.endswith(_FOREIGN_ARCHES) for p in platform.split(".")
    ):
        return True
    if "abi3" in abi.split("."):
        return False  # a stable-ABI wheel built for an older CPython still works
    return all(_old_python(t) for t in python.split("."))


def foreign_wheel(filename: str) -> bool:
    """Whether a wheel can never be used by a lock (every target is a supported CPython on
    Linux or macOS, x86_64 or aarch64).  Big projects list thousands of such wheels;
    skipping them before parsing is most of the cost of reading their pages."""
    if not filename.endswith(".whl"):
        return False
    # the last three dash-separated fields are the tag triple; a page repeats few triples
    head, _, platform = filename[:-4].rpartition("-")
    head, _, abi = head.rpartition("-")
    head, _, python = head.rpartition("-")
    if not head:
        return False
    return _foreign_tags(python, abi, platform)


def _join(base: str, url: str) -> str:
    """urljoin + urldefrag, with a fast path for absolute URLs (PyPI's case)."""
    if url.startswith(("https://", "http://")):
        return url.partition("#")[0]
    return urldefrag(urljoin(base, url))[0]


def make_file(
    project: NormalizedName,
    index: str,
    url: str,
    *,
    filename: str,
    sha256: str | None,
    requires_python: str | None = None,
    yanked: str | None = None,
    size: int | None = None,
    upload_time: datetime | None = None,
    core_metadata: str | None = None,
) -> DistFile | None:
    """A :class:`DistFile`, or None (logged at debug) for files the bot must not use."""
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        log.debug("refusing %s: no sha256 on %s", filename, index)
        return None
    parsed = parse_filename(filename)
    if parsed is None:
        log.debug("skipping %s: not a wheel or sdist, or an unparsable name", filename)
        return None
    name, version, kind, tags = parsed
    if name != project:
        log.debug("skipping %s: not a file of %s", filename, project)
        return None
    return DistFile(
        name=project,
        version=version,
        kind=kind,
        filename=filename,
        url=url,
        sha256=sha256.lower(),
        index=index,
        size=size,
        requires_python=_specifier(requires_python) if requires_python else None,
        yanked=yanked,
        upload_time=upload_time,
        core_metadata=core_metadata,
        tags=tags,
    )


def _filename(url: str) -> str:
    return unquote(url.partition("#")[0].partition("?")[0].rsplit("/", 1)[-1])


def version_text(filename: str) -> str | None:
    """The version part of a wheel or sdist filename, unparsed; None for other files."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return parts[1] if len(parts) in (5, 6) else None
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            name, _, version = filename[: -len(suffix)].rpartition("-")
            return version if name else None
    return None


class _Grouper:
    """Collects a page's raw entries by the version text of their filenames."""

    def __init__(self) -> None:
        self.groups: dict[str, list[tuple[Builder, Any]]] = {}

    def add(self, filename: str, build: Builder, raw: Any) -> None:
        text = version_text(filename)
        if text is None:
            log.debug("skipping %s: not a wheel or sdist, or an unparsable name", filename)
            return
        entries = self.groups.get(text)
        if entries is None:
            self.groups[text] = [(build, raw)]
        else:
            entries.append((build, raw))

    def releases(self) -> Releases:
        return Releases.from_texts(self.groups)


def parse_json(body: bytes, page_url: str, index: str, project: NormalizedName) -> Releases:
    """Files of a PEP 691 JSON project page, by version (each version's built on first use)."""
    try:
        data: Any = json.loads(body)
        entries = data["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexError_("the project page is not valid PEP 691 JSON", where=page_url) from exc
    if not isinstance(entries, list):
        raise IndexError_("the project page is not valid PEP 691 JSON", where=page_url)

    def build(entry: dict[str, Any]) -> DistFile | None:
        filename = entry.get("filename")
        if not isinstance(filename, str) or not filename:
            filename = _filename(entry["url"])
        if foreign_wheel(filename):
            return None
        hashes = entry.get("hashes") or {}
        yanked = entry.get("yanked", False)
        size = entry.get("size")
        meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
        return make_file(
            project,
            index,
            _join(page_url, entry["url"]),
            filename=filename,
            sha256=hashes.get("sha256") if isinstance(hashes, dict) else None,
            requires_python=entry.get("requires-python") or None,
            yanked=None
            if yanked is False or yanked is None
            else ("" if yanked is True else str(yanked)),
            size=size if isinstance(size, int) else None,
            upload_time=_time(entry.get("upload-time")),
            core_metadata=_metadata_hash(meta),
        )

    grouper = _Grouper()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        url = entry.get("url")
        if not isinstance(url, str):
            continue
        filename = entry.get("filename")
        if not isinstance(filename, str) or not filename:
            filename = _filename(url)
        grouper.add(filename, build, entry)
    return grouper.releases()


def _attrs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if value is None:
            value = match.group(4)
        out[match.group(1).lower()] = html.unescape(value) if "&" in value else value
    if "data-yanked" not in out and "data-yanked" in text.lower():
        out["data-yanked"] = ""  # a bare boolean attribute
    return out


def parse_html(body: bytes, page_url: str, index: str, project: NormalizedName) -> Releases:
    """Files of a PEP 503 HTML project page (with PEP 592/658/714 data attributes), by
    version (each version's built on first use)."""
    text = body.decode("utf-8", errors="replace")
    base = _BASE.search(text)
    base_url = urljoin(page_url, html.unescape(base.group(1))) if base else page_url

    def build(anchor: str) -> DistFile | None:
        attrs = _attrs(anchor)
        href = attrs.get("href")
        if not href:
            return None
        filename = _filename(href)
        if foreign_wheel(filename):
            return None
        algo, _, digest = href.partition("#")[2].partition("=")
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        return make_file(
            project,
            index,
            _join(base_url, href),
            filename=filename,
            sha256=digest if algo == "sha256" else None,
            requires_python=attrs.get("data-requires-python") or None,
            yanked=attrs.get("data-yanked"),
            upload_time=_time(attrs.get("data-upload-time")),
            core_metadata=_metadata_hash(meta),
        )

    grouper = _Grouper()
    for match in _ANCHOR.finditer(text):
        quick = _HREF.search(match.group(1))
        href = quick.group(1) if quick is not None else _attrs(match.group(1)).get("href")
        if href:
            href = html.unescape(href) if "&" in href else href
            grouper.add(_filename(href), build, match.group(1))
    return grouper.releases()


def parse_page(body: bytes, content_type: str, page_url: str, index: str, project: str) -> Releases:
    """Files of a project page in whichever format the index answered, by version."""
    name = canonicalize_name(project)
    media = content_type.split(";", 1)[0].strip().lower()
    if media == JSON_TYPE or media.endswith("+json") or media == "application/json":
        return parse_json(body, page_url, index, name)
    if media in HTML_TYPES or media.endswith("+html") or not media:
        return parse_html(body, page_url, index, name)
    if body.lstrip()[:1] == b"{":
        return parse_json(body, page_url, index, name)
    raise IndexError_(
        f"unexpected content type {content_type!r} for a project page",
        where=page_url,
        hint="is this URL a PEP 503/691 simple index?",
    )
