"""bot.model.locks, the layout half: where a set's locks live, what they are named, and what
is read back from them (provenance, packages, holds, the changes between two)."""

from __future__ import annotations

from pathlib import Path

from bot.model import locks
from bot.model.sets import PackageSet


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    return path


def test_names_and_places() -> None:
    assert locks.lock_name("3.12") == "pylock.py312.toml"
    assert locks.python_of("pylock.py313.toml") == "3.13"
    assert locks.python_of(Path("sets/a/pylock.py39.toml")) == "3.9"
    assert locks.python_of("pylock.toml") is None
    assert locks.python_of("pylock.py312.toml.bak") is None
    assert locks.set_lock_path(Path("/r"), "web", "3.12") == Path("/r/sets/web/pylock.py312.toml")
    pset = PackageSet("web", Path("/r/sets/web"), "", (), ("3.12",), ())
    assert pset.lock_path("3.12") == locks.set_lock_path(Path("/r"), "web", "3.12")


def test_a_sets_locks_oldest_python_first_and_nothing_else(tmp_path: Path) -> None:
    set_dir = tmp_path / "sets" / "web"
    for name in ["pylock.py310.toml", "pylock.py39.toml", "pylock.toml", "pylock.pyx.toml"]:
        _touch(set_dir / name)
    _touch(set_dir / "set.yaml")
    assert [p.name for p in locks.locks_in(set_dir)] == ["pylock.py39.toml", "pylock.py310.toml"]
    assert locks.locked_pythons(set_dir) == ["3.9", "3.10"]
    _touch(tmp_path / "sets" / "api" / "pylock.py312.toml")
    assert [p.relative_to(tmp_path).as_posix() for p in locks.repo_locks(tmp_path)] == [
        "sets/api/pylock.py312.toml",
        "sets/web/pylock.py310.toml",
        "sets/web/pylock.py39.toml",
    ]
    assert locks.repo_locks(tmp_path / "nowhere") == []


def test_is_lock_path() -> None:
    assert locks.is_lock_path("sets/web/pylock.py312.toml")
    assert not locks.is_lock_path("sets/web/set.yaml")
    assert not locks.is_lock_path("sets/web/sub/pylock.py312.toml")
    assert not locks.is_lock_path("nix/pylock.py312.toml")


def test_contents_read_back() -> None:
    hold = {"name": "a", "version": "1.0"}
    doc = {
        "packages": [{"name": "a", "version": "1.0"}, {"name": "b", "version": "2.0"}],
        "tool": {"nixpkgs-python": {"python": "3.12", "held": [hold]}},
    }
    assert locks.provenance(doc)["python"] == "3.12"
    assert locks.lock_packages(doc) == {"a": "1.0", "b": "2.0"}
    assert locks.held(doc) == [hold]
    assert locks.held(None) == []
    assert locks.provenance({}) == {}


def test_package_changes_is_diff_locks_as_one_list() -> None:
    old = {"packages": [{"name": "a", "version": "1"}, {"name": "b", "version": "1"}]}
    new = {"packages": [{"name": "b", "version": "2"}, {"name": "c", "version": "1"}]}
    assert locks.package_changes(old, new) == [("a", "1", None), ("b", "1", "2"), ("c", None, "1")]
    assert locks.package_changes(None, new) == [("b", None, "2"), ("c", None, "1")]
    assert locks.package_changes(new, new) == []
