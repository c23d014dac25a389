#!/usr/bin/env python3
"""Benchmark a night with nothing to do: ``nixpkgs-python nightly`` over every shipped set.

In a scratch ``git clone`` of the repository (``nix/local.json`` copied in; a git identity
given through ``GIT_AUTHOR_*``/``GIT_COMMITTER_*``; ``XDG_CONFIG_HOME`` and ``XDG_CACHE_HOME``
inside the scratch directory, so the default signing key of the embedded cache is a scratch
one and the live checkout and the user's config are never touched):

1. a priming run, ``python -m bot.cli --repo CLONE -v nightly --exclude-newer TS --cache-dir
   META --report-json R1``, brings the locks, the metadata cache (``META``, kept for the
   second run) and the embedded binary cache (``CLONE/binary-cache``) up to date.  It may
   build, push and commit; it is timed for information only;
2. the measured run: the same command without ``-v``, with the same ``TS`` and
   ``--report-json R2``.

Target: the second run takes under 1.5 s in total, with 0 builds, 0 pushes and 0 commits (with
``--rounds N``: the median under 1.5 s, and no work in any run).
They are read from R2 (every set's status must be ``unchanged``; a set that was built has
``build_seconds``), from ``git rev-list --count HEAD`` before and after, and from the number
of files under ``CLONE/binary-cache`` before and after.  ``--rounds N`` repeats the measured
run (each is again a no-change night) and reports medians with min-max.

The measured runs have no ``-v`` (it turns on debug logging, which costs time).  Per-phase
notes come from one more no-change run with ``-v``, outside the target: each stderr line is
stamped with the time it arrived, and the time per set is split at the bot's own commands
(``nix-instantiate --eval`` evaluates a set after it was locked; ``nix-store --store URL
--check-validity`` asks the cache), with the index requests counted per set.

Wall time and peak RSS come from ``os.wait4`` of the bot's process.  The bot runs from the
clone (``PYTHONPATH``), i.e. the committed ``--ref`` (default ``HEAD``).  Only the standard
library is used.  It talks to the live index.

``--against OLD`` compares two bots instead: OLD's and ``--ref``'s, each on its own clone of
``--ref`` with its own caches, primed once per mode (``--modes standalone,embedded``), then
alternating round by round; it reports wall and CPU seconds side by side and each one's
split (exit status 2 when a run failed, else 0).

Exit status: 0 target met; 1 the run was slower than the target or did work; 2 a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from common import REPO, fmt, git, stats, table

TARGET_SECONDS = 1.5
IDENTITY = {
    "GIT_AUTHOR_NAME": "nightly benchmark",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "nightly benchmark",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def measure(
    argv: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float, log_dir: Path
) -> tuple[float, float, int, list[tuple[float, str]], float]:
    """Run ``argv``; return (wall seconds, peak RSS in MB, exit status, stamped stderr lines,
    CPU seconds).

    The child is reaped with ``os.wait4`` so its own rusage is read, not the script's.
    Each stderr line is stamped with the seconds since the start when it arrived.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    lines: list[tuple[float, str]] = []
    readers: list[threading.Thread] = []

    def started(proc: subprocess.Popen[bytes], t0: float) -> None:
        def read() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                lines.append((time.perf_counter() - t0, raw.decode(errors="replace").rstrip()))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        readers.append(reader)

    cpu: list[float] = []
    with (log_dir / "stdout").open("wb") as out:
        seconds, rss, code, _ = common.run_child(
            argv,
            cwd=cwd,
            env=env,
            timeout=timeout,
            stdout=out,
            stderr=subprocess.PIPE,
            started=started,
            cpu=cpu,
        )
        for reader in readers:
            reader.join(timeout=10)
    (log_dir / "stderr").write_text("".join(f"{t:8.3f} {ln}\n" for t, ln in lines))
    return seconds, rss, code, lines, cpu[0] if cpu else 0.0


def clone(ref: str, root: Path) -> str:
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(root)],
        check=True,
        capture_output=True,
    )
    commit = common.commit_of(ref)
    git("checkout", "--quiet", "-B", "main", commit, repo=root)
    common.copy_local_json(root)
    common.byte_compile(root)
    return common.describe(commit, repo=root)


