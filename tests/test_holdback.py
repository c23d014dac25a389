"""The hold-back search, as data: which bumps break the build, found within a budget."""

from __future__ import annotations

import pytest

from bot.lock.command import Hold
from bot.nightly.holdback import SystemResult, find_holds, holds_for, merge_systems, with_held

BUMPS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def breaks_when_advanced(*culprits: str):  # type: ignore[no-untyped-def]
    """A build that fails whenever one of ``culprits`` is advanced (not held)."""
    calls: list[frozenset[str]] = []

    def builds_with(held: frozenset[str]) -> bool:
        calls.append(held)
        return all(c in held for c in culprits)

    return builds_with, calls


@pytest.mark.parametrize(
    ("culprits", "suspects", "held", "max_builds"),
    [
        (["gamma"], ["gamma"], ["gamma"], 1),  # the failing package was bumped: one build
        (["gamma"], [], ["gamma"], 6),  # it was a dependency's bump: bisect
        (["beta", "delta"], [], ["beta", "delta"], 8),
        (["alpha"], ["epsilon"], ["alpha"], 8),  # a wrong suspect costs one build
        (["epsilon"], ["alpha", "epsilon"], ["epsilon"], 3),  # last night's hold released
    ],
)
def test_find_holds(
    culprits: list[str], suspects: list[str], held: list[str], max_builds: int
) -> None:
    builds_with, calls = breaks_when_advanced(*culprits)
    search = find_holds(BUMPS, suspects, builds_with)
    assert search.held == held
    assert search.builds == len(calls) <= max_builds
    assert not search.exhausted


def test_budget_is_bounded_and_says_so() -> None:
    builds_with, calls = breaks_when_advanced("alpha", "gamma", "epsilon")
    search = find_holds(BUMPS, [], builds_with, budget=3)
    assert len(calls) <= 3
    assert search.exhausted
    # what could not be tested is held, and the result is confirmed to build
    assert search.held is not None
    assert {"alpha", "gamma", "epsilon"} <= set(search.held)


def test_nothing_builds() -> None:
    search = find_holds(BUMPS, [], lambda held: False)
    assert search.held is None


def test_holds_keep_their_first_failure_and_date() -> None:
    moved = {"alpha": {"3.12": ("1.0", "1.2"), "3.13": ("1.0", "1.2")}}
    before = {"3.12": {"alpha": Hold("alpha", "1.0", "1.1", "old reason", "2026-11-01")}}
    out = holds_for(["alpha"], moved, before, "new reason", "2026-11-21")
    assert out["3.12"]["alpha"] == Hold("alpha", "1.0", "1.1", "old reason", "2026-11-01")
    assert out["3.13"]["alpha"] == Hold("alpha", "1.0", "1.2", "new reason", "2026-11-21")
    assert out["3.12"]["alpha"].to_toml()["first-failing"] == "1.1"
    assert Hold.from_toml(out["3.13"]["alpha"].to_toml()) == out["3.13"]["alpha"]


# --- the commit job's rule across systems (bot.nightly.holdback.merge_systems) ---------------

LIB = Hold("nb-lib", "1.0", "1.2", "nb-lib failed to build on aarch64-linux", "2026-12-01")
APP = Hold("nb-app", "1.0", "1.1", "nb-app failed to build on x86_64-linux", "2026-12-01")
SYSTEMS = ["x86_64-linux", "aarch64-linux"]


def built(system: str, *held: Hold, also: tuple[frozenset[str], ...] = ()) -> SystemResult:
    """A system whose build needed ``held`` (and that built the configurations ``also``)."""
    names = frozenset(h.name for h in held)
    configs = {names: f"{system}/0", **{c: f"{system}/{i + 1}" for i, c in enumerate(also)}}
    return SystemResult(system, names, {"3.12": {h.name: h for h in held}}, configs)


def test_merge_every_system_built_as_locked() -> None:
    merged = merge_systems(SYSTEMS, {s: built(s) for s in SYSTEMS})
    assert (merged.decision, merged.held, merged.failed) == ("commit", frozenset(), [])
    assert merged.table("3.12") == []


