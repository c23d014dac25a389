"""`systems:` in set.yaml, `generate --system/--prefer`: locks for some systems only, honoured
by the lock and the Nix library; a package that cannot be locked for a system names it
(issue 13, item 5)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from bot.core.errors import ResolutionError, SetError
from bot.lock.resolve import Request, resolve
from bot.model.sets import load_set
from bot.model.targets import targets_for
from tests.frozen_index import FrozenIndex
from tests.plugins.pypi import IndexServer, make_wheel
from tests.test_generate import gen_index, generate, library, project  # noqa: F401
from tests.test_lock_cli import CUTOFF, demo_index, lock, make_repo  # noqa: F401
from tests.test_resolve import FRONTEND


def write_set(repo: Path, body: str) -> Path:
    path = repo / "sets" / "sci" / "set.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("description: d\npython: ['3.12']\nrequirements: [numpy]\n" + body)
    return path


def test_systems_field_is_parsed_and_checked(tmp_path: Path) -> None:
    write_set(tmp_path, "systems: [x86_64-linux, aarch64-linux]\n")
    pset = load_set(tmp_path, "sci")
    assert pset.systems == ("aarch64-linux", "x86_64-linux")
    assert pset.inputs()["systems"] == ["aarch64-linux", "x86_64-linux"]
    write_set(tmp_path, "")
    assert "systems" not in load_set(tmp_path, "sci").inputs()  # old sets hash as before
    path = write_set(tmp_path, "systems: [x86_64-linux, riscv64-linux]\n")
    with pytest.raises(SetError) as info:
        load_set(tmp_path, "sci")
    assert "unknown Nix system 'riscv64-linux'" in str(info.value)
    assert f"{path}:4" in str(info.value)
    write_set(tmp_path, "systems: []\n")
    with pytest.raises(SetError, match="needs at least one system"):
        load_set(tmp_path, "sci")


def test_lock_for_linux_only(
    demo_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # a package with Linux wheels only: unlockable for all four systems, fine for two
    dist = tmp_path / "dist-linux"
    for arch in ("x86_64", "aarch64"):
        demo_index.publish(
            make_wheel(dist, "linux-only", "1.0", tag=f"cp312-cp312-manylinux_2_17_{arch}")
        )
    repo = make_repo(tmp_path, ["linux-only", "demo-app"])
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 2  # the Macs have nothing
    path = repo / "sets" / "demo" / "set.yaml"
    path.write_text(path.read_text() + "systems: [x86_64-linux, aarch64-linux]\n")
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    doc = tomllib.loads((repo / "sets" / "demo" / "pylock.py312.toml").read_text())
    assert doc["tool"]["nixpkgs-python"]["systems"] == ["aarch64-linux", "x86_64-linux"]
    assert len(doc["environments"]) == 2
    packages = {p["name"]: p for p in doc["packages"]}
    # on both locked systems: no marker; demo-mac (darwin only) is not in the lock at all
    assert "marker" not in packages["linux-only"]
    assert "demo-mac" not in packages
    assert set(packages["linux-only"]["tool"]["nixpkgs-python"]["artifacts"]) == {
        "x86_64-linux",
        "aarch64-linux",
    }


def test_unlockable_system_is_named(
    demo_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo_index.publish(
        make_wheel(tmp_path / "d", "linux-only", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    )
    repo = make_repo(tmp_path, ["linux-only"])
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 2
    err = capsys.readouterr().err
    assert "linux-only 1.0: no wheel or sdist usable on aarch64-linux" in err
    assert "no wheel or sdist usable on aarch64-darwin" in err
    assert "Traceback" not in err


def run(spec: dict[str, Any], *requested: str) -> Any:
    request = Request(
        requirements=[(Requirement(r), "case") for r in requested], targets=targets_for("3.12")
    )
    index = FrozenIndex({**FRONTEND, **spec})
    return index, resolve(index, request)


def test_marker_that_excludes_one_system() -> None:
    # no wheel for the arm64 Macs and no sdist: fine, the marker leaves them out
    index, resolution = run(
        {
            "top": {"1.0": {"requires": ["speedup; platform_machine != 'arm64'"]}},
            "speedup": {
                "1.0": {
                    "files": [
                        "cp312-cp312-manylinux_2_17_x86_64",
                        "cp312-cp312-manylinux_2_17_aarch64",
                        "cp312-cp312-macosx_14_0_x86_64",
                    ]
                }
            },
        },
        "top",
    )
    speedup = resolution.packages["speedup"]
    assert sorted(t.system for t in speedup.artifacts) == [
        "aarch64-linux",
        "x86_64-darwin",
        "x86_64-linux",
    ]
    with pytest.raises(ResolutionError, match="no wheel or sdist usable on aarch64-darwin"):
        run({"top": {"1.0": {"requires": ["speedup"]}}, "speedup": index.spec["speedup"]}, "top")


def test_generate_system_and_prefer(
    gen_index: IndexServer,  # noqa: F811
    library: tuple[Path, str],  # noqa: F811
    project: Path,  # noqa: F811
) -> None:
    out = project / "nix-python"
    assert generate(gen_index, library, out, "--system", "x86_64-linux", "--prefer", "sdist") == 0
    doc = tomllib.loads((out / "pylock.toml").read_text())
    assert doc["tool"]["nixpkgs-python"]["systems"] == ["x86_64-linux"]
    kinds = {
        p["name"]: p["tool"]["nixpkgs-python"]["artifacts"]
        for p in doc["packages"]
        if p["name"] in ("gen-app", "gen-lib")
    }
    assert kinds
    assert all(set(a) == {"x86_64-linux"} for a in kinds.values())
    assert any(a["x86_64-linux"].endswith(".tar.gz") for a in kinds.values())
    assert generate(gen_index, library, out, "--system", "sparc-linux") == 2
