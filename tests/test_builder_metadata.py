"""nix/builder.py's check of metadata the lock recorded as unverified (the functions alone;
tests/test_nix_metadata_check.py runs it in real Nix builds)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from bot.lock.index.metadata import headers
from tests.plugins.pypi import make_wheel

BUILDER = Path(__file__).resolve().parents[1] / "nix" / "builder.py"


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nix_builder", BUILDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("foo (>=1.0,<2)", "Foo>=1.0, <2"),
        ("foo>=1.0,<2", "foo<2,>=1.0"),
        ("bar; python_version < '3.8'", 'bar ; python_version<"3.8"'),
        ("x[B,a]>=1", "x[a, b] >= 1"),
        ("zope.interface", "Zope_Interface"),
        ("pkg @ https://h.example/p.whl", "pkg@https://h.example/p.whl"),
    ],
)
def test_formatting_is_undone(builder: ModuleType, a: str, b: str) -> None:
    assert builder.requirement_key(a) == builder.requirement_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("foo>=1", "foo>=2"),
        ("foo", "bar"),
        ("foo; extra == 'a'", "foo; extra == 'b'"),
        ("foo[a]", "foo"),
        ("foo; os_name == 'nt'", "foo"),
    ],
)
def test_meaning_is_kept(builder: ModuleType, a: str, b: str) -> None:
    assert builder.requirement_key(a) != builder.requirement_key(b)


def test_headers_read_as_the_bot_reads_them(builder: ModuleType) -> None:
    data = (
        b"Metadata-Version: 2.1\r\nName: a\r\nRequires-Dist: b>=1\r\n"
        b"Requires-Dist: c;\r\n  extra == 'x'\r\n\r\nRequires-Dist: body\r\n"
    )
    assert builder.metadata_headers(data) == headers(data)


def metadata(*requires: str) -> bytes:
    lines = "".join(f"Requires-Dist: {r}\n" for r in requires)
    return f"Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n{lines}\n".encode()


def test_the_read_file_must_match_exactly(builder: ModuleType) -> None:
    data = metadata("beta", "delta>=1")
    locked = {"sha256": hashlib.sha256(data).hexdigest(), "requires-dist": ["beta", "delta>=1"]}
    assert builder.metadata_differences(data, locked, exact=True) == []
    # the forged metadata the lock saw had an extra requirement
    forged = dict(locked, **{"requires-dist": ["beta", "delta>=1", "evil"]})
    assert builder.metadata_differences(data, forged, exact=True) == [
        "Requires-Dist in the lock but not in the file: 'evil'"
    ]
    # formatting counts for the file that was read: it is the same bytes or not
    reformatted = dict(locked, **{"requires-dist": ["beta", "delta >= 1"]})
    assert len(builder.metadata_differences(data, reformatted, exact=True)) == 2
    # same requirements, other bytes (a forged Requires-Python, say)
    other = dict(locked, sha256="0" * 64)
    assert builder.metadata_differences(data, other, exact=True) == [
        "its other fields (Requires-Python, Provides-Extra, ...) differ"
    ]


def test_another_artifact_must_declare_the_same_requirements(builder: ModuleType) -> None:
    built = metadata("Beta (>=1)", "delta; python_version < '3.13'")
    locked = {"sha256": "0" * 64, "requires-dist": ["beta>=1", 'delta; python_version < "3.13"']}
    assert builder.metadata_differences(built, locked, exact=False) == []
    dropped = {"sha256": "0" * 64, "requires-dist": ["beta>=1"]}
    assert builder.metadata_differences(built, dropped, exact=False) == [
        "Requires-Dist in the file but not in the lock: \"delta; python_version < '3.13'\""
    ]


def test_the_wheels_own_metadata_is_read(builder: ModuleType, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "alpha", "1.0", requires_dist=["beta"])
    builder.CONFIG["pname"] = "alpha"
    try:
        data = builder.wheel_metadata(wheel)
    finally:
        del builder.CONFIG["pname"]
    assert headers(data)["requires-dist"] == ["beta"]
