"""Benchmark pushing a closure to the binary cache, and the no-op second push.

    python benchmarks/push.py                       # synthetic closure: 30 paths x 64 KiB
    python benchmarks/push.py --count 100 --size 1048576
    python benchmarks/push.py /nix/store/...-foo    # an existing closure
    python benchmarks/push.py --nix-file default.nix -A pythonSets.pytest

Targets: ssh-ng://, ssh:// and rsync+ssh:// through a loopback OpenSSH server (the test
fixture's), and a local file:// cache.  Every run pushes into a fresh destination, then pushes
again (nothing to send) and verifies by substitution into a fresh store.  Medians are printed.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from common import REPO

sys.path.insert(0, str(REPO))

from bot import cache
from tests.plugins.sshd import start_sshd, stop_sshd
from tests.test_cache import CLOSURE_EXPR

#: the tests' closure (a top path referring to count-1 leaves), its top named bench-NONCE
SYNTHETIC = CLOSURE_EXPR.replace('mk "top-${nonce}"', 'mk "bench-${nonce}"')

T = TypeVar("T")


def nix_build(args: list[str]) -> list[str]:
    out = subprocess.run(
        ["nix-build", "--option", "substituters", "", "--no-out-link", *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.split()


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="store paths to push (default: synthetic)")
    parser.add_argument("--nix-file", help="build this nix file and push the result")
    parser.add_argument("-A", "--attr", help="attribute of --nix-file")
    parser.add_argument("--count", type=int, default=30, help="synthetic closure size")
    parser.add_argument("--size", type=int, default=65536, help="bytes per synthetic path")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--targets", default="ssh-ng,ssh,file,rsync")
    parser.add_argument(
        "--compression", default="xz", help="NAR compression of file/rsync caches (xz, zstd)"
    )
    opts = parser.parse_args()

    if opts.paths:
        paths = opts.paths
    elif opts.nix_file:
        paths = nix_build([opts.nix_file, *(["-A", opts.attr] if opts.attr else [])])
    else:
        nonce = uuid.uuid4().hex[:12]
        paths = nix_build(["-E", SYNTHETIC, "--argstr", "nonce", nonce,
                           "--argstr", "count", str(opts.count), "--argstr", "size",
                           str(opts.size)])  # fmt: skip
    closure = cache.local_closure(paths)
    infos = json.loads(
        subprocess.run(
            ["nix", "--extra-experimental-features", "nix-command", "path-info", "--json",
             "--recursive", *paths], capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    size = sum(int(i["narSize"]) for i in infos)
    print(
        f"closure: {len(closure)} paths, {size / 1024:.0f} KiB NAR; {opts.runs} runs; "
        f"file/rsync compression: {opts.compression}"
    )

    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    server = start_sshd(work / "sshd")
    try:
        pub = cache.cache_keygen("bench-1", work / "k.sec", work / "k.pub")
        server.trust(pub)
        key, cfg = work / "k.sec", server.ssh_config
        results: dict[str, dict[str, list[float]]] = {}
        for target in opts.targets.split(","):
            rows = results.setdefault(target, {"push": [], "no-op push": [], "verify": []})
            for run in range(opts.runs):
                dest = work / f"{target}-{run}"
                uri = {
                    "ssh-ng": f"ssh-ng://{server.host}?remote-store={dest}",
                    "ssh": f"ssh://{server.host}?remote-store={dest}",
                    "file": f"file://{dest}?compression={opts.compression}",
                    "rsync": f"rsync+ssh://{server.host}{dest}?compression={opts.compression}",
                }[target]
                push = functools.partial(cache.push, paths, to=uri, signing_key=key, ssh_config=cfg)
                t, first = timed(push)
                assert first.copied_count == len(closure), first
                t2, again = timed(push)
                assert again.copied_count == 0
                t3, ok = timed(
                    functools.partial(
                        cache.verify, paths, from_=uri, public_key=pub, ssh_config=cfg
                    )
                )
                assert ok.ok, ok.failures
                rows["push"].append(t)
                rows["no-op push"].append(t2)
                rows["verify"].append(t3)
        print(f"{'target':<10} {'push':>10} {'no-op push':>12} {'verify':>10}   (median s)")
        for target, rows in results.items():
            cells = [f"{statistics.median(v):10.3f}" for v in rows.values()]
            print(f"{target:<10} {cells[0]} {cells[1]:>12} {cells[2]}")
    finally:
        stop_sshd(server)
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
