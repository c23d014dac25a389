#!/usr/bin/env python3
"""Benchmark ``nixpkgs-python lock`` against ``uv pip compile``; check both pick the same versions.

For each set (default: pytest, flask, sphinx) and one Python version (default 3.12) the two
tools run side by side, interleaved (ours, uv, ours, uv, ...; the order of each pair alternates
between rounds), N rounds:

* cold: each run gets a fresh, empty cache directory;
* warm: each run reuses a cache directory that an unmeasured priming run filled.  For ours the
  lock file is deleted before every run, so it really resolves.
* offline (ours only): after each warm pair, ours resolves again from its warm cache with
  ``--offline`` and its memo of past results removed: the whole lock (start-up, reading and
  parsing every project page, metadata, resolution, writing) except the network.  Its ratio
  is against uv's cold run of the same round: the floor under any cold ratio ours can reach,
  since a cold run does all of this and waits for the network too.

Both tools see the same index state: ``--exclude-newer`` is a fixed snapshot (default: 24 hours
before now, rounded down to the hour).  Ours runs from a frozen snapshot taken at the start
(``--ref``, default the HEAD commit: ``bot/``, ``sets/``, ``nix/``, ``overrides/``) in a scratch
repository, through ``--repo``, so every run tests the same code even while someone edits the
checkout, and the real ``sets/*/pylock.*.toml`` are never touched.

Wall time and peak RSS are those of each child process, from ``os.wait4`` (on Linux the
child's ``ru_maxrss`` also covers its own waited-for children, e.g. a PEP 517 build).  The
report gives medians with min-max, the ratio ours/uv as the median of the per-pair ratios
(the two runs of a pair are adjacent in time, so the ratio is less exposed to a noisy machine
than a ratio of medians), and the peak RSS of ours.

Correctness: uv's output (``name==version`` lines) is compared with our lock
(``packages[].name/version``) on uv's package names: every package uv lists must be in our
lock with the same version.  Our lock also holds the build frontend (``build``, ``installer``,
``pyproject-hooks``, ``packaging``) and build requirements, and it covers four Nix systems
where uv's compile covers one platform, so packages only in our lock are shown for
information, not counted as mismatches.  Against uv's ``--universal`` answer (which also
covers Windows and the Pythons above the one asked for) a package or version only uv has is
shown too, and a mismatch is a package whose version in ours is not among uv's.

* hooks-cached: ours cold except for what the sdists' PEP 517 backends answered
  (``get_requires_for_build_wheel``, ``[build-system]``), copied from the warm cache, against
  uv cold of the same round.  uv's compile never asks a backend (it takes a version's
  metadata from any of its wheels, and locks no build requirements); ours must, for every
  sdist one of its systems builds, so this mode shows what the rest of a cold lock costs.

uv's platform is ``--python-platform`` (one platform, default x86_64-manylinux_2_28), or
``universal`` for ``uv pip compile --universal``: a resolution for every platform, the
nearest to ours, which locks four Nix systems at once.

Size sweep (``--sweep``): the default sets plus the benchmark-only sets of
``benchmarks/sets/`` (about 93, 133 and 225 packages as uv counts them), cold pairs only
unless ``--modes`` says otherwise.  The report adds one row per size (uv's package count):
the cold ratio (median of the per-pair ratios, min-max), both tools' CPU seconds (user +
system, with the children each waited for: our PEP 517 hooks and unpackers) and their ratio,
both tools' peak RSS, and a least-squares fit of log(seconds) against log(packages) per
tool: the growth exponent (1.0 is linear), and that of the ratio (0 when ours grows as uv
does).

The scratch directory (the snapshot, both tools' caches) is made under ``TMPDIR``, which our
hooks' temporary trees use too: point it at another file system to take the disk's part out
(BENCHMARKS.md: this machine's journal-less ext4).

Exit status: 0 all runs succeeded and versions agree; 1 a version mismatch; 2 a run failed.
Only the standard library and the project's own virtualenv (``bot`` for reading set.yaml,
``packaging``) are needed.  It talks to the live index.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from common import REPO, fmt, git, measure, stats, table

DEFAULT_SETS = ("pytest", "flask", "sphinx")
#: benchmark-only requirement sets (not shipped): the sizes a --sweep adds to DEFAULT_SETS
BENCH_SETS_DIR = "benchmarks/sets"
SWEEP_SETS = ("bench-93", "bench-133", "bench-225")
#: the issue's targets
COLD_TARGET = 1.0
WARM_TARGET = 0.5
RSS_TARGET_MB = 120.0
MODES = ("cold", "warm", "hooks-cached")
ALL_MODES = ("cold", "warm", "offline", "hooks-cached")
TOOLS = ("ours", "uv")
#: ours, no network, against uv cold: see the module docstring
OFFLINE = "offline"
#: ours cold but for the PEP 517 hooks' answers, against uv cold: see the module docstring
HOOKS_CACHED = "hooks-cached"
#: the cache kinds of ours that hold what the sdists' backends answered (copied for
#: HOOKS_CACHED; everything else starts empty)
HOOK_KINDS = ("pep517-build-requires", "build-system")
#: --python-platform value for uv's --universal resolution (every platform, as ours locks
#: several systems), instead of one platform
UNIVERSAL = "universal"

#: what the scratch repository is made of: the code under test and its set definitions
SNAPSHOT = ("bot", "sets", "nix", "overrides")


# -- a measured child ------------------------------------------------------------------------


@dataclass
class Run:
    """One measured child process."""

    set: str
    mode: str
    tool: str
    round: int
    seconds: float
    rss_mb: float  #: peak resident set size, 10^6 bytes
    returncode: int
    argv: list[str]
    stderr_tail: str = ""
    #: user + system CPU seconds, with the children it waited for (hooks, unpackers)
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


# -- the two tools ----------------------------------------------------------------------------


@dataclass
class Workload:
    """One set to lock: its roots for uv and where each tool writes its answer."""

    name: str
    requirements: list[str]
    constraints: list[str]
    lock_path: Path  #: our lock in the scratch repository
    uv_in: Path
    uv_constraints: Path | None
    uv_out: Path
    notes: list[str] = field(default_factory=list)


def load_workload(name: str, scratch: Path, python: str) -> Workload:
    """Read ``sets/<name>/set.yaml`` of the scratch copy with the bot's own loader."""
    from bot.model.sets import load_set

    pset = load_set(scratch, name)
    if python not in pset.python:
        raise ValueError(f"set {name!r} is not defined for Python {python}")
    work = scratch / "uv" / name
    work.mkdir(parents=True)
    reqs = [str(r.value) for r in pset.requirements]
    cons = [str(c.value) for c in pset.constraints]
    (work / "requirements.in").write_text("\n".join(reqs) + "\n")
    cfile = None
    if cons:
        cfile = work / "constraints.txt"
        cfile.write_text("\n".join(cons) + "\n")
    notes = []
    if pset.indexes:
        notes.append("the set has extra indexes; uv runs against PyPI only")
    if pset.build_requirements:
        notes.append("the set has extra build requirements; uv's compile does not list them")
    return Workload(
        name,
        reqs,
        cons,
        pset.lock_path(python),
        work / "requirements.in",
        cfile,
        work / "requirements.txt",
        notes,
    )