def commits(repo: Path) -> int:
    return int(git("rev-list", "--count", "HEAD", repo=repo))


def cache_files(repo: Path) -> int:
    folder = repo / "binary-cache"
    return sum(len(files) for _, _, files in os.walk(folder)) if folder.is_dir() else 0


def child_env(root: Path, repo: Path) -> dict[str, str]:
    return common.child_env(
        repo,
        drop=("NIXPKGS_PYTHON_GITHUB_TOKEN", "GITHUB_TOKEN", "GITHUB_STEP_SUMMARY"),  # no GitHub
        **IDENTITY,
        XDG_CONFIG_HOME=str(root / "config"),
        XDG_CACHE_HOME=str(root / "xdg-cache"),
    )


def nightly_argv(
    python: str,
    repo: str,
    args: argparse.Namespace,
    meta: str,
    report: str,
    *verbose: str,
    extra: Sequence[str] = (),
) -> list[str]:
    """``python -m bot.cli --repo REPO [-v] nightly --exclude-newer TS --cache-dir META
    --report-json REPORT [EXTRA...] [--nightly-arg...]``."""
    return common.bot_argv(
        python,
        repo,
        *verbose,
        "nightly",
        "--exclude-newer",
        args.exclude_newer,
        "--cache-dir",
        meta,
        "--report-json",
        report,
        *extra,
        *args.nightly_arg,
    )


# -- reading the -v output --------------------------------------------------------------------

_INSTANTIATE = re.compile(r"^\$ nix-instantiate .* -A (\S+?)\.py3\d+\.python\.outPath")
_CACHE_QUERY = re.compile(r"^\$ nix(?:-store)? .*--store .*(?:--check-validity|path-info)")
_HTTP = re.compile(r"HTTP Request: |GET https?://")


def phases(lines: list[tuple[float, str]], total: float) -> list[dict[str, Any]]:
    """Per set: seconds locking (up to its first evaluation), evaluating, asking the cache.

    A set's locking starts when the previous set's cache query ended (the first set: at 0,
    which includes the interpreter start-up and loading the sets).
    """
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    start = 0.0
    requests = 0
    if any(ln.startswith("$ nix-instantiate ") and ln.count(" -A ") > 1 for _, ln in lines):
        return []  # the unchanged sets were evaluated together: see split()
    for t, line in lines:
        if _HTTP.search(line):
            requests += 1
        m = _INSTANTIATE.match(line)
        if m:
            name = m.group(1)
            if cur is None or cur["set"] != name:
                if cur is not None:
                    out.append(cur)
                    start = cur.get("_end", cur["_eval"])
                cur = {"set": name, "lock": t - start, "_eval": t, "requests": requests}
                requests = 0
            continue
        if cur is not None and _CACHE_QUERY.match(line) and "_query" not in cur:
            cur["eval"] = t - cur["_eval"]
            cur["_query"] = t
            cur["_end"] = t
            continue
        if cur is not None and "_query" in cur and "query" not in cur:
            cur["query"] = t - cur["_query"]
            cur["_end"] = t
    if cur is not None:
        cur.setdefault("query", total - cur.get("_query", total))
        out.append(cur)
        out.append(
            {
                "set": "(after the sets)",
                "lock": total - cur.get("_end", total),
                "requests": requests,
            }
        )
    for p in out:
        for k in [k for k in p if k.startswith("_")]:
            del p[k]
    return out


_LOCKER = re.compile(r"^\S+ \(Python [\d.]+\): ")


