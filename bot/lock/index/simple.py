"""Parse simple-API project pages: PEP 691 JSON and PEP 503 HTML, into :class:`DistFile`."""

from __future__ import annotations

import functools
import html
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote, urljoin

from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
)
from packaging.version import InvalidVersion, Version

from bot import SUPPORTED_PYTHONS
from bot.core.errors import IndexError_
from bot.lock.index.fields import (
    MAX_FILENAME,
    MAX_VERSION,
    BadMetadata,
    Malformed,
    download_url,
    json_sha256,
    metadata_hash,
    plain_filename,
    requires_python,
    sha256,
    shown,
    size,
    upload_time,
    yanked,
)
from bot.lock.index.models import Builder, DistFile, Releases, cached_version

log = logging.getLogger(__name__)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
#: what we ask for: JSON first, HTML as the fallback every index speaks
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"

#: an ``<a>`` or ``<base>`` start tag: its attributes up to the first ``>`` outside quotes
#: (a quoted value may hold ``>``), then the ``>`` (empty: the tag never ends).  Every
#: quantifier is possessive and a match always consumes what it scanned, so one pass over a
#: page is linear in its size whatever the index sends (no backtracking, no rescan)
_TAG = re.compile(r"""<(a|base)\s((?:[^>"']++|"[^"]*+"|'[^']*+')*+)(>?)""", re.IGNORECASE)
#: one attribute of a start tag: a name, then ``=`` and a value or nothing (a bare name, as
#: the boolean ``data-yanked``); it matches wherever a name starts and consumes it, so a
#: long run of name characters is read once
_ATTR = re.compile(r"""([\w:-]++)(?:\s*+=\s*+(?:"([^"]*+)"|'([^']*+)'|([^\s"'>]++)))?""")
_WHEEL_NAME = re.compile(r"^[\w\d._]*$", re.UNICODE)
#: sdist formats we accept (PEP 625 .tar.gz, and legacy .zip)
SDIST_SUFFIXES = (".tar.gz", ".zip")


@functools.lru_cache(maxsize=4096)
def _tags(text: str) -> frozenset[Tag]:
    return parse_tag(text)


def parse_filename(
    filename: str,
) -> tuple[NormalizedName, Version, Literal["wheel", "sdist"], frozenset[Tag]] | None:
    """(name, version, kind, tags) of a wheel or sdist filename; None for anything else.

    Equivalent to :func:`packaging.utils.parse_wheel_filename` /
    :func:`~packaging.utils.parse_sdist_filename`, with versions and tag sets memoised
    (a project page repeats them thousands of times).  A wheel whose tags cannot be parsed
    raises :class:`Malformed`.
    """
    try:
        if filename.endswith(".whl"):
            parts = filename[:-4].split("-")
            if len(parts) not in (5, 6) or (len(parts) == 6 and not _DIGIT.match(parts[2])):
                return None
            if not _WHEEL_NAME.match(parts[0]) or len(parts[1]) > MAX_VERSION:
                return None
            version = cached_version(parts[1])
            tag_text = "-".join(parts[-3:])
            try:
                tags = _tags(tag_text)
            except ValueError as exc:  # packaging.tags.InvalidTag
                raise Malformed("tags", str(exc)) from None
            return canonicalize_name(parts[0]), version, "wheel", tags
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


#: a wheel's build tag starts with an ASCII digit; a cp3 tag's minor version is ASCII digits
_DIGIT = re.compile(r"[0-9]")
_MINOR = re.compile(r"[0-9]{1,6}")
#: the oldest Python 3 minor version a lock can be for
_OLDEST_MINOR = min(int(v.split(".")[1]) for v in SUPPORTED_PYTHONS)


@functools.lru_cache(maxsize=1024)
def _old_python(tag: str) -> bool:
    if tag.startswith(("pp", "cp2", "py2", "graalpy", "ip")):
        return True
    digits = tag[3:]
    # ASCII digits only (str.isdigit() takes "²", which int() refuses), and few of them
    return tag.startswith("cp3") and bool(_MINOR.fullmatch(digits)) and int(digits) < _OLDEST_MINOR


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


