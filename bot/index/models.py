"""What the index client hands to the resolver: files on an index and their core metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from bot.errors import IndexError_


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


class PackageIndex(Protocol):
    """The interface the resolver consumes; tests may hand it a frozen index."""

    def files(self, name: NormalizedName) -> list[DistFile]:
        """Every usable file of a project across the indexes routed to it (yanked included)."""
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
