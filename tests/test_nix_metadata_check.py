"""The Nix build checks metadata no hash verified: an index that forges range reads gets its
injected dependency into the lock, and the build of that package fails naming it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.build.command import BuildOptions, BuildResult, build_sets
from bot.lock.command import LockOptions, lock_sets
from tests.plugins.nixenv import NixRepo
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel

pytestmark = pytest.mark.nix

SET_YAML = "description: forged\nmaintainers: []\npython: ['3.12']\nrequirements:\n  - alpha\n"


@pytest.fixture
def forging_index(
    pypi_index: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> IndexServer:
    """alpha 1.0 requires beta; its range reads show a wheel that also requires delta.  No
    PEP 658 metadata for alpha; everything else is honest and hashed."""
    for wheel in frontend_wheels.values():
        pypi_index.publish(wheel)
    pypi_index.publish(make_wheel(tmp_path / "d", "beta", "1.0", modules={"beta.py": "X = 1\n"}))
    pypi_index.publish(make_wheel(tmp_path / "d", "delta", "1.0"))
    honest = make_wheel(tmp_path / "honest", "alpha", "1.0", requires_dist=["beta"])
    lie = make_wheel(tmp_path / "lie", "alpha", "1.0", requires_dist=["beta", "delta"])
    pypi_index.publish(honest, with_metadata=False)
    pypi_index.range_forgeries[honest.name] = lie.read_bytes()
    return pypi_index


def lock_and_build(
    repo: NixRepo, index: IndexServer, tmp_path: Path, tag: str, extra: str = ""
) -> tuple[dict[str, Any], BuildResult]:
    (repo.sets / "demo").mkdir(exist_ok=True)
    (repo.sets / "demo" / "set.yaml").write_text(SET_YAML + extra)
    [outcome] = lock_sets(
        LockOptions(repo=repo.root, index_url=index.url, cache_dir=tmp_path / f"cache-{tag}")
    )
    assert outcome.error is None, outcome.error
    lock = tomllib.loads(outcome.path.read_text())
    [result] = build_sets(
        BuildOptions(
            sets=["demo"],
            python=None,
            out_link=tmp_path / f"r-{tag}",
            keep_going=False,
            repo=repo.root,
            nixpkgs=False,
            interpreters=repo.interpreters,
        )
    )
    return lock, result


def test_forged_range_metadata_fails_the_build(
    nix_repo: NixRepo, forging_index: IndexServer, tmp_path: Path
) -> None:
    lock, result = lock_and_build(nix_repo, forging_index, tmp_path, "forged")
    alpha = next(p for p in lock["packages"] if p["name"] == "alpha")
    # the injected dependency reached the lock only with the record the build checks
    assert [d["name"] for d in alpha["dependencies"]] == ["beta", "delta"]
    recorded = alpha["tool"]["nixpkgs-python"]["unverified-metadata"]
    assert recorded["requires-dist"] == ["beta", "delta"]
    assert not result.ok
    assert result.failed_package == "alpha", result.log_tail
    tail = result.log_tail
    assert "is not the metadata its lock was resolved from" in tail
    assert "Requires-Dist in the lock but not in the file: 'delta'" in tail


def test_honest_range_metadata_builds_after_the_check(
    nix_repo: NixRepo, forging_index: IndexServer, tmp_path: Path
) -> None:
    forging_index.range_forgeries.clear()
    lock, result = lock_and_build(nix_repo, forging_index, tmp_path, "honest")
    alpha = next(p for p in lock["packages"] if p["name"] == "alpha")
    assert alpha["tool"]["nixpkgs-python"]["unverified-metadata"]["requires-dist"] == ["beta"]
    assert result.ok, result.log_tail
    config = json.loads(nix_repo.eval("demo.packages.alpha.nixpkgsPythonConfig"))
    assert config["lockedMetadata"]["file"] == "alpha-1.0-py3-none-any.whl"
    # a package whose metadata was verified carries no check (its derivation is unchanged)
    beta = json.loads(nix_repo.eval("demo.packages.beta.nixpkgsPythonConfig"))
    assert "lockedMetadata" not in beta


@pytest.mark.parametrize("forge", [False, True])
def test_an_sdist_build_is_compared_with_the_wheel_metadata_read(
    nix_repo: NixRepo,
    forging_index: IndexServer,
    backend_wheel: Path,
    tmp_path: Path,
    forge: bool,
) -> None:
    """With prefer: sdist the resolver still reads the pure wheel's metadata (by ranges); the
    wheel built from the sdist must declare the same requirements (formatting aside)."""
    forging_index.publish(backend_wheel)
    forging_index.publish(make_sdist(tmp_path / "s", "alpha", "1.0", requires_dist=["Beta"]))
    if not forge:
        forging_index.range_forgeries.clear()
    lock, result = lock_and_build(
        nix_repo, forging_index, tmp_path, f"sdist-{forge}", "prefer: sdist\n"
    )
    alpha = next(p for p in lock["packages"] if p["name"] == "alpha")
    assert alpha["tool"]["nixpkgs-python"]["artifacts"]["x86_64-linux"] == "alpha-1.0.tar.gz"
    assert "unverified-metadata" in alpha["tool"]["nixpkgs-python"]
    if forge:
        assert not result.ok
        assert "Requires-Dist in the lock but not in the file: 'delta'" in result.log_tail
        assert "built from alpha-1.0.tar.gz" in result.log_tail
    else:
        assert result.ok, result.log_tail