def make_file(
    project: NormalizedName,
    index: str,
    url: str,
    *,
    filename: str,
    sha256: str | None,
    requires_python: SpecifierSet | None = None,
    yanked: str | None = None,
    size: int | None = None,
    upload_time: datetime | None = None,
    core_metadata: str | None = None,
) -> DistFile | None:
    """A :class:`DistFile`, or None (logged at debug) for files the bot must not use
    (no sha256, not a wheel or sdist, another project's); a malformed field raises
    :class:`Malformed`."""
    if sha256 is None:
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
        sha256=sha256,
        index=index,
        size=size,
        requires_python=requires_python,
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


def _printable(name: str) -> str:
    return name if name.isprintable() and len(name) <= MAX_FILENAME else shown(name)


def _skipping(project: str, index: str, what: str, exc: Malformed) -> None:
    log.warning(
        "%s: skipping %s on %s: invalid %r: %s",
        project,
        _printable(what),
        index,
        exc.field,
        exc.problem,
    )


def _checked(project: NormalizedName, index: str, build: Builder) -> Builder:
    """``build``, with a malformed field turned into one warning and a skipped file."""

    def checked(raw: Any) -> DistFile | None:
        try:
            return build(raw)
        except Malformed as exc:
            _skipping(project, index, _entry_name(raw), exc)
            return None

    return checked


def _entry_name(raw: Any) -> str:
    """The file name of a raw entry (a JSON object, a decoded entry of one, or an HTML
    anchor's attributes), for a warning."""
    name = raw.get("filename")
    if isinstance(name, str) and name:
        return name
    return _filename(str(raw.get("url", raw.get("href"))))


class _Grouper:
    """Collects a page's raw entries by the version text of their filenames."""

    def __init__(self, project: NormalizedName, index: str) -> None:
        self.groups: dict[str, list[tuple[Builder, Any]]] = {}
        self.project = project
        self.index = index

    def add(self, filename: str, build: Builder, raw: Any) -> None:
        text = version_text(filename)
        if text is None:
            log.debug("skipping %s: not a wheel or sdist, or an unparsable name", filename)
            return
        if len(text) > MAX_VERSION:
            problem = f"{shown(text, 40)} is longer than {MAX_VERSION} characters"
            _skipping(self.project, self.index, filename, Malformed("version", problem))
            return
        entries = self.groups.get(text)
        if entries is None:
            self.groups[text] = [(build, raw)]
        else:
            entries.append((build, raw))

    def releases(self) -> Releases:
        return Releases.from_texts(self.groups)


def _metadata(value: object, project: str, index: str, filename: str) -> str | None:
    try:
        return metadata_hash(value)
    except BadMetadata as exc:
        log.warning(
            "%s: %s on %s: invalid %r: %s; not trusting it",
            project,
            _printable(filename),
            index,
            exc.field,
            exc.problem,
        )
        return exc.use


#: the PEP 691 file fields the bot reads, by JSON name (the rest of an entry is never decoded)
_FIELDS = {
    "filename": "filename",
    "url": "url",
    "hashes": "hashes",
    "requires-python": "requires_python",
    "yanked": "yanked",
    "size": "size",
    "upload-time": "upload_time",
    "core-metadata": "core_metadata",
    "dist-info-metadata": "dist_info_metadata",
}