def split(lines: list[tuple[float, str]], total: float) -> dict[str, float]:
    """The whole run in five parts, from the -v output: start-up (until the first index
    answer or lock message: the interpreter, imports, the repository checks, loading the
    sets), locking, evaluating (each ``nix-instantiate --eval`` up to the next line),
    asking the cache (each cache query up to the next line), and after the last cache
    query (re-validation, publishing, the reports).  Locking is the rest in between."""
    first = next((t for t, ln in lines if _HTTP.search(ln) or _LOCKER.match(ln)), None)
    if first is None:
        return {"start-up": total}
    out = {"start-up": first, "locking": 0.0, "evaluate": 0.0, "cache query": 0.0}
    # locking ends with the last index answer or lock message (a remembered evaluation and a
    # file cache's narinfo files leave no command line behind)
    end = first
    for i, (_t, line) in enumerate(lines):
        if _HTTP.search(line) or _LOCKER.match(line):
            end = max(end, lines[i + 1][0] if i + 1 < len(lines) else total)
    for i, (t, line) in enumerate(lines):
        kind = (
            "evaluate"
            if line.startswith("$ nix-instantiate ")
            else "cache query"
            if _CACHE_QUERY.match(line)
            else None
        )
        if kind is None or t < first:
            continue
        nxt = lines[i + 1][0] if i + 1 < len(lines) else total
        out[kind] += nxt - t
        if kind == "cache query":
            end = max(end, nxt)
    span = end - first
    out["locking"] = max(0.0, span - out["evaluate"] - out["cache query"])
    out["after the last cache query"] = total - end
    return out


# -- the benchmark ----------------------------------------------------------------------------


def night(
    args: argparse.Namespace,
    root: Path,
    repo: Path,
    name: str,
    *,
    verbose: bool = False,
    bot: Path | None = None,
    extra: Sequence[str] = (),
    state: Path | None = None,
) -> dict[str, Any]:
    """One night on the clone ``repo``, with the bot in ``bot`` (default: the clone's own)
    and ``extra`` nightly arguments before ``--nightly-arg``'s; ``state`` holds its metadata
    cache and XDG directories (default: ``root``)."""
    report = root / f"{name}.json"
    state = state or root
    argv = nightly_argv(
        sys.executable,
        str(repo),
        args,
        str(state / "meta-cache"),
        str(report),
        *(["-v"] if verbose else []),
        extra=extra,
    )
    bot_dir = bot or repo  # the working directory too: `python -m` puts it first on sys.path
    before = {"commits": commits(repo), "cache_files": cache_files(repo)}
    seconds, rss, code, lines, cpu = measure(
        argv, cwd=bot_dir, env=child_env(state, bot_dir), timeout=args.timeout, log_dir=root / name
    )
    after = {"commits": commits(repo), "cache_files": cache_files(repo)}
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        data = {"sets": []}
    sets = data.get("sets", [])
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {
        "name": name,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_mb": rss,
        "returncode": code,
        "statuses": {s["name"]: s["status"] for s in sets},
        "builds": sum(1 for s in sets if s.get("build_seconds") is not None),
        "build_seconds": sum(s.get("build_seconds") or 0 for s in sets),
        "commits": after["commits"] - before["commits"],
        "cache_files_added": after["cache_files"] - before["cache_files"],
        "cache_files": after["cache_files"],
        "dirty": [ln for ln in status.splitlines() if "binary-cache" not in ln],
        "phases": phases(lines, seconds) if verbose else [],
        "split": split(lines, seconds) if verbose else {},
        "reused": sum(1 for _, ln in lines if ln.endswith(": every page unchanged: not resolving")),
        "resolved": sum(1 for _, ln in lines if _LOCKER.match(ln) and ln.endswith(": resolving")),
        "requests": sum(1 for _, ln in lines if _HTTP.search(ln)),
        "commands": sum(1 for _, ln in lines if ln.startswith("$ ")),
        "nix_builds": [ln[2:] for _, ln in lines if ln.startswith("$ nix-build ")],
        "stderr_tail": "\n".join(ln for _, ln in lines[-15:]) if code != 0 else "",
        "argv": argv,
        "pin_note": next((ln for _, ln in lines if "pinned nixpkgs is not available" in ln), ""),
    }


