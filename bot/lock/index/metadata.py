"""Core metadata from the cheapest source: parse METADATA/PKG-INFO, read it out of a wheel
with HTTP range requests, or out of a downloaded sdist (with PEP 643 trust rules)."""

from __future__ import annotations

import io
import logging
import lzma
import tomllib
import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import IO

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.core.errors import MalformedMetadataError, MetadataError
from bot.lock.index.limits import ENV, Limits
from bot.lock.index.models import CoreMetadata, DistFile

log = logging.getLogger(__name__)

#: bytes of a wheel's tail fetched first: the end-of-central-directory record, the central
#: directory and, as wheels put .dist-info last, usually METADATA itself
TAIL_BYTES = 64 * 1024
#: PEP 518's default when an sdist declares no build requirements
DEFAULT_BUILD_REQUIRES = (Requirement("setuptools>=40.8.0"),)
#: the default bound on a METADATA / PKG-INFO / pyproject.toml member
MAX_MEMBER = Limits().metadata
#: what reading an untrusted archive (anyone can upload one, and its sha256 only says it is
#: the file the index lists) raises besides a plain bad or truncated file: an unknown zip
#: compression method (NotImplementedError), an encrypted member (RuntimeError), a corrupt
#: deflate (zlib.error), xz (LZMAError) or bz2 (OSError) stream; tarfile's own TarError
#: is added where tarfile is imported
ARCHIVE_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
)
#: fields that, marked Dynamic in PKG-INFO, make it unusable for resolving (PEP 643)
RESOLUTION_FIELDS = frozenset({"requires-dist", "requires-python", "provides-extra"})

#: fetch(first, last) -> (bytes of that inclusive range, the file's size, True); first None:
#: the last ``last`` bytes.  (the whole file, its size, False) when the server ignores Range
#: (then ``last`` is ignored and the result starts at 0)
RangeFetcher = Callable[[int | None, int], tuple[bytes, int, bool]]


def headers(data: bytes) -> dict[str, list[str]]:
    """The header fields of METADATA / PKG-INFO (RFC 822 style), by lower-cased name.

    Only the header block is read: it ends at the first empty line, and the long
    description after it (most of a METADATA file) is never decoded.  Continuation lines
    (starting with a space or tab) are joined to their field with a newline.
    """
    end = len(data)
    for blank in (b"\n\n", b"\r\n\r\n"):
        at = data.find(blank)
        if at != -1:
            end = min(end, at)
    text = data[:end].decode("utf-8", errors="surrogateescape")
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            if last is not None:
                last[-1] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        last = fields.setdefault(name.strip().lower(), [])
        last.append(value.strip())
    return fields


def _text(value: str, field: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} is not valid UTF-8") from None
    return value


def parse_core_metadata(data: bytes, file: DistFile) -> CoreMetadata:
    """Parse METADATA / PKG-INFO bytes of ``file`` into :class:`CoreMetadata`."""
    fields = headers(data)

    def one(field: str) -> str | None:
        values = fields.get(field)
        return _text(values[0], field) if values else None

    try:
        raw_name = one("name")
        raw_version = one("version")
        name = canonicalize_name(raw_name) if raw_name else file.name
        version = Version(raw_version) if raw_version else file.version
        requires = tuple(
            Requirement(_text(r, "Requires-Dist")) for r in fields.get("requires-dist", ())
        )
        raw_python = one("requires-python")
        requires_python = SpecifierSet(raw_python) if raw_python else None
        extras = tuple(
            canonicalize_name(_text(e, "Provides-Extra")) for e in fields.get("provides-extra", ())
        )
        urls: dict[str, str] = {}
        for entry in fields.get("project-url", ()):
            label, _, url = _text(entry, "Project-URL").partition(",")
            urls.setdefault(label.strip(), url.strip())
        summary = one("summary") or ""
    except (InvalidRequirement, InvalidSpecifier, ValueError) as exc:
        raise MalformedMetadataError(
            f"unusable core metadata in {file.filename}: {exc}",
            where=file.url,
            hint="the distribution's METADATA/PKG-INFO is malformed; exclude this version",
        ) from exc
    if name != file.name:
        raise MalformedMetadataError(
            f"{file.filename} says its name is {name!r}, not {file.name!r}", where=file.url
        )
    if version != file.version:
        raise MalformedMetadataError(
            f"{file.filename} says its version is {version}, not {file.version}",
            where=file.url,
            hint="the distribution's METADATA/PKG-INFO disagrees with its file name; exclude "
            "this version",
        )
    return CoreMetadata(
        name=name,
        version=version,
        requires_dist=requires,
        requires_python=requires_python,
        provides_extra=extras,
        project_urls=tuple(urls.items()),
        summary=summary,
    )


