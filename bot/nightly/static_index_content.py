"""What a static index holds (its files by project, each set's locks) and its error: the
types the index writer (:mod:`bot.nightly.static_index`) and its mirror share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.core.errors import BotError


class StaticIndexError(BotError):
    """The static index cannot be written (bad locks, foreign files, a failed download)."""


@dataclass(frozen=True)
class IndexFile:
    """One locked file of a project."""

    project: str  #: normalized name
    filename: str
    url: str  #: where the lock says it is
    sha256: str
    requires_python: str | None = None
    metadata_sha256: str | None = None  #: set when mirrored (PEP 658 ``.metadata`` beside it)

    @property
    def wheel(self) -> bool:
        """Whether this is a wheel (only wheels get a ``.metadata`` file)."""
        return self.filename.endswith(".whl")


@dataclass
class IndexContent:
    """Everything the index will hold: files by project, and each set's locks."""

    projects: dict[str, dict[str, IndexFile]] = field(default_factory=dict)
    locks: dict[str, dict[str, Path]] = field(default_factory=dict)  #: set -> python -> lock
    pins: dict[str, dict[str, dict[str, tuple[str, str | None]]]] = field(default_factory=dict)

    @property
    def file_count(self) -> int:
        """How many distinct files the locks name."""
        return sum(len(f) for f in self.projects.values())


__all__ = ["IndexContent", "IndexFile", "StaticIndexError"]
