"""bot.model.overrides: the overrides library as the bot reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from bot.model.overrides import (
    OverrideError,
    extra_build_requires,
    load_overrides,
    matching,
)

ROOT = Path(__file__).resolve().parents[1]


def write(root: Path, name: str, text: str) -> Path:
    path = root / "overrides" / "packages" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_shipped_library_is_valid() -> None:
    load_overrides(ROOT)


def test_ranges_and_extra_build_requires(tmp_path: Path) -> None:
    (tmp_path / "overrides" / "patches").mkdir(parents=True)
    (tmp_path / "overrides" / "patches" / "x.patch").write_text("")
    write(
        tmp_path,
        "foo-bar",
        """
[[override]]
until = "2.0"
reason = "old foo-bar needs setuptools-scm"
build-requires = ["setuptools-scm>=8"]
env = { A = "1" }
patches = ["patches/x.patch"]

[[override]]
from = "2.0rc1"
reason = "new foo-bar needs hatchling"
build-requires = ["hatchling"]
native-build-inputs = ["pkg-config"]
imports-check = ["foo_bar"]
""",
    )
    lib = load_overrides(tmp_path)
    assert list(lib) == ["foo-bar"]
    assert [str(r) for r in extra_build_requires(lib, "Foo_Bar", "1.9")] == ["setuptools-scm>=8"]
    # 2.0rc1 comes before 2.0 (PEP 440), so both ranges hold
    assert [str(r) for r in extra_build_requires(lib, "foo-bar", Version("2.0rc1"))] == [
        "setuptools-scm>=8",
        "hatchling",
    ]
    assert [str(r) for r in extra_build_requires(lib, "foo-bar", "2.0")] == ["hatchling"]
    assert extra_build_requires(lib, "other", "1.0") == []
    assert [o.reason for o in matching(lib, "foo-bar", "1.0")] == [
        "old foo-bar needs setuptools-scm"
    ]
    assert lib["foo-bar"][1].imports_check == ("foo_bar",)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("foo", '[[override]]\nenv = { A = "1" }\n', "'reason' is required"),
        ("foo", '[[override]]\nreason = "r"\nenvs = {}\n', "unknown keys: envs"),
        ("foo", '[[override]]\nreason = "r"\nfrom = "2"\nuntil = "1"\n', "empty version range"),
        (
            "foo",
            '[[override]]\nreason = "r"\nbuild-requires = ["foo >>> 1"]\n',
            "invalid build requirement",
        ),
        ("foo", '[[override]]\nreason = "r"\npatches = ["nope.patch"]\n', "does not exist"),
        ("foo", '[[override]]\nreason = "r"\nguard = "yes"\n', "'guard' must be true or false"),
        ("foo", '[[override]]\nreason = "r"\nuntil = "soon"\n', "not a PEP 440 version"),
        ("Foo_Bar", '[[override]]\nreason = "r"\n', "normalized package name 'foo-bar'"),
        ("foo", "override = 1\n", "array of tables"),
    ],
)
def test_invalid_entries_name_file_and_problem(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(OverrideError) as info:
        load_overrides(tmp_path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
