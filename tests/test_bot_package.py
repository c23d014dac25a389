"""The bot's own set (``sets/bot-runtime``, what nix/bot.nix builds the bot on) stays in step
with pyproject.toml; the locked files the Nix tests use are exactly the lock's; nix/bot.nix
names what is missing.  (Building and running the bot: tests/test_flake.py.)"""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from bot.core.nix import run_nix
from tests.plugins.bot_wheels import COMMAND, SET_DIR, hashed_mirror, locked_files

ROOT = Path(__file__).resolve().parent.parent


def _requirements(lines: list[str]) -> list[str]:
    return [str(Requirement(line)) for line in lines]


def test_the_bot_set_requires_what_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = project["project"]["dependencies"] + project["build-system"]["requires"]
    spec = yaml.safe_load((SET_DIR / "set.yaml").read_text(encoding="utf-8"))
    assert _requirements(spec["requirements"]) == _requirements(declared)


def test_the_bot_set_is_locked_for_what_it_names() -> None:
    spec = yaml.safe_load((SET_DIR / "set.yaml").read_text(encoding="utf-8"))
    for python in spec["python"]:
        lock = tomllib.loads(
            (SET_DIR / f"pylock.py{python.replace('.', '')}.toml").read_text(encoding="utf-8")
        )
        names = {p["name"] for p in lock["packages"]}
        for line in spec["requirements"]:
            assert Requirement(line).name.lower() in names


def test_the_locked_files_are_the_artifacts_of_the_system() -> None:
    files = locked_files("x86_64-linux")
    by_python = {v: [f.name for f in files if f.python == v] for v in ("3.12", "3.13")}
    assert set(by_python) == {f.python for f in files}
    for python, names in by_python.items():
        tag = "cp" + python.replace(".", "")
        (pyyaml,) = [n for n in names if n.startswith("pyyaml-")]
        assert f"-{tag}-{tag}-" in pyyaml
        assert "x86_64" in pyyaml
        assert len(names) == len(set(names))  # one file per package
    assert not [f.name for f in files if "macosx" in f.name or "aarch64" in f.name]
    assert all(f.url.startswith("https://files.pythonhosted.org/") for f in files)


def test_the_mirror_takes_only_the_locked_bytes(tmp_path: Path) -> None:
    files = locked_files("x86_64-linux")
    source = tmp_path / "wheels"
    source.mkdir()
    with pytest.raises(FileNotFoundError, match=COMMAND.replace(".", r"\.")):
        hashed_mirror(tmp_path / "m1", "x86_64-linux", source)
    for f in files:
        (source / f.name).write_bytes(b"not the locked file")
    with pytest.raises(ValueError, match="the lock says"):
        hashed_mirror(tmp_path / "m2", "x86_64-linux", source)


def test_the_mirror_is_laid_out_by_the_locks_hashes(tmp_path: Path) -> None:
    """With the files README's test command downloads (the Nix tests need them too)."""
    files = hashed_mirror(tmp_path / "mirror", "x86_64-linux")
    for f in files:
        data = (tmp_path / "mirror" / "sha256" / f.sha256).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256


@pytest.mark.nix
def test_a_dependency_the_lock_lacks_is_named(tmp_path: Path) -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix is not installed")
    for name in ("nix", "overrides", "bot"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("local.json"))
    shutil.copytree(SET_DIR, tmp_path / "sets" / SET_DIR.name)
    (tmp_path / "README.md").write_text("copy\n")
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        text.replace("dependencies = [\n", 'dependencies = [\n    "Not_A.Package>=1",\n', 1)
    )
    expr = (
        f"(import {tmp_path}/nix/bot.nix {{ pkgs = null; src = {tmp_path}; "
        'interpreters = { "3.12" = "/x/python3.12"; "3.13" = "/x/python3.13"; }; }).drvPath'
    )
    proc = run_nix("nix-instantiate", ["--eval", "--expr", expr], check=False)
    assert proc.returncode != 0
    assert "the bot needs not-a-package (pyproject.toml dependencies)" in proc.stderr
    assert "nixpkgs-python lock bot-runtime" in proc.stderr
    assert "Traceback" not in proc.stderr
    # and an unlocked set is one error naming the command too
    shutil.rmtree(tmp_path / "sets" / SET_DIR.name)
    proc = run_nix("nix-instantiate", ["--eval", "--expr", expr], check=False)
    assert proc.returncode != 0
    assert "run `nixpkgs-python lock bot-runtime`" in proc.stderr
