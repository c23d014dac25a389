"""Command line: parses arguments into typed options and hands them to one function each.

Each command lives in a module of this package (``lock``, ``build``, ``nightly``); shared
options are in :mod:`bot.cli.base`.  The error boundary is :func:`main`: every expected
failure is a :class:`bot.core.errors.BotError`, printed as one message (what, where, what to do)
with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import gc
import sys

import click

from bot.cli import build, index, lock, nightly, pins  # noqa: F401 (importing registers the commands)
from bot.cli.base import cli, err_console, print_error
from bot.core.errors import BotError

__all__ = ["cli", "entry", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI inside the error boundary."""
    # A cold lock allocates a few hundred thousand short-lived containers (the JSON of index
    # pages), freed by reference counting; with the default thresholds the cycle collector
    # ran ~175 times and took ~50 ms of a 0.6 s lock.  Collect every 250k allocations.
    thresholds = gc.get_threshold()
    gc.set_threshold(250_000, 10, 10)
    _bound_heap()
    try:
        return _run(argv)
    finally:
        gc.set_threshold(*thresholds)


def entry() -> int:
    """The console script and ``python -m bot.cli``: :func:`main`, with a crash of the
    interpreter itself (a fatal signal in C code) reported with every thread's Python stack
    on stderr (:mod:`faulthandler`) instead of a bare exit status.  Not in :func:`main`:
    tests call it in one process, many times."""
    import faulthandler

    faulthandler.enable()
    return main()


# glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _bound_heap() -> None:
    """Keep glibc's heap from holding on to freed index pages.

    A cold lock reads hundreds of JSON pages (up to megabytes each) on a pool of threads.
    glibc raises its mmap threshold each time such a block is freed, so later pages land in
    the heaps instead, and with one heap per thread what is freed stays mapped: the
    225-package benchmark set peaked at 175-184 MB, against 138-141 MB with the threshold
    held at its default (blocks over 128 KiB mapped and unmapped on their own) and 132-133 MB
    with one heap besides (the threads allocate under the interpreter lock anyway).  Not
    glibc (musl, macOS): nothing to do.
    """
    if sys.platform != "linux":
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    mallopt(_M_ARENA_MAX, 1)


def _run(argv: list[str] | None) -> int:  # noqa: PLR0911 (one exit per outcome)
    from bot.core.repolock import Terminated, handle_signals

    try:
        # SIGTERM unwinds like Ctrl-C: every command puts back what it wrote
        with handle_signals():
            cli.main(args=argv, prog_name="nixpkgs-python", standalone_mode=False)
    except BotError as exc:
        print_error(str(exc))
        return exc.exit_code
    except click.exceptions.Abort as exc:
        cause = exc.__context__
        if isinstance(cause, Terminated):
            err_console().print(f"stopped by {cause}")
            return 128 + cause.signum
        err_console().print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Terminated as exc:
        err_console().print(f"stopped by {exc}")
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 130
    return 0
