"""Core metadata (METADATA / PKG-INFO) is read from its header block alone."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.core.errors import MalformedMetadataError
from bot.lock.index.metadata import headers, parse_core_metadata, pkg_info_trusted
from bot.lock.index.models import DistFile

FILE = DistFile(
    name=canonicalize_name("demo-pkg"),
    version=Version("1.0"),
    kind="wheel",
    filename="demo_pkg-1.0-py3-none-any.whl",
    url="https://files.example/demo_pkg-1.0-py3-none-any.whl",
    sha256="ab" * 32,
    index="https://index.example/simple/",
)

METADATA = (
    "Metadata-Version: 2.4\r\n"
    "Name: Demo.Pkg\r\n"
    "Version: 1.0\r\n"
    "Summary: A demo \u2014 with UTF-8\r\n"
    "License: first line\r\n"
    "        second line\r\n"
    "Requires-Python: >=3.9\r\n"
    "Requires-Dist: six>=1\r\n"
    "Requires-Dist: attrs; extra == 'x'\r\n"
    "Provides-Extra: X\r\n"
    "Project-URL: Changelog, https://demo.example/changes\r\n"
    "Project-URL: Source, https://demo.example/src\r\n"
    "\r\n"
    "Requires-Dist: not-a-header-this-is-the-description\r\n"
).encode()


def test_headers_stop_at_the_description() -> None:
    fields = headers(METADATA)
    assert fields["requires-dist"] == ["six>=1", "attrs; extra == 'x'"]
    assert fields["license"] == ["first line\nsecond line"]
    assert fields["summary"] == ["A demo \u2014 with UTF-8"]


def test_parse_core_metadata() -> None:
    meta = parse_core_metadata(METADATA, FILE)
    assert meta.name == "demo-pkg"
    assert meta.version == Version("1.0")
    assert [str(r) for r in meta.requires_dist] == ["six>=1", 'attrs; extra == "x"']
    assert str(meta.requires_python) == ">=3.9"
    assert meta.provides_extra == ("x",)
    assert meta.project_urls == (
        ("Changelog", "https://demo.example/changes"),
        ("Source", "https://demo.example/src"),
    )
    assert meta.summary == "A demo \u2014 with UTF-8"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Name: demo-pkg\nVersion: 1.0\nRequires-Dist: six >=< 1\n", "unusable core metadata"),
        (b"Name: demo-pkg\nVersion: 1.0\nRequires-Python: >=three\n", "unusable core metadata"),
        (b"Name: demo-pkg\nVersion: one\n", "unusable core metadata"),
        (b"Name: demo-pkg\nVersion: 1.0\nRequires-Dist: s\xffx\n", "not valid UTF-8"),
        (b"Name: other\nVersion: 1.0\n", "says its name is 'other'"),
        (b"Name: demo-pkg\nVersion: 1.0.1\n", "says its version is 1.0.1, not 1.0"),
        (b"Name: demo-pkg\nVersion: 1.0\nRequires-Python: >=3.6.*\n", "Invalid specifier"),
    ],
)
def test_bad_metadata_is_one_clear_error(data: bytes, message: str) -> None:
    """Each is MalformedMetadataError: the resolver passes over that version (as pip and uv do)
    instead of failing the lock (tests/data/resolve_cases.yaml)."""
    with pytest.raises(MalformedMetadataError, match=message) as info:
        parse_core_metadata(data, FILE)
    assert info.value.where == FILE.url


def test_the_same_version_written_otherwise_is_the_same_version() -> None:
    meta = parse_core_metadata(b"Name: demo_pkg\nVersion: 1.0.0\n", FILE)
    assert meta.version == FILE.version


def test_missing_name_and_version_come_from_the_file() -> None:
    meta = parse_core_metadata(b"Metadata-Version: 1.0\n", FILE)
    assert (meta.name, meta.version, meta.requires_dist) == (FILE.name, FILE.version, ())


@pytest.mark.parametrize(
    ("pkg_info", "trusted"),
    [
        (b"Metadata-Version: 2.2\nName: x\n", True),
        (b"Metadata-Version: 2.4\nName: x\nDynamic: License\n", True),
        (b"Metadata-Version: 2.2\nName: x\nDynamic: Requires-Dist\n", False),
        (b"Metadata-Version: 2.3\nName: x\nDynamic: requires-python\n", False),
        (b"Metadata-Version: 2.1\nName: x\n", False),
        (b"Name: x\n", False),
        (b"Metadata-Version: two\n", False),
    ],
)
def test_pkg_info_is_trusted_per_pep_643(pkg_info: bytes, trusted: bool) -> None:
    assert pkg_info_trusted(pkg_info) is trusted