def ours_argv(args: argparse.Namespace, w: Workload, cache: Path, scratch: Path) -> list[str]:
    return [
        *args.ours_cmd,
        "--repo",
        str(scratch),
        "--quiet",
        "lock",
        w.name,
        "--python",
        args.python,
        "--exclude-newer",
        args.exclude_newer,
        "--cache-dir",
        str(cache),
    ]


def uv_argv(args: argparse.Namespace, w: Workload, cache: Path) -> list[str]:
    argv = [
        args.uv,
        "pip",
        "compile",
        "--python-version",
        args.python,
        "--exclude-newer",
        args.exclude_newer,
        *(
            ["--universal"]
            if args.python_platform == UNIVERSAL
            else ["--python-platform", args.python_platform]
        ),
        "--cache-dir",
        str(cache),
        "--no-header",
        "--no-config",
        "--no-python-downloads",
        "--quiet",
        "-o",
        str(w.uv_out),
        str(w.uv_in),
    ]
    if args.uv_python != "discover":
        argv[3:3] = ["--python", args.uv_python]
    if w.uv_constraints is not None:
        argv[-1:-1] = ["-c", str(w.uv_constraints)]
    return argv


def child_env(cache: Path, code: Path) -> dict[str, str]:
    """The environment of a child: its caches (incl. a nested uv/pip) all under ``cache``;
    ``bot`` imported from the snapshot in ``code``."""
    return common.child_env(
        code,
        XDG_CACHE_HOME=str(cache / "xdg"),
        UV_CACHE_DIR=str(cache / "uv"),
        PIP_CACHE_DIR=str(cache / "pip"),
    )


# -- correctness ------------------------------------------------------------------------------

_UV_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\]+)")


