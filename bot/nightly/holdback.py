"""Hold back, don't drop: when an update breaks a set, find the bumps that break it.

The night's new locks failed to build, but the previous locks built.  Instead of dropping the
whole update, search for the smallest set of bumped packages to keep at their last good
version so that everything else can advance.  Each probe is a real build (re-lock with some
packages pinned, then ``nix-build``), so the search is bounded (:data:`MAX_BUILDS`) and
starts with the obvious suspects: the package whose build failed, and last night's holds.
Configurations Nix has built before cost nothing, so retrying is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.lock.command import Hold, LockOutcome
from bot.nightly import report

#: most builds one set may spend on finding what to hold, per night
MAX_BUILDS = 8


@dataclass
class Search:
    """The result of :func:`find_holds`."""

    held: list[str] | None  #: packages to hold; None: no configuration built
    builds: int  #: probes spent
    exhausted: bool = False  #: the budget ran out (the rest of the bumps were held untested)
    probes: list[tuple[tuple[str, ...], bool]] = field(default_factory=list)


def find_holds(
    bumped: Sequence[str],
    suspects: Sequence[str],
    builds_with: Callable[[frozenset[str]], bool],
    *,
    budget: int = MAX_BUILDS,
) -> Search:
    """Which of ``bumped`` to hold so that ``builds_with(held)`` is true, advancing the rest.

    ``builds_with(held)`` re-locks with ``held`` pinned to their old versions and builds.
    Suspects are tried first (one probe); then the bumps are bisected: a group of bumps is
    advanced together when that builds, split in two when it does not, and a single bump that
    does not build is held.  At most ``budget`` probes, the last one kept to confirm the
    result; a configuration already probed is not built again.
    """
    names = sorted(set(bumped))
    search = Search(held=None, builds=0)
    known: dict[frozenset[str], bool] = {frozenset(): False}  # advancing everything failed

    def probe(held: frozenset[str]) -> bool:
        if held in known:
            return known[held]
        search.builds += 1
        ok = known[held] = builds_with(held)
        search.probes.append((tuple(sorted(held)), ok))
        return ok

    first = sorted(set(suspects) & set(names))
    advanced: list[str] = []
    held: list[str] = []
    queue: list[list[str]] = [names]
    if first and probe(frozenset(first)):
        # everything else advances; release the suspects that are not to blame (one may be
        # last night's hold whose fixed version is out)
        advanced = [n for n in names if n not in first]
        queue = [first] if len(first) > 1 else []
        held = [] if len(first) > 1 else first
    while queue:
        group = queue.pop(0)
        if search.builds >= budget - 1:  # keep one probe to confirm the result
            held += group
            search.exhausted = True
            continue
        if probe(frozenset(n for n in names if n not in advanced and n not in group)):
            advanced += group
        elif len(group) == 1:
            held += group
        else:
            middle = len(group) // 2
            queue[:0] = [group[:middle], group[middle:]]
    final = frozenset(held)
    confirmed = next(
        (ok for probed, ok in reversed(search.probes) if frozenset(probed) == final), None
    )
    if confirmed is None:
        confirmed = probe(final)
    search.held = sorted(held) if confirmed else None
    return search


def bumps(outcomes: Sequence[LockOutcome]) -> dict[str, dict[str, tuple[str, str]]]:
    """name -> {python: (old version, new version)} for packages whose version moved."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for o in outcomes:
        for name, old, new in o.changes:
            if old is not None and new is not None:
                out.setdefault(name, {})[o.python] = (old, new)
    return out


def holds_for(
    held: Sequence[str],
    moved: Mapping[str, Mapping[str, tuple[str, str]]],
    previous: Mapping[str, Mapping[str, Hold]],
    reason: str,
    today: str,
) -> dict[str, dict[str, Hold]]:
    """python -> name -> Hold for the packages in ``held``.

    A package held before keeps its first failing version and its date.
    """
    out: dict[str, dict[str, Hold]] = {}
    for name in held:
        for python, (old, new) in moved.get(name, {}).items():
            before = previous.get(python, {}).get(name)
            out.setdefault(python, {})[name] = Hold(
                name=name,
                version=old,
                first_failing=before.first_failing if before else new,
                reason=before.reason if before else reason,
                since=before.since if before else today,
            )
    return out


def held_report(
    held: Mapping[str, Mapping[str, Hold]], search: Search | None
) -> list[report.HeldPackage]:
    """The held packages for the report (one per package, whatever the Python)."""
    seen: dict[str, report.HeldPackage] = {}
    for holds in held.values():
        for h in holds.values():
            seen.setdefault(
                h.name,
                report.HeldPackage(
                    h.name, h.version, h.first_failing, f"({h.reason}, held since {h.since})"
                ),
            )
    return [seen[n] for n in sorted(seen)] if search is not None and search.held else []


def hold_log(held: Mapping[str, Mapping[str, Hold]], search: Search | None) -> str:
    """How the holds were found, probe by probe, for the failure issue and the report."""
    if search is None:
        return ""
    names = sorted({h.name for hs in held.values() for h in hs.values()})
    limit = f" (limit {MAX_BUILDS})" + (", budget exhausted" if search.exhausted else "")
    lines = [f"held back: {', '.join(names)}", f"found in {search.builds} build(s){limit}:"]
    lines += [
        f"  held [{', '.join(p) or 'nothing'}]: {'builds' if ok else 'fails'}"
        for p, ok in search.probes
    ]
    return "\n".join(lines)
