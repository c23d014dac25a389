#!/usr/bin/env python3
"""Benchmark what one lock edit rebuilds: derivations whose drvPath changes per bumped package.

For every shipped set with a Python 3.12 lock (``sets/*/pylock.py312.toml``) and every
package in it, in turn: the artifact the package uses on x86_64-linux gets a *synthetic*
new sha256 (the sha256 of the old hex digest plus ``"bump"``; the file name, URL and version
stay), which is what a bump to another file does to the derivations (a new fixed-output
fetch, whose drvPath moves).  The set's environment (``<set>.py312.python``) is then
instantiated (``nix-instantiate``, standalone: ``--arg pkgs null``; nothing is built or
fetched) and the ``.drv`` files of its closure (``nix-store --query --requisites``) are
compared with those of the unchanged lock: every ``.drv`` that is new is a derivation that
would be rebuilt.  The floor is 3: the new file, the package, the environment.

The Nix library comes from a ``git archive`` of ``--ref`` (default ``HEAD``) in a scratch
directory, so the figures for two commits can be compared (``--ref main``, ``--ref HEAD``).
Only the standard library is used.

    python benchmarks/rebuild.py [--ref REF] [--sets pytest,flask] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import common

SYSTEM = "x86_64-linux"
FLOOR = 3


def run(argv: list[str], **kw: Any) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def closure_drvs(root: Path, set_name: str, sets_dir: Path, interpreters: Path) -> set[str]:
    """The ``.drv`` files of the set's Python 3.12 environment's closure."""
    drv = run(
        [
            "nix-instantiate",
            str(root / "default.nix"),
            "-A",
            f"{set_name}.py312.python",
            "--arg",
            "pkgs",
            "null",
            "--argstr",
            "interpretersFile",
            str(interpreters),
            "--argstr",
            "setsDir",
            str(sets_dir),
            "--argstr",
            "overridesDir",
            str(root / "overrides"),
        ]
    ).split()[-1]
    paths = run(["nix-store", "--query", "--requisites", drv]).split()
    return {p for p in paths if p.endswith(".drv")}


def artifact_hashes(lock_text: str) -> dict[str, str]:
    """package name -> sha256 of the artifact it uses on SYSTEM."""
    lock = tomllib.loads(lock_text)
    out: dict[str, str] = {}
    for pkg in lock.get("packages", []):
        file = pkg.get("tool", {}).get("nixpkgs-python", {}).get("artifacts", {}).get(SYSTEM)
        if not file:
            continue
        files = [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]
        for f in files:
            if f.get("name") == file or f.get("url", "").endswith("/" + file):
                out[pkg["name"]] = f["hashes"]["sha256"]
    return out


def bump(lock_text: str, old: str) -> str:
    new = hashlib.sha256((old + "bump").encode()).hexdigest()
    if lock_text.count(old) != 1:
        raise SystemExit(f"hash {old} is not unique in the lock")
    return lock_text.replace(old, new)


def measure_set(
    root: Path, set_name: str, scratch: Path, interpreters: Path, say: Any
) -> dict[str, Any]:
    src = root / "sets" / set_name
    sets_dir = scratch / "sets"
    work = sets_dir / set_name
    work.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and (f.suffix == ".nix" or f.name == "pylock.py312.toml"):
            (work / f.name).write_bytes(f.read_bytes())
    lock = work / "pylock.py312.toml"
    text = lock.read_text()
    base = closure_drvs(root, set_name, sets_dir, interpreters)
    counts: dict[str, int] = {}
    for name, sha in sorted(artifact_hashes(text).items()):
        lock.write_text(bump(text, sha))
        counts[name] = len(closure_drvs(root, set_name, sets_dir, interpreters) - base)
        say(f"{set_name}: {name}: {counts[name]}")
    lock.write_text(text)
    values = list(counts.values())
    return {
        "set": set_name,
        "packages": len(values),
        "closure_drvs": len(base),
        "mean": statistics.mean(values),
        "median": statistics.median(values),
        "max": max(values),
        "min": min(values),
        "at_floor": sum(1 for v in values if v <= FLOOR),
        "counts": counts,
    }


def render(report: dict[str, Any]) -> str:
    rows = [["set", "packages", "mean", "median", "min", "max", "at floor (3)"]]
    for r in report["sets"]:
        rows.append(
            [
                r["set"],
                str(r["packages"]),
                f"{r['mean']:.1f}",
                f"{r['median']:g}",
                str(r["min"]),
                str(r["max"]),
                f"{r['at_floor']}/{r['packages']}",
            ]
        )
    return f"{report['code']}  ({report['seconds']:.0f} s)\n" + "\n".join(common.table(rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", default="HEAD", help="the commit whose Nix library to measure")
    p.add_argument("--sets", default="", help="comma-separated set names [default: all]")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    say = common.progress(args.quiet)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nixpkgs-python-rebuild-") as tmp:
        root = Path(tmp) / "code"
        commit = common.commit_of(args.ref)
        common.extract(commit, root, ["default.nix", "nix", "overrides", "sets"])
        interpreters = Path(tmp) / "interpreters.json"
        # evaluation only: the interpreter is never run
        interpreters.write_text(json.dumps({"interpreters": {"3.12": sys.executable}}))
        wanted = [s for s in args.sets.split(",") if s]
        names = sorted(
            d.name for d in (root / "sets").iterdir() if (d / "pylock.py312.toml").is_file()
        )
        results = []
        for name in wanted or names:
            scratch = Path(tmp) / f"scratch-{name}"
            results.append(measure_set(root, name, scratch, interpreters, say))
        report = {
            "code": common.describe(commit),
            "seconds": time.monotonic() - t0,
            "floor": FLOOR,
            "sets": results,
        }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
