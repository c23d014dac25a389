"""End to end: set.yaml -> the bot's resolver and lock writer -> nix-build -> python imports."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from bot.build.command import BuildOptions, build_sets
from bot.lock.command import LockOptions, lock_sets
from tests.plugins.nixenv import NixRepo
from tests.plugins.pypi import IndexServer

pytestmark = pytest.mark.nix

SET_YAML = """\
description: the demo set of the loopback index
maintainers: ["@tests"]
python: ["3.12"]
requirements:
  - alpha
  - gamma
"""


def test_resolved_lock_builds(nix_repo: NixRepo, demo_index: IndexServer, tmp_path: Path) -> None:
    (nix_repo.sets / "demo").mkdir()
    (nix_repo.sets / "demo" / "set.yaml").write_text(SET_YAML)
    outcomes = lock_sets(
        LockOptions(repo=nix_repo.root, index_url=demo_index.url, cache_dir=tmp_path / "cache")
    )
    assert [o.status for o in outcomes] == ["created"], [o.error for o in outcomes]
    lock = tomllib.loads((nix_repo.sets / "demo" / "pylock.py312.toml").read_text())
    gamma = next(p for p in lock["packages"] if p["name"] == "gamma")
    assert gamma["tool"]["nixpkgs-python"]["build-requires"] == ["fixture-backend"]
    [result] = build_sets(
        BuildOptions(
            sets=["demo"],
            python=None,
            out_link=tmp_path / "r",
            keep_going=False,
            repo=nix_repo.root,
            nixpkgs=False,
            interpreters=nix_repo.interpreters,
        )
    )
    assert result.ok, result.log_tail
    python = tmp_path / "r-demo-py312" / "bin" / "python"
    out = subprocess.run(
        [python, "-c", "import alpha, beta, gamma; print(gamma.Y)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"
    alpha = subprocess.run(
        [tmp_path / "r-demo-py312" / "bin" / "alpha"], capture_output=True, text=True, check=True
    )
    assert alpha.stdout.strip() == "alpha says 42"
    # the package's own script, as nixpkgs' python.withPackages wraps it: its dependencies
    # come from the site directories the wrapper names in NIX_PYTHONPATH
    closure = subprocess.run(
        ["nix-store", "-qR", str((tmp_path / "r-demo-py312").resolve())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    (own,) = [Path(p) / "bin" / "alpha" for p in closure if (Path(p) / "bin" / "alpha").is_file()
              and "-env" not in p]  # fmt: skip
    site = next((tmp_path / "r-demo-py312").resolve().glob("lib/python3.12/site-packages"))
    env = {"PATH": "/usr/bin:/bin"}
    alone = subprocess.run([own], check=False, capture_output=True, text=True, env=env)
    assert alone.returncode != 0
    assert "No module named 'beta'" in alone.stderr
    wrapped = subprocess.run(
        [own], check=False, capture_output=True, text=True, env={**env, "NIX_PYTHONPATH": str(site)}
    )
    assert wrapped.stdout.strip() == "alpha says 42", wrapped.stderr
