"""Lock files: PEP 751 valid, deterministic, atomic, readable by Nix's builtins.fromTOML."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from packaging.requirements import Requirement

from bot.core.errors import LockError
from bot.core.files import write_atomic
from bot.lock import document as lockfile
from bot.lock.resolve import Request, resolve
from bot.model.targets import targets_for
from tests.frozen_index import FrozenIndex
from tests.test_resolve import FRONTEND

INDEX = {
    **FRONTEND,
    "app": {"1.0": {"requires": ["lib", "appnope; sys_platform == 'darwin'"]}},
    "lib": {
        "2.0": {
            "files": ["cp312-cp312-manylinux_2_17_x86_64", "sdist"],
            "build-requires": ["setuptools>=61"],
        }
    },
    "appnope": {"0.1": {}},
    "setuptools": {"75.0": {}},
}
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_document(python: str = "3.12") -> dict:
    targets = targets_for(python)
    request = Request(
        requirements=[(Requirement("app"), "test")], targets=targets, exclude_newer=WHEN
    )
    resolution = resolve(FrozenIndex(INDEX), request)
    info = lockfile.LockInfo("demo", python, WHEN, ["https://frozen.invalid/simple/"], "sha256:00")
    return lockfile.build_lock(resolution, info, targets)


def test_lock_is_valid_pep751_and_records_what_nix_needs() -> None:
    text = lockfile.dumps(make_document())
    document = tomllib.loads(text)
    pylock = Pylock.from_dict(document)
    names = [p.name for p in pylock.packages]
    assert names == sorted(names)
    assert {"app", "lib", "appnope", "setuptools", "build", "installer"} <= set(names)
    packages = {p["name"]: p for p in document["packages"]}
    lib = packages["lib"]
    artifacts = lib["tool"]["nixpkgs-python"]["artifacts"]
    assert artifacts["x86_64-linux"].endswith("manylinux_2_17_x86_64.whl")
    assert artifacts["aarch64-linux"] == lib["sdist"]["name"] == "lib-2.0.tar.gz"
    assert lib["tool"]["nixpkgs-python"]["build-requires"] == ["setuptools"]
    assert packages["appnope"]["marker"] == "sys_platform == 'darwin'"
    assert set(packages["appnope"]["tool"]["nixpkgs-python"]["artifacts"]) == {
        "aarch64-darwin",
        "x86_64-darwin",
    }
    # setuptools is only needed where lib is built from source
    assert "x86_64-linux" not in packages["setuptools"]["tool"]["nixpkgs-python"]["artifacts"]
    assert packages["app"]["dependencies"] == [{"name": "appnope"}, {"name": "lib"}]
    tool = document["tool"]["nixpkgs-python"]
    assert tool["exclude-newer"] == "2026-01-02T03:04:05Z"
    assert tool["roots"] == ["app"]
    assert tool["build-frontend"] == ["build", "installer"]
    assert document["requires-python"] == "==3.12.*"
    for pkg in document["packages"]:
        for wheel in pkg.get("wheels", []):
            assert "upload-time" not in wheel
            assert len(wheel["hashes"]["sha256"]) == 64


def test_same_inputs_give_byte_identical_files() -> None:
    assert lockfile.dumps(make_document()) == lockfile.dumps(make_document())
    assert lockfile.dumps(make_document()).endswith("\n")


@pytest.mark.nix
def test_nix_reads_the_lock(tmp_path: Path) -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate is not installed (.ci/run installs nix-bin)")
    path = tmp_path / "pylock.py312.toml"
    path.write_text(lockfile.dumps(make_document()))
    expr = (
        f"let l = builtins.fromTOML (builtins.readFile {path}); in "
        "{ names = map (p: p.name) l.packages; tool = l.tool.nixpkgs-python; }"
    )
    out = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            "--expr",
            expr,
            "--option",
            "substituters",
            "",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert "lib" in data["names"]
    assert data["tool"]["exclude-newer"] == "2026-01-02T03:04:05Z"


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "pylock.py312.toml"
    write_atomic(path, "a = 1\n")
    write_atomic(path, "a = 2\n")
    assert path.read_text() == "a = 2\n"
    assert [p.name for p in path.parent.iterdir()] == ["pylock.py312.toml"]


def test_only_snapshot_time_differs_means_same_content() -> None:
    a = tomllib.loads(lockfile.dumps(make_document()))
    b = json.loads(json.dumps(a))
    b["tool"]["nixpkgs-python"]["exclude-newer"] = "2027-01-01T00:00:00Z"
    assert lockfile.same_content(a, b)
    b["packages"][0]["version"] = "9.9"
    assert not lockfile.same_content(a, b)


def test_invalid_lock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text('lock-version = "1.0"\ncreated-by = "x"\npackages = [{ version = "1" }]\n')
    with pytest.raises(LockError, match="not a valid PEP 751 lock"):
        lockfile.read_lock(path)


def test_parse_time() -> None:
    assert lockfile.format_time(lockfile.parse_time("2026-11-21")) == "2026-11-21T00:00:00Z"
    with pytest.raises(LockError, match="not a timestamp"):
        lockfile.parse_time("yesterday")
