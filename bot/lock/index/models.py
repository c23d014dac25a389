"""What the index client hands to the resolver: files on an index and their core metadata."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from bot.core.errors import IndexError_

log = logging.getLogger(__name__)


class NotFound(IndexError_):
    """The index answered 404 (or 410) for a URL."""


@dataclass(frozen=True)
class DistFile:
    """One distribution file (wheel or sdist) listed on a simple-API project page."""

    name: NormalizedName  #: project name, normalized
    version: Version
    kind: Literal["wheel", "sdist"]
    filename: str
    url: str  #: absolute download URL, without any #fragment
    sha256: str  #: lowercase hex; files without a sha256 never become a DistFile
    index: str  #: the simple-API base URL this file came from, e.g. https://pypi.org/simple/
    size: int | None = None
    requires_python: SpecifierSet | None = None
    yanked: str | None = None  #: None = not yanked; otherwise the reason ("" if none given)
    upload_time: datetime | None = None  #: timezone-aware UTC
    core_metadata: str | None = None  #: PEP 658/714: sha256 of the .metadata file, "" if unhashed
    tags: frozenset[Tag] = field(default_factory=frozenset)  #: wheel tags; empty for sdists

    def uploaded_by(self, cutoff: datetime | None) -> bool:
        """Whether the file is inside the index snapshot ``cutoff`` (exclude-newer): one the
        index states no upload time for (a static PEP 503 index) counts as inside, as the
        lock's resolution takes it (the lock says the snapshot could not apply to it)."""
        return cutoff is None or self.upload_time is None or self.upload_time <= cutoff


@dataclass(frozen=True)
class UnverifiedMetadata:
    """Core metadata no hash bound to its file (read with range requests, or a ``.metadata``
    file the index gave no hash for): the lock records it and the Nix build checks it."""

    file: str  #: the file it was read from
    sha256: str  #: of the METADATA bytes as read
    requires_dist: tuple[str, ...]  #: its Requires-Dist values as written


@dataclass(frozen=True)
class CoreMetadata:
    """The parts of a distribution's core metadata (METADATA / PKG-INFO) the bot uses."""

    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...] = ()
    requires_python: SpecifierSet | None = None
    provides_extra: tuple[NormalizedName, ...] = ()
    #: Project-URL label -> URL, e.g. {"Changelog": "https://..."}
    project_urls: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    #: set when no hash bound these bytes to the file (None: verified, or a trusted source)
    unverified: UnverifiedMetadata | None = None


#: turns one raw entry of a project page into a file (None: a file the bot must not use)
Builder = Callable[[Any], "DistFile | None"]


def _identity(file: DistFile) -> DistFile:
    return file


class Releases:
    """The files of one project, grouped by version; a version's files are built on first use.

    A big project page lists thousands of files, and a resolution looks at a few versions of
    it: grouping the raw entries by the version in their filename is cheap, checking and
    building every file is not.  Raw entries are ``(builder, raw)`` pairs; a builder returns
    None for a file the bot must not use (no sha256, foreign wheel, another project's name).
    When several indexes list the same filename, the first one's file wins.
    """

    def __init__(self, groups: Mapping[Version, Sequence[tuple[Builder, Any]]]) -> None:
        self._groups = groups
        self._files: dict[Version, list[DistFile]] = {}
        self._versions: list[Version] | None = None

    @classmethod
    def of(cls, files: Iterable[DistFile]) -> Releases:
        """Releases of files that are already built."""
        groups: dict[Version, list[tuple[Builder, Any]]] = {}
        for f in files:
            groups.setdefault(f.version, []).append((_identity, f))
        return cls(groups)

    @classmethod
    def from_texts(cls, groups: Mapping[str, list[tuple[Builder, Any]]]) -> Releases:
        """Releases of raw entries grouped by the version text of their filenames."""
        by_version: dict[Version, list[tuple[Builder, Any]]] = {}
        for text, entries in groups.items():
            try:
                version = cached_version(text)
            except ValueError:  # InvalidVersion, or digits beyond Python's int conversion limit
                # not PEP 440: legacy versions are common on PyPI and pip skips them quietly too
                log.debug("skipping %d file(s) with the invalid version %r", len(entries), text)
                continue
            known = by_version.get(version)
            if known is None:
                by_version[version] = entries
            else:  # "1.0" and "1.0.0" are one version
                known.extend(entries)
        return cls(by_version)

    @classmethod
    def merge(cls, pages: Sequence[Releases]) -> Releases:
        """One project's releases over several indexes, in the indexes' order."""
        if len(pages) == 1:
            return pages[0]
        groups: dict[Version, list[tuple[Builder, Any]]] = {}
        for page in pages:
            for version, entries in page._groups.items():
                groups.setdefault(version, []).extend(entries)
        return cls(groups)

    def versions(self) -> list[Version]:
        """Every version some entry names, newest first (it may turn out to have no file)."""
        if self._versions is None:
            self._versions = sorted(self._groups, reverse=True)
        return self._versions

    def files(self, version: Version) -> list[DistFile]:
        """The usable files of one version (yanked included), in index order."""
        known = self._files.get(version)
        if known is not None:
            return known
        out: list[DistFile] = []
        seen: set[str] = set()
        for build, raw in self._groups.get(version, ()):
            file = build(raw)
            if file is None:
                continue
            if file.filename in seen:
                log.debug("%s also on %s; keeping the first index's", file.filename, file.index)
                continue
            seen.add(file.filename)
            out.append(file)
        self._files[version] = out  # a race only builds the same list twice
        return out

    def all_files(self) -> list[DistFile]:
        """Every usable file of every version, newest version first."""
        return [f for v in self.versions() for f in self.files(v)]


@functools.lru_cache(maxsize=8192)
def cached_version(text: str) -> Version:
    """``Version(text)``, memoised (a project page repeats each version many times)."""
    return Version(text)


class PackageIndex(Protocol):
    """The interface the resolver consumes; tests may hand it a frozen index."""

    def releases(self, name: NormalizedName) -> Releases:
        """Every usable file of a project across the indexes routed to it (yanked included),
        by version."""
        ...

    def metadata(self, file: DistFile) -> CoreMetadata:
        """Core metadata of one file (cached by ``file.sha256``)."""
        ...

    def build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        """PEP 518 ``[build-system] requires`` of an sdist (``setuptools>=40.8.0`` if absent)."""
        ...

    def in_tree_backend(self, file: DistFile) -> bool:
        """Whether an sdist's PEP 517 backend is the package itself (``backend-path``)."""
        ...

    def dynamic_build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        """What an sdist's backend asks for beyond ``requires`` (get_requires_for_build_wheel)."""
        ...

    def prefetch(self, names: list[NormalizedName]) -> None:
        """Start fetching these project pages in the background (a hint; may do nothing)."""
        ...


@dataclass(frozen=True)
class IndexRoute:
    """A simple-API index; with ``packages`` set, those projects come ONLY from it."""

    url: str
    packages: frozenset[NormalizedName] | None = None

    def __post_init__(self) -> None:
        if not self.url.endswith("/"):
            object.__setattr__(self, "url", self.url + "/")
        if self.packages is not None:
            names = frozenset(canonicalize_name(p) for p in self.packages)
            object.__setattr__(self, "packages", names)
