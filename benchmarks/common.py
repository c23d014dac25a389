"""What the benchmark scripts share: measuring a child, scratch copies, statistics, output.

The scripts run as ``python benchmarks/<name>.py``, so this directory is ``sys.path[0]`` and
``import common`` finds this module.  Only the standard library is used.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import site
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

#: the checkout the benchmarks live in
REPO = Path(__file__).resolve().parent.parent

#: how many lines of a failed child's output a report keeps
TAIL_LINES = 15


# -- running a child and measuring it ---------------------------------------------------------


def run_child(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    stdout: IO[bytes] | int,
    stderr: IO[bytes] | int,
    started: Callable[[subprocess.Popen[bytes], float], None] | None = None,
    cpu: list[float] | None = None,
) -> tuple[float, float, int, bool]:
    """Run ``argv`` in its own session; return (wall seconds, peak RSS in MB, exit status,
    timed out).

    The child is reaped with ``os.wait4`` so its own rusage is read, not the script's (on
    Linux ``ru_maxrss`` also covers the children it waited for).  After ``timeout`` seconds
    its process group is killed and the exit status is -9.  ``started(proc, t0)`` is called
    right after the start (``t0`` from ``time.perf_counter``), e.g. to read a piped stderr.
    ``cpu``: gets the child's user + system CPU seconds appended (with the children it waited
    for), which the machine's load does not inflate as it does the wall time.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    if started is not None:
        started(proc, t0)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    code = proc.returncode if not timed_out.is_set() else -9
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return seconds, usage.ru_maxrss * 1024 / 1e6, code, timed_out.is_set()


def measure(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    log_dir: Path,
    cpu: list[float] | None = None,
) -> tuple[float, float, int, str]:
    """Run ``argv`` with its output in ``log_dir``/stdout and stderr; return (wall seconds,
    peak RSS in MB, exit status, the tail of stderr and stdout if it failed).  ``cpu``: as
    :func:`run_child`'s."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout", log_dir / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        seconds, rss, code, timed_out = run_child(
            argv, cwd=cwd, env=env, timeout=timeout, stdout=out, stderr=err, cpu=cpu
        )
    tail = ""
    if code != 0:
        text = err_path.read_text(errors="replace") + out_path.read_text(errors="replace")
        tail = ("(timed out) " if timed_out else "") + "\n".join(
            text.strip().splitlines()[-TAIL_LINES:]
        )
    return seconds, rss, code, tail


def child_env(code: Path, *, drop: Iterable[str] = (), **extra: str) -> dict[str, str]:
    """This environment without ``drop``, with ``extra``, ``code`` first on ``PYTHONPATH``,
    no bytecode written and no colours."""
    env = dict(os.environ)
    for key in drop:
        env.pop(key, None)
    env.update(extra)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")])),
        PYTHONDONTWRITEBYTECODE="1",
        NO_COLOR="1",
    )
    return env


def plain_python(root: Path) -> str:
    """An interpreter (a venv in ``root``) that imports what this one's site-packages hold
    but starts as an installed tool's does: the ``.pth`` files there are not run, so the
    import hook an editable install of the bot leaves (``__editable__*.pth``, ~8 ms of every
    start-up, which no installed copy pays) is not loaded."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(where) / "bench-dependencies.pth").write_text(
        "".join(f"{d}\n" for d in site.getsitepackages()), encoding="utf-8"
    )
    return str(python)


def bot_argv(python: str, repo: str, *args: str) -> list[str]:
    """``python -m bot.cli --repo REPO ARGS...``."""
    return [python, "-m", "bot.cli", "--repo", repo, *args]


# -- the scratch copy of the repository -------------------------------------------------------


def git(*argv: str, repo: Path = REPO) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *argv], capture_output=True, text=True, check=True
    ).stdout.strip()


def commit_of(ref: str) -> str:
    return git("rev-parse", "--verify", f"{ref}^{{commit}}")


def extract(commit: str, root: Path, paths: Sequence[str] = ()) -> None:
    """Extract ``git archive`` of ``commit`` (only ``paths``, if given) into ``root``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, *paths],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    byte_compile(root)


def byte_compile(root: Path) -> None:
    """Byte-compile the bot in ``root`` once, as installing it would.

    The children run with PYTHONDONTWRITEBYTECODE (so nothing is written into the scratch
    copy while measuring, and this machine sets it globally): without this every measured
    run would also compile the bot's sources, which an installed tool never does.
    """
    if (root / "bot").is_dir():
        compileall.compile_dir(root / "bot", quiet=1)


def describe(commit: str, *, repo: Path = REPO) -> str:
    """``commit 0123456789ab (subject)``, the subject cut to 60 characters."""
    subject = git("log", "-1", "--format=%s", commit, repo=repo)
    if len(subject) > 60:
        subject = subject[:57] + "..."
    return f"commit {commit[:12]} ({subject})"


def copy_local_json(root: Path) -> None:
    """Copy the checkout's ``nix/local.json`` (the machine's interpreters), if any."""
    local = REPO / "nix" / "local.json"
    if local.is_file():
        shutil.copy2(local, root / "nix" / "local.json")


@contextlib.contextmanager
def scratch_dir(keep: bool, prefix: str) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        if keep:
            print(f"scratch kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def default_snapshot() -> str:
    """24 hours ago, on the hour, RFC 3339: an index snapshot every tool can be held to."""
    t = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the report -------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt(s: dict[str, float] | None, digits: int = 2) -> str:
    """``median (min-max)``, or ``-``."""
    if s is None:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, a rule under the first row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def indent(text: str) -> str:
    """A multi-line tail for a report line: every line after the first indented by two."""
    return text.replace("\n", "\n  ")


def date(started: datetime) -> str:
    return started.strftime("%Y-%m-%d %H:%M UTC")


def machine(load_start: tuple[float, float, float]) -> dict[str, Any]:
    """The report's facts about the machine: CPUs, system, load at the start and now."""
    return {
        "cpus": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}",
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }


def load(meta: dict[str, Any]) -> str:
    """``N CPUs  load A -> B`` of a report's meta."""
    return (
        f"{meta['cpus']} CPUs  load {meta['loadavg_start'][0]:.1f} -> {meta['loadavg_end'][0]:.1f}"
    )


def emit(report: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    print(json.dumps(report, indent=2) if as_json else render(report))


# -- the command line -------------------------------------------------------------------------


def progress(quiet: bool) -> Callable[[str], None]:
    """A ``say(msg)`` that writes progress to stderr unless ``quiet``."""

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    return say


def add_exclude_newer(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--exclude-newer",
        metavar="TS",
        default=None,
        help="index snapshot, RFC 3339 [default: 24 hours ago, on the hour]",
    )


def add_output_options(p: argparse.ArgumentParser, quiet_help: str) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("--keep-scratch", action="store_true", help="keep the scratch directory")
    p.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, check ``--rounds`` and fill in a default ``--exclude-newer``."""
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if getattr(args, "exclude_newer", "") is None:
        args.exclude_newer = default_snapshot()
    return args