def uv_versions(path: Path) -> dict[str, set[str]]:
    """Normalized name -> versions from ``uv pip compile`` output."""
    from packaging.utils import canonicalize_name

    out: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        m = _UV_LINE.match(line.strip())
        if m:
            out.setdefault(canonicalize_name(m.group(1)), set()).add(m.group(2))
    return out


def lock_versions(path: Path) -> dict[str, set[str]]:
    """Normalized name -> versions from a PEP 751 lock."""
    from packaging.utils import canonicalize_name

    doc = tomllib.loads(path.read_text())
    out: dict[str, set[str]] = {}
    for pkg in doc.get("packages", []):
        out.setdefault(canonicalize_name(pkg["name"]), set()).add(str(pkg.get("version")))
    return out


def _same(a: set[str], b: set[str]) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return {Version(v) for v in a} == {Version(v) for v in b}
    except InvalidVersion:
        return a == b


def compare(
    uv: dict[str, set[str]], ours: dict[str, set[str]], *, universal: bool = False
) -> dict[str, Any]:
    """Mismatches on uv's package names, and what only our lock has.

    ``universal``: uv's answer covers every platform (Windows too) and every Python from the
    one asked for up, where ours covers its systems and one Python: a package of uv's that
    ours lacks, or a version of it beside ours, is then shown as only in uv's answer, and a
    mismatch is a package both have with none of ours' versions among uv's."""
    mismatches = []
    only_uv: dict[str, list[str]] = {}
    for name in sorted(uv):
        mine = ours.get(name)
        if universal and (
            mine is None or all(any(_same({m}, {v}) for v in uv[name]) for m in mine)
        ):
            # every version of ours is among uv's: the rest of uv's is only in its answer
            extra = {v for v in uv[name] if not any(_same({v}, {m}) for m in mine or ())}
            if extra:
                only_uv[name] = sorted(extra)
            continue
        if mine is None or not _same(uv[name], mine):
            mismatches.append(
                {"name": name, "uv": sorted(uv[name]), "ours": sorted(mine) if mine else None}
            )
    only_ours = {n: sorted(v) for n, v in sorted(ours.items()) if n not in uv}
    return {
        "uv_packages": len(uv),
        "ours_packages": len(ours),
        "mismatches": mismatches,
        "only_in_ours": only_ours,
        "only_in_uv": only_uv,
    }


# -- the benchmark ----------------------------------------------------------------------------


def snapshot(ref: str, root: Path) -> str:
    """Freeze the code and sets under test into ``root`` (a repository checkout for --repo,
    with ``bot`` importable from ``root/code``); return a description of what was taken.

    The default is a git commit, not the working tree: the bot can be edited while the
    benchmark runs, and every run of one benchmark must test the same code.
    """
    (root / "code").mkdir()
    if ref == "worktree":
        for sub in SNAPSHOT:
            if (REPO / sub).is_dir():
                dest = root / "code" / "bot" if sub == "bot" else root / sub
                shutil.copytree(REPO / sub, dest, ignore=shutil.ignore_patterns("__pycache__"))
        _add_bench_sets(REPO / BENCH_SETS_DIR, root)
        dirty = git("status", "--porcelain", "--", *SNAPSHOT, BENCH_SETS_DIR)
        head = git("rev-parse", "--short=12", "HEAD")
        return f"working tree at {head}" + (" with uncommitted changes" if dirty else "")
    commit = common.commit_of(ref)
    present = [s for s in SNAPSHOT if git("ls-tree", "--name-only", commit, s)]
    if git("ls-tree", "--name-only", commit, BENCH_SETS_DIR):
        present.append(BENCH_SETS_DIR)
    common.extract(commit, root, present)
    if (root / "bot").is_dir():
        (root / "bot").rename(root / "code" / "bot")
    # a commit from before the benchmark sets existed is measured on today's sets
    _add_bench_sets(root / BENCH_SETS_DIR, root)
    _add_bench_sets(REPO / BENCH_SETS_DIR, root)
    return common.describe(commit)