def met(run: dict[str, Any]) -> dict[str, bool]:
    """The work half of the target, for one run (the time is judged on the median)."""
    return {
        "0 builds": run["builds"] == 0
        and bool(run["statuses"])
        and all(s == "unchanged" for s in run["statuses"].values()),
        "0 pushes": run["cache_files_added"] == 0,
        "0 commits": run["commits"] == 0,
        "exit 0": run["returncode"] == 0,
    }


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    prime, runs = report["prime"], report["runs"]
    lines = [
        f"{meta['date']}  exclude-newer {meta['exclude_newer']}  {len(runs)} measured run(s)  "
        f"{common.load(meta)}",
        f"code: {meta['code']}",
        f"command: {meta['command']}",
        "",
        f"priming run: {prime['seconds']:.1f} s, exit {prime['returncode']}, "
        f"{prime['builds']} set(s) built ({prime['build_seconds']:.1f} s of building), "
        f"{prime['commits']} commit(s), {prime['cache_files_added']} cache files added; "
        "statuses: " + ", ".join(f"{k} {v}" for k, v in prime["statuses"].items()),
        "",
    ]
    rows: list[tuple[str, ...]] = [
        (
            "run",
            "wall s",
            "RSS MB",
            "exit",
            "builds",
            "pushes (cache files +)",
            "commits",
            "statuses",
        )
    ]
    for r in runs:
        counts: dict[str, int] = {}
        for s in r["statuses"].values():
            counts[s] = counts.get(s, 0) + 1
        rows.append(
            (
                r["name"],
                f"{r['seconds']:.2f}",
                f"{r['rss_mb']:.0f}",
                str(r["returncode"]),
                str(r["builds"]),
                str(r["cache_files_added"]),
                str(r["commits"]),
                ", ".join(f"{n} {s}" for s, n in counts.items()) or "-",
            )
        )
    lines += table(rows)
    lines.append("")
    lines.append(f"second run, wall seconds: {fmt(report['summary']['seconds'])} (median, min-max)")
    median = report["summary"]["seconds"]["median"]
    checks: dict[str, bool] = {
        f"median under {TARGET_SECONDS:g} s": median < TARGET_SECONDS,
        f"every run under {TARGET_SECONDS:g} s": all(r["seconds"] < TARGET_SECONDS for r in runs),
    }
    for r in runs:
        for k, v in met(r).items():
            checks[k] = checks.get(k, True) and v
    lines.append(
        "target (the work: in every measured run): "
        + ", ".join(f"{k}: {'met' if v else 'NOT MET'}" for k, v in checks.items())
    )
    last = report["verbose"]
    lines.append(
        f"the same night with -v (debug logging on; not in the target): "
        f"{last['seconds']:.2f} s, exit {last['returncode']}, {last['requests']} index "
        f"requests, {last['commands']} commands run, of them "
        f"{len(last['nix_builds'])} nix-build"
    )
    for cmd in last["nix_builds"]:
        attr = re.search(r" -A (\S+)", cmd)
        off = re.search(r"disabledOverrides (\S+)", cmd)
        lines.append(
            f"  nix-build -A {attr.group(1) if attr else '?'}"
            + (f" without override {off.group(1)}" if off else "")
        )
    if last["split"]:
        lines += [
            "",
            "where that run's time went (seconds, split at the lines of the -v output; "
            f"locks taken from the night memo: {last['reused']}, resolved: {last['resolved']}):",
        ]
        lines += table([("part", "seconds"), *((k, f"{v:.2f}") for k, v in last["split"].items())])
    if last["phases"]:
        lines += [
            "",
            "phases of that run (seconds, split at the commands in the -v output; a "
            "set's lock includes the previous set's end, the first one the start-up; "
            "the last row is everything after the last cache query):",
        ]
        rows = [("set", "lock", "evaluate", "cache query", "index requests")]
        for p in last["phases"]:
            rows.append(
                (
                    p["set"],
                    f"{p['lock']:.2f}",
                    f"{p['eval']:.2f}" if "eval" in p else "-",
                    f"{p['query']:.2f}" if "query" in p else "-",
                    str(p["requests"]),
                )
            )
        lines += table(rows)
    for r in [prime, *runs, report["verbose"]]:
        if r["dirty"]:
            lines.append(f"{r['name']}: the clone is dirty afterwards: {'; '.join(r['dirty'])}")
        if r["returncode"] != 0:
            lines.append(
                f"{r['name']} exit {r['returncode']}:\n  " + common.indent(r["stderr_tail"])
            )
    return "\n".join(lines)


# -- before and after, interleaved ------------------------------------------------------------

MODES = {"standalone": ["--standalone"], "embedded": []}


