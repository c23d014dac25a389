"""The command line: every command documents itself; errors are one message, no traceback."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from bot.cli import main

COMMANDS = [
    ["sets"],
    ["lock"],
    ["build"],
    ["push"],
    ["hold-back"],
    ["cache", "keygen"],
    ["cache", "verify"],
    ["nightly"],
    ["generate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. click's warning about a duplicated option
        assert main([*command, "--help"]) == 0
    assert "Usage:" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "nixpkgs-python, version" in capsys.readouterr().out


def test_usage_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--repo", str(tmp_path), "lock", "--python", "2.7"]) == 2
    assert main(["--repo", str(tmp_path), "lock", "--exclude-newer", "yesterday"]) == 2
    assert main(["--repo", str(tmp_path), "nightly", "--push-to", "main", "--pull-request"]) == 2
    err = capsys.readouterr().err
    assert "not a timestamp" in err
    assert "either --push-to or --pull-request" in err
    assert "Traceback" not in err


def test_sets_json_lists_the_shipped_sets(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    repo = Path(__file__).resolve().parent.parent
    assert main(["--repo", str(repo), "sets", "--json"]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)]
    assert "pytest" in names
    assert "sphinx" in names


@pytest.mark.parametrize("command", [["build"], ["nightly"]], ids=" ".join)
def test_max_jobs_option(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    assert "--max-jobs N" in capsys.readouterr().out
    assert main(["--repo", str(tmp_path), *command, "--max-jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--max-jobs" in err
    assert "Traceback" not in err


def test_nightly_builds_and_probes_with_max_jobs(tmp_path: Path) -> None:
    """The night's set builds and its hold-back probes share one BuildOptions."""
    from bot.build import command as build
    from bot.model.sets import PackageSet
    from bot.nightly.options import NightlyOptions
    from bot.nightly.per_set import _build_options

    pset = PackageSet("demo", tmp_path / "sets" / "demo", "d", (), ("3.12",), ())
    opts = _build_options(NightlyOptions(repo=tmp_path, max_jobs=3), pset)
    argv = build.nix_build_args(opts, "demo", "3.12", None)
    assert argv[argv.index("--max-jobs") + 1] == "3"
    default = _build_options(NightlyOptions(repo=tmp_path), pset)
    argv = build.nix_build_args(default, "demo", "3.12", None)
    assert argv[argv.index("--max-jobs") : argv.index("--max-jobs") + 4] == build.jobs_args(None)
