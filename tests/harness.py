"""The test harness's own small helpers, one of each (fixtures live in ``tests/plugins/``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """Run ``git ARGS`` in ``cwd`` (failing the test when it fails); its stripped stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()
