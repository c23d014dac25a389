"""The cache commands through the CLI: keygen, push (then a no-op push), verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.plugins.nixenv import NixRepo, lock_demo
from tests.plugins.pypi import IndexServer

pytestmark = pytest.mark.nix


def keygen(name: str, secret: Path, public: Path) -> int:
    """``nixpkgs-python cache keygen`` through the CLI; its exit code."""
    return main(["cache", "keygen", name, "--secret-key", str(secret), "--public-key", str(public)])


def test_keygen_push_verify(
    nix_repo: NixRepo,
    demo_index: IndexServer,
    demo_dists: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    repo = ["--repo", str(nix_repo.root), "-q"]
    alone = "--standalone"  # this machine's interpreters (tests/test_nixpkgs.py: nixpkgs)
    secret, public = tmp_path / "keys" / "cli.sec", tmp_path / "keys" / "cli.pub"
    assert keygen("cli-test-1", secret, public) == 0
    out = capsys.readouterr().out
    assert "public key: cli-test-1:" in out
    assert secret.read_text().split(":", 1)[1].strip() not in out
    # a second keygen never overwrites the secret
    assert keygen("cli-test-1", secret, public) == 1
    assert "refusing to overwrite" in capsys.readouterr().err

    store = f"file://{tmp_path / 'cache'}"
    assert main([*repo, "push", alone, "--to", store, "--signing-key", str(secret)]) == 0
    first = capsys.readouterr().out
    assert f"{store}: copied " in first
    assert " copied 0 of " not in first
    assert main([*repo, "push", alone, "--to", store, "--signing-key", str(secret)]) == 0
    assert " copied 0 of " in capsys.readouterr().out

    assert (
        main([*repo, "cache", "verify", alone, "--from", store, "--public-key", str(public)]) == 0
    )
    assert "substitute with a trusted signature" in capsys.readouterr().out

    other_secret, other_public = tmp_path / "keys" / "other.sec", tmp_path / "keys" / "other.pub"
    assert keygen("other-1", other_secret, other_public) == 0
    capsys.readouterr()
    verify = [*repo, "cache", "verify", alone, "--from", store]
    assert main([*verify, "--public-key", str(other_public)]) == 2
    err = capsys.readouterr().err
    assert "FAILED /nix/store/" in err
    assert "Traceback" not in err


def test_build_command(
    nix_repo: NixRepo,
    demo_index: IndexServer,
    demo_dists: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json
    import subprocess

    lock_demo(nix_repo, demo_index, demo_dists)
    prefix = tmp_path / "result"
    assert (
        main(
            [
                "--repo",
                str(nix_repo.root),
                "-q",
                "build",
                "demo",
                "--standalone",
                "--out-link",
                str(prefix),
                "--json",
            ]
        )
        == 0
    )
    [result] = json.loads(capsys.readouterr().out)
    assert result["ok"]
    assert result["set"] == "demo"
    python = prefix.parent / "result-demo-py312" / "bin" / "python"
    assert subprocess.run([python, "-c", "import alpha"], check=False).returncode == 0
    assert main(["--repo", str(nix_repo.root), "build", "nope"]) == 1
    assert "unknown set 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["push", "nightly"])
def test_push_timeout_option(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--push-timeout`` (or ``$NIXPKGS_PYTHON_PUSH_TIMEOUT``) is checked before anything
    runs; tests/test_cache_interrupted.py shows the value reaching the night's push."""
    repo = ["--repo", str(tmp_path), "-q", command]
    assert main([*repo, "--push-timeout", "0"]) == 2
    assert "Invalid value for '--push-timeout': 0.0 is not in the range x>=1." in (
        capsys.readouterr().err
    )
    monkeypatch.setenv("NIXPKGS_PYTHON_PUSH_TIMEOUT", "soon")
    assert main(repo) == 2
    assert "'soon' is not a valid float" in capsys.readouterr().err
    monkeypatch.delenv("NIXPKGS_PYTHON_PUSH_TIMEOUT")
    assert main([*repo, "--help"]) == 0
    assert "--push-timeout SECONDS" in capsys.readouterr().out
