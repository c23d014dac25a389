"""Optional smoke test against the live PyPI (deselected by default; run with -m live)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.live
def test_lock_attrs_set_against_live_pypi(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sets").mkdir(parents=True)
    shutil.copytree(ROOT / "sets" / "attrs", repo / "sets" / "attrs")
    shutil.copytree(ROOT / "overrides", repo / "overrides")
    (repo / "nix").mkdir()
    for lock in (repo / "sets" / "attrs").glob("pylock.*.toml"):
        lock.unlink()
    assert (
        main(["--repo", str(repo), "-q", "lock", "attrs", "--cache-dir", str(tmp_path / "cache")])
        == 0
    )
    for python in ("312", "313"):
        document = tomllib.loads((repo / f"sets/attrs/pylock.py{python}.toml").read_text())
        names = {p["name"] for p in document["packages"]}
        assert {"attrs", "cattrs", "build", "installer"} <= names
        for package in document["packages"]:
            for wheel in package.get("wheels", []):
                assert wheel["url"].startswith("https://files.pythonhosted.org/")
                assert len(wheel["hashes"]["sha256"]) == 64
