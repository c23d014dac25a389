"""bot.build.command.build_sets:
real nix-build of sets, failures named by package with a log tail."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from bot.build.command import (
    BuildOptions,
    SetBuild,
    build_sets,
    failed_checks,
    failed_derivations,
    jobs_args,
    nix_build_args,
    package_of,
    summary,
)
from bot.core.errors import BotError
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
    assert result.failed_packages == ["broken-pkg"]
    # the package itself installs; the environment's check pass fails, naming it
    assert result.failed_drv is not None
    assert result.failed_drv.endswith("-python3.12-demo-env.drv")
    assert "broken on purpose" in result.log_tail
    assert "package 'broken-pkg' imports check failed" in result.log_tail
    assert "package 'broken-pkg' failed to build" in summary(results)


def test_a_dependency_that_breaks_an_import_is_caught_and_named(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path], tmp_path: Path
) -> None:
    """beta 1.5 no longer has the module alpha imports: alpha's derivation does not change
    (beta is not its input), but the environment's check of alpha fails and names alpha."""
    lock_demo(nix_repo, demo_index, demo_dists)
    [good] = build_sets(options(nix_repo))
    assert good.ok
    alpha_before = nix_repo.eval("demo.packages.alpha.outPath")
    gamma_before = nix_repo.eval("demo.packages.gamma.outPath")
    beta_before = nix_repo.eval("demo.packages.beta.outPath")
    gamma_env_before = nix_repo.eval("demo.packages.gamma.env.outPath")
    beta = make_wheel(tmp_path / "dists", "beta", "1.5", modules={"beta_renamed.py": "X = 1\n"})
    demo_index.publish(beta)
    entries = [e for e in demo_entries(demo_dists) if e.name != "beta"] + [entry(beta)]
    lock_demo(nix_repo, demo_index, demo_dists, entries=entries)
    # only beta and the environments holding it move
    assert nix_repo.eval("demo.packages.alpha.outPath") == alpha_before
    assert nix_repo.eval("demo.packages.gamma.outPath") == gamma_before
    assert nix_repo.eval("demo.packages.beta.outPath") != beta_before
    assert nix_repo.eval("demo.python.outPath") != good.out_path
    assert nix_repo.eval("demo.packages.gamma.env.outPath") == gamma_env_before
    [result] = build_sets(options(nix_repo))
    assert not result.ok
    assert result.failed_package == "alpha"
    assert result.failed_packages == ["alpha"]
    assert "No module named 'beta'" in result.log_tail
    assert "package 'alpha' imports check failed" in (result.error or "") + result.log_tail


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
    log = (
        "nixpkgs-python: package 'Zope.Interface' imports check failed: could not import x\n"
        "nixpkgs-python: package 'alpha' tests check failed: true exited with 1\n"
        "nixpkgs-python: package 'alpha' imports check failed: could not import alpha\n"
    )
    assert failed_checks(log) == ["zope-interface", "alpha"]
    assert failed_checks("error: builder for 'x' failed") == []
    assert package_of("python3.12-pytest-xdist-3.6.1") == "pytest-xdist"
    assert package_of("something-else") == "something-else"


def test_builds_use_every_core(nix_repo: NixRepo) -> None:
    argv = nix_build_args(options(nix_repo), "demo", "3.12", None)
    assert argv[argv.index("--max-jobs") + 1] == "auto"
    assert argv[argv.index("--cores") + 1] == "0"
    argv = nix_build_args(options(nix_repo, max_jobs=3), "demo", "3.12", None)
    assert argv[argv.index("--max-jobs") + 1] == "3"
    assert jobs_args(1) == ["--max-jobs", "1", "--cores", "0"]


def test_one_set_build_gives_the_build_and_the_out_path_evaluation(
    nix_repo: NixRepo, tmp_path: Path
) -> None:
    """The evaluation is the build's own expression with ``.outPath``: no argv surgery."""
    file = tmp_path / "interpreters.json"
    opts = options(nix_repo, keep_going=True, system="x86_64-linux")
    one = SetBuild(opts, "demo", "3.12", file, disabled_overrides=["x#0"])
    build = one.build_args()
    assert build == nix_build_args(opts, "demo", "3.12", file, disabled_overrides=["x#0"])
    assert build[build.index("-A") + 1] == "demo.py312.python"
    assert build[build.index("interpretersFile") + 1] == str(file)
    assert {"--keep-going", "--no-out-link"} <= set(build)
    evaluation = one.out_path_args()
    assert evaluation[:2] == ["--eval", "--json"]
    expected = [a for a in build if a not in ("--no-out-link", "--keep-going")]
    expected[expected.index("-A") + 1] += ".outPath"
    assert evaluation[2:] == expected


def test_an_import_that_kills_the_interpreter_is_still_named(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path], tmp_path: Path
) -> None:
    """The environment imports every package in one interpreter; when that interpreter does
    not finish, every package is checked on its own and only the guilty ones are named."""
    crash = make_wheel(
        tmp_path / "dists",
        "crash-pkg",
        "1.0",
        modules={"crash_pkg/__init__.py": "import os\nos._exit(3)\n"},
    )
    broken = make_wheel(
        tmp_path / "dists",
        "broken-too",
        "1.0",
        modules={"broken_too/__init__.py": "raise ImportError('broken as well')\n"},
    )
    demo_index.publish(crash)
    demo_index.publish(broken)
    entries = [*demo_entries(demo_dists), entry(crash), entry(broken)]
    lock_demo(nix_repo, demo_index, demo_dists, entries=entries)
    [result] = build_sets(options(nix_repo))
    assert not result.ok
    assert sorted(result.failed_packages) == ["broken-too", "crash-pkg"]
    assert "checking every package on its own" in result.log_tail


def test_an_import_spoiled_only_by_another_package_is_a_warning(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path], tmp_path: Path
) -> None:
    """In the shared interpreter 'aaa-spoiler' (imported first) hides 'victim'; alone,
    victim imports: the environment builds and its log says so."""
    spoiler = make_wheel(
        tmp_path / "dists",
        "aaa-spoiler",
        "1.0",
        # a fresh wheel each run: the environment is built (and its log written) by this test,
        # not found in the store from an earlier run on this machine (a tmp_path repeats there)
        modules={
            "aaa_spoiler/__init__.py": (
                f"# {uuid.uuid4()}\nimport sys\nsys.modules['victim'] = None\n"
            )
        },
    )
    victim = make_wheel(tmp_path / "dists", "victim", "1.0")
    demo_index.publish(spoiler)
    demo_index.publish(victim)
    entries = [*demo_entries(demo_dists), entry(spoiler), entry(victim)]
    lock_demo(nix_repo, demo_index, demo_dists, entries=entries)
    [result] = build_sets(options(nix_repo))
    assert result.ok, result.log_tail
    drv = nix_repo.eval("demo.python.drvPath")
    log = subprocess.run(
        ["nix-store", "--read-log", drv], capture_output=True, text=True, check=True
    ).stdout
    assert "package 'victim' imports only on its own" in log
    assert "imports check failed" not in log
