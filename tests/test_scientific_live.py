"""Live (deselected by default; -m live): a numpy/pandas/scipy/matplotlib set locks with a
wheel for every package on every system of the pin (issue 13: scipy's sdist must never be
needed for metadata, and the pin's baselines admit the wheels)."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from bot.cli import main
from bot.model.nixpkgs import release_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.live
@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_scientific_set_locks_with_wheels_everywhere(
    tmp_path: Path, python: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "sets" / "sci").mkdir(parents=True)
    (repo / "nix").mkdir()
    shutil.copy(ROOT / "nix" / "nixpkgs.json", repo / "nix" / "nixpkgs.json")
    shutil.copytree(ROOT / "overrides", repo / "overrides")
    (repo / "sets" / "sci" / "set.yaml").write_text(
        f"description: sci\npython: ['{python}']\n"
        "requirements: [numpy, pandas, scipy, matplotlib]\n"
    )
    argv = ["--repo", str(repo), "-q", "lock", "sci", "--json"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    (outcome,) = json.loads(capsys.readouterr().out)
    doc = tomllib.loads((repo / f"sets/sci/pylock.py{python.replace('.', '')}.toml").read_text())
    systems = release_of(repo).systems
    assert sorted(doc["tool"]["nixpkgs-python"]["systems"]) == sorted(systems)
    packages = {p["name"]: p for p in doc["packages"]}
    assert {"numpy", "pandas", "scipy", "matplotlib"} <= set(packages)
    for name in ("numpy", "pandas", "scipy", "matplotlib"):
        artifacts = packages[name]["tool"]["nixpkgs-python"]["artifacts"]
        assert sorted(artifacts) == sorted(systems), name
        assert all(a.endswith(".whl") for a in artifacts.values()), (name, artifacts)
    sdists = sorted(
        f"{n} on {s}"
        for n, p in packages.items()
        for s, a in p["tool"]["nixpkgs-python"]["artifacts"].items()
        if not a.endswith(".whl")
    )
    assert sdists == [], sdists
    assert isinstance(outcome["refusals"], list)
