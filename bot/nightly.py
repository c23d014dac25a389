"""``nixpkgs-python nightly``: per set, lock -> build -> push -> commit; then publish and report.

Each set is handled on its own: one failing set never stops the others, and nothing is
committed for a set that did not build (its lock files are restored).  A set whose locks did
not change and whose outputs the cache already has costs one resolution and one evaluation:
no build, no push, no commit.

With nothing configured this runs entirely locally: the embedded signed ``file://`` cache
under ``binary-cache/``, local commits, no GitHub.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot import build as builder
from bot import cache, git, report, revalidate
from bot.diff import commit_body, commit_subject, diff_locks
from bot.errors import BotError
from bot.holdback import Search, bumps, find_holds, held_report, hold_log, holds_for
from bot.index.client import IndexClient
from bot.interpreters import build_options, detect, load_local
from bot.locker import Hold, LockOptions, LockOutcome, lock_one, recorded_holds
from bot.nix import run_nix
from bot.overrides import load_overrides
from bot.repolock import Transaction, repository_lock
from bot.sets import PackageSet

if TYPE_CHECKING:
    from bot.github import GitHubClient

log = logging.getLogger(__name__)

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
    #: write the static package index beside a file:// or rsync+ssh:// cache (bot.static_index)
    static_index: bool = True
    static_index_mirror: bool = False
    static_index_to: str | None = None  #: file:// or rsync+ssh:// directory, instead
    #: a local copy of the OSV advisory database (directory or zip; bot.advisories)
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


def _signing_key(opts: NightlyOptions, store: str) -> Path | None:
    if opts.signing_key is not None:
        return opts.signing_key
    if os.environ.get(cache.SIGNING_KEY_ENV) or os.environ.get(cache.SIGNING_KEY_FILE_ENV):
        return None  # bot.cache reads it from the environment
    if store == cache.default_store(opts.repo):
        return cache.default_signing_key()
    raise BotError(
        f"no signing key for {store}",
        hint=f"pass --signing-key FILE or set {cache.SIGNING_KEY_FILE_ENV}",
    )


def _build_options(opts: NightlyOptions, pset: PackageSet) -> builder.BuildOptions:
    return builder.BuildOptions(
        sets=[pset.name],
        python=opts.python,
        out_link=None,
        keep_going=False,
        repo=opts.repo,
        nixpkgs=opts.nixpkgs,
        nixpkgs_path=opts.nixpkgs_path,
        max_jobs=opts.max_jobs,
    )


def choose_nixpkgs(opts: NightlyOptions) -> str | None:
    """Fetch and check the pin once for the night.  On the embedded defaults, a machine that
    cannot fetch it builds with its standalone interpreters instead: ``opts`` is changed and
    the returned line says so (None: nothing to say)."""
    from bot.nixpkgs import PinUnavailableError

    if not opts.nixpkgs:
        return None
    store = opts.store or cache.default_store(opts.repo)
    try:
        builder.prepare_nixpkgs(opts.repo, nixpkgs=opts.nixpkgs, path=opts.nixpkgs_path)
    except PinUnavailableError as exc:
        if not (opts.standalone_fallback and store == cache.default_store(opts.repo)):
            raise
        opts.nixpkgs = False
        return (
            f"the pinned nixpkgs is not available on this machine ({exc.message}); "
            "using the standalone interpreters: the outputs are for this machine only"
        )
    return None


def out_paths(opts: builder.BuildOptions, set_name: str, pythons: Sequence[str]) -> list[str]:
    """The store paths a set's environments would have, by evaluation only (no build)."""
    interpreters = load_local(opts.repo) or detect()
    with tempfile.TemporaryDirectory(prefix="nixpkgs-python-eval-") as tmp:
        file = Path(tmp) / "interpreters.json"
        file.write_text(json.dumps({"interpreters": dict(interpreters)}))
        paths = []
        for python in pythons:
            argv = builder.nix_build_args(opts, set_name, python, None if opts.nixpkgs else file)
            argv = [a for a in argv if a not in ("--no-out-link", "--keep-going")]
            attr = argv.index("-A") + 1
            argv[attr] += ".outPath"
            proc = run_nix(
                "nix-instantiate",
                ["--eval", "--json", *argv],
                options={} if opts.nixpkgs else build_options(interpreters.values()),
                what=f"evaluating set {set_name}",
            )
            paths.append(json.loads(proc.stdout))
    return paths


def _closure_bytes(paths: Sequence[str]) -> int | None:
    if not paths:
        return None
    proc = run_nix("nix-store", ["--query", "--size", *paths], check=False)
    if proc.returncode != 0:
        return None
    return sum(int(x) for x in proc.stdout.split() if x.isdigit())


