"""A frozen, in-memory PackageIndex built from plain data, for resolver cases.

Spec: ``{project: {version: {requires: [...], requires-python: str, files: [tag | "sdist"],
yanked: bool, uploaded: ISO time, build-requires: [...], dynamic-build-requires: [...],
extras: [...], malformed: "why its metadata is unusable"}}}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import parse_tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from bot.core.errors import MalformedMetadataError, PackageIndexError
from bot.lock.index.models import CoreMetadata, DistFile, Releases

INDEX = "https://frozen.invalid/simple/"


def _spec(text: str | None) -> SpecifierSet | None:
    return SpecifierSet(text) if text else None


class FrozenIndex:
    """PackageIndex over a dict; records which projects and files were asked for."""

    def __init__(self, spec: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        self.spec = {canonicalize_name(k): v for k, v in spec.items()}
        self.metadata_calls: list[str] = []

    def files(self, name: NormalizedName) -> list[DistFile]:
        if name not in self.spec:
            raise PackageIndexError(f"no project named {name!r} on {INDEX}", where=INDEX)
        out = []
        for version, info in self.spec[name].items():
            for kind in info.get("files", ["py3-none-any"]):
                out.append(self._file(name, version, kind, info))
        return out

    def releases(self, name: NormalizedName) -> Releases:
        return Releases.of(self.files(name))

    def _file(
        self, name: NormalizedName, version: str, kind: str, info: Mapping[str, Any]
    ) -> DistFile:
        under = name.replace("-", "_")
        if kind == "sdist":
            filename = f"{under}-{version}.tar.gz"
            tags: frozenset[Any] = frozenset()
        else:
            filename = f"{under}-{version}-{kind}.whl"
            tags = frozenset(parse_tag(kind))
        uploaded = info.get("uploaded", "2025-01-01T00:00:00Z")
        return DistFile(
            name=name,
            version=Version(version),
            kind="sdist" if kind == "sdist" else "wheel",
            filename=filename,
            url=f"https://frozen.invalid/files/{filename}",
            sha256=hashlib.sha256(filename.encode()).hexdigest(),
            index=INDEX,
            size=1,
            requires_python=_spec(info.get("requires-python")),
            yanked="" if info.get("yanked") else None,
            upload_time=datetime.fromisoformat(uploaded.replace("Z", "+00:00")).astimezone(UTC),
            tags=tags,
        )

    def metadata(self, file: DistFile) -> CoreMetadata:
        self.metadata_calls.append(file.filename)
        info = next(v for k, v in self.spec[file.name].items() if Version(k) == file.version)
        if "malformed" in info:
            raise MalformedMetadataError(
                f"unusable core metadata in {file.filename}: {info['malformed']}", where=INDEX
            )
        return CoreMetadata(
            name=file.name,
            version=file.version,
            requires_dist=tuple(Requirement(r) for r in info.get("requires", [])),
            requires_python=_spec(
                info.get("metadata-requires-python", info.get("requires-python"))
            ),
            provides_extra=tuple(canonicalize_name(e) for e in info.get("extras", [])),
        )

    def build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        info = next(v for k, v in self.spec[file.name].items() if Version(k) == file.version)
        reqs = info.get("build-requires")
        if reqs is None:
            return (Requirement("setuptools>=40.8.0"),)
        return tuple(Requirement(r) for r in reqs)

    def dynamic_build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        info = next(v for k, v in self.spec[file.name].items() if Version(k) == file.version)
        return tuple(Requirement(r) for r in info.get("dynamic-build-requires", []))

    def in_tree_backend(self, file: DistFile) -> bool:
        info = next(v for k, v in self.spec[file.name].items() if Version(k) == file.version)
        return bool(info.get("in-tree-backend"))

    def prefetch(self, names: list[NormalizedName]) -> None:
        return None
