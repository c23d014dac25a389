"""Resolver cases as data (tests/data/resolve_cases.yaml) against a frozen index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from bot.core.errors import ResolutionError
from bot.lock.resolve import Request, resolve
from bot.model.targets import targets_for
from tests.frozen_index import FrozenIndex

CASES = yaml.safe_load((Path(__file__).parent / "data" / "resolve_cases.yaml").read_text())

#: the build frontend every resolution includes (the Nix library bootstraps it from wheels)
FRONTEND = {
    "build": {"1.2.2": {"requires": ["packaging>=19.1", "pyproject-hooks"]}},
    "installer": {"0.7.0": {}},
    "packaging": {"24.2": {}},
    "pyproject-hooks": {"1.2.0": {}},
}


def run_case(case: dict[str, Any]) -> Any:
    index = FrozenIndex({**FRONTEND, **case["index"]})
    cutoff = case.get("exclude-newer")
    request = Request(
        requirements=[(Requirement(r), "case") for r in case["requested"]],
        constraints=[(Requirement(c), "case") for c in case.get("constraints", [])],
        targets=targets_for(case.get("python", "3.12")),
        prefer=case.get("prefer", "wheel"),
        exclude_newer=datetime.fromisoformat(cutoff.replace("Z", "+00:00")).astimezone(UTC)
        if cutoff
        else None,
    )
    return resolve(index, request)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    if "conflict" in case:
        with pytest.raises(ResolutionError) as info:
            run_case(case)
        message = str(info.value)
        for fragment in case["conflict"]:
            assert fragment in message, message
        return
    resolution = run_case(case)
    got = {n: str(p.version) for n, p in resolution.packages.items() if n not in FRONTEND}
    assert got == case["resolved"]
    assert set(FRONTEND) <= set(resolution.packages)
    for name, expect in case.get("packages", {}).items():
        pkg = resolution.packages[name]
        if "systems" in expect:
            assert sorted(t.system for t in pkg.artifacts) == sorted(expect["systems"])
        for system, kind in expect.get("kinds", {}).items():
            chosen = next(f for t, f in pkg.artifacts.items() if t.system == system)
            assert chosen.kind == kind, (system, chosen.filename)
        if "build-requires" in expect:
            assert sorted(pkg.build_requires) == expect["build-requires"]