def _add_bench_sets(source: Path, root: Path) -> None:
    """Put the benchmark-only sets beside the shipped ones in the scratch repository (a
    shipped set of the same name wins)."""
    if not source.is_dir():
        return
    for d in sorted(source.iterdir()):
        if (d / "set.yaml").is_file() and not (root / "sets" / d.name).exists():
            shutil.copytree(d, root / "sets" / d.name)


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.runs: list[Run] = []
        self.checks: dict[str, list[dict[str, Any]]] = {}
        self.failed: list[Run] = []
        self.caches = scratch / "caches"
        self.logs = scratch / "logs"
        self.caches.mkdir()
        self.logs.mkdir()
        self._n = 0
        self.startup: dict[str, list[float]] = {}
        self.say = common.progress(args.quiet)

    def measure(
        self, argv: list[str], cache: Path, log_dir: Path, cpu: list[float] | None = None
    ) -> tuple[float, float, int, str]:
        """Run ``argv`` in the scratch repository with its caches under ``cache``."""
        return measure(
            argv,
            cwd=self.scratch,
            env=child_env(cache, self.scratch / "code"),
            timeout=self.args.timeout,
            log_dir=log_dir,
            cpu=cpu,
        )

    def one(self, w: Workload, mode: str, tool: str, rnd: int) -> Run:
        self._n += 1
        if mode in ("cold", HOOKS_CACHED):
            cache = self.caches / f"cold-{self._n}"
            if mode == HOOKS_CACHED and tool == "ours":
                self._copy_hook_answers(w, cache / "bot")
        else:
            cache = self.caches / f"warm-{tool}-{w.name}"
        if mode == OFFLINE:
            from bot.lock import memo as lockcache  # of the snapshot (on sys.path by now)
            from bot.lock.index.cache import VERSION_DIR

            # the memo of past results would answer without resolving
            shutil.rmtree(cache / "bot" / VERSION_DIR / lockcache.KIND, ignore_errors=True)
        cache.mkdir(exist_ok=True)
        log_dir = self.logs / f"{self._n}"
        log_dir.mkdir()
        if tool == "ours":
            w.lock_path.unlink(missing_ok=True)  # so it resolves instead of finding its lock
            argv = ours_argv(self.args, w, cache / "bot", self.scratch)
            if mode == OFFLINE:
                argv.append("--offline")
        else:
            w.uv_out.unlink(missing_ok=True)
            argv = uv_argv(self.args, w, cache / "uv")
        cpu: list[float] = []
        seconds, rss, code, tail = self.measure(argv, cache, log_dir, cpu)
        out = w.lock_path if tool == "ours" else w.uv_out
        if code == 0 and not out.is_file():
            code, tail = 3, f"exit 0 but {out} was not written"
        run = Run(w.name, mode, tool, rnd, seconds, rss, code, argv, tail, cpu[0] if cpu else 0.0)
        status = "ok" if run.ok else f"FAILED ({code})"
        self.say(
            f"  round {rnd}  {w.name:<8} {mode}  {tool:<4}  {seconds:7.2f} s  "
            f"{run.cpu_seconds:6.2f} s CPU  {rss:6.1f} MB  {status}"
        )
        if not run.ok:
            self.failed.append(run)
            self.say(f"    $ {shlex.join(argv)}\n    " + tail.replace("\n", "\n    "))
        if mode in ("cold", HOOKS_CACHED):
            shutil.rmtree(cache, ignore_errors=True)
        return run

    def _copy_hook_answers(self, w: Workload, dest: Path) -> None:
        """Into the empty cache ``dest``: only the backends' answers of ours' warm cache."""
        from bot.lock.index.cache import VERSION_DIR  # of the snapshot (on sys.path by now)

        warm = self.caches / f"warm-ours-{w.name}" / "bot" / VERSION_DIR
        for kind in HOOK_KINDS:
            if (warm / kind).is_dir():
                shutil.copytree(warm / kind, dest / VERSION_DIR / kind)

    def pair(self, w: Workload, mode: str, rnd: int, *, record: bool = True) -> dict[str, Run]:
        order = TOOLS if rnd % 2 == 1 else TOOLS[::-1]
        got = {tool: self.one(w, mode, tool, rnd) for tool in order}
        if record:
            self.runs += got.values()
        if got["ours"].ok and got["uv"].ok:
            self._check(w, mode, rnd)
        return got

    def _check(self, w: Workload, mode: str, rnd: int) -> None:
        """Compare our lock with uv's answer, both as the last runs left them."""
        result = compare(
            uv_versions(w.uv_out),
            lock_versions(w.lock_path),
            universal=self.args.python_platform == UNIVERSAL,
        )
        result.update(mode=mode, round=rnd)
        self.checks.setdefault(w.name, []).append(result)

    def offline(self, w: Workload, rnd: int) -> None:
        """Ours without the network (see the module docstring); its versions are checked
        against uv's answer of the pair just before."""
        run = self.one(w, OFFLINE, "ours", rnd)
        self.runs.append(run)
        if run.ok and w.uv_out.is_file():
            self._check(w, OFFLINE, rnd)

    def run(self, workloads: list[Workload]) -> None:
        modes = self.args.modes
        if "warm" in modes or OFFLINE in modes or HOOKS_CACHED in modes:
            self.say("priming the warm caches (not measured)")
            for w in workloads:
                self.pair(w, "warm", 0, record=False)
        for rnd in range(1, self.args.rounds + 1):
            self.say(f"round {rnd}/{self.args.rounds}")
            for w in workloads:
                if "cold" in modes:
                    self.pair(w, "cold", rnd)
                if "warm" in modes:
                    self.pair(w, "warm", rnd)
                if HOOKS_CACHED in modes:
                    self.pair(w, HOOKS_CACHED, rnd)
                if OFFLINE in modes:
                    self.offline(w, rnd)
        self.say("start-up: --version of each tool, the floor under any of its runs")
        for rnd in range(1, self.args.rounds + 1):
            for tool, argv in (
                ("ours", [*self.args.ours_cmd, "--version"]),
                ("uv", [self.args.uv, "--version"]),
            ):
                cache = self.caches / "startup"
                cache.mkdir(exist_ok=True)
                log_dir = self.logs / f"startup-{tool}-{rnd}"
                log_dir.mkdir()
                seconds, _, code, _ = self.measure(argv, cache, log_dir)
                if code == 0:
                    self.startup.setdefault(tool, []).append(seconds)


