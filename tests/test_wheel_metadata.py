"""Metadata from wheels first: sdist metadata only where no wheel exists, or per system where
that system builds the sdist and its metadata differs (issue 13, item 2)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from bot.core.errors import MetadataError
from bot.lock.index.models import CoreMetadata, DistFile
from bot.lock.resolve import Request, resolve
from bot.model.targets import targets_for
from tests.frozen_index import FrozenIndex
from tests.test_resolve import FRONTEND as BASE

FRONTEND = {**BASE, "setuptools": {"75.0": {}}}

LINUX_WHEELS = ["cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux_2_17_aarch64"]


class SdistAwareIndex(FrozenIndex):
    """A frozen index whose sdists may state other requirements than the wheels
    (``sdist-requires``)."""

    def metadata(self, file: DistFile) -> CoreMetadata:
        meta = super().metadata(file)
        info = next(v for k, v in self.spec[file.name].items() if k == str(file.version))
        if file.kind == "sdist" and "sdist-requires" in info:
            return CoreMetadata(
                meta.name,
                meta.version,
                tuple(Requirement(r) for r in info["sdist-requires"]),
                meta.requires_python,
            )
        return meta


def lock(index: FrozenIndex, *requested: str, **kwargs: Any) -> Any:
    request = Request(
        requirements=[(Requirement(r), "case") for r in requested],
        targets=targets_for("3.12"),
        **kwargs,
    )
    return resolve(index, request)


def test_wheel_metadata_when_some_system_builds_the_sdist() -> None:
    index = SdistAwareIndex(
        {
            **FRONTEND,
            "native": {"1.0": {"files": [*LINUX_WHEELS, "sdist"], "requires": ["dep"]}},
            "dep": {"1.0": {}},
        }
    )
    resolution = lock(index, "native")
    native = resolution.packages["native"]
    kinds = {t.system: f.kind for t, f in native.artifacts.items()}
    assert kinds == {
        "x86_64-linux": "wheel",
        "aarch64-linux": "wheel",
        "x86_64-darwin": "sdist",
        "aarch64-darwin": "sdist",
    }
    # the wheel's metadata stands for the version (the sdist's was read only to compare it
    # for the systems that build it)
    assert native.metadata is not None
    assert "native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl" in index.metadata_calls
    assert "dep" in resolution.packages


def test_sdist_metadata_that_differs_holds_only_where_the_sdist_is_built() -> None:
    index = SdistAwareIndex(
        {
            **FRONTEND,
            "native": {
                "1.0": {
                    "files": [*LINUX_WHEELS, "sdist"],
                    "requires": ["wheeldep"],
                    "sdist-requires": ["wheeldep", "builddep"],
                }
            },
            "wheeldep": {"1.0": {}},
            "builddep": {"1.0": {}},
        }
    )
    resolution = lock(index, "native")
    systems = {n: sorted(t.system for t in p.artifacts) for n, p in resolution.packages.items()}
    assert systems["wheeldep"] == sorted(t.system for t in targets_for("3.12"))
    assert systems["builddep"] == ["aarch64-darwin", "x86_64-darwin"]
    assert resolution.packages["native"].dependencies == {"wheeldep", "builddep"}


def test_no_wheel_at_all_reads_the_sdist() -> None:
    index = SdistAwareIndex(
        {**FRONTEND, "old": {"1.0": {"files": ["sdist"], "requires": ["dep"]}}, "dep": {"1.0": {}}}
    )
    resolution = lock(index, "old")
    assert "old-1.0.tar.gz" in index.metadata_calls
    assert "dep" in resolution.packages


def test_speculation_never_reads_an_sdist() -> None:
    # the prefetch walks ahead to maybe's newest version, an sdist the resolution never
    # needs (top wants maybe<2): speculation must leave it alone
    index = SdistAwareIndex(
        {
            **FRONTEND,
            "top": {"1.0": {"requires": ["maybe<2"]}},
            "maybe": {"2.0": {"files": ["sdist"]}, "1.0": {}},
        }
    )
    resolution = lock(index, "top")
    assert str(resolution.packages["maybe"].version) == "1.0"
    assert "maybe-2.0.tar.gz" not in index.metadata_calls


class FailingSdists(SdistAwareIndex):
    """Every sdist's metadata fails, as a backend that refuses to run would."""

    def metadata(self, file: DistFile) -> CoreMetadata:
        if file.kind == "sdist":
            self.metadata_calls.append(file.filename)
            raise MetadataError(f"the PEP 517 backend of {file.filename} failed", where="x")
        return super().metadata(file)


def test_sdist_metadata_failure_names_the_systems_and_the_refused_wheels() -> None:
    index = FailingSdists(
        {**FRONTEND, "native": {"2.0": {"files": ["cp312-cp312-manylinux_2_17_x86_64", "sdist"]}}}
    )
    wheel, sdist = index.files(canonicalize_name("native"))
    # the wheel states Requires-Python >=3.13 on the index: no wheel at all for 3.12
    only = dataclasses.replace(wheel, requires_python=SpecifierSet(">=3.13"))
    index.files = lambda name: [only, sdist] if name == "native" else FrozenIndex.files(index, name)  # type: ignore[method-assign]
    with pytest.raises(MetadataError) as info:
        lock(index, "native")
    message = str(info.value)
    assert "native 2.0 has no wheel" in message
    assert (
        "x86_64-linux: native-2.0-cp312-cp312-manylinux_2_17_x86_64.whl requires Python >=3.13"
        in message
    )
    assert "aarch64-darwin: no wheel" in message
    assert "the PEP 517 backend of native-2.0.tar.gz failed" in message
