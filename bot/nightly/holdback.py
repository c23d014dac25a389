"""Hold back, don't drop: when an update breaks a set, find the bumps that break it.

The night's new locks failed to build, but the previous locks built.  Instead of dropping the
whole update, search for the smallest set of bumped packages to keep at their last good
version so that everything else can advance.  Each probe is a real build (re-lock with some
packages pinned, then ``nix-build``), so the search is bounded (:data:`MAX_BUILDS`) and
starts with the obvious suspects: the package whose build failed, and last night's holds.
Configurations Nix has built before cost nothing, so retrying is cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.lock.command import Hold, LockOptions, LockOutcome
from bot.nightly import report

if TYPE_CHECKING:
    from pathlib import Path

    from bot.build.command import BuildOptions
    from bot.model.sets import PackageSet

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


# --- one system of CI's matrix, and the commit job's rule across systems ----------------------
#
# In CI each (set, system) job locks and builds on its own runner.  When the build fails on
# its system, that job searches for holds the same way (:func:`system_hold_back`, bounded by
# :data:`MAX_BUILDS`) and records what it found in ``holdback.json``; it never commits.  The
# commit job then decides with :func:`merge_systems`, since one lock serves every system.


def moved_between(
    old: Mapping[str, Mapping[str, Any] | None], new: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, tuple[str, str]]]:
    """name -> {python: (old version, new version)} for the packages whose version moved
    between two locks per Python (added and removed packages cannot be held)."""
    from bot.model.locks import package_changes as changes

    out: dict[str, dict[str, tuple[str, str]]] = {}
    for python, document in new.items():
        for name, before, after in changes(dict(old.get(python) or {}), dict(document)):
            if before is not None and after is not None:
                out.setdefault(name, {})[python] = (before, after)
    return out


@dataclass
class SystemResult:
    """What the job of one (set, system) recorded, as the commit job reads it."""

    system: str
    #: the holds its build needed (empty: it built as locked); None: nothing built there
    held: frozenset[str] | None
    #: python -> name -> Hold of that configuration
    holds: Mapping[str, Mapping[str, Hold]] = field(default_factory=dict)
    #: every configuration (held names) that built and was pushed there -> its locks' folder
    built: Mapping[frozenset[str], Any] = field(default_factory=dict)


@dataclass
class Merged:
    """The commit job's decision for one set across its systems (:func:`merge_systems`)."""

    #: commit: the lock of ``held`` built on every system, commit it; hold-now: it did not,
    #: commit the previous lock's packages with ``held`` recorded; failed: commit nothing
    decision: str
    held: frozenset[str] = frozenset()
    #: python -> name -> Hold, merged over the systems
    holds: dict[str, dict[str, Hold]] = field(default_factory=dict)
    #: name -> the systems whose build needed it held
    systems_of: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  #: systems with no build (or no outcome)
    problem: str | None = None
    #: for "commit": the system whose locks of ``held`` are taken (all must agree)
    source: str | None = None

    def table(self, python: str) -> list[dict[str, Any]]:
        """The lock's ``[tool.nixpkgs-python].held`` records for ``python``: each hold with
        the systems that needed it."""
        return [
            dataclasses.replace(h, systems=tuple(self.systems_of.get(name, []))).to_toml()
            for name, h in sorted(self.holds.get(python, {}).items())
        ]


def merge_systems(planned: Sequence[str], results: Mapping[str, SystemResult]) -> Merged:
    """The rule for a set built on ``planned`` systems, given what each recorded.

    - A planned system with no result (its job did not finish) or nothing built fails the set
      (a missing outcome is a failure, never a success): nothing is committed.
    - Otherwise one version per package serves every system, so the set's holds are the union
      of the systems' holds, each naming the systems that needed it.  When every system built
      that very configuration (the same holds), its lock is committed ("commit").
    - When they differ, that lock was not built everywhere and is never committed: the
      previous lock's packages are committed with the union recorded as held ("hold-now").
      The next night every system builds the recorded holds too, so the union is built on
      every system and committed then, or released where a newer version builds everywhere.
    - Systems that disagree on the version a package is kept at fail the set (they locked
      from different previous locks: a bug, reported as one).
    """
    failed = [s for s in planned if s not in results or results[s].held is None]
    if not planned:
        return Merged("failed", problem="the set was built on no system")
    if failed:
        return Merged("failed", failed=failed)
    union: set[str] = set()
    systems_of: dict[str, list[str]] = {}
    holds: dict[str, dict[str, Hold]] = {}
    for system in planned:
        result = results[system]
        for name in sorted(result.held or ()):
            union.add(name)
            systems_of.setdefault(name, []).append(system)
        for python, by_name in result.holds.items():
            for name, hold in by_name.items():
                if name not in (result.held or ()):
                    continue
                before = holds.setdefault(python, {}).get(name)
                if before is None:
                    holds[python][name] = hold
                elif before.version != hold.version:
                    first = systems_of[name][0]
                    return Merged(
                        "failed",
                        problem=f"the systems disagree on the version of {name} to keep for "
                        f"Python {python}: {before.version} on {first}, {hold.version} on {system}",
                    )
    held = frozenset(union)
    everywhere = all(held in results[s].built for s in planned)
    return Merged(
        "commit" if everywhere else "hold-now",
        held=held,
        holds=holds,
        systems_of=systems_of,
        source=planned[0] if everywhere else None,
    )