def summarize(bench: Bench, workloads: list[Workload]) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    for w in workloads:
        entry: dict[str, Any] = {"requirements": w.requirements, "notes": w.notes}
        peak_rss = 0.0
        for mode in MODES:
            runs = [r for r in bench.runs if r.set == w.name and r.mode == mode and r.ok]
            by_tool = {t: [r for r in runs if r.tool == t] for t in TOOLS}
            pairs: dict[int, dict[str, Run]] = {}
            for r in runs:
                pairs.setdefault(r.round, {})[r.tool] = r
            both = [p for p in pairs.values() if len(p) == 2]
            ratios = [p["ours"].seconds / p["uv"].seconds for p in both]
            cpu_ratios = [
                p["ours"].cpu_seconds / p["uv"].cpu_seconds for p in both if p["uv"].cpu_seconds
            ]
            entry[mode] = {
                **{f"{t}_seconds": stats([r.seconds for r in by_tool[t]]) for t in TOOLS},
                **{f"{t}_rss_mb": stats([r.rss_mb for r in by_tool[t]]) for t in TOOLS},
                **{f"{t}_cpu_seconds": stats([r.cpu_seconds for r in by_tool[t]]) for t in TOOLS},
                "ratio": stats(ratios),
                "cpu_ratio": stats(cpu_ratios),
            }
            peak_rss = max([peak_rss, *(r.rss_mb for r in by_tool["ours"])])
        offline = {r.round: r for r in bench.runs if r.set == w.name and r.mode == OFFLINE and r.ok}
        uv_cold = {
            r.round: r
            for r in bench.runs
            if r.set == w.name and r.mode == "cold" and r.tool == "uv" and r.ok
        }
        entry[OFFLINE] = {
            "ours_seconds": stats([r.seconds for r in offline.values()]),
            "ours_rss_mb": stats([r.rss_mb for r in offline.values()]),
            "uv_cold_seconds": stats([r.seconds for r in uv_cold.values()]),
            "ratio": stats(
                [offline[n].seconds / uv_cold[n].seconds for n in offline if n in uv_cold]
            ),
        }
        entry["ours_peak_rss_mb"] = peak_rss
        checks = bench.checks.get(w.name, [])
        mismatches: dict[str, dict[str, Any]] = {}
        for c in checks:
            for m in c["mismatches"]:
                key = f"{m['name']} uv={m['uv']} ours={m['ours']}"
                mismatches.setdefault(key, {**m, "runs": []})["runs"].append(
                    f"{c['mode']}#{c['round']}"
                )
        entry["check"] = {
            "compared_runs": len(checks),
            "uv_packages": sorted({c["uv_packages"] for c in checks}),
            "ours_packages": sorted({c["ours_packages"] for c in checks}),
            "mismatches": list(mismatches.values()),
            "only_in_ours": checks[-1]["only_in_ours"] if checks else {},
            "only_in_uv": checks[-1]["only_in_uv"] if checks else {},
        }
        cold, warm = entry["cold"]["ratio"], entry["warm"]["ratio"]
        entry["targets"] = {
            "cold": None if cold is None else cold["median"] <= COLD_TARGET,
            "warm": None if warm is None else warm["median"] <= WARM_TARGET,
            "rss": peak_rss < RSS_TARGET_MB if peak_rss else None,
            "versions": (not mismatches) if checks else None,
        }
        sets[w.name] = entry
    return sets


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) against log(x): the exponent k of y ~ x^k."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    var = sum((x - mx) ** 2 for x, _ in pts)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / var