@functools.cache
def _page_decoder() -> tuple[Any, type]:
    """A msgspec decoder of a PEP 691 page into compact file entries (made on first use).

    Each entry keeps only :data:`_FIELDS`, as whatever JSON value the index sent (the
    builders check them, as for a plain JSON object), in a slotted object without cycle
    tracking: a 225-package set keeps ~100k of them, and dicts of every field took twice the
    memory.  A page of another shape fails to decode this way and is read as plain JSON.
    """
    import msgspec  # only when a page is parsed (a warm lock parses none)

    unset: Any = msgspec.UNSET

    def get(self: Any, key: str, default: Any = None) -> Any:
        """As ``dict.get`` on the JSON object (a field it did not have: ``default``)."""
        value = getattr(self, _FIELDS[key], unset) if key in _FIELDS else unset
        return default if value is unset else value

    def getitem(self: Any, key: str) -> Any:
        value = get(self, key, unset)
        if value is unset:
            raise KeyError(key)
        return value

    def sha_get(self: Any, key: str, default: Any = None) -> Any:
        """As ``dict.get`` on a hashes object, of which only ``sha256`` was kept."""
        value = self.sha256 if key == "sha256" else unset
        return default if value is unset else value

    # a "hashes" (or core-metadata) object keeps only its sha256: a dict per file, three on
    # PyPI's pages (hashes, core-metadata, dist-info-metadata), were most of an entry's
    # memory.  Registered as a Mapping, so the field checks read it as they read a dict; a
    # value of another JSON type fails this decoder and the page is read as plain JSON.
    hashes = msgspec.defstruct(
        "Hashes", [("sha256", Any, unset)], namespace={"get": sha_get}, gc=False
    )
    Mapping.register(hashes)
    types: dict[str, Any] = {
        "hashes": hashes | None,
        "core_metadata": bool | str | hashes | None,
        "dist_info_metadata": bool | str | hashes | None,
    }
    entry = msgspec.defstruct(
        "Entry",
        [(attr, types.get(attr, Any) | msgspec.UnsetType, unset) for attr in _FIELDS.values()],
        rename={attr: key for key, attr in _FIELDS.items()},
        namespace={"get": get, "__getitem__": getitem},
        gc=False,
    )
    page = msgspec.defstruct("Page", [("files", list[entry])], gc=False)  # type: ignore[valid-type]
    return msgspec.json.Decoder(page), entry


def _decode_page(body: bytes) -> tuple[Any, type | None]:
    """(the page's list of file entries, or the whole page as plain JSON; the entry type)."""
    import msgspec

    decoder, entry_type = _page_decoder()
    try:
        return decoder.decode(body).files, entry_type
    except msgspec.ValidationError:  # valid JSON of another shape: read it as it is
        pass
    except (ValueError, RecursionError):
        pass  # not JSON at all: the plain decode below says so
    return msgspec.json.decode(body), None


def parse_json(body: bytes, page_url: str, index: str, project: NormalizedName) -> Releases:
    """Files of a PEP 691 JSON project page, by version (each version's built on first use).

    A malformed file entry is skipped with a warning naming the file and the field; a page
    that is not a PEP 691 object with a list of files is a :class:`PackageIndexError`.
    """
    try:
        # msgspec: 2x faster than json.loads on real pages (55 MB of them in a 225-package
        # set), and its errors are ValueError and RecursionError as json's are
        data, entry_type = _decode_page(body)
    except RecursionError:
        raise IndexError_(
            "the project page is nested deeper than a PEP 691 page can be",
            where=page_url,
            hint="the index answered junk; report it to the index's operators",
        ) from None
    except ValueError as exc:
        raise IndexError_(
            f"the project page is not valid PEP 691 JSON: {exc}", where=page_url
        ) from None
    entries: Any
    if entry_type is not None:
        entries = data
    else:
        entries = data.get("files") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise IndexError_(
            "the project page is not valid PEP 691 JSON: no list of 'files'", where=page_url
        )

    def build(entry: Any) -> DistFile | None:
        filename = entry.get("filename")
        filename = plain_filename(
            filename if filename not in (None, "") else _filename(entry["url"])
        )
        if foreign_wheel(filename):
            return None
        digest = json_sha256(entry)
        if digest is None:  # before the other fields: a file without a hash is never used
            log.debug("refusing %s: no sha256 on %s", filename, index)
            return None
        return make_file(
            project,
            index,
            download_url(page_url, entry["url"]),
            filename=filename,
            sha256=digest,
            requires_python=requires_python(entry.get("requires-python")),
            yanked=yanked(entry.get("yanked")),
            size=size(entry.get("size")),
            upload_time=upload_time(entry.get("upload-time")),
            core_metadata=_metadata(
                entry.get("core-metadata", entry.get("dist-info-metadata")),
                project,
                index,
                filename,
            ),
        )

    grouper = _Grouper(project, index)
    checked = _checked(project, index, build)
    odd = 0
    groups = grouper.groups
    rows: Iterable[tuple[Any, Any, Any]]
    if entry_type is not None:  # decoded entries: a field the page did not have is UNSET
        rows = zip([e.url for e in entries], [e.filename for e in entries], entries, strict=True)
    else:
        rows = (
            (e.get("url"), e.get("filename"), e) if type(e) is dict else (None, None, e)
            for e in entries
        )
    for url, stated, entry in rows:
        if not isinstance(url, str):
            odd += 1
            continue
        filename = stated if isinstance(stated, str) and stated else _filename(url)
        if filename.endswith(".whl"):
            # the common case inline (a big page lists tens of thousands of wheels): what
            # foreign_wheel and version_text do, on one split of the name
            parts = filename[:-4].split("-")
            if len(parts) in (5, 6) and len(parts[1]) <= MAX_VERSION:
                if _foreign_tags(parts[-3], parts[-2], parts[-1]):
                    continue  # never usable: not kept (most of a big page and its memory)
                known = groups.get(parts[1])
                if known is None:
                    groups[parts[1]] = [(checked, entry)]
                else:
                    known.append((checked, entry))
                continue
        if foreign_wheel(filename):
            continue
        grouper.add(filename, checked, entry)
    if odd:
        log.warning(
            "%s: skipping %d entr%s on %s: not an object with a 'url' string",
            project,
            odd,
            "y" if odd == 1 else "ies",
            index,
        )
    return grouper.releases()