class RangeReader(io.RawIOBase):
    """A read-only, seekable view of a remote file that fetches only the ranges it reads."""

    def __init__(
        self, fetch: RangeFetcher, *, tail: int = TAIL_BYTES, max_span: int | None = None
    ) -> None:
        super().__init__()
        self._fetch = fetch
        #: the most bytes one read may ask for (a zip directory claiming more is refused)
        self.max_span = max_span
        self._pos = 0
        self.requests = 0
        data, total, partial = fetch(None, tail)
        self.requests += 1
        self.size = total
        self.whole = not partial
        self._chunks: list[tuple[int, bytes]] = [(total - len(data), data)]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def _find(self, first: int, last: int) -> bytes | None:
        for start, data in self._chunks:
            if start <= first and last < start + len(data):
                return data[first - start : last + 1 - start]
        return None

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        first, last = self._pos, min(self._pos + size, self.size) - 1
        if last < first:
            return b""
        got = self._find(first, last)
        if got is None and self.max_span is not None and last - first + 1 > self.max_span:
            raise OSError(f"a read of {last - first + 1} bytes, over the limit of {self.max_span}")
        if got is None:
            # read ahead a little: zipfile reads a local header, then the member's data
            want_last = min(max(last, first + 16 * 1024 - 1), self.size - 1)
            data, total, partial = self._fetch(first, want_last)
            self.requests += 1
            if not partial:  # the whole file after all (a 200): it replaces what was read
                if len(data) != self.size:
                    raise OSError(f"the file is {len(data)} bytes, not the {self.size} stated")
                self._chunks, self.whole = [(0, data)], True
            elif total != self.size:
                raise OSError(
                    f"the file's size changed between range requests ({self.size}, then {total})"
                )
            else:
                self._chunks.append((first, data))
            got = self._find(first, last)
            if got is None:
                raise OSError(f"short range read at {first}-{last}")
        self._pos += len(got)
        return got

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def metadata_member(names: list[str], file: DistFile) -> str:
    """The top-level ``*.dist-info/METADATA`` member of a wheel."""
    candidates = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
    if len(candidates) > 1:
        wanted = [n for n in candidates if canonicalize_name(n.split("-", 1)[0]) == file.name]
        candidates = wanted or candidates
    if not candidates:
        raise MetadataError(f"{file.filename} has no .dist-info/METADATA", where=file.url)
    return candidates[0]


def _too_big(what: str, file: DistFile, limit: int) -> MetadataError:
    return MetadataError(
        f"{what} in {file.filename} is larger than the limit of {limit} bytes",
        where=file.url,
        hint=f"exclude this version; if the file is trusted, raise ${ENV['metadata']}",
    )