def sweep(sets: dict[str, Any], mode: str = "cold") -> dict[str, Any] | None:
    """The ratio per size (uv's package count) and the growth exponents, from ``mode``'s
    runs of every set that has them; None with fewer than two sizes."""
    rows = []
    for name, e in sets.items():
        m = e.get(mode)
        counts = e["check"]["uv_packages"]
        if not m or m["ratio"] is None or not counts:
            continue
        rows.append(
            {
                "set": name,
                "packages": max(counts),
                "ours_seconds": m["ours_seconds"],
                "uv_seconds": m["uv_seconds"],
                "ratio": m["ratio"],
                "ours_rss_mb": m["ours_rss_mb"],
                "uv_rss_mb": m["uv_rss_mb"],
                "ours_cpu_seconds": m.get("ours_cpu_seconds"),
                "uv_cpu_seconds": m.get("uv_cpu_seconds"),
                "cpu_ratio": m.get("cpu_ratio"),
            }
        )
    if len(rows) < 2:
        return None
    rows.sort(key=lambda r: (r["packages"], r["set"]))

    def fit(key: str) -> float | None:
        return _slope([(r["packages"], r[key]["median"]) for r in rows])

    exponents = {"ours": fit("ours_seconds"), "uv": fit("uv_seconds"), "ratio": fit("ratio")}
    in_range = [r for r in rows if 30 <= r["packages"] <= 250]
    return {
        "mode": mode,
        "sizes": rows,
        "exponents": exponents,
        "worst_ratio_30_250": max((r["ratio"]["median"] for r in in_range), default=None),
    }


def tool_versions(args: argparse.Namespace, code: Path) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            p = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=child_env(Path(tempfile.gettempdir()) / "bench-version", code),
            )
            return (p.stdout or p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"

    return {
        "ours": first_line([*args.ours_cmd, "--version"]),
        "uv": first_line([args.uv, "--version"]),
    }


# -- output -----------------------------------------------------------------------------------


def _yes(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "NO")


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"{meta['date']}  Python {meta['python']}  exclude-newer {meta['exclude_newer']}  "
        f"{meta['rounds']} rounds  {common.load(meta)}",
        f"ours: {meta['versions']['ours']}, {meta['code']}   uv: {meta['versions']['uv']}",
        "",
        "wall seconds and peak RSS (MB): median (min-max); ours/uv: median of per-pair ratios",
        "",
    ]
    head = ("set", "mode", "ours s", "uv s", "ours/uv", "ours RSS MB", "uv RSS MB")
    rows: list[tuple[str, ...]] = [head]
    for name, e in report["sets"].items():
        for mode in MODES:
            m = e[mode]
            ratio = m["ratio"]
            if m["ours_seconds"] is None and m["uv_seconds"] is None:
                continue  # not run
            rows.append(
                (
                    name,
                    mode,
                    fmt(m["ours_seconds"]),
                    fmt(m["uv_seconds"]),
                    "-" if ratio is None else f"{ratio['median']:.2f}x",
                    fmt(m["ours_rss_mb"], 0),
                    fmt(m["uv_rss_mb"], 0),
                )
            )
        m = e[OFFLINE]
        ratio = m["ratio"]
        if m["ours_seconds"] is None:
            continue
        rows.append(
            (
                name,
                "offline*",
                fmt(m["ours_seconds"]),
                fmt(m["uv_cold_seconds"]),
                "-" if ratio is None else f"{ratio['median']:.2f}x",
                fmt(m["ours_rss_mb"], 0),
                "",
            )
        )
    lines += table(rows)
    if any(r[1] == "offline*" for r in rows):
        lines.append(
            "* offline: ours with --offline from its warm cache, memo removed (everything but the "
            "network), against uv cold of the same round: the floor under our cold ratio"
        )
    startup = meta.get("startup_seconds") or {}
    if startup:
        lines.append(
            "start-up (--version): "
            + ", ".join(f"{t} {fmt(startup.get(t))} s" for t in TOOLS if t in startup)
        )
    lines += [
        "",
        f"targets: cold <= {COLD_TARGET}x uv, warm <= {WARM_TARGET}x uv, "
        f"peak RSS of ours < {RSS_TARGET_MB:.0f} MB, versions equal to uv's",
        "",
    ]
    rows = [("set", "cold", "warm", "peak RSS", "versions", "packages uv/ours")]
    for name, e in report["sets"].items():
        t, c = e["targets"], e["check"]
        rows.append(
            (
                name,
                f"{_yes(t['cold'])} ({_ratio(e['cold'])})",
                f"{_yes(t['warm'])} ({_ratio(e['warm'])})",
                f"{_yes(t['rss'])} ({e['ours_peak_rss_mb']:.0f} MB)",
                f"{_yes(t['versions'])} ({c['compared_runs']} runs compared)",
                f"{_counts(c['uv_packages'])} / {_counts(c['ours_packages'])}",
            )
        )
    lines += table(rows)
    for name, e in report["sets"].items():
        for m in e["check"]["mismatches"]:
            lines.append(
                f"MISMATCH {name}: {m['name']}: uv {', '.join(m['uv'])}, ours "
                f"{', '.join(m['ours']) if m['ours'] else 'missing'} "
                f"(runs {', '.join(m['runs'])})"
            )
        extra = e["check"]["only_in_ours"]
        if extra:
            lines.append(
                f"only in our {name} lock (frontend/build requirements/other systems): "
                + ", ".join(f"{n} {'/'.join(v)}" for n, v in extra.items())
            )
        extra = e["check"]["only_in_uv"]
        if extra:
            lines.append(
                f"only in uv's universal {name} answer (other platforms or Pythons): "
                + ", ".join(f"{n} {'/'.join(v)}" for n, v in extra.items())
            )
        for note in e["notes"]:
            lines.append(f"note {name}: {note}")
    for sw in (report.get("sweep"), report.get("sweep_hooks_cached")):
        if sw:
            lines += _render_sweep(sw)
    for f in report["failed_runs"]:
        lines.append(
            f"FAILED {f['set']} {f['mode']} {f['tool']} round {f['round']} "
            f"(exit {f['returncode']}): $ {shlex.join(f['argv'])}\n  "
            + common.indent(f["stderr_tail"])
        )
    return "\n".join(lines)