def _attrs(text: str) -> dict[str, str]:
    """A start tag's attributes by lower-cased name (the first of a name wins, as in HTML),
    values unescaped; a bare name (the boolean ``data-yanked``) has the value ``""``."""
    out: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        name = match.group(1).lower()
        if name in out:
            continue
        value = match.group(2)
        if value is None:
            value = match.group(3) if match.group(3) is not None else match.group(4) or ""
        out[name] = html.unescape(value) if "&" in value else value
    return out


def parse_html(body: bytes, page_url: str, index: str, project: NormalizedName) -> Releases:
    """Files of a PEP 503 HTML project page (with PEP 592/658/714 data attributes), by
    version (each version's built on first use); malformed links are skipped as in
    :func:`parse_json`."""
    text = body.decode("utf-8", errors="replace")
    base: str | None = None  # the first <base href>, wherever it is
    anchors: list[dict[str, str]] = []
    for match in _TAG.finditer(text):
        if not match.group(3):
            continue  # a tag that never ends: nothing after it is in it
        attrs = _attrs(match.group(2))
        if match.group(1).lower() == "a":
            anchors.append(attrs)
        elif base is None and attrs.get("href"):
            base = attrs["href"]
    base_url = page_url
    if base is not None:
        try:
            base_url = urljoin(page_url, base)
        except ValueError as exc:
            raise IndexError_(
                f"the page's <base href> {shown(base)} is not a URL: {exc}",
                where=page_url,
            ) from None

    def build(attrs: dict[str, str]) -> DistFile | None:
        href = attrs.get("href")
        if not href:
            return None
        filename = plain_filename(_filename(href))
        if foreign_wheel(filename):
            return None
        algo, _, digest = href.partition("#")[2].partition("=")
        if algo != "sha256":  # before the other fields: a file without a hash is never used
            log.debug("refusing %s: no sha256 on %s", filename, index)
            return None
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        return make_file(
            project,
            index,
            download_url(base_url, href),
            filename=filename,
            sha256=sha256(digest),
            requires_python=requires_python(attrs.get("data-requires-python")),
            yanked=attrs.get("data-yanked"),
            upload_time=upload_time(attrs.get("data-upload-time")),
            core_metadata=_metadata(meta, project, index, filename),
        )

    grouper = _Grouper(project, index)
    checked = _checked(project, index, build)
    for attrs in anchors:
        href = attrs.get("href")
        if href:
            filename = _filename(href)
            if not foreign_wheel(filename):
                grouper.add(filename, checked, attrs)
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
