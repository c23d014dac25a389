"""A month of real nights, replayed: one ``nixpkgs-python nightly`` per day over a past period.

Usage::

    python benchmarks/replay.py run [--from 2026-11-01] [--to 2026-11-30] [--sets pytest,attrs]
                                    [--workdir DIR] [--hour 2]
    python benchmarks/replay.py summarize [--workdir DIR [--workdir DIR2 ...]] [--out DIR]
                                          [--cache-dir DIR]

``run`` clones this repository (``git clone``, committed state only) into ``DIR/repo`` once,
then for each day runs the real CLI, ``python -m bot.cli --repo DIR/repo nightly
--exclude-newer DAYT02:00:00Z``, with the clone's own ``bot/`` on ``PYTHONPATH`` (the code
of the commit cloned, frozen for the whole month), the nightly's embedded defaults (the local
signed file cache ``DIR/repo/binary-cache``, local commits, no GitHub; without the pinned
nixpkgs on the machine the nightly itself falls back to the standalone interpreters and says
so), and ``--cache-dir DIR/cache`` (the metadata cache and the overrides re-validation state,
carried from night to night like the repository: holds live in the committed locks).  Each
night writes ``DIR/nights/DAY/`` (``report.json``, ``report.md``, ``stderr.log``,
``night.json``: exit code, wall time, commits, cache growth).  A night whose ``night.json``
exists is not run again: an interrupted replay resumes where it stopped.

``summarize`` reads those files and writes ``DIR/replay.json`` and ``DIR/replay.md``: the
per-night table and the month's Upkeep figures (see :func:`upkeep`).  Upload times come from
the index client (``bot.lock.index.client``), the same pages the nightly read.  Several
``--workdir`` are replays of the same nights run side by side, each with its own ``--sets``
(the nightly's sets are independent): they are summarized as one month (:func:`merge`), the
per-night rows summing every replay's sets and the Upkeep figures over all of them;
``--out`` says where the files go, ``--cache-dir`` which index cache the upload times use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = ROOT.parent / f"{ROOT.name}-replay"


# ----------------------------------------------------------------------------- running


def night_time(day: date, hour: int = 2) -> datetime:
    """The snapshot of the night of ``day``: ``hour``:00 UTC."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def days(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end`` inclusive."""
    if end < start:
        raise SystemExit(f"replay: --to {end} is before --from {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _dir_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):  # a file removed meanwhile
                total += (Path(dirpath) / f).stat().st_size
    return total


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def prepare(workdir: Path, source: Path) -> Path:
    """The scratch clone (made once; the month's state lives in it)."""
    repo = workdir / "repo"
    if not (repo / ".git").exists():
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", str(source), str(repo)], check=True)
        local = source / "nix" / "local.json"  # this machine's interpreters, if configured
        if local.exists():
            shutil.copy(local, repo / "nix" / "local.json")
    return repo


def run_night(
    workdir: Path, repo: Path, day: date, sets: Sequence[str], hour: int, python: str
) -> dict[str, Any]:
    """One night through the real CLI; returns what ``night.json`` records."""
    out = workdir / "nights" / day.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    snapshot = night_time(day, hour).strftime("%Y-%m-%dT%H:%M:%SZ")
    argv = [
        python, "-m", "bot.cli", "--repo", str(repo), "-q", "nightly", *sets,
        "--exclude-newer", snapshot,
        "--cache-dir", str(workdir / "cache"),
        "--report-json", str(out / "report.json"),
        "--report-markdown", str(out / "report.md"),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(repo))
    before = _git(repo, "rev-parse", "HEAD")
    cache_before = _dir_bytes(repo / "binary-cache")
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    with (out / "stderr.log").open("w") as err, (out / "stdout.log").open("w") as std:
        rc = subprocess.run(argv, cwd=repo, env=env, stdout=std, stderr=err, check=False)
    wall = time.monotonic() - t0
    after = _git(repo, "rev-parse", "HEAD")
    commits = _git(repo, "rev-list", f"{before}..{after}").split()
    record = {
        "day": day.isoformat(),
        "snapshot": snapshot,
        "exit_code": rc.returncode,
        "wall_seconds": round(wall, 1),
        "started_at": _iso(started_at),
        "commits": len(commits),
        "head": after,
        "cache_bytes_added": _dir_bytes(repo / "binary-cache") - cache_before,
        "argv": argv,
    }
    (out / "night.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def run(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    repo = prepare(workdir, ROOT)
    sets = [s for s in (args.sets or "").split(",") if s]
    for day in days(args.start, args.end):
        if (workdir / "nights" / day.isoformat() / "night.json").exists():
            continue
        print(f"replay: night of {day} ...", flush=True)
        rec = run_night(workdir, repo, day, sets, args.hour, sys.executable)
        print(
            f"replay: night of {day}: exit {rec['exit_code']}, {rec['wall_seconds']:.0f} s, "
            f"{rec['commits']} commit(s)",
            flush=True,
        )
    return 0


# ----------------------------------------------------------------------------- figures


@dataclass
class NightRow:
    """One line of the per-night table."""

    day: str
    sets: int = 0  #: sets the night reported
    sets_bumped: int = 0
    packages_bumped: int = 0
    builds: int = 0
    holds_placed: int = 0
    holds_released: int = 0
    failures: int = 0
    build_minutes: float = 0.0
    pushed_bytes: int = 0
    wall_seconds: float | None = None
    exit_code: int | None = None
    failed_sets: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  #: "set/name kept (wanted)"
    replays: list[str] = field(default_factory=list)  #: merged replays that ran it (merge())


def _held_names(report: Mapping[str, Any]) -> dict[str, set[str]]:
    return {s["name"]: {h["name"] for h in s.get("held") or []} for s in report["sets"]}


def night_rows(
    reports: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> list[NightRow]:
    """The per-night table from (``night.json``, ``report.json``) pairs in night order.

    A hold is *placed* the night a set first reports it and *released* the first night the
    set reports without it (a set that failed that night keeps its holds: the lock did not
    change).  A *build* is a set the night built (status ok or held, or failed after
    locking changed something); *bumped* counts version changes actually committed.
    """
    rows: list[NightRow] = []
    holding: dict[str, set[str]] = {}
    for night, rep in reports:
        row = NightRow(day=night["day"], wall_seconds=night.get("wall_seconds"))
        row.exit_code = night.get("exit_code")
        row.sets = len(rep["sets"])
        row.replays = list(night.get("replays") or [])
        now = _held_names(rep)
        for s in rep["sets"]:
            name, status = s["name"], s["status"]
            if s.get("build_seconds") is not None:
                row.builds += 1
                row.build_minutes += s["build_seconds"] / 60
            row.pushed_bytes += s.get("pushed_bytes") or 0
            if status == "failed":
                row.failures += 1
                row.failed_sets.append(name)
                now[name] = holding.get(name, set())
                continue
            moved = [r for r in s.get("diff") or [] if r["old"] != r["new"]]
            if moved and s.get("commit"):
                row.sets_bumped += 1
                row.packages_bumped += len(moved)
            before = holding.get(name, set())
            row.holds_placed += len(now[name] - before)
            row.holds_released += len(before - now[name])
            row.held += [
                f"{name}/{h['name']} {h['kept']} ({h['wanted']})" for h in s.get("held") or []
            ]
        for name, before in holding.items():
            now.setdefault(name, before)  # a set not run tonight keeps its holds
        holding = now
        row.build_minutes = round(row.build_minutes, 1)
        rows.append(row)
    return rows


@dataclass
class Release:
    """One (set, member, version) that became the newest its constraints allow."""

    set: str
    name: str
    version: str
    uploaded: datetime  #: earliest upload time of the version's files (the index's)
    seen: str  #: first night that named it
    locked: str | None = None  #: first night whose committed lock had it or newer (None: never)
    lag_hours: float | None = None  #: that night's snapshot - upload (or the last one's, if never)
    #: nights it waited after it was first seen, by reason: held / failed / constrained
    waited: dict[str, int] = field(default_factory=dict)

    @property
    def why(self) -> str | None:
        """The reason it waited most nights (None: it did not wait)."""
        return max(self.waited, key=lambda k: self.waited[k]) if self.waited else None


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _night_versions(s: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(committed, wanted): name -> version the set's lock moved to tonight, and name -> the
    newest allowed version it did not lock (the report's freshness, or for a failed set the
    versions its failed lock wanted)."""
    committed: dict[str, str] = {}
    wanted: dict[str, str] = {}
    rows = [r for r in s.get("diff") or [] if r.get("new") and r.get("new") != r.get("old")]
    if s["status"] == "failed" or not s.get("commit"):
        wanted.update({r["name"]: r["new"] for r in rows})
    else:
        committed.update({r["name"]: r["new"] for r in rows})
    fresh = s.get("freshness") or {}
    for behind in fresh.get("behind") or []:  # {"name", "locked", "newest"} (report.py)
        wanted.setdefault(behind["name"], behind["newest"])
    return committed, wanted


def upkeep(
    reports: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    uploaded: Callable[[str, str], datetime | None],
    *,
    grace: timedelta = timedelta(hours=24),
) -> dict[str, Any]:
    """The month's Upkeep figures from the nights' (``night.json``, ``report.json``) pairs.

    A *release* is a (set, member, version) that some night named: committed as a bump, or
    named by the resolution as the member's newest allowed version (its constraints, the
    wheel baseline and Requires-Python admit it) without locking it, or wanted by a set that
    failed.  Only releases uploaded after a set's first night's snapshot count: that night only
    re-locks whatever the repository held (the set's baseline).  A release is *on time* when
    the first night whose committed lock has it or a newer version runs within ``grace`` of
    its upload (``uploaded(name, version)``: the earliest upload time the index reports for
    the version's files).  A release superseded before it was locked is locked when a newer
    one is.  One still unlocked after the last night is late once the last snapshot is past
    its grace at the set's last night, else left out (too recent to judge).

    Each night a release waits, the set's report gives the reason: *held* (the set holds the
    package), *failed* (the set failed), else *constrained* (locked older although newest
    allowed: refused, or a bound another member puts on it).
    """
    from packaging.version import Version

    empty: dict[str, Any] = {"releases": 0, "on_time": 0, "share": None, "longest": None}
    if not reports:
        return {
            **empty, "late": [], "pending": [], "nightly_share": None, "failing_streak": {},
            "unknown_upload": [],
        }  # fmt: skip
    # each set's own first night (its baseline) and last night: several replays merged
    # (:func:`merge`) need not have run every set every night
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for night, rep in reports:
        for s in rep["sets"]:
            first.setdefault(s["name"], _when(night["snapshot"]))
            last[s["name"]] = _when(night["snapshot"])
    waiting: dict[tuple[str, str], list[Release]] = {}
    done: list[Release] = []
    known: set[tuple[str, str, str]] = set()
    unknown: list[str] = []  #: releases the index gave no upload time for (left out)
    shares: list[float] = []
    streak: dict[str, int] = {}
    longest_streak: dict[str, int] = {}
    for night, rep in reports:
        at = _when(night["snapshot"])
        fresh = rep.get("freshness") or {}
        if fresh.get("total"):
            shares.append(fresh["current"] / fresh["total"])
        for s in rep["sets"]:
            set_name = s["name"]
            failed = s["status"] == "failed"
            streak[set_name] = streak.get(set_name, 0) + 1 if failed else 0
            longest_streak[set_name] = max(longest_streak.get(set_name, 0), streak[set_name])
            if at == first[set_name]:
                continue  # the set's baseline night
            committed, wanted = _night_versions(s)
            for name, version in [*committed.items(), *wanted.items()]:
                if (set_name, name, version) in known:
                    continue
                known.add((set_name, name, version))
                up = uploaded(name, version)
                if up is None:
                    unknown.append(f"{set_name}/{name} {version}")
                elif up > first[set_name]:
                    release = Release(set_name, name, version, up, night["day"])
                    waiting.setdefault((set_name, name), []).append(release)
            held = {h["name"] for h in s.get("held") or []}
            for (sname, name), rels in waiting.items():
                if sname != set_name:
                    continue
                still = []
                for r in rels:
                    if name in committed and Version(r.version) <= Version(committed[name]):
                        r.locked = night["day"]
                        r.lag_hours = round((at - r.uploaded).total_seconds() / 3600, 1)
                        done.append(r)
                        continue
                    why = "held" if name in held else "failed" if failed else "constrained"
                    r.waited[why] = r.waited.get(why, 0) + 1
                    still.append(r)
                rels[:] = still
    pending = [r for rs in waiting.values() for r in rs]
    for r in pending:
        r.lag_hours = round((last[r.set] - r.uploaded).total_seconds() / 3600, 1)
    hours = grace.total_seconds() / 3600
    judged = done + [r for r in pending if (r.lag_hours or 0) > hours]
    late = sorted(
        (r for r in judged if (r.lag_hours or 0) > hours), key=lambda r: -(r.lag_hours or 0)
    )
    on_time = len(judged) - len(late)
    return {
        "releases": len(judged),
        "on_time": on_time,
        "share": round(on_time / len(judged), 4) if judged else None,
        #: the release that waited longest, on time or late
        "longest": _release_json(max(judged, key=lambda r: r.lag_hours or 0)) if judged else None,
        "late": [_release_json(r) for r in late],
        "judged": [_release_json(r) for r in sorted(judged, key=lambda r: (r.set, r.name))],
        "pending": [_release_json(r) for r in pending if r not in judged],
        #: mean over nights of the report's own figure (members at the newest allowed version)
        "nightly_share": round(sum(shares) / len(shares), 4) if shares else None,
        "failing_streak": {k: v for k, v in sorted(longest_streak.items()) if v},
        "unknown_upload": unknown,
    }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _release_json(r: Release) -> dict[str, Any]:
    data = asdict(r)
    data["uploaded"] = _iso(r.uploaded)
    data["why"] = r.why
    return data


def holds(reports: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Every hold of the month: set, package, version kept, the upstream release that caused
    it (the first failing version the hold records), the reason, the night it was placed,
    the nights it was in force and the night it was released (None: still held)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for night, rep in reports:
        for s in rep["sets"]:
            now = {h["name"]: h for h in s.get("held") or []}
            for name, h in now.items():
                entry = found.get((s["name"], name))
                if entry is None or entry["released"] is not None:
                    entry = found[(s["name"], name)] = {
                        "set": s["name"],
                        "package": name,
                        "kept": h["kept"],
                        "release": h["wanted"],
                        "reason": h["reason"],
                        "placed": night["day"],
                        "nights": 0,
                        "released": None,
                    }
                entry["nights"] += 1
            if s["status"] == "failed":
                continue  # a failed set's lock did not change: its holds stand
            for (sname, name), entry in found.items():
                if sname == s["name"] and name not in now and entry["released"] is None:
                    entry["released"] = night["day"]
    return list(found.values())


def load(workdir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(night.json, report.json) of every night run, in order (a night without a report, e.g.
    one the nightly refused to start, has an empty report)."""
    out = []
    for path in sorted((workdir / "nights").glob("*/night.json")):
        night = json.loads(path.read_text())
        report_file = path.parent / "report.json"
        rep = json.loads(report_file.read_text()) if report_file.exists() else {"sets": []}
        out.append((night, rep))
    return out


def merge(
    replays: Sequence[tuple[str, Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]]],
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Several replays of the same period, each of its own sets (``(name, nights)``), as one:
    per day, the sets of every replay that ran that night side by side in one report, the
    night's wall time, commits and set-member counts summed.  A night only some replays ran
    names them (``replays``).  Two replays with different snapshots for one day, or one set in
    two replays the same night, are not one month: that is an error."""
    by_day: dict[str, list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]] = {}
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for name, nights in replays:
        for one, rep in nights:
            by_day.setdefault(one["day"], []).append((name, one, rep))
    for day in sorted(by_day):
        parts = by_day[day]
        snapshots = {n["snapshot"] for _, n, _ in parts}
        if len(snapshots) > 1:
            which = ", ".join(f"{w} ({n['snapshot']})" for w, n, _ in parts)
            raise SystemExit(
                f"replay: the night of {day} has different snapshots in {which}: not one "
                "month; summarize replays of the same nights (the same --hour)"
            )
        sets: list[Mapping[str, Any]] = []
        owner: dict[str, str] = {}
        for w, _, rep in parts:
            for s in rep["sets"]:
                if s["name"] in owner:
                    raise SystemExit(
                        f"replay: set {s['name']} was replayed on the night of {day} in both "
                        f"{owner[s['name']]} and {w}; give each set to one replay (--sets)"
                    )
                owner[s["name"]] = w
                sets.append(s)
        codes = [n.get("exit_code") for _, n, _ in parts]
        night: dict[str, Any] = {
            "day": day,
            "snapshot": snapshots.pop(),
            "wall_seconds": round(sum(n.get("wall_seconds") or 0 for _, n, _ in parts), 1),
            "exit_code": max((c for c in codes if c is not None), default=None, key=abs),
            "commits": sum(n.get("commits") or 0 for _, n, _ in parts),
            "replays": [w for w, _, _ in parts],
        }
        report: dict[str, Any] = {"sets": sets}
        fresh = [r.get("freshness") for _, _, r in parts]
        if all(f and f.get("total") for f in fresh):
            current = sum(f["current"] for f in fresh if f)
            total = sum(f["total"] for f in fresh if f)
            report["freshness"] = {"current": current, "total": total,
                                   "share": round(current / total, 4)}  # fmt: skip
        out.append((night, report))
    return out


def _times(night: Mapping[str, Any], path: Path) -> tuple[datetime, datetime]:
    """When a night ran: its recorded start (``started_at``; older replays did not record
    it: then its ``night.json`` written at its end, less its wall time) and its end."""
    wall = timedelta(seconds=night.get("wall_seconds") or 0)
    if night.get("started_at"):
        start = _when(night["started_at"])
        return start, start + wall
    end = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return end - wall, end


def span(workdir: Path) -> dict[str, Any] | None:
    """A replay's nights, wall time and span on the clock (first start, last end)."""
    times = []
    for path in sorted((workdir / "nights").glob("*/night.json")):
        night = json.loads(path.read_text())
        times.append((night, _times(night, path)))
    if not times:
        return None
    return {
        "workdir": str(workdir),
        "nights": len(times),
        "first": times[0][0]["day"],
        "last": times[-1][0]["day"],
        "wall_seconds": round(sum(n.get("wall_seconds") or 0 for n, _ in times), 1),
        "started": _iso(min(t[0] for _, t in times)),
        "ended": _iso(max(t[1] for _, t in times)),
    }


def index_upload_times(
    cache_dir: Path, index_url: str | None = None
) -> Callable[[str, str], datetime | None]:
    """``uploaded(name, version)``: the earliest upload time of the version's files, from the
    project page the index client fetches (cached under ``cache_dir``; PyPI by default)."""
    from packaging.utils import canonicalize_name

    from bot.lock.index.client import IndexClient
    from bot.lock.index.models import IndexRoute

    routes = [IndexRoute(index_url)] if index_url else None
    client = IndexClient(*([routes] if routes else []), cache_dir=cache_dir)
    memo: dict[tuple[str, str], datetime | None] = {}

    def uploaded(name: str, version: str) -> datetime | None:
        key = (str(canonicalize_name(name)), version)
        if key not in memo:
            memo[key] = _first_upload(client, key[0], version)
        return memo[key]

    return uploaded


def _first_upload(client: Any, name: str, version: str) -> datetime | None:
    from packaging.version import InvalidVersion, Version

    from bot.core.errors import BotError

    try:
        want = Version(version)
        files = client.files(name)
    except (InvalidVersion, BotError):  # an unknown upload time: the release is left out
        return None
    times = [f.upload_time for f in files if f.version == want and f.upload_time is not None]
    return min(times) if times else None


def table(rows: Sequence[NightRow], replays: Sequence[str] = ()) -> str:
    """The per-night table in Markdown, and a last row of the sums; with the merged
    ``replays``' names, a night only some of them ran says which."""
    lines = [
        "| night | sets | sets bumped | packages bumped | builds | holds placed "
        "| holds released | failures | build min | pushed MiB | wall min |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        failed = f" ({', '.join(r.failed_sets)})" if r.failed_sets else ""
        wall = "" if r.wall_seconds is None else f"{r.wall_seconds / 60:.1f}"
        only = f" ({' + '.join(r.replays)} only)" if replays and r.replays != list(replays) else ""
        lines.append(
            f"| {r.day}{only} | {r.sets} | {r.sets_bumped} | {r.packages_bumped} | {r.builds} "
            f"| {r.holds_placed} "
            f"| {r.holds_released} | {r.failures}{failed} | {r.build_minutes:.1f} "
            f"| {r.pushed_bytes / 2**20:.1f} | {wall} |"
        )
    if rows:
        lines.append(
            f"| **{len(rows)} nights** | | {sum(r.sets_bumped for r in rows)} "
            f"| {sum(r.packages_bumped for r in rows)} | {sum(r.builds for r in rows)} "
            f"| {sum(r.holds_placed for r in rows)} | {sum(r.holds_released for r in rows)} "
            f"| {sum(r.failures for r in rows)} | {sum(r.build_minutes for r in rows):.1f} "
            f"| {sum(r.pushed_bytes for r in rows) / 2**20:.1f} "
            f"| {sum(r.wall_seconds or 0 for r in rows) / 60:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _name(workdir: Path, others: Sequence[Path]) -> str:
    """A replay's short name: its directory's name (the whole path if two share it)."""
    same = [w for w in others if w.name == workdir.name]
    return workdir.name if len(same) == 1 else str(workdir)


def summarize(args: argparse.Namespace) -> int:
    workdirs: list[Path] = args.workdir or [DEFAULT_WORKDIR]
    for w in workdirs:
        if not (w / "nights").is_dir():
            raise SystemExit(f"replay: {w} has no nights/ (not a replay's --workdir)")
    names = [_name(w, workdirs) for w in workdirs]
    if len(set(names)) < len(names):
        raise SystemExit(f"replay: a --workdir is given twice: {', '.join(map(str, workdirs))}")
    if len(workdirs) == 1:
        reports = load(workdirs[0])
    else:
        reports = merge([(n, load(w)) for n, w in zip(names, workdirs, strict=True)])
    out: Path = args.out or workdirs[0]
    cache_dir: Path = args.cache_dir or workdirs[0] / "cache"
    rows = night_rows(reports)
    up = upkeep(reports, index_upload_times(cache_dir, args.index_url))
    spans = [{"name": n, **x} for n, w in zip(names, workdirs, strict=True) if (x := span(w))]
    data: dict[str, Any] = {
        "replays": spans,
        "nights": [asdict(r) for r in rows],
        "wall_seconds": round(sum(r.wall_seconds or 0 for r in rows), 1),
        #: the clock from the first night's start to the last one's end, over every replay
        "elapsed_seconds": _elapsed(spans),
        "upkeep": up,
        "holds": holds(reports),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(data, indent=2) + "\n")
    md = table(rows, names if len(workdirs) > 1 else ())
    (out / "replay.md").write_text(md)
    print(md)
    for x in data["replays"]:
        print(
            f"{x['name']}: {x['nights']} night(s) {x['first']} .. {x['last']}, "
            f"{x['wall_seconds'] / 60:.1f} min wall, {x['started']} -> {x['ended']}"
        )
    print(json.dumps({k: v for k, v in up.items() if k not in ("late", "pending", "judged")},
                     indent=2))  # fmt: skip
    return 0


def _elapsed(spans: Sequence[Mapping[str, Any]]) -> float | None:
    if not spans:
        return None
    start = min(_when(x["started"]) for x in spans)
    end = max(_when(x["ended"]) for x in spans)
    return round((end - start).total_seconds(), 1)


def main(argv: Sequence[str] | None = None) -> int:
    today = datetime.now(UTC).date()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the nights")
    p_run.add_argument("--from", dest="start", type=date.fromisoformat,
                       default=today - timedelta(days=30))  # fmt: skip
    p_run.add_argument("--to", dest="end", type=date.fromisoformat,
                       default=today - timedelta(days=1))  # fmt: skip
    p_run.add_argument("--sets", help="comma-separated sets (default: every shipped set)")
    p_run.add_argument("--hour", type=int, default=2, help="the nights' UTC hour [2]")
    p_run.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p_sum = sub.add_parser("summarize", help="the table and the Upkeep figures")
    p_sum.add_argument("--workdir", type=Path, action="append",
                       help="a replay's directory; several: replays of the same nights, each "
                            "of its own sets, summarized as one month "
                            f"[{DEFAULT_WORKDIR}]")  # fmt: skip
    p_sum.add_argument("--out", type=Path,
                       help="where replay.json and replay.md go [the first --workdir]")  # fmt: skip
    p_sum.add_argument("--cache-dir", type=Path,
                       help="the index client's cache for the upload times "
                            "[the first --workdir's cache/]")  # fmt: skip
    p_sum.add_argument("--index-url", help="the index whose pages give the upload times [PyPI]")
    args = parser.parse_args(argv)
    return run(args) if args.command == "run" else summarize(args)


if __name__ == "__main__":
    sys.exit(main())
