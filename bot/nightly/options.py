"""The nightly's shared types: its options, one set's outcome, the night's result, and the
GitHub client the options ask for.  Every module of the nightly builds on this one; it builds
on none of them but the report and re-validation types."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cache.transfer import DEFAULT_PUSH_TIMEOUT
from bot.nightly import report, revalidate

if TYPE_CHECKING:
    from bot.nightly.github import GitHubClient

TOKEN_ENVS = ("NIXPKGS_PYTHON_GITHUB_TOKEN", "GITHUB_TOKEN")


@dataclass
class NightlyOptions:
    """Parsed options of ``nixpkgs-python nightly``."""

    repo: Path
    sets: Sequence[str] = ()
    python: str | None = None
    exclude_newer: datetime | None = None
    index_url: str | None = None
    cache_dir: Path | None = None  #: metadata cache
    store: str | None = None  #: binary cache; None: the embedded file cache
    signing_key: Path | None = None
    ssh_config: Path | None = None
    #: seconds one set's push to the binary cache may take (cut off: the next night resumes)
    push_timeout: float = DEFAULT_PUSH_TIMEOUT
    push_to: str | None = None  #: push commits straight to this branch
    pull_request: bool = False  #: push a night branch and open/update one pull request
    base: str = "main"
    remote: str = "origin"
    github_repo: str | None = None
    github_token: str | None = None
    github_api: str = "https://api.github.com"
    github_throttle: bool = True
    run_url: str | None = None
    report_json: Path | None = None
    report_markdown: Path | None = None
    #: build with nixpkgs (the pin, or ``nixpkgs_path``); False: the standalone interpreters
    nixpkgs: bool = True
    nixpkgs_path: Path | None = None
    #: the CLI's embedded defaults: without the pin on this machine, say so and build with
    #: the standalone interpreters instead (only ever into the local file cache)
    standalone_fallback: bool = False
    retries: int = 4
    #: CI's final job: commit the locks other jobs produced (already in the working tree),
    #: report the outcomes they recorded under this directory; no locking or building here
    commit_only: bool = False
    outcomes_dir: Path | None = None
    #: overrides re-validation: throwaway builds per night (0: only the cheap range check);
    #: None switches re-validation off
    revalidate_budget: int | None = 3
    #: write the static package index beside a file:// or rsync+ssh:// cache
    #: (bot.nightly.static_index)
    static_index: bool = True
    static_index_mirror: bool = False
    static_index_to: str | None = None  #: file:// or rsync+ssh:// directory, instead
    #: a local copy of the OSV advisory database (directory or zip; bot.nightly.advisories)
    advisories: Path | None = None
    #: derivations nix builds at once (``--max-jobs``; None: one per core), for the set
    #: builds and the hold-back probes
    max_jobs: int | None = None


@dataclass
class SetOutcome:
    """Internal result of one set (the report row plus what publishing needs)."""

    report: report.SetReport
    commit: str | None = None
    built: bool = False
    failures: list[tuple[str, str | None, str]] = field(default_factory=list)  # python, pkg, log


@dataclass
class NightResult:
    """The night's report, the publishing errors met, and the exit code."""

    report: report.NightReport
    errors: list[str]
    exit_code: int  #: 0 all good, 2 a set failed or publishing failed
    findings: list[revalidate.Finding] = field(default_factory=list)


def night_date(opts: NightlyOptions, started: datetime) -> str:
    """The day the night is of (YYYY-MM-DD): its snapshot's, ``--exclude-newer``, which is
    when it starts unless given.  A night run later at an earlier snapshot (a replay, a re-run
    of a failed night) is the night of that day: its report's date, its night branch and the
    ``since`` of the holds it places are that day's, as CI's hold-back jobs date theirs by the
    snapshot (``nixpkgs-python hold-back --exclude-newer``)."""
    return (opts.exclude_newer or started).date().isoformat()


def github_client(opts: NightlyOptions) -> GitHubClient | None:
    """The GitHub client when a token and a repository are given, else None."""
    token = opts.github_token or next(
        (os.environ[e] for e in TOKEN_ENVS if os.environ.get(e)), None
    )
    if not (token and opts.github_repo):
        return None
    from bot.nightly.github import GitHubClient  # PyGithub is slow to import; only when used

    return GitHubClient(
        token, opts.github_repo, base_url=opts.github_api, throttle=opts.github_throttle
    )


__all__ = [
    "TOKEN_ENVS",
    "NightResult",
    "NightlyOptions",
    "SetOutcome",
    "github_client",
    "night_date",
]
