#!/usr/bin/env python3
"""How much slower one big download gets in-process while another thread computes.

A cold lock downloads project pages of several MB (coverage's JSON page is 4.2 MB) while
other threads parse pages and the resolver runs.  Reading a TLS response takes one GIL round
trip per TLS record (OpenSSL returns at most one record, up to 16 KiB, per read, and CPython
releases the GIL around each), and while another thread holds the GIL each round trip can
wait out the interpreter's switch interval.  This script measures that effect with the bot's
own HTTP client on one kept-alive connection: the same GET alone, then beside a thread that
does CPU-bound work (``json.loads`` of the same page in a loop: what a lock's other threads
do), alternating, N rounds, for each switch interval asked for.

It is the measurement behind BENCHMARKS.md's explanation of the cold-lock ratio; it is not a
test and has no target.  It talks to the live index (``--url``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Sequence

from common import REPO

DEFAULT_URL = "https://pypi.org/simple/coverage/"
ACCEPT = "application/vnd.pypi.simple.v1+json"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/convoy.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=DEFAULT_URL, help=f"a big page [default: {DEFAULT_URL}]")
    p.add_argument("-n", "--rounds", type=int, default=5, help="rounds [default: 5]")
    p.add_argument(
        "--switch-interval",
        type=float,
        action="append",
        metavar="SECONDS",
        help="sys.setswitchinterval values to try (repeatable) [default: 0.005, 0.0005]",
    )
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from bot.lock.index.http import Http

    http = Http(retries=1)
    headers = {"Accept": ACCEPT}
    body = http.get(args.url, headers=headers).content  # connect; and the busy thread's input
    print(f"{args.url}: {len(body) / 1e6:.1f} MB, {args.rounds} rounds, medians (min-max)")
    default = sys.getswitchinterval()
    for interval in args.switch_interval or [0.005, 0.0005]:
        sys.setswitchinterval(interval)
        alone: list[float] = []
        beside: list[float] = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            http.get(args.url, headers=headers)
            alone.append(time.perf_counter() - t0)
            stop = threading.Event()

            def busy(stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    json.loads(body)

            worker = threading.Thread(target=busy)
            worker.start()
            time.sleep(0.01)
            t0 = time.perf_counter()
            http.get(args.url, headers=headers)
            beside.append(time.perf_counter() - t0)
            stop.set()
            worker.join()
        ratio = statistics.median(b / a for a, b in zip(alone, beside, strict=True))
        print(
            f"switch interval {interval * 1000:g} ms: alone {_ms(alone)}, beside a busy "
            f"thread {_ms(beside)}: {ratio:.1f}x"
        )
    sys.setswitchinterval(default)
    http.close()
    return 0


def _ms(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1000:.0f} ms "
        f"({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"
    )


if __name__ == "__main__":
    sys.exit(main())
