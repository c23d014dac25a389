"""Wheel tags of a target are those of the Nix interpreter, not of whichever Python runs us."""

from __future__ import annotations

import subprocess
import sys

import pytest
from packaging.tags import Tag

from bot.model.nixpkgs import RELEASES
from bot.model.targets import Target, systems_marker, targets_for


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_tags_are_the_nix_interpreters(python: str) -> None:
    nodot = python.replace(".", "")
    linux = Target(python, "x86_64-linux").tag_priority
    assert Tag(f"cp{nodot}", f"cp{nodot}", "manylinux_2_17_x86_64") in linux
    assert Tag(f"cp{nodot}", "abi3", "manylinux_2_28_x86_64") in linux
    assert Tag("cp39", "abi3", "manylinux2014_x86_64") in linux
    assert Tag("py3", "none", "any") in linux
    # nixpkgs 26.05 (the pin) has glibc 2.42 and darwinMinVersion 14.0
    assert Tag(f"cp{nodot}", f"cp{nodot}", "manylinux_2_42_x86_64") in linux
    assert Tag(f"cp{nodot}", f"cp{nodot}", "manylinux_2_43_x86_64") not in linux  # too new
    assert not any(t.abi.endswith(("t", "d")) and t.abi != "abi3t" for t in linux)
    mac = Target(python, "aarch64-darwin").tag_priority
    assert Tag(f"cp{nodot}", f"cp{nodot}", "macosx_11_0_arm64") in mac
    assert Tag(f"cp{nodot}", f"cp{nodot}", "macosx_14_0_arm64") in mac
    assert Tag(f"cp{nodot}", f"cp{nodot}", "macosx_15_0_arm64") not in mac  # too new
    assert not any("x86_64" in t.platform for t in mac)
    # the most specific tag ranks first
    assert min(linux, key=linux.__getitem__) == Tag(
        f"cp{nodot}", f"cp{nodot}", "manylinux_2_42_x86_64"
    )
    assert min(mac, key=mac.__getitem__) == Tag(f"cp{nodot}", f"cp{nodot}", "macosx_14_0_arm64")


def test_baselines_and_systems_follow_the_release() -> None:
    old = RELEASES["25.11"]
    linux = Target("3.12", "x86_64-linux", old).tag_priority
    assert Tag("cp312", "cp312", "manylinux_2_40_x86_64") in linux
    assert Tag("cp312", "cp312", "manylinux_2_41_x86_64") not in linux
    # 26.11 has no x86_64-darwin: its locks do not either
    assert [t.system for t in targets_for("3.12", RELEASES["26.11"])] == [
        "aarch64-darwin",
        "aarch64-linux",
        "x86_64-linux",
    ]
    assert "x86_64-darwin" in [t.system for t in targets_for("3.12", RELEASES["26.05"])]
    assert systems_marker(frozenset(RELEASES["26.11"].systems), RELEASES["26.11"].systems) is None


def test_tags_do_not_read_this_interpreters_build_config() -> None:
    code = (
        "import sys; from bot.model.targets import Target;"
        "Target('3.13', 'x86_64-linux').tag_priority;"
        "print(any(m.startswith('_sysconfigdata') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
