#!/usr/bin/env python3
"""Benchmark ``nixpkgs-python build``: one set from an empty store, then a rebuild that is a no-op.

For one set (default: pytest) and one Python version (default 3.12), N rounds (default 3) of:

* cold: first every store path of the set that our library produces is deleted (see "empty
  store" below), then ``python -m bot.cli --repo <scratch> --quiet build SET --python X.Y
  --json`` is timed;
* no-op: the same command again with nothing changed.  It must build 0 derivations.

"Empty store".  There is one shared ``/nix/store`` on the machine.  Before each cold run the
set's environment is instantiated (``nix-instantiate``, the same arguments as the bot's
``nix-build``), and the outputs of every derivation in its closure (``nix-store --query
--requisites`` of the ``.drv``, then ``--outputs`` of each ``.drv``: the packages, the
environment and the fixed-output fetches of the wheels/sdists) that exist are deleted with
``nix-store --delete --ignore-liveness``.  Nix refuses to delete a path that another valid
path still references, so paths shared with something outside the set (e.g. the same
``packaging`` package in another set's environment) are left in place: the script removes
those, and what depends on nothing else, until the rest can go, and reports what stayed.
The ``.drv`` files, the copied sources (``builder.py``, lock files) and the standalone
interpreter are not outputs and stay; evaluation and instantiation are part of every timed run.

Counting what nix built: before each timed run ``nix-build --dry-run`` of the ``.drv`` is
parsed ("these N derivations will be built"), and after it every output of the closure is
asked for its ``registrationTime`` (``nix path-info --json``): outputs registered during the
run were built by it.  The no-op must show 0 in both.

The bot runs from a frozen ``git archive`` of ``--ref`` (default ``HEAD``) in a scratch
directory, with ``nix/local.json`` copied in, so the live checkout is never touched.  Wall time
and peak RSS come from ``os.wait4`` of the bot's process (RSS covers the bot, not the nix
builders).  Only the standard library is used; the bot's own helpers are imported from the
snapshot to compute the nix arguments.

Exit status: 0 all runs built and every no-op built nothing; 1 a no-op built something;
2 a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common
from common import fmt, measure, stats, table

MODES = ("cold", "no-op")
DRY_RUN_BUILT = re.compile(r"these (\d+) derivations? will be built")


# -- running a child ------------------------------------------------------------------------


def _run(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, **kw)


# -- the scratch repository -------------------------------------------------------------------


def snapshot(ref: str, root: Path) -> str:
    """Extract ``git archive`` of ``ref`` into ``root`` and copy ``nix/local.json`` in."""
    commit = common.commit_of(ref)
    common.extract(commit, root)
    common.copy_local_json(root)
    return common.describe(commit)


def child_env(root: Path, cache: Path) -> dict[str, str]:
    return common.child_env(root, XDG_CACHE_HOME=str(cache))


def build_argv(python: str, repo: str, set_name: str, version: str) -> list[str]:
    """The timed command: ``python -m bot.cli --repo REPO --quiet build SET ... --json``."""
    return common.bot_argv(
        python, repo, "--quiet", "build", set_name, "--python", version, "--json"
    )


# -- the set's store paths --------------------------------------------------------------------


class Store:
    """The nix side: the set's ``.drv``, its closure, deleting it, counting builds."""

    def __init__(self, repo: Path, set_name: str, python: str, tmp: Path) -> None:
        sys.path.insert(0, str(repo))  # the snapshot's bot: the bot's own nix arguments
        from bot.build.command import BuildOptions, nix_build_args
        from bot.core.nix import nix_command
        from bot.model.interpreters import build_options, detect, load_local

        interpreters = load_local(repo) or detect()
        file = tmp / "interpreters.json"
        file.write_text(json.dumps({"interpreters": dict(interpreters)}))
        opts = BuildOptions(
            sets=[set_name], python=python, out_link=None, keep_going=False, repo=repo
        )
        args = [a for a in nix_build_args(opts, set_name, python, file) if a != "--no-out-link"]
        self.options = build_options(interpreters.values())
        self.nix_command = nix_command
        self.instantiate_argv = nix_command("nix-instantiate", args, options=self.options)

    def drv(self) -> str:
        proc = _run(self.instantiate_argv)
        if proc.returncode != 0:
            raise RuntimeError(f"nix-instantiate failed:\n{proc.stderr[-2000:]}")
        return proc.stdout.strip().splitlines()[-1]

    def outputs(self, drv: str) -> list[str]:
        """Every output of every derivation in ``drv``'s closure."""
        reqs = _run(["nix-store", "--query", "--requisites", drv]).stdout.split()
        drvs = [p for p in reqs if p.endswith(".drv")]
        outs = _run(["nix-store", "--query", "--outputs", *drvs]).stdout.split()
        return sorted(set(outs))

    @staticmethod
    def valid(paths: Sequence[str]) -> list[str]:
        if not paths:
            return []
        proc = _run(["nix-store", "--check-validity", "--print-invalid", *paths])
        invalid = set(proc.stdout.split())
        return [p for p in paths if p not in invalid]

    def empty(self, drv: str) -> dict[str, Any]:
        """Delete the set's outputs that nothing outside the set references."""
        outs = self.outputs(drv)
        present = self.valid(outs)
        referrers = {
            p: set(_run(["nix-store", "--query", "--referrers", p]).stdout.split()) - {p}
            for p in present
        }
        doomed = set(present)
        changed = True
        while changed:  # keep what is referenced from outside the doomed set
            changed = False
            for p in sorted(doomed):
                if referrers[p] - doomed:
                    doomed.discard(p)
                    changed = True
        deleted_ok = True
        message = ""
        if doomed:
            proc = _run(["nix-store", "--delete", "--ignore-liveness", *sorted(doomed)])
            deleted_ok = proc.returncode == 0
            message = (proc.stderr.strip().splitlines() or [""])[-1]
        remaining = self.valid(outs)
        return {
            "outputs": len(outs),
            "present_before": len(present),
            "deleted": len(present) - len(remaining),
            "remaining": [p.split("-", 1)[1] for p in remaining],
            "delete_ok": deleted_ok,
            "delete_message": message,
        }

    def dry_run_builds(self, drv: str) -> int:
        argv = self.nix_command("nix-build", ["--dry-run", drv], options=self.options)
        proc = _run(argv)
        m = DRY_RUN_BUILT.search(proc.stderr)
        return int(m.group(1)) if m else 0

    def registered_since(self, drv: str, since: int) -> list[str]:
        """Outputs of the closure registered (built) at or after ``since`` (epoch seconds)."""
        present = self.valid(self.outputs(drv))
        if not present:
            return []
        argv = self.nix_command("nix", ["path-info", "--json", *present])
        infos = json.loads(_run(argv).stdout or "[]")
        return sorted(
            i["path"].split("-", 1)[1] for i in infos if i.get("registrationTime", 0) >= since
        )


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class Run:
    mode: str
    round: int
    seconds: float
    rss_mb: float
    returncode: int
    dry_run_builds: int  #: "these N derivations will be built" just before the run
    built: int  #: closure outputs registered during the run
    out_path: str | None = None
    bot_seconds: float | None = None  #: the bot's own figure for the nix-build (--json)
    empty: dict[str, Any] | None = None  #: what emptying the store did (cold runs)
    built_names: list[str] = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def one(args: argparse.Namespace, store: Store, root: Path, mode: str, rnd: int) -> Run:
    empty = None
    drv = store.drv()
    if mode == "cold":
        empty = store.empty(drv)
        drv = store.drv()
    planned = store.dry_run_builds(drv)
    argv = build_argv(sys.executable, str(root / "repo"), args.set, args.python)
    log_dir = root / "logs" / f"{rnd}-{mode}"
    # registrationTime has whole seconds: start on a fresh second, so that nothing the
    # previous run registered can look as if this run built it
    since = int(time.time()) + 1
    time.sleep(max(0.0, since - time.time()))
    seconds, rss, code, tail = measure(
        argv,
        cwd=root / "repo",
        env=child_env(root / "repo", root / "cache"),
        timeout=args.timeout,
        log_dir=log_dir,
    )
    out_path = bot_seconds = None
    with contextlib.suppress(ValueError, IndexError, KeyError):
        result = json.loads((log_dir / "stdout").read_text())[0]
        out_path, bot_seconds = result["out_path"], result["seconds"]
    built = store.registered_since(drv, since)
    return Run(
        mode,
        rnd,
        seconds,
        rss,
        code,
        planned,
        len(built),
        out_path,
        bot_seconds,
        empty,
        built,
        tail,
    )


