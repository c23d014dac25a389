"""Wheel tags of a target are those of the Nix interpreter, not of whichever Python runs us."""

from __future__ import annotations

import subprocess
import sys

import pytest
from packaging.tags import Tag

from bot.targets import Target


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_tags_are_the_nix_interpreters(python: str) -> None:
    nodot = python.replace(".", "")
    linux = Target(python, "x86_64-linux").tag_priority
    assert Tag(f"cp{nodot}", f"cp{nodot}", "manylinux_2_17_x86_64") in linux
    assert Tag(f"cp{nodot}", "abi3", "manylinux_2_28_x86_64") in linux
    assert Tag("cp39", "abi3", "manylinux2014_x86_64") in linux
    assert Tag("py3", "none", "any") in linux
    assert Tag(f"cp{nodot}", f"cp{nodot}", "manylinux_2_34_x86_64") not in linux  # too new
    assert not any(t.abi.endswith(("t", "d")) and t.abi != "abi3t" for t in linux)
    mac = Target(python, "aarch64-darwin").tag_priority
    assert Tag(f"cp{nodot}", f"cp{nodot}", "macosx_11_0_arm64") in mac
    assert not any("x86_64" in t.platform for t in mac)
    # the most specific tag ranks first
    assert min(linux, key=linux.__getitem__) == Tag(
        f"cp{nodot}", f"cp{nodot}", "manylinux_2_28_x86_64"
    )


def test_tags_do_not_read_this_interpreters_build_config() -> None:
    code = (
        "import sys; from bot.targets import Target; Target('3.13', 'x86_64-linux').tag_priority;"
        "print(any(m.startswith('_sysconfigdata') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
