"""A standalone build on a machine whose glibc is older than a locked wheel needs stops with
that reason before nix runs (the lock's baseline is the nixpkgs release's glibc)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from bot.build.command import (
    BuildOptions,
    build_sets,
    glibc_shortfall,
    host_glibc,
    standalone_glibc_error,
)
from tests.plugins.nixenv import NixRepo, lock_demo
from tests.plugins.pypi import IndexServer

DOC = {
    "packages": [
        {
            "name": "new",
            "tool": {
                "nixpkgs-python": {
                    "artifacts": {
                        "x86_64-linux": "new-1.0-cp312-cp312-manylinux_2_40_x86_64.whl",
                        "aarch64-linux": "new-1.0.tar.gz",
                    }
                }
            },
        },
        {
            "name": "old",
            "tool": {
                "nixpkgs-python": {
                    "artifacts": {
                        "x86_64-linux": "old-1.0-cp312-cp312-manylinux_2_17_x86_64"
                        ".manylinux2014_x86_64.whl"
                    }
                }
            },
        },
        {"name": "pure", "tool": {"nixpkgs-python": {"artifacts": {"x86_64-linux": "p.whl"}}}},
    ]
}


def test_shortfall_names_each_wheel_that_needs_a_newer_glibc() -> None:
    assert glibc_shortfall(DOC, "x86_64-linux", (2, 36)) == [
        ("new-1.0-cp312-cp312-manylinux_2_40_x86_64.whl", (2, 40))
    ]
    assert glibc_shortfall(DOC, "x86_64-linux", (2, 42)) == []
    assert glibc_shortfall(DOC, "aarch64-linux", (2, 17)) == []  # an sdist: built here
    message = standalone_glibc_error(DOC, "demo", "x86_64-linux", (2, 36))
    assert message is not None
    assert "glibc 2.36 is older" in message
    assert "new-1.0-cp312-cp312-manylinux_2_40_x86_64.whl needs glibc 2.40" in message
    assert standalone_glibc_error(DOC, "demo", "aarch64-darwin", (2, 36)) is None


@pytest.mark.nix
def test_standalone_build_refuses_a_wheel_newer_than_this_glibc(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    have = host_glibc()
    if have is None or have >= (2, 99):
        pytest.skip("needs a glibc machine")
    lock_demo(nix_repo, demo_index, demo_dists)
    path = nix_repo.sets / "demo" / "pylock.py312.toml"
    doc = tomllib.loads(path.read_text())
    pkg = doc["packages"][0]
    too_new = f"{pkg['name']}-1.0-cp312-cp312-manylinux_2_99_x86_64.whl"
    for system in ("x86_64-linux", "aarch64-linux"):
        pkg["tool"]["nixpkgs-python"]["artifacts"][system] = too_new.replace("x86_64", system[:-6])
    path.write_text(tomli_w.dumps(doc))
    options = BuildOptions(
        sets=[],
        python=None,
        out_link=None,
        keep_going=False,
        repo=nix_repo.root,
        interpreters=nix_repo.interpreters,
        nixpkgs=False,
    )
    (result,) = build_sets(options)
    assert not result.ok
    assert result.error is not None
    assert f"this machine's glibc {have[0]}.{have[1]} is older" in result.error
    assert "needs glibc 2.99" in result.error
    assert result.failed_drv is None  # stopped before nix-build