def summarize(runs: list[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        ok = [r for r in runs if r.mode == mode and r.ok]
        out[mode] = {
            "seconds": stats([r.seconds for r in ok]),
            "bot_nix_build_seconds": stats([r.bot_seconds for r in ok if r.bot_seconds]),
            "rss_mb": stats([r.rss_mb for r in ok]),
            "dry_run_builds": [r.dry_run_builds for r in runs if r.mode == mode],
            "built": [r.built for r in runs if r.mode == mode],
            "runs": len(ok),
        }
    return out


def render(report: dict[str, Any]) -> str:
    meta, s = report["meta"], report["summary"]
    lines = [
        f"{meta['date']}  set {meta['set']}  Python {meta['python']}  {meta['rounds']} rounds  "
        f"{common.load(meta)}  total {meta['seconds']:.0f} s",
        f"code: {meta['code']}",
        f"command: {meta['command']}",
        "",
        "wall seconds and peak RSS (MB) of the bot: median (min-max); built: derivations nix "
        "built per round (dry-run planned / registered during the run)",
        "",
    ]
    rows = [("mode", "wall s", "nix-build s (bot)", "bot RSS MB", "built per round")]
    for mode in MODES:
        m = s[mode]
        built = ", ".join(f"{p}/{b}" for p, b in zip(m["dry_run_builds"], m["built"], strict=True))
        rows.append(
            (
                mode,
                fmt(m["seconds"]),
                fmt(m["bot_nix_build_seconds"]),
                fmt(m["rss_mb"], 0),
                built or "-",
            )
        )
    lines += table(rows)
    lines.append("")
    for r in report["runs"]:
        e = r.get("empty")
        if e:
            lines.append(
                f"round {r['round']} emptying: {e['outputs']} outputs in the closure, "
                f"{e['present_before']} present, {e['deleted']} deleted, "
                f"{len(e['remaining'])} stayed (referenced outside the set); the cold run "
                f"then built {r['built']} (a deleted fetch of a package that stayed is not "
                "needed again)"
                + ("" if e["delete_ok"] else f"; nix-store --delete: {e['delete_message']}")
            )
    last = next((r["empty"] for r in reversed(report["runs"]) if r.get("empty")), None)
    if last and last["remaining"]:
        lines.append("stayed: " + ", ".join(last["remaining"]))
    noop_built = [*s["no-op"]["built"], *s["no-op"]["dry_run_builds"]]
    lines.append(
        "no-op builds 0 derivations: " + ("yes" if noop_built and not any(noop_built) else "NO")
    )
    paths = {r["out_path"] for r in report["runs"] if r["out_path"]}
    lines.append(f"out paths: {', '.join(sorted(paths)) or '-'}")
    for r in report["runs"]:
        if r["returncode"] != 0:
            lines.append(
                f"FAILED {r['mode']} round {r['round']} (exit {r['returncode']}):\n  "
                + common.indent(r["stderr_tail"])
            )
        elif r["mode"] == "no-op" and r["built_names"]:
            lines.append(f"no-op round {r['round']} built: {', '.join(r['built_names'])}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/build.py",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 ok; 1 a no-op run built something; 2 a run failed.",
    )
    p.add_argument("set", nargs="?", default="pytest", help="set to build [default: pytest]")
    p.add_argument("-n", "--rounds", type=int, default=3, help="rounds [default: 3]")
    p.add_argument("--python", default="3.12", help="Python minor version [default: 3.12]")
    p.add_argument("--ref", default="HEAD", help="git commit benchmarked [default: HEAD]")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run [default: 3600]")
    common.add_output_options(p, "no per-run progress on stderr")
    return common.parse(p, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    say = common.progress(args.quiet)
    with common.scratch_dir(args.keep_scratch, "nixpkgs-python-bench-build-") as root:
        (root / "repo").mkdir()
        (root / "cache").mkdir()
        try:
            code = snapshot(args.ref, root / "repo")
        except subprocess.CalledProcessError as exc:
            print(f"cannot take {args.ref!r}: {exc.stderr!s}", file=sys.stderr)
            return 2
        store = Store(root / "repo", args.set, args.python, root)
        started = datetime.now(UTC)
        t0 = time.monotonic()
        load_start = os.getloadavg()
        runs: list[Run] = []
        for rnd in range(1, args.rounds + 1):
            for mode in MODES:
                say(f"round {rnd}/{args.rounds}: {mode}")
                r = one(args, store, root, mode, rnd)
                say(
                    f"  {r.seconds:.2f} s, exit {r.returncode}, planned {r.dry_run_builds}, "
                    f"built {r.built}" + (f", emptying: {r.empty}" if r.empty else "")
                )
                runs.append(r)
        report = {
            "meta": {
                "date": common.date(started),
                "seconds": round(time.monotonic() - t0, 1),
                "set": args.set,
                "python": args.python,
                "rounds": args.rounds,
                **common.machine(load_start),
                "code": code,
                "nix": _run(["nix-build", "--version"]).stdout.strip(),
                "command": shlex.join(build_argv("python", "SCRATCH", args.set, args.python)),
            },
            "summary": summarize(runs),
            "runs": [asdict(r) for r in runs],
        }
    common.emit(report, args.json, render)
    if any(not r.ok for r in runs):
        return 2
    if any(r.built or r.dry_run_builds for r in runs if r.mode == "no-op"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