def _bounded(handle: io.BufferedIOBase | IO[bytes], what: str, file: DistFile, limit: int) -> bytes:
    """All of ``handle``, refusing more than ``limit`` bytes (its stated size may lie)."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise _too_big(what, file, limit)
    return data


def wheel_metadata(
    source: io.RawIOBase | io.BytesIO, file: DistFile, *, limit: int = MAX_MEMBER
) -> bytes:
    """METADATA bytes read out of a wheel (a :class:`RangeReader` or the whole file), at most
    ``limit`` of them."""
    try:
        with zipfile.ZipFile(source) as zf:
            member = zf.getinfo(metadata_member(zf.namelist(), file))
            if member.file_size > limit:
                raise _too_big("METADATA", file, limit)
            with zf.open(member) as handle:
                return _bounded(handle, "METADATA", file, limit)
    except ARCHIVE_ERRORS as exc:
        raise MetadataError(
            f"cannot read METADATA from {file.filename}: {exc or type(exc).__name__}",
            where=file.url,
            hint="the wheel is damaged or uses a zip feature wheels may not; exclude this version",
        ) from exc


#: the sdist members the bot reads, below its root directory
SDIST_MEMBERS = ("PKG-INFO", "pyproject.toml")


def _sdist_members(data: bytes, file: DistFile, limit: int) -> dict[str, bytes]:
    """The :data:`SDIST_MEMBERS` an sdist has (each at most ``limit`` bytes).

    A tar is read only until both are found, and never past ``len(data)`` times 200 bytes
    unpacked (far beyond what compression gives real sources; a tar bomb stops there).
    """
    out: dict[str, bytes] = {}
    if file.filename.endswith(".zip"):
        zf = zipfile.ZipFile(io.BytesIO(data))
        for info in zf.infolist():
            parts = PurePosixPath(info.filename).parts
            if len(parts) == 2 and parts[1] in SDIST_MEMBERS and parts[1] not in out:
                if info.file_size > limit:
                    raise _too_big(parts[1], file, limit)
                with zf.open(info) as handle:
                    out[parts[1]] = _bounded(handle, parts[1], file, limit)
        return out
    import tarfile  # only for sdists

    budget = max(len(data) * 200, 64 * 1024 * 1024)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        while len(out) < len(SDIST_MEMBERS):
            member = tf.next()
            if member is None:
                break
            if member.offset > budget:
                raise _too_big("the unpacked sdist", file, budget)
            parts = PurePosixPath(member.name).parts
            if len(parts) == 2 and parts[1] in SDIST_MEMBERS and member.isfile():
                if parts[1] in out:
                    continue
                if member.size > limit:
                    raise _too_big(parts[1], file, limit)
                stream = tf.extractfile(member)
                out[parts[1]] = _bounded(stream, parts[1], file, limit) if stream else b""
    return out


def sdist_files(
    data: bytes, file: DistFile, *, limit: int = MAX_MEMBER
) -> tuple[bytes | None, bytes | None]:
    """(PKG-INFO, pyproject.toml) of an sdist, each None when absent (at most ``limit``
    bytes each)."""
    import tarfile  # only for sdists

    errors: tuple[type[Exception], ...] = (tarfile.TarError, *ARCHIVE_ERRORS)
    try:
        members = _sdist_members(data, file, limit)
    except errors as exc:
        raise MetadataError(
            f"cannot open sdist {file.filename}: {exc or type(exc).__name__}",
            where=file.url,
            hint="the sdist is damaged or not a zip/tar archive; exclude this version",
        ) from exc
    return members.get("PKG-INFO"), members.get("pyproject.toml")


def pkg_info_trusted(pkg_info: bytes) -> bool:
    """PEP 643: PKG-INFO of Metadata-Version >= 2.2 is reliable for the fields it does not
    mark Dynamic; we need Requires-Dist, Requires-Python and Provides-Extra."""
    fields = headers(pkg_info)
    try:
        version = Version((fields.get("metadata-version") or ["1.0"])[0])
    except ValueError:
        return False
    if version < Version("2.2"):
        return False
    dynamic = {d.strip().lower() for d in fields.get("dynamic", [])}
    return not (dynamic & RESOLUTION_FIELDS)


def backend_of(pyproject: bytes | None) -> str:
    """The ``[build-system] build-backend`` ("" when none is named, or unreadable)."""
    if pyproject is None:
        return ""
    try:
        data = tomllib.loads(pyproject.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return ""
    system = data.get("build-system")
    backend = system.get("build-backend") if isinstance(system, dict) else None
    return backend if isinstance(backend, str) else ""


def in_tree_backend_of(pyproject: bytes | None) -> bool:
    """Whether the sdist builds itself: its ``[build-system] backend-path`` points inside it.

    Such a backend (hatchling, flit-core, setuptools, poetry-core build themselves this way)
    imports the package's own dependencies while building; hatchling's even asks for them
    through ``get_requires_for_build_wheel`` instead of listing them in ``requires``.
    """
    if pyproject is None:
        return False
    try:
        data = tomllib.loads(pyproject.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    system = data.get("build-system")
    return isinstance(system, dict) and bool(system.get("backend-path"))


def build_requires_of(pyproject: bytes | None, file: DistFile) -> tuple[Requirement, ...]:
    """PEP 518 ``[build-system] requires``; setuptools>=40.8.0 when it is not declared."""
    if pyproject is None:
        return DEFAULT_BUILD_REQUIRES
    try:
        data = tomllib.loads(pyproject.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MetadataError(
            f"invalid pyproject.toml in {file.filename}: {exc}", where=file.url
        ) from exc
    system = data.get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return DEFAULT_BUILD_REQUIRES
    requires = system["requires"]
    if not isinstance(requires, list):
        raise MetadataError(
            f"[build-system] requires in {file.filename} is not a list", where=file.url
        )
    try:
        return tuple(Requirement(str(r)) for r in requires)
    except InvalidRequirement as exc:
        raise MetadataError(
            f"invalid build requirement in {file.filename}: {exc}", where=file.url
        ) from exc
