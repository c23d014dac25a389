#!/usr/bin/env python3
"""Trials of interrupted nights: how many repositories need a manual repair afterwards?

Runs ``tests/test_night_transaction.py`` with ``NIXPKGS_PYTHON_TRIALS=N``: every case is a
real ``nixpkgs-python nightly`` process (loopback index, real Nix builds, a bare git remote)
interrupted at one phase, followed by the next night, which must run without repair, leave a
clean tree and publish what was left:

- during the build: SIGTERM (to the process), SIGINT (to the process group, as Ctrl-C),
  SIGKILL (to the process group);
- during ``git commit`` (a slow pre-commit hook): the same three;
- during ``git push`` (a slow pre-receive hook on the remote): the same three, and the
  process must stop while the remote still holds the push;
- the signing key from the environment, SIGTERM and SIGKILL while signing: no file holds it.

Plus, once each: two nightlies at once, an unexpected exception in one set.

A failed trial is a repository that needed repair (or, for the key, a secret found on disk).
Usage: ``.venv/bin/python benchmarks/interrupts.py [--trials 5]``.  Only the standard
library is used; the test suite's fixtures do the rest.  Exit status 0 when every trial
healed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--junitxml={junit}", "tests/test_night_transaction.py"],
            cwd=REPO,
            env={**os.environ, "NIXPKGS_PYTHON_TRIALS": str(args.trials)},
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if not junit.exists():
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            return 2
        cases: dict[str, list[bool]] = defaultdict(list)
        seconds: dict[str, float] = defaultdict(float)
        for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 (our own file)
            # fold the trial number: case[SIGTERM-3] -> case[SIGTERM], case[3] -> case
            name = re.sub(r"\[\d+\]$", "", re.sub(r"-\d+\]$", "]", case.get("name", "")))
            ok = case.find("failure") is None and case.find("error") is None
            if case.find("skipped") is not None:
                continue
            cases[name].append(ok)
            seconds[name] += float(case.get("time", 0))
    width = max(len(n) for n in cases) if cases else 10
    print(f"{'case':<{width}}  trials  healed  need repair  seconds/trial")
    broken = 0
    for name, results in sorted(cases.items()):
        bad = results.count(False)
        broken += bad
        print(
            f"{name:<{width}}  {len(results):>6}  {results.count(True):>6}  {bad:>11}"
            f"  {seconds[name] / len(results):>13.1f}"
        )
    total = sum(len(r) for r in cases.values())
    print(f"\n{total} trials, {total - broken} healed without repair, {broken} needed repair")
    if broken:
        print(proc.stdout[-5000:])
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