def with_held(document: Mapping[str, Any], table: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``document`` (a lock) with its ``[tool.nixpkgs-python].held`` table replaced."""
    from bot.model.locks import TOOL

    out = dict(document)
    tool = dict(out.get("tool", {}))
    provenance = {k: v for k, v in tool.get(TOOL, {}).items() if k != "held"}
    if table:  # where a lock written with holds has it: after the snapshot time
        keys = list(provenance)
        at = keys.index("exclude-newer") + 1 if "exclude-newer" in keys else len(keys)
        items = list(provenance.items())
        items.insert(at, ("held", [dict(t) for t in table]))
        provenance = dict(items)
    tool[TOOL] = provenance
    out["tool"] = tool
    return out


def _failing(build_outcome: Mapping[str, Any] | None) -> tuple[bool, list[str], str]:
    """(built, failing packages, the first failure's log tail) from ``build --outcome``."""
    results = (build_outcome or {}).get("results")
    if not isinstance(results, list) or not results:
        return False, [], ""
    rows = [r for r in results if isinstance(r, dict)]
    failed = [r for r in rows if r.get("ok") is not True]
    packages = sorted({str(r["failed_package"]) for r in failed if r.get("failed_package")})
    tail = next((str(r.get("log_tail") or r.get("error") or "") for r in failed), "")
    return not failed and len(rows) == len(results), packages, tail


def system_hold_back(
    pset: PackageSet,
    system: str,
    build_outcome: Mapping[str, Any] | None,
    configs_dir: Path,
    *,
    lock_opts: LockOptions,
    build_opts: BuildOptions,
    today: str,
    progress: Callable[[str], None] = lambda _msg: None,
    budget: int = MAX_BUILDS,
) -> dict[str, Any]:
    """Hold-back for one (set, system) job of CI: what ``holdback.json`` records.

    The lock step left the night's new locks in ``sets/<name>/`` and the build step's
    ``build --outcome`` says whether they built on ``system``.  When they did not, the bumps
    since the committed locks (HEAD) are searched as in the local nightly (the failing
    package and the recorded holds first, at most ``budget`` builds).  When they did and the
    committed locks record holds, those holds are built too (one build): the commit job can
    only commit holds another system needs once every system has built them.

    The configurations kept get their locks under ``configs_dir/<n>/`` (the job pushes each):
    ``0`` the one this system needs, ``1`` the recorded holds when they built too and differ.
    ``sets/<name>/`` is left with the first.  Nothing is committed here.
    """
    import tomllib
    from datetime import UTC, datetime
    from pathlib import Path

    from bot.build.command import build_sets
    from bot.core import git
    from bot.core.errors import BotError
    from bot.core.files import write_atomic
    from bot.lock.command import index_routes, lock_one, recorded_holds
    from bot.lock.index.client import IndexClient
    from bot.model.overrides import load_overrides

    repo = lock_opts.repo
    pythons = list(pset.python)
    paths = {p: pset.lock_path(p) for p in pythons}
    missing = [str(paths[p]) for p in pythons if not paths[p].is_file()]
    doc: dict[str, Any] = {"set": pset.name, "system": system, "held": None, "error": None}
    if missing:
        doc["error"] = f"no new lock to hold back from: {', '.join(missing)}"
        return doc
    committed = {p: git.show_head(repo, paths[p]) for p in pythons}
    tonight = {p: paths[p].read_text(encoding="utf-8") for p in pythons}
    old = {p: tomllib.loads(t) if t is not None else None for p, t in committed.items()}
    moved = moved_between(old, {p: tomllib.loads(t) for p, t in tonight.items()})
    previous = {p: recorded_holds(old[p]) for p in pythons}
    recorded = frozenset(n for hs in previous.values() for n in hs) & frozenset(moved)
    built, suspects, log_tail = _failing(build_outcome)
    reason = f"{suspects[0] if suspects else 'the set'} failed to build on {system}"
    doc.update(built=built, log_tail=log_tail, limit=budget, builds=0, probes=[], configs=[])
    texts: dict[frozenset[str], dict[str, str]] = {}
    holds_of: dict[frozenset[str], dict[str, dict[str, Hold]]] = {}
    errors: list[str] = []
    library = load_overrides(repo)
    client: IndexClient | None = None

    def index() -> IndexClient:
        nonlocal client
        if client is None:
            client = IndexClient(
                tuple(index_routes(pset, lock_opts.index_url)),
                cache_dir=lock_opts.cache_dir,
                retries=lock_opts.retries,
            )
        return client

    def relock(holds: Mapping[str, Mapping[str, Hold]]) -> str | None:
        """Lock with ``holds`` into ``sets/``; the error met, if any."""
        for p in pythons:  # lock_one compares with, and diffs against, the committed lock
            text = committed[p]
            if text is None:
                paths[p].unlink(missing_ok=True)
            else:
                write_atomic(paths[p], text)
            try:
                outcome = lock_one(pset, p, index, lock_opts, datetime.now(UTC),
                                   holds=holds.get(p), library=library)  # fmt: skip
            except BotError as exc:
                return str(exc)
            if outcome.status == "failed":
                return outcome.error or f"locking {pset.name} for Python {p} failed"
        return None

    def builds_with(names: frozenset[str]) -> bool:
        holds = holds_for(sorted(names), moved, previous, reason, today)
        shown = ", ".join(sorted(names)) or "nothing"
        progress(f"{pset.name} on {system}: building with {shown} held")
        error = relock(holds)
        if error is not None:
            errors.append(f"held [{shown}]: {error}")
            return False
        locked = {p: paths[p].read_text(encoding="utf-8") for p in pythons}
        ok = all(r.ok for r in build_sets(build_opts))
        if ok:
            texts[names], holds_of[names] = locked, holds
        return ok

    final: frozenset[str] | None = None
    try:
        if built:
            final = frozenset()
            texts[final], holds_of[final] = tonight, {}
            if recorded:  # built here; the holds may still be needed elsewhere
                builds_with(recorded)
                doc["builds"] = 1
                doc["probes"] = [{"held": sorted(recorded), "ok": recorded in texts}]
        elif any(o is None for o in old.values()):
            doc["error"] = (
                f"it does not build on {system}, and there is no committed lock to hold back to"
            )
        elif not moved:
            doc["error"] = (
                f"it does not build on {system}, and no package moved since the committed "
                "lock: nothing to hold"
            )
        else:
            search = find_holds(sorted(moved), sorted(set(suspects) | recorded), builds_with,
                                budget=budget)  # fmt: skip
            doc.update(
                builds=search.builds,
                exhausted=search.exhausted,
                probes=[{"held": list(p), "ok": ok} for p, ok in search.probes],
            )
            if search.held is not None:
                final = frozenset(search.held)
            else:
                doc["error"] = f"no configuration within {budget} builds built on {system}"
    finally:
        if client is not None:
            client.close()
    if errors:
        doc["lock_errors"] = errors[-5:]
    if final is None:
        for p in pythons:  # the job leaves tonight's locks as the lock step wrote them
            write_atomic(paths[p], tonight[p])
        return doc
    for p in pythons:
        write_atomic(paths[p], texts[final][p])
    keep = [final] + ([recorded] if recorded and recorded != final and recorded in texts else [])
    root = Path(configs_dir)
    for number, names in enumerate(keep):
        folder = root / str(number)
        folder.mkdir(parents=True, exist_ok=True)
        for p in pythons:
            write_atomic(folder / paths[p].name, texts[names][p])
        doc["configs"].append({"held": sorted(names), "dir": str(number)})
    doc["held"] = sorted(final)
    doc["holds"] = {
        p: [h.to_toml() for _, h in sorted(hs.items())] for p, hs in holds_of[final].items()
    }
    doc["culprits"] = [
        {"name": h.name, "python": p, "kept": h.version, "first_failing": moved[h.name][p][1]}
        for p, hs in sorted(holds_of[final].items())
        for _, h in sorted(hs.items())
    ]
    return doc
