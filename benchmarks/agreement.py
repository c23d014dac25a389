"""Agreement with uv (live PyPI): each of ~60 widely used packages locked alone for Python 3.12.

For every package the bot locks a one-requirement set (all systems of the pin, one
resolution) and ``uv pip compile --format pylock.toml --python-platform P`` resolves it for
each compared platform at the same index snapshot:

=================  =================================================================
bot system         uv platform
=================  =================================================================
x86_64-linux       ``x86_64-manylinux_2_40`` (uv's newest; the pin's glibc is 2.42)
aarch64-linux      ``aarch64-manylinux_2_40``
aarch64-darwin     ``aarch64-apple-darwin`` with ``MACOSX_DEPLOYMENT_TARGET=14.0``
=================  =================================================================

Compared per package: both lock (or both fail); the same version of the package itself on
every platform; the same members (runtime closure of the root) per platform; the same
artifact kind (wheel or sdist) per platform for the members both have.  The bot's build
frontend (build, installer and their dependencies) and build requirements are not members.

    python benchmarks/agreement.py [--exclude-newer TS] [--json] [-q] [--packages a,b,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common

PACKAGES = [
    "aiohttp",
    "attrs",
    "bcrypt",
    "black",
    "boto3",
    "certifi",
    "cffi",
    "charset-normalizer",
    "click",
    "contourpy",
    "coverage",
    "cryptography",
    "django",
    "fastapi",
    "flask",
    "fonttools",
    "greenlet",
    "grpcio",
    "h5py",
    "httpx",
    "idna",
    "jinja2",
    "kiwisolver",
    "lxml",
    "markupsafe",
    "matplotlib",
    "msgpack",
    "mypy",
    "numpy",
    "orjson",
    "packaging",
    "pandas",
    "pillow",
    "protobuf",
    "psutil",
    "psycopg2-binary",
    "pyarrow",
    "pydantic",
    "pynacl",
    "pytest",
    "python-dateutil",
    "pytz",
    "pyyaml",
    "pyzmq",
    "regex",
    "requests",
    "rich",
    "ruff",
    "scikit-learn",
    "scipy",
    "setuptools",
    "shapely",
    "six",
    "sqlalchemy",
    "tornado",
    "typer",
    "ujson",
    "urllib3",
    "uvicorn",
    "watchdog",
    "websockets",
    "wrapt",
    "zstandard",
]

PLATFORMS = {
    "x86_64-linux": ("x86_64-manylinux_2_40", {}),
    "aarch64-linux": ("aarch64-manylinux_2_40", {}),
    "aarch64-darwin": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
}
PYTHON = "3.12"


def find_uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else "uv"


def uv_lock(package: str, platform: str, extra_env: dict[str, str], snapshot: str, tmp: Path):
    """{name: (version, kind)} of uv's resolution for one platform, or an error string."""
    req = tmp / f"{package}.in"
    req.write_text(package + "\n")
    env = {**os.environ, **extra_env}
    argv = [find_uv(), "pip", "compile", str(req), "--python-version", PYTHON]
    argv += ["--python-platform", platform, "--format", "pylock.toml", "--no-header", "-q"]
    argv += ["--exclude-newer", snapshot, "--no-config"]
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["uv failed"])[-1]
    doc = tomllib.loads(proc.stdout)
    return {
        p["name"]: (p["version"], "wheel" if p.get("wheels") else "sdist")
        for p in doc.get("packages", [])
    }


def bot_locks(
    packages: Sequence[str], snapshot: str, repo: Path, cache: str | None
) -> dict[str, Any]:
    """{package: {system: {name: (version, kind)}} | error} from one `lock` run over one set
    per package."""
    (repo / "nix").mkdir(parents=True, exist_ok=True)
    (repo / "nix" / "nixpkgs.json").write_bytes((common.REPO / "nix" / "nixpkgs.json").read_bytes())
    for package in packages:
        d = repo / "sets" / package
        d.mkdir(parents=True, exist_ok=True)
        (d / "set.yaml").write_text(
            f"description: {package} alone\npython: ['{PYTHON}']\nrequirements: ['{package}']\n"
        )
    argv = [sys.executable, "-m", "bot.cli", "--repo", str(repo), "-q", "lock", "--json"]
    argv += ["--exclude-newer", snapshot] + (["--cache-dir", cache] if cache else [])
    env = {**os.environ, "PYTHONPATH": str(common.REPO)}
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=7200)
    try:
        outcomes = {o["set"]: o for o in json.loads(proc.stdout)}
    except json.JSONDecodeError:
        raise SystemExit(f"the bot's lock run failed:\n{proc.stderr[-3000:]}") from None
    out: dict[str, Any] = {}
    for package in packages:
        o = outcomes.get(package)
        if o is None or o["status"] == "failed":
            out[package] = (o or {}).get("error") or "no outcome"
            continue
        doc = tomllib.loads(Path(o["path"]).read_text())
        out[package] = members_by_system(doc)
    return out


