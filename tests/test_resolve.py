"""Resolver cases as data (tests/data/resolve_cases.yaml) against a frozen index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.core.errors import MetadataError, ResolutionError
from bot.lock.artifacts import choose_artifact
from bot.lock.index.models import DistFile
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


def test_a_direct_url_dependency_is_one_clear_error() -> None:
    """A lock takes index files only: ``bar @ URL`` is named, not resolved as ``bar`` from
    the index (which would put other bytes than the distribution asked for in the lock)."""
    index = {
        "foo": {"1.0": {"requires": ["bar @ https://elsewhere.example/bar-1.0-py3-none-any.whl"]}},
        "bar": {"1.0": {}},
    }
    with pytest.raises(MetadataError) as info:
        run_case({"index": index, "requested": ["foo"]})
    assert "foo 1.0 requires 'bar @ https://elsewhere.example/" in info.value.message
    assert "direct URL" in info.value.message
    assert "constrain foo" in (info.value.hint or "")
    # one under an extra nobody asks for is not a dependency of the lock
    index["foo"]["1.0"]["requires"] = ['bar @ https://elsewhere.example/b.whl ; extra == "x"']
    resolution = run_case({"index": index, "requested": ["foo"]})
    assert "bar" not in resolution.packages


def _wheel(filename: str) -> DistFile:
    tags = frozenset(parse_tag("-".join(filename.removesuffix(".whl").split("-")[-3:])))
    return DistFile(
        canonicalize_name("foo"), Version("1.0"), "wheel", filename, f"https://i/{filename}",
        "ab" * 32, "https://i/simple/", tags=tags,
    )  # fmt: skip


def test_the_same_tags_the_higher_build_tag_wins() -> None:
    """PEP 427: the build tag breaks a tie between wheels alike in every other tag, as a
    number, then its text; no build tag sorts first."""
    (target,) = [t for t in targets_for("3.12") if t.system == "x86_64-linux"]

    def chosen(names: list[str]) -> str | None:
        file = choose_artifact([_wheel(n) for n in names], target, "wheel")
        return file.filename if file else None

    names = [
        "foo-1.0-2-py3-none-any.whl",
        "foo-1.0-10-py3-none-any.whl",
        "foo-1.0-py3-none-any.whl",
        "foo-1.0-10a-py3-none-any.whl",
    ]
    assert chosen(names) == chosen(names[::-1]) == "foo-1.0-10a-py3-none-any.whl"
    assert chosen(names[:3]) == "foo-1.0-10-py3-none-any.whl"
    # a more specific tag still wins over any build tag
    specific = "foo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    assert chosen([*names, specific]) == specific


def test_a_holds_pin_does_not_take_a_yanked_release() -> None:
    """A constraint's exact pin is the maintainer's and takes a yanked release (PEP 592); a
    hold's is the bot's: a release yanked since is not kept shipping unasked."""
    index = FrozenIndex({**FRONTEND, "app": {"1.0": {}, "1.1": {"yanked": True}}})
    request = Request(
        requirements=[(Requirement("app"), "case")],
        held=[(Requirement("app==1.1"), "held back")],
        targets=targets_for("3.12"),
    )
    with pytest.raises(ResolutionError) as info:
        resolve(index, request)
    assert "app 1.1: yanked" in str(info.value)