def test_merge_holds_from_two_systems_are_the_union() -> None:
    """Each system needed a different hold: one version per package serves both, so both
    are held; that configuration was built nowhere, so it is not committed as a lock."""
    merged = merge_systems(
        SYSTEMS,
        {"x86_64-linux": built("x86_64-linux", APP), "aarch64-linux": built("aarch64-linux", LIB)},
    )
    assert merged.decision == "hold-now"
    assert merged.held == {"nb-app", "nb-lib"}
    assert merged.systems_of == {"nb-app": ["x86_64-linux"], "nb-lib": ["aarch64-linux"]}
    table = merged.table("3.12")
    assert [(r["name"], r["version"], r["first-failing"], r["systems"]) for r in table] == [
        ("nb-app", "1.0", "1.1", ["x86_64-linux"]),
        ("nb-lib", "1.0", "1.2", ["aarch64-linux"]),
    ]
    assert merged.source is None


def test_merge_one_system_held_the_other_built_it_too() -> None:
    """aarch64-linux needs nb-lib held; x86_64-linux built as locked.  Without the held
    configuration built on x86_64-linux it is hold-now; with it (the recorded holds built
    there, as the next night does) the held lock is committed."""
    results = {"x86_64-linux": built("x86_64-linux"), "aarch64-linux": built("aarch64-linux", LIB)}
    merged = merge_systems(SYSTEMS, results)
    assert (merged.decision, merged.held) == ("hold-now", {"nb-lib"})
    results["x86_64-linux"] = built("x86_64-linux", also=(frozenset({"nb-lib"}),))
    merged = merge_systems(SYSTEMS, results)
    assert (merged.decision, merged.held, merged.source) == ("commit", {"nb-lib"}, "x86_64-linux")
    assert merged.table("3.12")[0]["systems"] == ["aarch64-linux"]


def test_merge_same_hold_on_both_systems_is_committed() -> None:
    merged = merge_systems(SYSTEMS, {s: built(s, LIB) for s in SYSTEMS})
    assert (merged.decision, merged.held) == ("commit", {"nb-lib"})
    assert merged.systems_of == {"nb-lib": SYSTEMS}


def test_merge_conflicting_holds_fail_the_set() -> None:
    """Two systems keeping one package at different versions (they did not start from the
    same committed lock): nothing is committed, and the problem names both."""
    other = Hold("nb-lib", "0.9", "1.2", "nb-lib failed to build on x86_64-linux", "2026-12-01")
    merged = merge_systems(
        SYSTEMS,
        {
            "x86_64-linux": built("x86_64-linux", other),
            "aarch64-linux": built("aarch64-linux", LIB),
        },
    )
    assert merged.decision == "failed"
    assert merged.problem is not None
    assert "nb-lib" in merged.problem
    assert "0.9 on x86_64-linux" in merged.problem
    assert "1.0 on aarch64-linux" in merged.problem


@pytest.mark.parametrize("broken", ["missing", "nothing built"])
def test_merge_a_system_without_a_build_fails_the_set(broken: str) -> None:
    """A planned system with no outcome file (its job did not finish) counts as failed, never
    as succeeded, even when every other system built."""
    results = {"x86_64-linux": built("x86_64-linux", LIB)}
    if broken == "nothing built":
        results["aarch64-linux"] = SystemResult("aarch64-linux", None)
    merged = merge_systems(SYSTEMS, results)
    assert (merged.decision, merged.failed) == ("failed", ["aarch64-linux"])
    assert merge_systems([], {}).decision == "failed"


def test_with_held_replaces_the_table_in_place() -> None:
    lock = {"lock-version": "1.0", "tool": {"nixpkgs-python": {"set": "demo", "exclude-newer": "T",
            "held": [{"name": "old"}], "indexes": []}}}  # fmt: skip
    out = with_held(lock, [{"name": "nb-lib", "systems": ["aarch64-linux"]}])
    assert list(out["tool"]["nixpkgs-python"]) == ["set", "exclude-newer", "held", "indexes"]
    assert out["tool"]["nixpkgs-python"]["held"] == [
        {"name": "nb-lib", "systems": ["aarch64-linux"]}
    ]
    assert "held" not in with_held(lock, [])["tool"]["nixpkgs-python"]
    assert lock["tool"]["nixpkgs-python"]["held"] == [{"name": "old"}]  # not changed in place
