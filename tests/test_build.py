"""bot.build.build_sets: real nix-build of sets, failures named by package with a log tail."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.build import BuildOptions, build_sets, failed_derivations, package_of, summary
from bot.errors import BotError
from tests.plugins.nixenv import NixRepo, demo_entries, entry, lock_demo
from tests.plugins.pypi import IndexServer, make_wheel

pytestmark = pytest.mark.nix


def options(repo: NixRepo, **kw: object) -> BuildOptions:
    values: dict[str, object] = {
        "sets": [],
        "python": None,
        "out_link": None,
        "keep_going": False,
        "repo": repo.root,
        "interpreters": repo.interpreters,
        "nixpkgs": False,  # standalone, explicitly (tests/test_nixpkgs.py builds with nixpkgs)
    }
    values.update(kw)
    return BuildOptions(**values)  # type: ignore[arg-type]


def test_build_sets_links_a_runnable_python(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path], tmp_path: Path
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    (nix_repo.sets / "unlocked").mkdir()
    results = build_sets(options(nix_repo, out_link=tmp_path / "result"))
    assert [(r.set, r.python, r.ok) for r in results] == [("demo", "3.12", True)]
    link = tmp_path / "result-demo-py312"
    assert results[0].out_link == link
    assert str(link.resolve()) == results[0].out_path
    assert any("-python3.12-gamma-0.5" in p for p in results[0].store_paths)
    out = subprocess.run(
        [link / "bin" / "python", "-c", "import alpha, gamma; print('ok')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "ok"
    assert "ok      demo (Python 3.12)" in summary(results)


def test_build_sets_names_the_failing_package(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path], tmp_path: Path
) -> None:
    broken = make_wheel(
        tmp_path / "dists",
        "broken-pkg",
        "1.0",
        modules={"broken_pkg/__init__.py": "raise RuntimeError('broken on purpose')\n"},
    )
    demo_index.publish(broken)
    lock_demo(nix_repo, demo_index, demo_dists, entries=[*demo_entries(demo_dists), entry(broken)])
    results = build_sets(options(nix_repo, sets=["demo"], python="3.12", keep_going=True))
    [result] = results
    assert not result.ok
    assert result.failed_package == "broken-pkg"
    assert result.failed_drv is not None
    assert result.failed_drv.endswith("-python3.12-broken-pkg-1.0.drv")
    assert "broken on purpose" in result.log_tail
    assert "imports check failed" in result.log_tail
    assert "package 'broken-pkg' failed to build" in summary(results)


def test_build_sets_names_the_package_of_a_bad_hash(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    entries = demo_entries(demo_dists)
    for e in entries:
        if e.name == "delta":
            e.sha256 = "1" * 64
    lock_demo(nix_repo, demo_index, demo_dists, entries=entries)
    [result] = build_sets(options(nix_repo))
    assert not result.ok
    assert result.failed_package == "delta"
    assert "hash mismatch" in result.log_tail or "hash mismatch" in (result.error or "")


def test_unknown_set_and_missing_lock(nix_repo: NixRepo) -> None:
    (nix_repo.sets / "unlocked").mkdir()
    with pytest.raises(BotError, match="unknown set 'nope'"):
        build_sets(options(nix_repo, sets=["nope"]))
    [result] = build_sets(options(nix_repo, sets=["unlocked"]))
    assert not result.ok
    assert "no lock yet" in (result.error or "")


def test_a_lock_that_does_not_parse_names_the_set(nix_repo: NixRepo) -> None:
    (nix_repo.sets / "torn").mkdir()
    (nix_repo.sets / "torn" / "pylock.py312.toml").write_text('lock-version = "1.0\n[[packages')
    [result] = build_sets(options(nix_repo, sets=["torn"]))
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("set 'torn': ")
    assert "pylock.py312.toml" in result.error
    assert "not valid TOML" in result.error


def test_failed_derivations_parsing() -> None:
    stderr = (
        "error: hash mismatch in fixed-output derivation "
        "'/nix/store/0123456789abcdfghijklmnpqrsvwxyz-Foo_Bar-1.0-py3-none-any.whl.drv':\n"
        "error: builder for '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-python3.13-zope-"
        "interface-6.0.drv' failed with exit code 1;\n"
        "error: builder for '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-baz-2.0.tar.gz.drv' "
        "failed with exit code 1\n"
    )
    assert [p for _, p in failed_derivations(stderr)] == ["foo-bar", "zope-interface", "baz"]
    assert package_of("python3.12-pytest-xdist-3.6.1") == "pytest-xdist"
    assert package_of("something-else") == "something-else"
