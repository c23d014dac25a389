"""Parse simple-API project pages: PEP 691 JSON and PEP 503 HTML, into :class:`DistFile`."""

from __future__ import annotations

import functools
import html
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from bot.errors import IndexError_
from bot.index.models import DistFile

log = logging.getLogger(__name__)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
#: what we ask for: JSON first, HTML as the fallback every index speaks
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"

_ANCHOR = re.compile(r"<a\s+([^>]*)>([^<]*)</a\s*>", re.IGNORECASE | re.DOTALL)
_BASE = re.compile(r"<base\s+[^>]*href\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    if not sha256 or not _SHA256.match(sha256.lower()):
        log.debug("refusing %s: no sha256 on %s", filename, index)
        return None
    try:
        if filename.endswith(".whl"):
            name, version, _, tags = parse_wheel_filename(filename)
            kind: Literal["wheel", "sdist"] = "wheel"
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            tags = frozenset()
            kind = "sdist"
        else:
            log.debug("skipping %s: not a wheel or sdist", filename)
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        log.debug("skipping %s: unparsable filename", filename)
        return None
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
        tags=frozenset(tags),
    )


def parse_json(body: bytes, page_url: str, index: str, project: NormalizedName) -> list[DistFile]:
    """Files of a PEP 691 JSON project page."""
    try:
        data: Any = json.loads(body)
        entries = data["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexError_("the project page is not valid PEP 691 JSON", where=page_url) from exc
    out: list[DistFile] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        url, _ = urldefrag(urljoin(page_url, entry["url"]))
        hashes = entry.get("hashes") or {}
        yanked = entry.get("yanked", False)
        size = entry.get("size")
        meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
        file = make_file(
            project,
            index,
            url,
            filename=str(entry.get("filename") or unquote(urlsplit(url).path.rsplit("/", 1)[-1])),
            sha256=hashes.get("sha256") if isinstance(hashes, dict) else None,
            requires_python=entry.get("requires-python") or None,
            yanked=None
            if yanked is False or yanked is None
            else ("" if yanked is True else str(yanked)),
            size=size if isinstance(size, int) else None,
            upload_time=_time(entry.get("upload-time")),
            core_metadata=_metadata_hash(meta),
        )
        if file is not None:
            out.append(file)
    return out


def _attrs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if value is None:
            value = match.group(4)
        out[match.group(1).lower()] = html.unescape(value)
    # boolean attributes such as a bare `data-yanked`
    for word in re.sub(_ATTR, " ", text).split():
        out.setdefault(word.lower().rstrip("/"), "")
    return out


def parse_html(body: bytes, page_url: str, index: str, project: NormalizedName) -> list[DistFile]:
    """Files of a PEP 503 HTML project page (with PEP 592/658/714 data attributes)."""
    text = body.decode("utf-8", errors="replace")
    base = _BASE.search(text)
    base_url = urljoin(page_url, html.unescape(base.group(1))) if base else page_url
    out: list[DistFile] = []
    for match in _ANCHOR.finditer(text):
        attrs = _attrs(match.group(1))
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base_url, href))
        algo, _, digest = fragment.partition("=")
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        file = make_file(
            project,
            index,
            url,
            filename=filename,
            sha256=digest if algo == "sha256" else None,
            requires_python=attrs.get("data-requires-python") or None,
            yanked=attrs.get("data-yanked"),
            upload_time=_time(attrs.get("data-upload-time")),
            core_metadata=_metadata_hash(meta),
        )
        if file is not None:
            out.append(file)
    return out


def parse_page(
    body: bytes, content_type: str, page_url: str, index: str, project: str
) -> list[DistFile]:
    """Files of a project page in whichever format the index answered."""
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


def merge(pages: Iterable[list[DistFile]]) -> list[DistFile]:
    """Files of several indexes; the first index listing a filename wins."""
    seen: set[str] = set()
    out: list[DistFile] = []
    for files in pages:
        for file in files:
            if file.filename in seen:
                log.debug(
                    "%s also on %s; keeping the first index's file", file.filename, file.index
                )
                continue
            seen.add(file.filename)
            out.append(file)
    return out
