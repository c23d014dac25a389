"""overlay.nix: `pythonSets` built with the pin, `pythonSetsFromThisNixpkgs` with `final`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.core.nix import run_nix

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.nix


def test_overlay_gives_every_set_built_with_final(
    tmp_path: Path, interpreters: dict[str, str]
) -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix is not installed (.ci/run installs nix-bin)")
    file = tmp_path / "interpreters.json"
    file.write_text(json.dumps({"interpreters": interpreters}))
    expr = f"""
      let
        fake = import {ROOT}/tests/nix/fake-nixpkgs {{ interpretersFile = {file}; }};
        final = fake // (import {ROOT}/overlay.nix final fake);
        attrs = final.pythonSetsFromThisNixpkgs.attrs;
      in {{
        sets = builtins.attrNames final.pythonSetsFromThisNixpkgs;
        source = attrs.py312.meta.interpreterSource;
        drv = attrs.py312.python.drvPath;
        pythons = builtins.filter (n: builtins.match "py3[0-9]+" n != null)
          (builtins.attrNames attrs);
      }}
    """
    proc = run_nix("nix-instantiate", ["--eval", "--strict", "--json", "--expr", expr])
    data = json.loads(proc.stdout)
    assert {"attrs", "pytest", "sphinx", "flask"} <= set(data["sets"])
    assert data["source"] == "nixpkgs"
    assert data["drv"].endswith("-env.drv")
    assert data["pythons"] == ["py312", "py313"]


def test_overlay_pythonsets_are_the_pinned_nixpkgs_ones(
    tmp_path: Path, interpreters: dict[str, str]
) -> None:
    """``pythonSets`` asks for the pinned nixpkgs whatever ``final`` is (here the pin cannot be
    fetched, so the error names its tarball), so what users get is what the cache has."""
    file = tmp_path / "interpreters.json"
    file.write_text(json.dumps({"interpreters": interpreters}))
    expr = f"""
      let
        fake = import {ROOT}/tests/nix/fake-nixpkgs {{ interpretersFile = {file}; }};
        final = fake // (import {ROOT}/overlay.nix final fake);
      in final.pythonSets.attrs.py312.meta.interpreterSource
    """
    proc = run_nix("nix-instantiate", ["--eval", "--expr", expr], check=False)
    rev = json.loads((ROOT / "nix" / "nixpkgs.json").read_text())["rev"]
    assert proc.returncode != 0
    assert f"{rev}.tar.gz" in proc.stderr
