"""overlay.nix: `pythonSets` built with the pin, `pythonSetsFromThisNixpkgs` with `final`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.core.nix import run_nix
from tests.plugins.pin import pin_fake_nixpkgs

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
    """``pythonSets`` is built with the pinned nixpkgs (here a fetchable fake pin) for
    ``final``'s system, whatever ``final``'s python312 is: what the cache has."""
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix is not installed (.ci/run installs nix-bin)")
    # a copy of the repository's Nix side whose pin can be fetched
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("default.nix", "overlay.nix"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "nix", repo / "nix", ignore=shutil.ignore_patterns("local.json"))
    for name in ("sets", "overrides"):
        (repo / name).symlink_to(ROOT / name)
    pin_fake_nixpkgs(repo / "nix", tmp_path, interpreters)
    file = tmp_path / "interpreters.json"
    file.write_text(json.dumps({"interpreters": interpreters}))
    expr = f"""
      let
        fake = import {ROOT}/tests/nix/fake-nixpkgs {{
          interpretersFile = {file}; system = "aarch64-linux";
        }};
        # another overlay before this one: final's python312 is not the pin's
        mine = final: prev: {{
          python312 = prev.python312 // {{ interpreter = prev.python312.interpreter + "-mine"; }};
        }};
        prev = fake // mine final fake;
        final = prev // (import {repo}/overlay.nix final prev);
        config = d: builtins.fromJSON (builtins.unsafeDiscardStringContext d.nixpkgsPythonConfig);
        facts = set: {{
          source = set.meta.interpreterSource;
          inherit (set.python) drvPath system;
          interpreter = (config set.python).interpreter;
          fake = set.packages.attrs.fakeNixpkgs;
        }};
      in {{
        pinned = facts final.pythonSets.attrs.py312;
        own = facts final.pythonSetsFromThisNixpkgs.attrs.py312;
        direct = (import {repo}/default.nix {{ system = "aarch64-linux"; }})
          .attrs.py312.python.drvPath;
      }}
    """
    proc = run_nix("nix-instantiate", ["--eval", "--strict", "--json", "--expr", expr])
    data = json.loads(proc.stdout)
    pinned, own = data["pinned"], data["own"]
    assert pinned["drvPath"].endswith("-python3.12-attrs-env.drv")
    assert pinned["drvPath"] == data["direct"]  # default.nix with the pin, for that system
    assert pinned["source"] == own["source"] == "nixpkgs"
    assert pinned["fake"] == own["fake"] == "1"
    assert pinned["system"] == own["system"] == "aarch64-linux"
    assert pinned["interpreter"] == interpreters["3.12"]  # the pin's, not final's
    assert own["interpreter"] == interpreters["3.12"] + "-mine"
    assert own["drvPath"] != pinned["drvPath"]
