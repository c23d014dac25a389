"""One set's night: lock -> build -> push -> commit (:func:`night_set`).

Each set is handled on its own: one failing set never stops the others, and nothing is
committed for a set that did not build (its lock files are restored).  A set whose locks did
not change and whose outputs the cache already has costs one resolution and one evaluation:
no build, no push, no commit.

With nothing configured this runs entirely locally: the embedded signed ``file://`` cache
under ``binary-cache/``, local commits, no GitHub.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from bot import cache
from bot.build import command as builder
from bot.core import git
from bot.core.errors import BotError
from bot.core.nix import run_nix
from bot.core.repolock import Transaction
from bot.lock.command import Hold, LockOptions, LockOutcome, lock_one, recorded_holds
from bot.lock.index.client import IndexClient
from bot.model.locks import commit_body, commit_subject, diff_locks
from bot.model.overrides import load_overrides
from bot.model.sets import PackageSet
from bot.nightly import report
from bot.nightly.holdback import Search, bumps, find_holds, held_report, hold_log, holds_for
from bot.nightly.options import NightlyOptions, SetOutcome

log = logging.getLogger(__name__)


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
    from bot.model.nixpkgs import PinUnavailableError

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
        wanted = builder.out_paths(bopts, pset.name, pythons)
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


__all__ = ["night_set"]