def _render_sweep(sw: dict[str, Any]) -> list[str]:
    lines = ["", f"by size ({sw['mode']}): packages = uv's count; ratio: median (min-max)", ""]
    head = ("set", "packages", "ours s", "uv s", "ours/uv", "ours CPU s", "uv CPU s")
    rows = [(*head, "CPU ours/uv", "ours RSS MB", "uv RSS MB")]
    for r in sw["sizes"]:
        rows.append(
            (
                r["set"],
                str(r["packages"]),
                fmt(r["ours_seconds"]),
                fmt(r["uv_seconds"]),
                _times(r["ratio"]),
                fmt(r.get("ours_cpu_seconds")),
                fmt(r.get("uv_cpu_seconds")),
                _times(r.get("cpu_ratio")),
                fmt(r["ours_rss_mb"], 0),
                fmt(r["uv_rss_mb"], 0),
            )
        )
    lines += table(rows)
    ex = sw["exponents"]

    def show(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    lines.append(
        f"growth exponent (seconds ~ packages^k): ours {show(ex['ours'])}, uv "
        f"{show(ex['uv'])}, ratio {show(ex['ratio'])}; worst ratio from 30 to 250 "
        f"packages: {show(sw['worst_ratio_30_250'])}"
    )
    return lines


def _times(ratio: dict[str, float] | None) -> str:
    """A ratio's ``median x (min-max)``, or ``-``."""
    if ratio is None:
        return "-"
    return f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})"


def _counts(values: list[int]) -> str:
    return "/".join(map(str, values)) or "-"


