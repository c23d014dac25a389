"""default.nix's arguments as README's "Using a set" documents them (`pkgs`, `nixpkgs`,
`system`, `overrides`, `setsDir`, ...), evaluated by real nix-instantiate with the fake
nixpkgs of tests/nix/fake-nixpkgs (no nixpkgs checkout, no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.core.nix import run_nix
from tests.plugins.pin import RECORDING_WRAPPER, fake_nixpkgs_dir, pin_fake_nixpkgs

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.nix


def _eval(expr: str) -> Any:
    proc = run_nix("nix-instantiate", ["--eval", "--strict", "--json", "--expr", expr])
    return json.loads(proc.stdout)


def _eval_error(expr: str) -> str:
    """The stderr of an evaluation that must fail."""
    proc = run_nix("nix-instantiate", ["--eval", "--strict", "--json", "--expr", expr], check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


@pytest.fixture
def recorder(tmp_path: Path, interpreters: dict[str, str]) -> Path:
    """A nixpkgs (the fake one, called as nixpkgs is) recording the arguments it was called
    with: ``<set>.interpreter.drv.calledWith``."""
    return fake_nixpkgs_dir(tmp_path / "recorder", interpreters, wrapper=RECORDING_WRAPPER)


@pytest.fixture
def pinned_repo(tmp_path: Path, interpreters: dict[str, str]) -> Path:
    """A copy of the repository's Nix side whose pin (nix/nixpkgs.json) is a fetchable
    tarball of the recording fake nixpkgs."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("default.nix", "overlay.nix", "flake.nix"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "nix", repo / "nix", ignore=shutil.ignore_patterns("local.json"))
    for name in ("sets", "overrides"):
        (repo / name).symlink_to(ROOT / name)
    pin_fake_nixpkgs(repo / "nix", tmp_path / "pin", interpreters, wrapper=RECORDING_WRAPPER)
    return repo


def test_the_project_imports_nixpkgs_without_the_machines_config(
    pinned_repo: Path, recorder: Path
) -> None:
    """Wherever the project imports a nixpkgs itself (the pin, `nixpkgs`, the overlay's
    `pythonSets`, the flake's `lib.nixpkgsFor`), it passes `config = { }; overlays = [ ];`:
    nixpkgs then reads no ~/.config/nixpkgs/config.nix, overlays or NIXPKGS_* variables, so
    the sets are the same on every machine."""
    repo = pinned_repo
    expr = f"""
      let
        called = sets: sets.attrs.py312.interpreter.drv.calledWith;
        mine = import {recorder} {{ system = "aarch64-linux"; }};
        final = mine // (import {repo}/overlay.nix final mine);
        flake = (import {repo}/flake.nix).outputs {{ self = null; }};
      in {{
        pin = called (import {repo}/default.nix {{ system = "aarch64-linux"; }});
        nixpkgs = called (import {repo}/default.nix {{
          nixpkgs = {recorder}; system = "aarch64-linux";
        }});
        overlay = called final.pythonSets;
        flake = (flake.lib.nixpkgsFor "aarch64-linux").python312.calledWith;
      }}
    """
    data = _eval(expr)
    expected = {"system": "aarch64-linux", "config": {}, "overlays": []}
    assert data == {"pin": expected, "nixpkgs": expected, "overlay": expected, "flake": expected}