def _write(tx: Transaction, outcomes: Sequence[LockOutcome]) -> None:
    for o in outcomes:
        if o.status != "unchanged":
            tx.write(o.path, o.text)


def night_set(
    pset: PackageSet,
    opts: NightlyOptions,
    client: IndexClient,
    started: datetime,
    store: str,
    signing_key: Path | None,
    progress: Callable[[str], None],
    tx: Transaction | None = None,
) -> SetOutcome:
    """Lock, and if needed build, push and commit one set; hold back what breaks it.

    The locks are written through ``tx``; whatever goes wrong (an exception, Ctrl-C,
    SIGTERM), what was written and not committed is put back before this returns or raises.
    """
    tx = tx or Transaction(opts.repo)
    pythons = [opts.python] if opts.python else list(pset.python)
    lock_opts = LockOptions(
        repo=opts.repo,
        exclude_newer=opts.exclude_newer,
        index_url=opts.index_url,
        cache_dir=opts.cache_dir,
        refresh=True,  # the night exists to see what is new: always ask the index
    )

    lock_paths = [pset.lock_path(p) for p in pythons]
    library = load_overrides(opts.repo)  # once for every (re)lock of the set

    def relock(holds: Mapping[str, Mapping[str, Hold]]) -> list[LockOutcome]:
        tx.undo(lock_paths)  # compare with, and diff against, the locks of the last night
        return [
            lock_one(
                pset,
                p,
                client,
                lock_opts,
                started,
                write=False,
                holds=holds.get(p),
                library=library,
            )
            for p in pythons
        ]

    progress(f"{pset.name}: locking")
    outcomes = relock({})
    bopts = _build_options(opts, pset)
    if all(o.status == "unchanged" for o in outcomes):
        progress(f"{pset.name}: checking the cache")
        wanted = out_paths(bopts, pset.name, pythons)
        if set(wanted) <= cache.has_paths(store, wanted, ssh_config=opts.ssh_config):
            return SetOutcome(
                report.SetReport(
                    pset.name,
                    tuple(pythons),
                    "unchanged",
                    freshness=_freshness(outcomes),
                )
            )
    sha = None
    t0 = time.monotonic()
    try:
        progress(f"{pset.name}: building")
        _write(tx, outcomes)
        results = builder.build_sets(bopts)
        held: dict[str, dict[str, Hold]] = {}
        search: Search | None = None
        failed = [r for r in results if not r.ok]
        moved = bumps(outcomes)
        if failed and moved and all(o.old is not None for o in outcomes):
            # it built before: find the bumps that break it and keep those back
            previous = {o.python: recorded_holds(o.old) for o in outcomes}
            suspects = {r.failed_package for r in failed if r.failed_package}
            suspects |= {n for hs in previous.values() for n in hs}
            reason = f"{failed[0].failed_package or 'the set'} failed to build"
            today = started.date().isoformat()

            def builds_with(names: frozenset[str]) -> bool:
                nonlocal outcomes, results, held
                held = holds_for(sorted(names), moved, previous, reason, today)
                progress(f"{pset.name}: building with {', '.join(sorted(names)) or 'nothing'} held")
                outcomes = relock(held)
                _write(tx, outcomes)
                results = builder.build_sets(bopts)
                return all(r.ok for r in results)

            search = find_holds(sorted(moved), sorted(suspects), builds_with)
            if search.held is not None and not (
                set(search.held) == {n for hs in held.values() for n in hs}
                and all(r.ok for r in results)
            ):
                builds_with(frozenset(search.held))
            failed = [r for r in results if not r.ok]
        seconds = time.monotonic() - t0
        if failed:
            tx.undo(lock_paths)
            first = failed[0]
            return SetOutcome(
                report.SetReport(
                    pset.name,
                    tuple(pythons),
                    "failed",
                    diff=_rows(outcomes),
                    build_seconds=seconds,
                    failing_package=first.failed_package,
                    log_tail=first.log_tail or first.error,
                    suggestions=tuple(x.line() for x in first.suggestions),
                ),
                failures=[
                    (r.python, r.failed_package, r.log_tail or r.error or "") for r in failed
                ],
            )
        changed = [o for o in outcomes if o.status != "unchanged"]
        paths = sorted({p for r in results for p in r.store_paths})
        progress(f"{pset.name}: pushing {len(paths)} paths")
        cache.push(
            [r.out_path for r in results if r.out_path],
            to=store,
            signing_key=signing_key,
            ssh_config=opts.ssh_config,
        )
        diffs = [diff_locks(o.old, o.new or {}) for o in changed]
        holds = held_report(held, search)
        if changed:
            body = commit_body(pset.name, diffs)
            if holds:
                body += "\n\nHeld back:\n" + "\n".join(
                    f"- {h.name} kept at {h.kept}: {h.wanted} {h.reason}" for h in holds
                )
            subject = commit_subject(pset.name, diffs)
            if holds and not any(d.changes for d in diffs):
                subject = f"{pset.name}: hold " + ", ".join(
                    f"{h.name} at {h.kept} ({h.wanted} does not build)" for h in holds
                )
            with tx.commit([o.path for o in changed]):
                sha = git.commit_set(opts.repo, pset.name, [o.path for o in changed], subject, body)
    except BaseException:
        # nothing half-done: an uncommitted lock goes back to what it was (a committed one
        # is left as it is: undo compares with HEAD)
        tx.undo(lock_paths)
        raise
    status: report.SetStatus = "held" if holds else "ok"
    return SetOutcome(
        report.SetReport(
            pset.name,
            tuple(pythons),
            status,
            diff=_rows(changed),
            build_seconds=seconds,
            closure_bytes=_closure_bytes(paths),
            commit=sha,
            held=tuple(holds),
            failing_package=holds[0].name if holds else None,
            log_tail=hold_log(held, search) if holds else None,
            freshness=_freshness(outcomes, [h.name for h in holds]),
        ),
        commit=sha,
        built=True,
        failures=[
            (p, h.name, hold_log(held, search)) for p, hs in held.items() for h in hs.values()
        ],
    )


