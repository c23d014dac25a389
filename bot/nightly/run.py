"""``nixpkgs-python nightly``: the nightly's entry.  It takes the repository lock and runs
either the whole night (:mod:`bot.nightly.night`) or CI's final commit-only job
(:mod:`bot.nightly.commit_only`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bot.core.repolock import repository_lock
from bot.nightly.commit_only import commit_only  # CI's final job
from bot.nightly.night import night  # the sets, publishing and the report
from bot.nightly.options import NightlyOptions, NightResult


def run_nightly(
    opts: NightlyOptions, *, progress: Callable[[str], None] | None = None
) -> NightResult:
    """The whole night: every set, then publishing and the reports.

    It holds the repository lock throughout and first repairs what an interrupted night
    left (:func:`bot.core.repolock.recover`; its commits are published with tonight's).  One set
    failing in any way, expected or not, never stops the others, and the report is always
    written, an interrupted night's too (then the interruption is raised again).
    """
    say = progress or (lambda _msg: None)
    started = datetime.now(UTC).replace(microsecond=0)
    with repository_lock(opts.repo, "nightly"):
        if opts.commit_only:  # locks nothing: its snapshot is the one the jobs' locks say
            return commit_only(opts, started)
        opts.exclude_newer = opts.exclude_newer or started
        return night(opts, started, say)


__all__ = ["run_nightly"]