def compare(args: argparse.Namespace, say: Any) -> tuple[dict[str, Any], int]:
    """``--against OLD``: the bot of OLD and of ``--ref`` in turn, each on its own clone of
    ``--ref`` with its own caches (a night keeps state between nights: the night memo, the
    static index's manifest, the re-validation's rotation; sharing one clone would make each
    code undo the other's), primed alike.

    Each code (a ``git archive`` of its ``bot/``) primes its clone once per mode, then the
    measured rounds alternate old/new within each mode, and each (code, mode) gets one more
    ``-v`` run for the split.  Embedded defaults: no ``--standalone``; on a machine that
    cannot fetch the pin the priming run is where the new code first fails to fetch it.
    """
    with common.scratch_dir(args.keep_scratch, "nixpkgs-python-bench-nightly-") as root:
        codes = {"before": args.against, "after": args.ref}
        described = {}
        dirs: dict[str, Path] = {}
        repos: dict[str, Path] = {}
        states: dict[str, Path] = {}
        for label, ref in codes.items():
            states[label] = root / f"state-{label}"
            repos[label] = root / f"repo-{label}"
            clone(args.ref, repos[label])
            dirs[label] = root / f"code-{label}"
            common.extract(common.commit_of(ref), dirs[label], ["bot"])
            described[label] = common.describe(common.commit_of(ref))
        started = datetime.now(UTC)
        load_start = os.getloadavg()
        modes = [m for m in args.modes.split(",") if m]
        primes: dict[str, dict[str, Any]] = {}
        for mode in modes:
            for label in codes:
                say(f"priming: {label}, {mode}")
                r = night(args, root, repos[label], f"prime-{label}-{mode}", verbose=True,
                          bot=dirs[label], extra=MODES[mode], state=states[label])  # fmt: skip
                say(f"  {r['seconds']:.1f} s, exit {r['returncode']}, {r['statuses']}")
                primes[f"{label} {mode}"] = r
        runs: dict[str, list[dict[str, Any]]] = {f"{c} {m}": [] for m in modes for c in codes}
        for rnd in range(1, args.rounds + 1):
            for mode in modes:
                order = list(codes) if rnd % 2 else list(reversed(codes))
                for label in order:
                    r = night(args, root, repos[label], f"R{rnd}-{label}-{mode}",
                              bot=dirs[label], extra=MODES[mode], state=states[label])  # fmt: skip
                    say(f"round {rnd} {label} {mode}: {r['seconds']:.2f} s, exit "
                        f"{r['returncode']}")  # fmt: skip
                    runs[f"{label} {mode}"].append(r)
        verbose = {}
        for key in runs:
            label, mode = key.split(" ", 1)
            verbose[key] = night(args, root, repos[label], f"V-{label}-{mode}", verbose=True,
                                 bot=dirs[label], extra=MODES[mode],
                                 state=states[label])  # fmt: skip
        report = {
            "meta": {
                "date": common.date(started),
                "exclude_newer": args.exclude_newer,
                **common.machine(load_start),
                "codes": described,
                "command": shlex.join(nightly_argv("python", "CLONE", args, "META", "R")),
            },
            "primes": primes,
            "runs": runs,
            "verbose": verbose,
            "summary": {k: stats([r["seconds"] for r in v]) for k, v in runs.items()},
        }
    failed = any(r["returncode"] != 0 for v in runs.values() for r in v)
    return report, 2 if failed else 0