def _ratio(mode: dict[str, Any]) -> str:
    r = mode["ratio"]
    return "-" if r is None else f"{r['median']:.2f}x"


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/lock.py",
        description=__doc__.split("\n\n")[0] + " (cold and warm cache, interleaved rounds, "
        "live index).",
        epilog="Exit status: 0 ok; 1 a version differs from uv's; 2 a run failed.",
    )
    p.add_argument(
        "sets",
        nargs="*",
        default=list(DEFAULT_SETS),
        help=f"sets to lock [default: {' '.join(DEFAULT_SETS)}]",
    )
    p.add_argument("-n", "--rounds", type=int, default=5, help="rounds [default: 5]")
    p.add_argument(
        "--sweep",
        action="store_true",
        help=f"size sweep: the sets given (default: {' '.join(DEFAULT_SETS)}) plus the "
        f"benchmark-only {' '.join(SWEEP_SETS)}; cold only unless --modes is given",
    )
    p.add_argument(
        "--modes",
        default=None,
        help=f"comma-separated, of {','.join(ALL_MODES)} [default: all; with --sweep: cold]",
    )
    p.add_argument("--python", default="3.12", help="Python minor version [default: 3.12]")
    common.add_exclude_newer(p)
    p.add_argument(
        "--python-platform",
        default="x86_64-manylinux_2_28",
        help=f"uv's --python-platform, or '{UNIVERSAL}' for its --universal "
        "[default: x86_64-manylinux_2_28]",
    )
    p.add_argument(
        "--uv", default=None, help="uv executable [default: beside this Python, else on PATH]"
    )
    p.add_argument(
        "--uv-python",
        default=sys.executable,
        metavar="PATH",
        help="interpreter uv uses for builds, so it does not search PATH (on a "
        "machine with pyenv shims that search costs seconds); 'discover': let uv "
        "search [default: this Python]",
    )
    p.add_argument(
        "--ours",
        default=None,
        metavar="CMD",
        help="our CLI, shell-split; it then runs whatever code it imports, not the "
        "--ref snapshot [default: '<this python's packages, in a scratch venv> -m bot.cli' "
        "with the snapshot on PYTHONPATH]",
    )
    p.add_argument(
        "--ref",
        default="HEAD",
        help="git commit whose bot/, sets/, nix/ and overrides/ are benchmarked, or "
        "'worktree' for a copy of the working tree taken at the start [default: HEAD]",
    )
    p.add_argument("--timeout", type=float, default=900, help="seconds per run [default: 900]")
    common.add_output_options(p, "no per-run progress on stderr")
    args = common.parse(p, argv)
    modes = args.modes or ("cold" if args.sweep else ",".join(ALL_MODES))
    args.modes = tuple(m for m in modes.split(",") if m)
    if not args.modes or any(m not in ALL_MODES for m in args.modes):
        p.error(f"--modes: a comma-separated list of {', '.join(ALL_MODES)}")
    if args.sweep:
        args.sets = [*args.sets, *(s for s in SWEEP_SETS if s not in args.sets)]
    if args.uv is None:
        beside = Path(sys.executable).parent / "uv"
        args.uv = str(beside) if beside.is_file() else shutil.which("uv")
        if args.uv is None:
            p.error("uv not found; pass --uv")
    # without --ours: this Python's packages in a venv of the scratch directory (main)
    args.ours_cmd = None if args.ours is None else shlex.split(args.ours)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with common.scratch_dir(args.keep_scratch, "nixpkgs-python-bench-") as scratch:
        try:
            code = snapshot(args.ref, scratch)
        except subprocess.CalledProcessError as exc:
            print(f"cannot take {args.ref!r}: {exc.stderr!s}", file=sys.stderr)
            return 2
        if args.ours_cmd is None:
            args.ours_cmd = [common.plain_python(scratch / "python"), "-m", "bot.cli"]
        (scratch / "sets").mkdir(exist_ok=True)
        (scratch / "nix").mkdir(exist_ok=True)
        sys.path.insert(0, str(scratch / "code"))  # bot.model.sets of the snapshot reads set.yaml
        for name in args.sets:
            for old in (scratch / "sets" / name).glob("pylock.*.toml"):
                old.unlink()
        from bot.core.errors import BotError

        try:
            workloads = [load_workload(name, scratch, args.python) for name in args.sets]
        except (BotError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        bench = Bench(args, scratch)
        started = datetime.now(UTC)
        load_start = os.getloadavg()
        bench.run(workloads)
        report: dict[str, Any] = {
            "meta": {
                "date": common.date(started),
                "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
                "python": args.python,
                "exclude_newer": args.exclude_newer,
                "python_platform": args.python_platform,
                "rounds": args.rounds,
                **common.machine(load_start),
                "code": code,
                "versions": tool_versions(args, scratch / "code"),
                "startup_seconds": {t: stats(v) for t, v in bench.startup.items()},
                "commands": {
                    "ours": shlex.join(ours_argv(args, workloads[0], Path("CACHE"), Path("REPO"))),
                    "uv": shlex.join(uv_argv(args, workloads[0], Path("CACHE"))),
                },
            },
            "sets": (summary := summarize(bench, workloads)),
            "sweep": sweep(summary) if "cold" in args.modes else None,
            "sweep_hooks_cached": (
                sweep(summary, HOOKS_CACHED) if HOOKS_CACHED in args.modes else None
            ),
            "failed_runs": [asdict(r) for r in bench.failed],
            "runs": [
                {k: v for k, v in asdict(r).items() if k not in ("argv", "stderr_tail")}
                for r in bench.runs
            ],
        }
    common.emit(report, args.json, render)
    if bench.failed:
        return 2
    if any(e["check"]["mismatches"] for e in report["sets"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
