"""The hold-back search, as data: which bumps break the build, found within a budget."""

from __future__ import annotations

import pytest

from bot.lock.command import Hold
from bot.nightly.holdback import find_holds, holds_for

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
