"""Locks record the wheel baselines they were made with; `lock --check` of a lock written
before those fields existed still passes, a plain `lock` adds them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from bot.lock import document as lockfile
from bot.model.locks import provenance
from tests.plugins.pypi import IndexServer
from tests.test_lock_cli import CUTOFF, demo_index, lock, make_repo  # noqa: F401


def test_lock_records_the_baselines_and_check_tolerates_their_absence(
    demo_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, ["demo-app"])
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    path = repo / "sets" / "demo" / "pylock.py312.toml"
    doc = tomllib.loads(path.read_text())
    prov = provenance(doc)
    assert (prov["nixpkgs-release"], prov["macos-min"], prov["glibc"]) == ("26.05", "14.0", "2.42")
    # a lock from before these fields: the check passes, a lock run writes them
    for key in lockfile.BASELINE_FIELDS:
        del doc["tool"]["nixpkgs-python"][key]
    path.write_text(tomli_w.dumps(doc, indent=4))
    assert lock(repo, demo_index, "--check") == 0
    assert "glibc" not in provenance(tomllib.loads(path.read_text()))
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    assert provenance(tomllib.loads(path.read_text()))["glibc"] == "2.42"
    # any other difference still fails the check
    doc = tomllib.loads(path.read_text())
    doc["tool"]["nixpkgs-python"]["glibc"] = "2.40"
    path.write_text(tomli_w.dumps(doc, indent=4))
    assert lock(repo, demo_index, "--check") == 1