def render_compare(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"{meta['date']}  exclude-newer {meta['exclude_newer']}  {common.load(meta)}",
        f"before: {meta['codes']['before']}",
        f"after:  {meta['codes']['after']}",
        f"command: {meta['command']} [--standalone]",
        "",
    ]
    rows: list[tuple[str, ...]] = [
        (
            "code, mode",
            "runs",
            "wall s median (min-max)",
            "CPU s median",
            "RSS MB",
            "work",
            "locks from memo",
        )
    ]
    for key, runs in report["runs"].items():
        work = all(all(met(r).values()) for r in runs)
        cpu = stats([r["cpu_seconds"] for r in runs])
        rows.append(
            (
                key,
                str(len(runs)),
                fmt(report["summary"][key]),
                f"{cpu['median']:.2f}" if cpu else "-",
                f"{max(r['rss_mb'] for r in runs):.0f}",
                "none (all unchanged)" if work else "SOME WORK OR FAILURE",
                str(report["verbose"][key]["reused"]),
            )
        )
    lines += table(rows)
    lines += ["", "where the -v run of each went (seconds):"]
    parts = list(next(iter(report["verbose"].values()))["split"])
    for v in report["verbose"].values():
        parts += [k for k in v["split"] if k not in parts]
    header = ("part", *report["verbose"])
    body = [
        (part, *(f"{v['split'].get(part, 0.0):.2f}" for v in report["verbose"].values()))
        for part in parts
    ]
    totals = ("total", *(f"{v['seconds']:.2f}" for v in report["verbose"].values()))
    lines += table([header, *body, totals])
    for key, r in report["primes"].items():
        if r["pin_note"]:
            lines.append(f"priming {key}: {r['pin_note'][:160]}")
    for key, v in report["verbose"].items():
        if v["pin_note"]:
            lines.append(f"-v run {key}: {v['pin_note'][:160]}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/nightly.py",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 target met; 1 not met; 2 a run failed.",
    )
    p.add_argument(
        "-n",
        "--rounds",
        type=int,
        default=1,
        help="measured no-change runs after the priming run [default: 1]",
    )
    common.add_exclude_newer(p)
    p.add_argument("--ref", default="HEAD", help="git commit benchmarked [default: HEAD]")
    p.add_argument(
        "--nightly-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for every nightly run, e.g. --nightly-arg=--no-revalidate "
        "(repeatable)",
    )
    p.add_argument(
        "--timeout", type=float, default=4 * 3600, help="seconds per run [default: 14400]"
    )
    p.add_argument(
        "--against",
        metavar="REF",
        help="also run the bot of REF, interleaved with --ref's, each on its own primed "
        "clone of --ref with its own caches; reports both side by side",
    )
    p.add_argument(
        "--modes",
        default="standalone,embedded",
        help="with --against: comma-separated modes, 'standalone' (--standalone) and "
        "'embedded' (the embedded defaults) [default: standalone,embedded]",
    )
    common.add_output_options(p, "no progress on stderr")
    return common.parse(p, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    say = common.progress(args.quiet)
    if args.against:
        compared, status = compare(args, say)
        common.emit(compared, args.json, render_compare)
        return status
    with common.scratch_dir(args.keep_scratch, "nixpkgs-python-bench-nightly-") as root:
        repo = root / "repo"
        code = clone(args.ref, repo)
        started = datetime.now(UTC)
        load_start = os.getloadavg()
        say("priming run (not measured against the target)")
        prime = night(args, root, repo, "R1", verbose=True)
        say(f"  {prime['seconds']:.1f} s, exit {prime['returncode']}, statuses {prime['statuses']}")
        runs = []
        for rnd in range(1, args.rounds + 1):
            say(f"measured run {rnd}/{args.rounds}")
            r = night(args, root, repo, "R2" if rnd == 1 else f"R2-{rnd}")
            say(
                f"  {r['seconds']:.2f} s, exit {r['returncode']}, builds {r['builds']}, "
                f"commits {r['commits']}, cache files +{r['cache_files_added']}"
            )
            runs.append(r)
        say("one more no-change run with -v, for the per-phase notes (not in the target)")
        verbose = night(args, root, repo, "R3-verbose", verbose=True)
        say(f"  {verbose['seconds']:.2f} s, exit {verbose['returncode']}")
        report: dict[str, Any] = {
            "meta": {
                "date": common.date(started),
                "exclude_newer": args.exclude_newer,
                **common.machine(load_start),
                "code": code,
                "command": shlex.join(nightly_argv("python", "CLONE", args, "META", "R2")),
            },
            "prime": prime,
            "runs": runs,
            "verbose": verbose,
            "summary": {"seconds": stats([r["seconds"] for r in runs])},
        }
    common.emit(report, args.json, render)
    if any(r["returncode"] != 0 for r in runs):
        return 2
    if report["summary"]["seconds"]["median"] >= TARGET_SECONDS or not all(
        all(met(r).values()) for r in runs
    ):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