def members_by_system(doc: dict[str, Any]) -> dict[str, dict[str, tuple[str, str]]]:
    """The runtime closure of the lock's roots on each compared system."""
    packages = {p["name"]: p for p in doc["packages"]}
    roots = doc["tool"]["nixpkgs-python"]["roots"]
    out = {}
    for system in PLATFORMS:

        def artifact(name: str, system: str = system) -> str | None:
            return packages[name]["tool"]["nixpkgs-python"]["artifacts"].get(system)

        seen: dict[str, tuple[str, str]] = {}
        stack = [r for r in roots if r in packages]
        while stack:
            name = stack.pop()
            file = artifact(name)
            if name in seen or file is None:
                continue
            seen[name] = (packages[name]["version"], "wheel" if file.endswith(".whl") else "sdist")
            stack += [d["name"] for d in packages[name].get("dependencies", [])]
        out[system] = seen
    return out


def compare(package: str, ours: Any, theirs: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"package": package, "notes": []}
    ok_ours = isinstance(ours, dict)
    ok_uv = {s: isinstance(v, dict) for s, v in theirs.items()}
    row["ours_ok"] = ok_ours
    row["uv_ok"] = all(ok_uv.values())
    row["same_success"] = ok_ours == row["uv_ok"]
    if not ok_ours:
        row["notes"].append(f"bot: {str(ours)[:160]}")
    for s, v in theirs.items():
        if not isinstance(v, dict):
            row["notes"].append(f"uv {s}: {v[:160]}")
    if not (ok_ours and row["uv_ok"]):
        row.update(same_version=None, same_members=None, same_kinds=None)
        return row
    versions_same = members_same = kinds_same = True
    for system in PLATFORMS:
        mine, uv = ours[system], theirs[system]
        if mine.get(package, ("?",))[0] != uv.get(package, ("?",))[0]:
            versions_same = False
            a, b = mine.get(package, ("-",))[0], uv.get(package, ("-",))[0]
            row["notes"].append(f"{system}: {package} {a} vs uv {b}")
        if set(mine) != set(uv):
            members_same = False
            only_mine = sorted(set(mine) - set(uv))
            only_uv = sorted(set(uv) - set(mine))
            row["notes"].append(f"{system}: only bot {only_mine}, only uv {only_uv}")
        for name in sorted(set(mine) & set(uv)):
            if mine[name][1] != uv[name][1]:
                kinds_same = False
                row["notes"].append(f"{system}: {name} bot {mine[name][1]}, uv {uv[name][1]}")
            elif mine[name][0] != uv[name][0] and name != package:
                row["notes"].append(f"{system}: {name} {mine[name][0]} vs uv {uv[name][0]}")
    row.update(same_version=versions_same, same_members=members_same, same_kinds=kinds_same)
    return row


def render(report: dict[str, Any]) -> str:
    def mark(v: bool | None) -> str:
        return "-" if v is None else ("yes" if v else "NO")

    rows = report["rows"]
    lines = [
        f"agreement with uv {report['uv']} at {report['exclude_newer']}, Python {PYTHON}, "
        f"{len(rows)} packages ({report['seconds']:.0f} s)",
        "",
        "| package | bot locks | uv locks | same version | same members | same kinds | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        notes = "; ".join(r["notes"])[:300].replace("|", "\\|")
        lines.append(
            f"| {r['package']} | {mark(r['ours_ok'])} | {mark(r['uv_ok'])} | "
            f"{mark(r['same_version'])} | {mark(r['same_members'])} | {mark(r['same_kinds'])} "
            f"| {notes} |"
        )
    s = report["summary"]
    lines += [
        "",
        f"both lock: {s['both_ok']}/{len(rows)}; same success: {s['same_success']}/{len(rows)}; "
        f"same version: {s['same_version']}/{s['both_ok']}; same members on all three "
        f"platforms: {s['same_members']}/{s['both_ok']}; same kinds: {s['same_kinds']}/"
        f"{s['both_ok']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    common.add_exclude_newer(p)
    p.add_argument("--packages", help="comma-separated packages [default: the built-in list]")
    p.add_argument("--cache-dir", help="the bot's cache [default: its usual one]")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    snapshot = args.exclude_newer or common.default_snapshot()
    packages = args.packages.split(",") if args.packages else list(PACKAGES)
    say = common.progress(args.quiet)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nixpkgs-python-agreement-") as tmp_name:
        tmp = Path(tmp_name)
        say(f"uv: {len(packages)} packages x {len(PLATFORMS)} platforms")
        theirs: dict[str, dict[str, Any]] = {p: {} for p in packages}
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {
                (pkg, system): pool.submit(uv_lock, pkg, plat, env, snapshot, tmp)
                for pkg in packages
                for system, (plat, env) in PLATFORMS.items()
            }
            for (pkg, system), fut in futures.items():
                theirs[pkg][system] = fut.result()
        say("bot: one lock run over one set per package")
        ours = bot_locks(packages, snapshot, tmp / "repo", args.cache_dir)
    rows = [compare(p, ours[p], theirs[p]) for p in packages]
    both = [r for r in rows if r["ours_ok"] and r["uv_ok"]]
    uv_version = subprocess.run(
        [find_uv(), "--version"], check=False, capture_output=True, text=True
    ).stdout
    report = {
        "exclude_newer": snapshot,
        "date": common.date(datetime.now(UTC)),
        "uv": uv_version.split()[1] if uv_version else "?",
        "seconds": time.monotonic() - t0,
        "rows": rows,
        "summary": {
            "both_ok": len(both),
            "same_success": sum(r["same_success"] for r in rows),
            "same_version": sum(bool(r["same_version"]) for r in both),
            "same_members": sum(bool(r["same_members"]) for r in both),
            "same_kinds": sum(bool(r["same_kinds"]) for r in both),
        },
    }
    common.emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
