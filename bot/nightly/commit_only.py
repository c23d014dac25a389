"""CI's final job: the build jobs locked, built and pushed each (set, system) on that system's
runner; this commits the locks of the sets that succeeded on every system (one commit per set),
reports the outcomes per system, and publishes.

``nixpkgs-python nightly --commit-only`` runs it; nothing is locked or built here.  The jobs'
results are read as data, never from their logs: under ``--outcomes DIR``,

- ``plan.json`` (optional): ``{"sets": [...], "built": [{"set", "system"}, ...],
  "not-built": [{"system", "reason"}, ...]}``, the matrix the night scheduled.  A scheduled
  (set, system) without an outcome is a job that did not finish: a failure.
- one folder per (set, system), any name: ``outcome.json`` (``{"set", "system", "lock",
  "build", "push"}``: the steps' outcomes, ``success``/``failure``/``cancelled``/``skipped``),
  ``build.json`` (``nixpkgs-python build --outcome``), ``locks/pylock.*.toml`` (the set's new
  locks) and the steps' logs (``lock.log``, ``build.log``, ``push.log``), kept for people;
  ``holdback.json`` (``nixpkgs-python hold-back``: the holds that system's build needed, the
  culprit releases, the probes, the failing log's tail) with ``configs/<n>/``, the locks of
  each configuration that built and was pushed there.  Holds that differ by system are
  decided by :func:`bot.nightly.holdback.merge_systems`.

Without ``--outcomes`` the locks already in ``sets/`` are committed as they are.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core import git
from bot.core.errors import BotError
from bot.core.files import read_json
from bot.core.proc import tail
from bot.lock import document as lockfile
from bot.lock.command import Hold
from bot.model import locks
from bot.model.locks import LockDiff, commit_body, commit_subject, diff_locks
from bot.model.sets import PackageSet, load_sets
from bot.nightly import publish, report
from bot.nightly.holdback import Merged, SystemResult, merge_systems, with_held
from bot.nightly.options import (
    NightlyOptions,
    NightResult,
    SetOutcome,
    github_client,
    night_date,
)

LOG_LINES = 40


@dataclass
class SystemOutcome:
    """What one build job recorded for one (set, system)."""

    set: str
    system: str
    ok: bool
    summary: str  #: one line for people: "built", "build failed (package nb-lib)", ...
    folder: Path | None = None
    #: (python, failing package, log tail) per failed Python version
    failures: list[tuple[str, str | None, str]] = field(default_factory=list)
    #: what its build needed held (empty: nothing), python -> name -> Hold of those holds
    held: frozenset[str] = frozenset()
    holds: dict[str, dict[str, Hold]] = field(default_factory=dict)
    #: the configurations (held names) built and pushed there -> the folder of their locks
    built: dict[frozenset[str], Path] = field(default_factory=dict)
    hold_log: str = ""  #: how the holds were found there, for people

    def result(self) -> SystemResult:
        """What :func:`bot.nightly.holdback.merge_systems` reads."""
        return SystemResult(self.system, self.held if self.ok else None, self.holds, self.built)


def _log(folder: Path, name: str) -> str:
    path = folder / name
    if not path.is_file():
        return ""
    return tail(path.read_text(encoding="utf-8", errors="replace"), LOG_LINES)


def _recorded(outcomes_dir: Path) -> dict[tuple[str, str], Path]:
    """(set, system) -> the folder holding its outcome.json."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(outcomes_dir.glob("*/outcome.json")):
        try:
            data = read_json(path)
            key = (str(data["set"]), str(data["system"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: the (set, system) it belonged to counts as unrecorded
        found[key] = path.parent
    return found


def _plan(outcomes_dir: Path) -> dict[str, Any] | None:
    path = outcomes_dir / "plan.json"
    if not path.is_file():
        return None
    problem = "not an object with a list 'built' of {set, system} objects"
    try:
        plan = read_json(path)
    except (OSError, ValueError) as exc:
        plan, problem = None, str(exc)
    if isinstance(plan, dict) and isinstance(plan.get("built", []), list):
        entries = plan.get("built", [])
        if all(isinstance(e, dict) and "set" in e and "system" in e for e in entries):
            plan.setdefault("built", [])
            return plan
    raise BotError(
        f"unreadable night plan: {problem}",
        where=str(path),
        hint="the sets job writes it from its `plan` output",
    )


def _holdback(folder: Path) -> dict[str, Any] | None:
    """The job's ``holdback.json``, checked field by field (None: absent or malformed)."""
    path = folder / "holdback.json"
    try:
        data = read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    held, configs, holds = data.get("held"), data.get("configs", []), data.get("holds", {})
    names_ok = held is None or (isinstance(held, list) and all(isinstance(n, str) for n in held))
    configs_ok = isinstance(configs, list) and all(
        isinstance(c, dict)
        and isinstance(c.get("held"), list)
        and all(isinstance(n, str) for n in c["held"])
        and isinstance(c.get("dir"), str)
        and c["dir"].isdigit()
        for c in configs
    )
    holds_ok = isinstance(holds, dict) and all(
        isinstance(v, list)
        and all(isinstance(h, dict) and "name" in h and "version" in h for h in v)
        for v in holds.values()
    )
    return data if names_ok and configs_ok and holds_ok else None


def _hold_log(system: str, data: Mapping[str, Any]) -> str:
    """How one system's holds were found (or not), probe by probe."""
    probes = [p for p in data.get("probes", []) if isinstance(p, dict)]
    held = data.get("held")
    head = (
        f"on {system}: held back {', '.join(held) or 'nothing'}"
        if isinstance(held, list)
        else f"on {system}: nothing to hold: {data.get('error') or 'no configuration built'}"
    )
    lines = [head]
    culprits = [c for c in data.get("culprits", []) if isinstance(c, dict)]
    lines += [
        f"  {c.get('name')} {c.get('first_failing')} does not build (Python {c.get('python')}), "
        f"kept at {c.get('kept')}"
        for c in culprits
    ]
    if probes:
        limit = f" (limit {data.get('limit')})" + (
            ", budget exhausted" if data.get("exhausted") else ""
        )
        lines.append(f"  {data.get('builds', len(probes))} build(s){limit}:")
        lines += [
            f"    held [{', '.join(map(str, p.get('held', []))) or 'nothing'}]: "
            f"{'builds' if p.get('ok') else 'fails'}"
            for p in probes
        ]
    tail = str(data.get("log_tail") or "")
    if tail:
        lines += ["  the failing build's log (last lines):", tail]
    return "\n".join(lines)


def _configs(folder: Path, data: Mapping[str, Any] | None) -> dict[frozenset[str], Path]:
    if data is None:
        return {frozenset(): folder / "locks"}
    return {frozenset(c["held"]): folder / "configs" / c["dir"] for c in data.get("configs", [])}


def _holds(data: Mapping[str, Any]) -> dict[str, dict[str, Hold]]:
    out: dict[str, dict[str, Hold]] = {}
    for python, records in data.get("holds", {}).items():
        for record in records:
            hold = Hold.from_toml(record)
            out.setdefault(str(python), {})[hold.name] = hold
    return out


def _system_outcome(name: str, system: str, folder: Path | None) -> SystemOutcome:
    if folder is None:
        return SystemOutcome(
            name,
            system,
            ok=False,
            summary="no outcome recorded (its job did not finish)",
            failures=[("", None, f"no outcome was recorded for set {name} on {system}")],
        )
    data = read_json(folder / "outcome.json")
    if data.get("lock") != "success":
        log = _log(folder, "lock.log") or "the lock step did not succeed"
        return SystemOutcome(name, system, False, "lock failed", folder, [("", None, log)])
    hb = _holdback(folder)
    held_ok = (
        hb is not None and isinstance(hb.get("held"), list) and data.get("holdback") == "success"
    )
    if data.get("build") != "success" and not held_ok:
        failures: list[tuple[str, str | None, str]] = []
        try:
            results = read_json(folder / "build.json")["results"]
            for r in results:
                if not r.get("ok"):
                    text = str(r.get("log_tail") or r.get("error") or "")
                    failures.append((str(r.get("python") or ""), r.get("failed_package"), text))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if not failures:
            failures = [("", None, _log(folder, "build.log") or "the build step did not succeed")]
        if hb is not None:  # the search found nothing to hold: say how it looked
            failures = [(p, pkg, f"{text}\n\n{_hold_log(system, hb)}") for p, pkg, text in failures]
        packages = sorted({p for _, p, _ in failures if p})
        what = f" (package {', '.join(packages)})" if packages else ""
        nothing = ", nothing to hold" if hb is not None else ""
        return SystemOutcome(name, system, False, f"build failed{what}{nothing}", folder, failures)
    if data.get("holdback") not in (None, "", "success"):  # it built, then the step broke
        log = _log(folder, "holdback.log") or "the hold-back step did not succeed"
        return SystemOutcome(name, system, False, "hold-back failed", folder, [("", None, log)])
    if data.get("push") not in ("success", "skipped", ""):
        log = _log(folder, "push.log") or "the push step did not succeed"
        return SystemOutcome(name, system, False, "push failed", folder, [("", None, log)])
    pushed = "built and pushed" if data.get("pushed") else "built (not pushed)"
    outcome = SystemOutcome(name, system, True, pushed, folder, built=_configs(folder, hb))
    return _with_holds(outcome, hb) if hb is not None and hb.get("held") else outcome


def _with_holds(outcome: SystemOutcome, hb: Mapping[str, Any]) -> SystemOutcome:
    """A system that built with holds: which, why, and how they were found."""
    folder, system = outcome.folder, outcome.system
    outcome.held = frozenset(hb["held"])
    try:
        outcome.holds = _holds(hb)
    except (KeyError, TypeError, ValueError):
        bad: list[tuple[str, str | None, str]] = [
            ("", None, f"{folder}/holdback.json: malformed holds")
        ]
        return SystemOutcome(outcome.set, system, False, "unreadable holdback.json", folder, bad)
    culprits = ", ".join(
        dict.fromkeys(
            f"{c.get('name')} {c.get('first_failing')}"
            for c in hb.get("culprits", [])
            if isinstance(c, dict)
        )
    )
    outcome.summary = (
        f"{outcome.summary} with {', '.join(sorted(outcome.held))} held ({culprits} does not "
        f"build there; {hb.get('builds', '?')} build(s))"
    )
    outcome.hold_log = _hold_log(system, hb)
    return outcome


def _systems_text(outcomes: Sequence[SystemOutcome], not_built: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"{o.system}: {o.summary}" for o in outcomes]
    lines += [f"{n.get('system')}: not built: {n.get('reason', '')}" for n in not_built]
    return "\n".join(lines)


def _place_locks(
    repo: Path, pset: PackageSet, outcomes: Sequence[SystemOutcome], merged: Merged
) -> str | None:
    """Put the set's lock as decided by ``merged`` into ``sets/<name>/``: the locks every
    system built (which must agree), or for "hold-now" the committed lock with the holds
    recorded.  Each hold names the systems that needed it.  An error when that cannot be."""
    chosen: dict[str, bytes] = {}
    if merged.decision == "hold-now":
        for python in pset.python:
            path = pset.lock_path(python)
            text = git.show_head(repo, path)
            if text is None:
                return f"{path.name} has no committed lock to keep with the holds"
            document = with_held(tomllib.loads(text), merged.table(python))
            chosen[path.name] = lockfile.dumps(document).encode()
    else:
        by_name: dict[str, tuple[bytes, str]] = {}
        for o in outcomes:
            folder = o.built.get(merged.held)
            if folder is None:
                continue
            for path in locks.locks_in(folder):
                data = path.read_bytes()
                if path.name in by_name and by_name[path.name][0] != data:
                    return (
                        f"the {path.name} locked on {o.system} differs from the one locked on "
                        f"{by_name[path.name][1]} (same snapshot time: the resolution must agree)"
                    )
                by_name.setdefault(path.name, (data, o.system))
        pythons = {pset.lock_path(p).name: p for p in pset.python}
        for name, (data, _) in by_name.items():
            chosen[name] = data
            if merged.held and name in pythons:  # each record names the systems needing it
                document = with_held(tomllib.loads(data.decode()), merged.table(pythons[name]))
                chosen[name] = lockfile.dumps(document).encode()
    for name, data in chosen.items():
        target = pset.path / name
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return None


def _failed(
    pset: PackageSet, outcomes: Sequence[SystemOutcome], systems: str, reason: str | None = None
) -> SetOutcome:
    """A set that did not succeed on every system: one failure per Python version, naming
    every system's outcome (a failure issue per set and Python shows them all)."""
    by_python: dict[str, list[tuple[str | None, str]]] = {p: [] for p in pset.python}
    for o in outcomes:
        for python, package, log in o.failures:
            for p in [python] if python else list(pset.python):
                by_python.setdefault(p, []).append((package, f"on {o.system}: {o.summary}\n{log}"))
    if reason is not None:
        for entries in by_python.values():
            entries.append((None, reason))
    failures: list[tuple[str, str | None, str]] = []
    for python, entries in by_python.items():
        if entries:
            package = next((p for p, _ in entries if p), None)
            logs = "\n\n".join(dict.fromkeys(text for _, text in entries))
            # the per-system lines last: a failure issue keeps the end of a long text
            failures.append((python, package, f"{logs}\n\nper system:\n{systems}"))
    package = next((p for _, p, _ in failures if p), None)
    log_tail = "\n\n".join(dict.fromkeys(text for _, _, text in failures))
    return SetOutcome(
        report.SetReport(
            pset.name, pset.python, "failed", failing_package=package, log_tail=log_tail
        ),
        failures=failures,
    )


def commit_only(opts: NightlyOptions, started: datetime) -> NightResult:
    """Commit each set's new locks (one commit per set) when it succeeded on every system it
    was built for, then publish and report."""
    lock_paths = {str(p.relative_to(opts.repo)) for p in locks.repo_locks(opts.repo)}
    git.ensure_clean(opts.repo, allow=lock_paths)
    git.ensure_identity(opts.repo)
    plan = _plan(opts.outcomes_dir) if opts.outcomes_dir is not None else None
    recorded = _recorded(opts.outcomes_dir) if opts.outcomes_dir is not None else {}
    not_built: list[Mapping[str, Any]] = list((plan or {}).get("not-built", []))
    outcomes: list[SetOutcome] = []
    summaries: list[str] = []
    snapshot: str | None = None
    for pset in load_sets(opts.repo, list(opts.sets)):
        if plan is not None:
            systems = [str(e["system"]) for e in plan["built"] if e.get("set") == pset.name]
        else:
            systems = sorted(s for n, s in recorded if n == pset.name)
        per_system = [_system_outcome(pset.name, s, recorded.get((pset.name, s))) for s in systems]
        systems_text = _systems_text(per_system, not_built)
        summaries += [f"{pset.name} on {line}" for line in systems_text.splitlines()]
        if opts.outcomes_dir is not None and not per_system:
            outcome = _failed(pset, [], systems_text, f"set {pset.name} was built on no system")
        elif not all(o.ok for o in per_system):
            outcome = _failed(pset, [o for o in per_system if not o.ok], systems_text)
        else:
            merged = merge_systems([o.system for o in per_system],
                                   {o.system: o.result() for o in per_system})  # fmt: skip
            if per_system and merged.held:
                systems_text += "\n" + _merge_line(merged, per_system)
                summaries.append(f"{pset.name}: {_merge_line(merged, per_system)}")
            if per_system and merged.decision == "failed":
                outcome = _failed(pset, [], systems_text, merged.problem)
            elif per_system and (error := _place_locks(opts.repo, pset, per_system, merged)):
                outcome = _failed(pset, [], systems_text, error)
            else:
                try:
                    outcome, moved = _commit_set(opts, pset, merged if per_system else None)
                    snapshot = moved or snapshot
                except BotError as exc:  # e.g. a lock the job uploaded does not parse
                    outcome = _failed(pset, [], systems_text, str(exc))
                else:
                    if per_system and merged.held:
                        outcome = _held(outcome, merged, per_system, systems_text)
        outcome.report = dataclasses.replace(
            outcome.report, systems=tuple(systems_text.splitlines())
        )
        if outcome.report.status == "failed":
            for path in locks.locks_in(pset.path):
                git.restore(opts.repo, path)
        outcomes.append(outcome)
    # the night of its snapshot: the locks the jobs made say it when --exclude-newer is not
    # given (CI's commit job), so a re-run the next day is still that night
    of = started if opts.exclude_newer or snapshot is None else lockfile.parse_time(snapshot)
    night = report.NightReport(
        date=night_date(opts, of),
        sets=tuple(o.report for o in outcomes),
        exclude_newer=snapshot,
        run_url=opts.run_url,
    )
    provenance = publish.build_provenance(opts)
    errors = publish.publish(
        opts, night, outcomes, github_client(opts), lambda _msg: None, provenance=provenance
    )
    result = publish.end_night(opts, night, outcomes, errors, provenance=provenance)
    _write_systems(summaries)
    return result


def _merge_line(merged: Merged, outcomes: Sequence[SystemOutcome]) -> str:
    """One line for people: what is held across the systems, and why it was committed so."""
    needed = "; ".join(
        f"{name} (needed on {', '.join(merged.systems_of.get(name, []))})"
        for name in sorted(merged.held)
    )
    if merged.decision == "commit":
        return f"held on every system: {needed}; that lock built on every system"
    missing = ", ".join(o.system for o in outcomes if merged.held not in o.built)
    return (
        f"held on every system: {needed}; that lock was not built on {missing}, so the "
        "committed lock's packages are kept with these holds recorded (every system builds "
        "them next night)"
    )


def _held(
    outcome: SetOutcome, merged: Merged, per_system: Sequence[SystemOutcome], systems: str
) -> SetOutcome:
    """The committed (or unchanged) set as held: the held packages, and one failure per Python
    (the failure issue says per system what failed and what was held)."""
    held: dict[str, report.HeldPackage] = {}
    for hs in merged.holds.values():
        for h in hs.values():
            where = ", ".join(merged.systems_of.get(h.name, []))
            held.setdefault(
                h.name,
                report.HeldPackage(
                    h.name, h.version, h.first_failing,
                    f"({h.reason}; needed on {where}; held since {h.since})",
                ),
            )  # fmt: skip
    logs = "\n\n".join(o.hold_log for o in per_system if o.hold_log)
    text = f"{logs}\n\nper system:\n{systems}"
    rows = [held[n] for n in sorted(held)]
    outcome.report = dataclasses.replace(
        outcome.report,
        status="held",
        held=tuple(rows),
        failing_package=rows[0].name if rows else None,
        log_tail=text,
    )
    outcome.failures = [  # one issue per Python, naming its first held package
        (python, sorted(hs)[0], text) for python, hs in sorted(merged.holds.items()) if hs
    ]
    return outcome


def _write_systems(lines: Sequence[str]) -> None:
    """The per-system outcomes in the step summary (the report has one row per set)."""
    if lines:
        report.append_step_summary(
            "\n## Systems\n\n" + "".join(f"- {line}\n" for line in lines), os.environ
        )


def _commit_set(
    opts: NightlyOptions, pset: PackageSet, merged: Merged | None = None
) -> tuple[SetOutcome, str | None]:
    """Commit the set's locks now in ``sets/<name>/`` when their content moved (the holds of
    ``merged`` named in the message); also the snapshot time the locks say."""
    diffs: list[LockDiff] = []
    paths: list[Path] = []
    snapshot: str | None = None
    for python in pset.python:
        path = pset.lock_path(python)
        if not path.exists():
            continue
        new = lockfile.read_lock(path)
        snapshot = locks.provenance(new).get("exclude-newer", snapshot)
        old_text = git.show_head(opts.repo, path)
        old = tomllib.loads(old_text) if old_text is not None else None
        if lockfile.same_content(old, new):
            if old_text is not None:
                git.restore(opts.repo, path)  # only the snapshot time moved
            continue
        diffs.append(diff_locks(old, new))
        paths.append(path)
    if not paths:
        return SetOutcome(report.SetReport(pset.name, pset.python, "unchanged")), snapshot
    subject, body = commit_subject(pset.name, diffs), commit_body(pset.name, diffs)
    if merged is not None and merged.holds:
        holds = {h.name: h for hs in merged.holds.values() for h in hs.values()}
        on = {n: ", ".join(merged.systems_of.get(n, [])) for n in holds}
        body += "\n\nHeld back:\n" + "\n".join(
            f"- {h.name} kept at {h.version}: {h.first_failing} does not build on {on[n]}"
            for n, h in sorted(holds.items())
        )
        if not any(d.changes for d in diffs):
            subject = f"{pset.name}: hold " + ", ".join(
                f"{h.name} at {h.version} ({h.first_failing} fails on {on[n]})"
                for n, h in sorted(holds.items())
            )
    sha = git.commit_set(opts.repo, pset.name, paths, subject, body)
    return (
        SetOutcome(
            report.SetReport(
                pset.name, pset.python, "ok", diff=report.rows_from_diffs(diffs), commit=sha
            ),
            commit=sha,
            built=True,
        ),
        snapshot,
    )