def _freshness(outcomes: Sequence[LockOutcome], held: Sequence[str] = ()) -> report.Freshness:
    """One figure per set: a member is current when it is current in every Python's lock."""
    merged: dict[str, tuple[str, str | None, float | None]] = {}
    for o in outcomes:
        for name, (locked, newest, lag) in o.freshness.items():
            before = merged.get(name)
            behind = newest is not None and newest != locked
            if before is None or (behind and (before[1] is None or before[1] == before[0])):
                merged[name] = (locked, newest, lag)
    refused = [
        (r["name"], r["locked"], r["newest"], f"Python {o.python}: {r['reason']}")
        for o in outcomes
        for r in o.refusals
    ]
    return report.freshness_of(merged, held, refused)


def _rows(outcomes: Sequence[LockOutcome]) -> tuple[report.DiffRow, ...]:
    changed = [o for o in outcomes if o.status != "unchanged"]
    urls: dict[str, dict[str, str]] = {}
    for o in changed:
        urls.update(o.project_urls)
    return report.rows_from_diffs([diff_locks(o.old, o.new or {}) for o in changed], urls)


def github_client(opts: NightlyOptions) -> GitHubClient | None:
    """The GitHub client when a token and a repository are given, else None."""
    token = opts.github_token or next(
        (os.environ[e] for e in TOKEN_ENVS if os.environ.get(e)), None
    )
    if not (token and opts.github_repo):
        return None
    from bot.github import GitHubClient  # PyGithub is slow to import; only when used

    return GitHubClient(
        token, opts.github_repo, base_url=opts.github_api, throttle=opts.github_throttle
    )


@dataclass
class NightResult:
    """The night's report, the publishing errors met, and the exit code."""

    report: report.NightReport
    errors: list[str]
    exit_code: int  #: 0 all good, 2 a set failed or publishing failed
    findings: list[revalidate.Finding] = field(default_factory=list)


def run_nightly(
    opts: NightlyOptions, *, progress: Callable[[str], None] | None = None
) -> NightResult:
    """The whole night: every set, then publishing and the reports.

    It holds the repository lock throughout and first repairs what an interrupted night
    left (:func:`bot.repolock.recover`; its commits are published with tonight's).  One set
    failing in any way, expected or not, never stops the others, and the report is always
    written, an interrupted night's too (then the interruption is raised again).
    """
    say = progress or (lambda _msg: None)
    started = datetime.now(UTC).replace(microsecond=0)
    exclude_newer = opts.exclude_newer or started
    opts.exclude_newer = exclude_newer
    with repository_lock(opts.repo, "nightly"):
        if opts.commit_only:
            from bot.commit_only import commit_only  # CI's final job; it builds on this module

            return commit_only(opts, started)
        from bot.night import night  # the sets, publishing and the report; builds on this module

        return night(opts, started, say)


__all__ = ["NightResult", "NightlyOptions", "SetOutcome", "night_set", "run_nightly"]
