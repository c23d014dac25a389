"""bot.build.evaluation: a standalone evaluation's out paths are kept for exactly its inputs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.build import evaluation

ARGV = ["--eval", "--json", "default.nix", "-A", "demo.py312.python.outPath"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel, text in {
        "default.nix": "{ }: { }\n",
        "nix/lib.nix": "{ }\n",
        "sets/demo/set.yaml": "description: demo\n",
        "sets/demo/pylock.py312.toml": 'lock-version = "1.0"\n',
        "overrides/packages/foo.toml": "[[override]]\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_key_follows_every_input(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    interpreters = {"3.12": "/usr/bin/python3.12"}
    key = evaluation.evaluation_key(repo, ARGV, interpreters)
    assert key is not None
    assert evaluation.evaluation_key(repo, ARGV, dict(interpreters)) == key
    assert evaluation.evaluation_key(repo, [*ARGV, "-A", "x"], interpreters) != key
    assert evaluation.evaluation_key(repo, ARGV, {"3.12": "/opt/python3.12"}) != key
    for rel in ("sets/demo/pylock.py312.toml", "nix/lib.nix", "overrides/packages/foo.toml"):
        path = repo / rel
        before = path.read_bytes()
        path.write_bytes(before + b"#")
        assert evaluation.evaluation_key(repo, ARGV, interpreters) != key, rel
        path.write_bytes(before)
    assert evaluation.evaluation_key(repo, ARGV, interpreters) == key
    (repo / "sets" / "demo" / "overlay.nix").write_text("self: super: { }\n")  # a new file
    assert evaluation.evaluation_key(repo, ARGV, interpreters) != key
    (repo / "sets" / "demo" / "overlay.nix").unlink()
    monkeypatch.setenv("NIX_CONFIG", "system = aarch64-linux")
    assert evaluation.evaluation_key(repo, ARGV, interpreters) != key
    monkeypatch.setenv("PATH", str(repo))  # no nix-instantiate: nothing is remembered
    assert evaluation.evaluation_key(repo, ARGV, interpreters) is None


def test_kept_paths_and_a_damaged_file(repo: Path) -> None:
    key = evaluation.evaluation_key(repo, ARGV, {})
    assert key is not None
    assert evaluation.remembered(key, 1) is None
    evaluation.remember(key, ["/nix/store/abc-env"])
    assert evaluation.remembered(key, 1) == ["/nix/store/abc-env"]
    assert evaluation.remembered(key, 2) is None  # not the evaluation asked for
    for i in range(evaluation.KEEP):  # only the last ones stored are kept
        evaluation.remember(f"other-{i}", ["/nix/store/x"])
    assert evaluation.remembered(key, 1) is None
    file = Path(os.environ["XDG_CACHE_HOME"]) / "nixpkgs-python" / evaluation.FILE
    file.write_text("{not json")
    assert evaluation.remembered("other-1", 1) is None
    evaluation.remember(key, ["/nix/store/abc-env"])
    assert evaluation.remembered(key, 1) == ["/nix/store/abc-env"]


def test_what_a_symlink_reaches_is_hashed_and_where_it_points(repo: Path, tmp_path: Path) -> None:
    """Nix follows a link to files outside the repository (a shared patches directory): an
    edit there, or the link re-pointed, must move the key."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "fix.patch").write_text("--- a\n+++ b\n")
    plain = evaluation.evaluation_key(repo, ARGV, {})
    (repo / "sets" / "demo" / "patches").symlink_to(shared, target_is_directory=True)
    linked = evaluation.evaluation_key(repo, ARGV, {})
    assert linked not in (None, plain)
    (shared / "fix.patch").write_text("--- a\n+++ c\n")  # edited where the link points
    edited = evaluation.evaluation_key(repo, ARGV, {})
    assert edited not in (None, linked)
    other = tmp_path / "other"
    shutil.copytree(shared, other)
    (repo / "sets" / "demo" / "patches").unlink()
    (repo / "sets" / "demo" / "patches").symlink_to(other, target_is_directory=True)
    assert evaluation.evaluation_key(repo, ARGV, {}) not in (None, edited)  # same bytes, re-pointed
    (repo / "sets" / "demo" / "fix.patch").symlink_to(shared / "fix.patch")  # a linked file
    with_file = evaluation.evaluation_key(repo, ARGV, {})
    (shared / "fix.patch").write_text("changed\n")
    assert evaluation.evaluation_key(repo, ARGV, {}) not in (None, with_file)
    (other / "loop").symlink_to(other, target_is_directory=True)  # a loop: nothing is kept
    assert evaluation.evaluation_key(repo, ARGV, {}) is None


def test_nix_conf_is_an_input(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``system =`` line in a nix.conf changes builtins.currentSystem, so the paths."""
    conf = tmp_path / "etc-nix"
    conf.mkdir()
    monkeypatch.setenv("NIX_CONF_DIR", str(conf))
    key = evaluation.evaluation_key(repo, ARGV, {})
    (conf / "nix.conf").write_text("system = aarch64-linux\n")
    assert evaluation.evaluation_key(repo, ARGV, {}) not in (None, key)
    user = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user))
    before = evaluation.evaluation_key(repo, ARGV, {})
    (user / "nix").mkdir(parents=True)
    (user / "nix" / "nix.conf").write_text("system = x86_64-darwin\n")
    assert evaluation.evaluation_key(repo, ARGV, {}) != before
