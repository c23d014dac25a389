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

``--time SET:PKG`` instead *builds* (standalone, this machine's Python 3.12): first the set's
environment as it is (unmeasured), then, ``--rounds`` times for each ``--max-jobs`` value,
the environment after a change of PKG's derivation alone: an overlay gives PKG an extra
environment variable with a fresh value each round (``--arg overrides``), which moves its
drvPath as a bump does but needs no new download.  Wall time and the number of derivations
built (``nix-build --dry-run`` before) are reported.  ``installer`` as PKG moves every
package (each is installed by it): a rebuild of the whole set from cached downloads.

    python benchmarks/rebuild.py --ref REF --time pytest:iniconfig --max-jobs 1,auto

``--passes SET`` builds the set's environment with ``--ref``'s library (which must run the
checks in the environments) and times three ways of running every package's imports check
against it, outside Nix: one interpreter per package one at a time, one per package with
as many at once as the machine has cores (what the environment's build does), and one
interpreter importing every package's modules.

    python benchmarks/rebuild.py --ref HEAD --passes pytest,sphinx --rounds 5

``--night BEFORE,AFTER`` replays one real night: every set (default: all but ``native``,
whose source builds take half an hour here) is locked by this checkout's
bot (``--lock-ref``, default ``HEAD``) against the live index at both snapshot times, so the
second lock holds the real version changes of that night.  For each library of ``--ref``
(comma-separated: e.g. the one before the change and the one after) the report counts the
derivations of the night: the ``.drv`` files in the closures of the sets' environments after
the night that none of them had before, each counted once however many sets share it,
against the floor (each new artifact, the package that installs it, and each set's
environment: a package built once for several sets counts once).  ``--build`` also builds
it: every environment before the night (unmeasured; the night's new files are fetched into
the store too, so no side pays a download the other then finds), then the night's
environments in one ``nix-build``, timed, with the library's own nightly job setting (the
old one passed none, i.e. one job; ``--max-jobs-night`` sets it for all).

    python benchmarks/rebuild.py --night 2026-11-23T02:00:00Z,2026-11-24T02:00:00Z \
        --ref 7d02f3a,HEAD --build
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
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


def copy_set(src: Path, dest: Path) -> None:
    """A set's Nix files and its Python 3.12 lock, from ``src`` into a new ``dest``."""
    dest.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and (f.suffix == ".nix" or f.name == "pylock.py312.toml"):
            (dest / f.name).write_bytes(f.read_bytes())


def measure_set(
    root: Path, set_name: str, scratch: Path, interpreters: Path, say: Any
) -> dict[str, Any]:
    src = root / "sets" / set_name
    sets_dir = scratch / "sets"
    work = sets_dir / set_name
    copy_set(src, work)
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


DRY_RUN = re.compile(r"these (\d+) derivations? will be built")


def timed_builds(root: Path, tmp: Path, spec: str, jobs: list[str], rounds: int, say: Any) -> Any:
    """Rebuild times of ``SET:PKG`` (see the module's docstring)."""
    set_name, _, pkg = spec.partition(":")
    sys.path.insert(0, str(common.REPO))
    from bot.model.interpreters import build_options, detect

    python = detect(("3.12",))["3.12"]
    interpreters = tmp / "interpreters-real.json"
    interpreters.write_text(json.dumps({"interpreters": {"3.12": python}}))
    options = [x for k, v in build_options([python]).items() for x in ("--option", k, v)]

    def argv(token: str | None, max_jobs: str) -> list[str]:
        out = [
            str(root / "default.nix"), "-A", f"{set_name}.py312.python",
            "--arg", "pkgs", "null", "--argstr", "interpretersFile", str(interpreters),
            "--max-jobs", max_jobs, "--cores", "0", "--no-out-link",
            "--option", "substituters", "", *options,
        ]  # fmt: skip
        if token is not None:
            overlay = (
                f"self: super: {{ {pkg} = super.{pkg}.overridePythonAttrs (o: "
                f'{{ env = o.env // {{ NIXPKGS_PYTHON_BENCH = "{token}"; }}; }}); }}'
            )
            out += ["--arg", "overrides", overlay]
        return out

    say(f"{spec}: building the set as it is")
    run(["nix-build", *argv(None, "auto")])
    rows = []
    for max_jobs in jobs:
        for i in range(rounds):
            token = f"{time.time_ns()}-{i}"
            dry = subprocess.run(
                ["nix-build", "--dry-run", *argv(token, max_jobs)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            m = DRY_RUN.search(dry.stderr)
            t0 = time.perf_counter()
            run(["nix-build", *argv(token, max_jobs)])
            seconds = time.perf_counter() - t0
            built = int(m.group(1)) if m else 0
            say(f"{spec} --max-jobs {max_jobs}: {seconds:.2f} s, {built} derivations")
            rows.append({"max_jobs": max_jobs, "seconds": seconds, "built": built})
    return {"spec": spec, "rows": rows}


def check_passes(root: Path, tmp: Path, set_name: str, rounds: int, say: Any) -> Any:
    """Times of three ways to run the set's imports checks (see the module's docstring)."""
    import importlib.util
    import os
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(common.REPO))
    from bot.model.interpreters import build_options, detect

    python = detect(("3.12",))["3.12"]
    interpreters = tmp / "interpreters-real.json"
    interpreters.write_text(json.dumps({"interpreters": {"3.12": python}}))
    options = [x for k, v in build_options([python]).items() for x in ("--option", k, v)]
    common_args = [
        str(root / "default.nix"), "--arg", "pkgs", "null",
        "--argstr", "interpretersFile", str(interpreters),
    ]  # fmt: skip
    env = Path(
        run(
            ["nix-build", *common_args, "-A", f"{set_name}.py312.python", "--no-out-link",
             "--max-jobs", "auto", "--option", "substituters", "", *options]
        ).split()[-1]
    )  # fmt: skip
    config = json.loads(
        json.loads(
            run(
                ["nix-instantiate", "--eval", "--json", *common_args,
                 "-A", f"{set_name}.py312.python.nixpkgsPythonConfig"]
            )
        )
    )  # fmt: skip
    spec = importlib.util.spec_from_file_location("nix_builder", root / "nix" / "builder.py")
    assert spec is not None
    assert spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    builder.CONFIG["pythonVersion"] = "3.12"
    groups = []
    for check in config["checks"]:
        setting = check.get("importsCheck", True)
        if setting is False:
            continue
        modules = (
            setting
            if isinstance(setting, list)
            else builder.top_level_modules(builder.site_packages(check["path"]))
        )
        if modules:
            groups.append(modules)
    py = str(env / "bin" / "python")

    def one(modules: list[str]) -> int:
        code = "".join(f"import {m}\n" for m in modules)
        argv = [py, "-I", "-c", code]
        return subprocess.run(argv, cwd=tmp, capture_output=True, check=False).returncode

    def per_package(workers: int) -> None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            codes = list(pool.map(one, groups))
        if any(codes):
            raise SystemExit(f"an imports check failed in {env}")

    def together() -> None:
        if one([m for g in groups for m in g]):
            raise SystemExit(f"the imports failed in {env}")

    cores = os.cpu_count() or 1
    ways = {
        "one interpreter per package, serial": lambda: per_package(1),
        f"one interpreter per package, {cores} at once": lambda: per_package(cores),
        "one interpreter for every package": together,
    }
    out: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            t0 = time.perf_counter()
            way()
            out[name].append(time.perf_counter() - t0)
    say(f"{set_name}: {len(groups)} packages checked")
    return {"set": set_name, "packages": len(groups), "ways": out}


#: sets the night replay leaves out by default (see the module's docstring)
NIGHT_SKIP = ("native",)


def lock_at(repo: Path, python: str, cache: Path, set_name: str, when: str, dest: Path) -> None:
    """Lock ``set_name`` for Python 3.12 at snapshot ``when`` into ``dest``/SET, with the
    set's Nix files beside it."""
    lock = repo / "sets" / set_name / "pylock.py312.toml"
    lock.unlink(missing_ok=True)
    argv = common.bot_argv(
        python, str(repo), "--quiet", "lock", set_name, "--python", "3.12",
        "--exclude-newer", when, "--cache-dir", str(cache),
    )  # fmt: skip
    run(argv, cwd=repo, env=common.child_env(repo / "code"))
    copy_set(repo / "sets" / set_name, dest / set_name)


def fixed_output(drvs: set[str]) -> set[str]:
    """Those of ``drvs`` that are fixed-output (downloads): they have an ``outputHash``."""
    out = set()
    for drv in drvs:
        proc = subprocess.run(
            ["nix-store", "--query", "--binding", "outputHash", drv],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0 and proc.stdout.strip():
            out.add(drv)
    return out


def night_replay(
    refs: list[str], snapshots: list[str], wanted: list[str], tmp: Path, args: Any, say: Any
) -> dict[str, Any]:
    """One real night, counted (and with ``args.build`` built) for each library of ``refs``."""
    before_at, after_at = snapshots
    repo = tmp / "lock-repo"
    (repo / "code").mkdir(parents=True)
    lock_commit = common.commit_of(args.lock_ref)
    common.extract(lock_commit, repo, ["bot", "sets", "nix", "overrides"])
    (repo / "bot").rename(repo / "code" / "bot")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    python = common.plain_python(tmp / "venv")
    names = wanted or sorted(
        d.name
        for d in (repo / "sets").iterdir()
        if (d / "set.yaml").is_file() and d.name not in NIGHT_SKIP
    )
    nights = {"before": tmp / "night-before", "after": tmp / "night-after"}
    changes: dict[str, list[str]] = {}
    cache = tmp / "lock-cache"
    # the floor: each new artifact and its package, once; each set whose environment moves
    new_files: set[str] = set()
    moved_sets = 0
    for name in names:
        for label, when in (("before", before_at), ("after", after_at)):
            lock_at(repo, python, cache, name, when, nights[label])
        texts = [(nights[k] / name / "pylock.py312.toml").read_text() for k in nights]
        old, new = ({p["name"]: p["version"] for p in tomllib.loads(t)["packages"]} for t in texts)
        changes[name] = [
            f"{n} {old.get(n, '-')} -> {new.get(n, '-')}"
            for n in sorted(old.keys() | new.keys())
            if old.get(n) != new.get(n)
        ]
        say(f"night: {name}: {len(changes[name])} version changes")
        old_h, new_h = (artifact_hashes(t) for t in texts)
        fresh = {h for n, h in new_h.items() if old_h.get(n) != h}
        new_files |= fresh
        moved_sets += bool(fresh or old_h.keys() != new_h.keys())
    floor = 2 * len(new_files) + moved_sets

    real_python: str | None = None
    options: list[str] | None = None
    if args.build:
        sys.path.insert(0, str(common.REPO))
        from bot.model.interpreters import build_options, detect

        real_python = detect(("3.12",))["3.12"]
        options = [x for k, v in build_options([real_python]).items() for x in ("--option", k, v)]
    results = []
    for ref in refs:
        commit = common.commit_of(ref)
        root = tmp / f"lib-{commit[:12]}"
        common.extract(commit, root, ["default.nix", "nix", "overrides"])
        interpreters = tmp / "interpreters.json"
        # evaluation only, unless built: then the interpreter the builds run
        interpreters.write_text(
            json.dumps({"interpreters": {"3.12": real_python or sys.executable}})
        )
        closures = {
            k: set().union(*(closure_drvs(root, n, d, interpreters) for n in names))
            for k, d in nights.items()
        }
        night = closures["after"] - closures["before"]
        downloads = sorted(fixed_output(night))
        entry: dict[str, Any] = {
            "code": common.describe(commit),
            "derivations": len(night),
            "downloads": len(downloads),
            "closure": len(closures["after"]),
            # names without the store hash: what was rebuilt
            "names": sorted(Path(d).name.split("-", 1)[1].removesuffix(".drv") for d in night),
        }
        say(f"night: {ref}: {len(night)} derivations ({entry['downloads']} downloads)")
        if options is not None:  # --build
            jobs = args.max_jobs_night or _library_jobs(commit)
            say(f"night: {ref}: building the sets before the night (not measured)")
            build_night(root, names, interpreters, nights["before"], "auto", options)
            if downloads:
                run(["nix-store", "--realise", *downloads])
            forget_built(night - set(downloads))  # an earlier run's: built again, timed
            say(f"night: {ref}: building the night, --max-jobs {jobs}")
            entry["build_seconds"] = build_night(
                root, names, interpreters, nights["after"], jobs, options
            )
            entry["max_jobs"] = jobs
        results.append(entry)
    return {
        "snapshots": snapshots,
        "lock_code": common.describe(lock_commit),
        "sets": names,
        "changes": changes,
        "floor": floor,
        "new_files": len(new_files),
        "libraries": results,
    }


def build_night(
    root: Path, names: list[str], interpreters: Path, sets_dir: Path, max_jobs: str,
    options: list[str],
) -> float:  # fmt: skip
    """Seconds to build the environments of ``names`` from ``sets_dir`` in one nix-build."""
    argv = [
        "nix-build", str(root / "default.nix"),
        *(x for n in names for x in ("-A", f"{n}.py312.python")),
        "--arg", "pkgs", "null", "--argstr", "interpretersFile", str(interpreters),
        "--argstr", "setsDir", str(sets_dir),
        "--argstr", "overridesDir", str(root / "overrides"),
        "--max-jobs", max_jobs, "--cores", "0", "--no-out-link",
        "--option", "substituters", "", *options,
    ]  # fmt: skip
    t0 = time.perf_counter()
    run(argv)
    return time.perf_counter() - t0


def forget_built(drvs: set[str]) -> None:
    """Delete the outputs of ``drvs`` an earlier run left in the store, and what refers to
    them (nothing roots them: builds here are ``--no-out-link``), so that they are built
    again; an output that cannot be deleted ends the benchmark, as its build would not be
    measured."""
    if not drvs:
        return
    outputs = run(["nix-store", "--query", "--outputs", *sorted(drvs)]).split()
    present = [o for o in outputs if Path(o).exists()]
    if present:
        # with what refers to them (e.g. another night's environment holding a package)
        doomed = run(["nix-store", "--query", "--referrers-closure", *present]).split()
        subprocess.run(["nix-store", "--delete", *doomed], capture_output=True, check=False)
    left = [o for o in present if Path(o).exists()]
    if left:
        raise SystemExit(f"cannot delete {len(left)} earlier outputs of the night, e.g. {left[0]}")


def _library_jobs(commit: str) -> str:
    """What that commit's bot passed ``nix-build`` for jobs: ``auto`` once it passed
    ``--max-jobs`` at all, else nothing, i.e. Nix's default of one job."""
    found = subprocess.run(
        ["git", "-C", str(common.REPO), "grep", "-q", "--", "--max-jobs", commit, "--", "bot"],
        check=False,
    )
    return "auto" if found.returncode == 0 else "1"


def render_night(report: dict[str, Any]) -> str:
    before, after = report["snapshots"]
    lines = [f"night {before} -> {after}, locked by {report['lock_code']}"]
    total = sum(len(c) for c in report["changes"].values())
    lines.append(
        f"{total} version changes in {sum(1 for c in report['changes'].values() if c)} of "
        f"{len(report['sets'])} sets; floor {report['floor']} derivations "
        f"({report['new_files']} new files, their packages, the environments that moved)"
    )
    for name, changed in report["changes"].items():
        if changed:
            lines.append(f"  {name}: " + ", ".join(changed))
    rows = [["library", "derivations", "of them downloads", "build s", "--max-jobs"]]
    for r in report["libraries"]:
        secs = r.get("build_seconds")
        rows.append(
            [
                r["code"],
                str(r["derivations"]),
                str(r["downloads"]),
                "-" if secs is None else f"{secs:.1f}",
                r.get("max_jobs", "-"),
            ]
        )
    lines += ["", *common.table(rows)]
    for r in report["libraries"]:
        lines.append(f"{r['code'][:19]}: " + ", ".join(r["names"]))
    return "\n".join(lines)


def render_passes(report: dict[str, Any]) -> str:
    rows = [["set", "packages", "way", "seconds"]]
    for p in report["passes"]:
        for name, values in p["ways"].items():
            rows.append([p["set"], str(p["packages"]), name, common.fmt(common.stats(values))])
    return report["code"] + "\n" + "\n".join(common.table(rows))


def render_times(report: dict[str, Any]) -> str:
    lines = [report["code"]]
    for t in report["times"]:
        rows = [["rebuild", "--max-jobs", "seconds", "derivations built"]]
        for max_jobs in dict.fromkeys(r["max_jobs"] for r in t["rows"]):
            mine = [r for r in t["rows"] if r["max_jobs"] == max_jobs]
            rows.append(
                [
                    t["spec"],
                    max_jobs,
                    common.fmt(common.stats([r["seconds"] for r in mine])),
                    ", ".join(str(r["built"]) for r in mine),
                ]
            )
        lines += common.table(rows)
    return "\n".join(lines)


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
    p.add_argument("--time", default="", metavar="SET:PKG[,SET:PKG]", help="build and time")
    p.add_argument("--max-jobs", default="1,auto", help="with --time: values to compare")
    p.add_argument("--rounds", type=int, default=3, help="with --time: rounds per value")
    p.add_argument("--passes", default="", metavar="SET[,SET]", help="time the check passes")
    p.add_argument(
        "--night", default="", metavar="BEFORE,AFTER", help="replay one real night (snapshots)"
    )
    p.add_argument("--lock-ref", default="HEAD", help="with --night: the bot that locks")
    p.add_argument("--build", action="store_true", help="with --night: build it, timed")
    p.add_argument(
        "--max-jobs-night",
        default="",
        metavar="N|auto",
        help="with --night --build: jobs for every library [default: each library's own]",
    )
    args = p.parse_args(argv)
    say = common.progress(args.quiet)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nixpkgs-python-rebuild-") as tmp:
        if args.night:
            snapshots = [x for x in args.night.split(",") if x]
            if len(snapshots) != 2:
                p.error("--night: two snapshot times, BEFORE,AFTER")
            refs = [r for r in args.ref.split(",") if r]
            wanted_sets = [x for x in args.sets.split(",") if x]
            report = night_replay(refs, snapshots, wanted_sets, Path(tmp), args, say)
            report["seconds"] = time.monotonic() - t0
            common.emit(report, args.json, render_night)
            return 0
        root = Path(tmp) / "code"
        commit = common.commit_of(args.ref)
        common.extract(commit, root, ["default.nix", "nix", "overrides", "sets"])
        interpreters = Path(tmp) / "interpreters.json"
        # evaluation only: the interpreter is never run
        interpreters.write_text(json.dumps({"interpreters": {"3.12": sys.executable}}))
        if args.passes:
            passes = [
                check_passes(root, Path(tmp), name, args.rounds, say)
                for name in args.passes.split(",")
            ]
            report = {"code": common.describe(commit), "passes": passes}
            common.emit(report, args.json, render_passes)
            return 0
        if args.time:
            jobs = [j for j in args.max_jobs.split(",") if j]
            times = [
                timed_builds(root, Path(tmp), spec, jobs, args.rounds, say)
                for spec in args.time.split(",")
            ]
            report = {"code": common.describe(commit), "times": times}
            common.emit(report, args.json, render_times)
            return 0
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
