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
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from packaging.utils import NormalizedName

from bot import cache
from bot.build import command as builder
from bot.core import git
from bot.core.errors import BotError
from bot.core.files import default_cache_dir
from bot.core.nix import run_nix
from bot.core.repolock import Transaction
from bot.lock.command import Hold, LockOptions, LockOutcome, lock_one, night_pages, recorded_holds
from bot.lock.index.client import IndexClient
from bot.model.locks import commit_body, commit_subject, diff_locks
from bot.model.overrides import Override, load_overrides
from bot.model.sets import PackageSet
from bot.nightly import report
from bot.nightly.holdback import Search, bumps, find_holds, held_report, hold_log, holds_for
from bot.nightly.options import NightlyOptions, SetOutcome, night_date

log = logging.getLogger(__name__)


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


def choose_nixpkgs(opts: NightlyOptions, now: float | None = None) -> str | None:
    """Fetch and check the pin once for the night.  On the embedded defaults, a machine that
    cannot fetch it builds with its standalone interpreters instead: ``opts`` is changed and
    the returned line says so (None: nothing to say).

    That failure is remembered (:func:`bot.model.nixpkgs.remembered_failure`, in the cache
    directory): until its retry time the pin is not fetched again, and the line says when
    it failed and when it is tried again.  A pin asked for explicitly is always fetched."""
    from bot.model import nixpkgs

    if not opts.nixpkgs:
        return None
    store = opts.store or cache.default_store(opts.repo)
    fallback = opts.standalone_fallback and store == cache.default_store(opts.repo)
    memo = (opts.cache_dir or default_cache_dir()) / nixpkgs.PIN_FAILURE_FILE
    now = time.time() if now is None else now
    failure = nixpkgs.remembered_failure(memo, opts.repo, now) if fallback else None
    if failure is None:
        try:
            builder.prepare_nixpkgs(opts.repo, nixpkgs=opts.nixpkgs, path=opts.nixpkgs_path)
        except nixpkgs.PinUnavailableError as exc:
            if not fallback:
                raise
            failure = nixpkgs.remember_failure(memo, opts.repo, exc.message, now)
        else:
            if fallback:
                nixpkgs.forget_failure(memo)
            return None
    opts.nixpkgs = False
    when = "" if failure.last == now else f"at {_utc(failure.last)}, "
    return (
        f"the pinned nixpkgs is not available on this machine ({failure.reason}; {when}tried "
        f"again after {_utc(failure.retry_at)}, or at once without {failure.file}); "
        "using the standalone interpreters: the outputs are for this machine only"
    )


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


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


def prefetch_set(
    pset: PackageSet,
    opts: NightlyOptions,
    client: IndexClient,
    started: datetime,
    library: Mapping[NormalizedName, list[Override]],
) -> None:
    """Start fetching the pages a quiet night of this set asks for (its night memos')."""
    pythons = [opts.python] if opts.python else list(pset.python)
    urls = [u for p in pythons for u in night_pages(pset, p, _lock_options(opts), started, library)]
    client.prefetch_page_digests(urls)


def _lock_options(opts: NightlyOptions) -> LockOptions:
    return LockOptions(
        repo=opts.repo,
        exclude_newer=opts.exclude_newer,
        index_url=opts.index_url,
        cache_dir=opts.cache_dir,
        refresh=True,  # the night exists to see what is new: always ask the index
        night_memo=True,  # ... and a night where the index serves the same pages resolves nothing
    )


def lock_set(
    pset: PackageSet,
    opts: NightlyOptions,
    client: IndexClient,
    started: datetime,
    tx: Transaction,
    holds: Mapping[str, Mapping[str, Hold]] | None = None,
    library: Mapping[NormalizedName, list[Override]] | None = None,
) -> list[LockOutcome]:
    """Lock one set for each of its Pythons, not written (``tx`` first puts back what this
    night wrote for it: the locks are compared with, and diffed against, the last night's)."""
    pythons = [opts.python] if opts.python else list(pset.python)
    lock_opts = _lock_options(opts)
    tx.undo([pset.lock_path(p) for p in pythons])
    if library is None:
        library = load_overrides(opts.repo)
    return [
        lock_one(
            pset,
            p,
            client,
            lock_opts,
            started,
            write=False,
            holds=(holds or {}).get(p),
            library=library,
        )
        for p in pythons
    ]


def night_set(
    pset: PackageSet,
    opts: NightlyOptions,
    client: IndexClient,
    started: datetime,
    store: str,
    signing_key: Path | None,
    progress: Callable[[str], None],
    tx: Transaction | None = None,
    locked: Sequence[LockOutcome] | None = None,
) -> SetOutcome:
    """Lock, and if needed build, push and commit one set; hold back what breaks it.

    ``locked``: the set's locks when the caller has made them already (:func:`lock_set`).
    The locks are written through ``tx``; whatever goes wrong (an exception, Ctrl-C,
    SIGTERM), what was written and not committed is put back before this returns or raises.
    """
    night = SetNight(pset, opts, client, started, progress, tx or Transaction(opts.repo))
    return night.run(store, signing_key, locked)


class SetNight:
    """One set's night.  Its state is the latest attempt: the lock ``outcomes``, the build
    ``results`` and the packages ``held`` back (per Python version) to get them."""

    def __init__(
        self,
        pset: PackageSet,
        opts: NightlyOptions,
        client: IndexClient,
        started: datetime,
        progress: Callable[[str], None],
        tx: Transaction,
    ) -> None:
        self.pset, self.opts, self.client, self.started = pset, opts, client, started
        self.progress, self.tx = progress, tx
        self.pythons = [opts.python] if opts.python else list(pset.python)
        self.lock_paths = [pset.lock_path(p) for p in self.pythons]
        self.library = load_overrides(opts.repo)  # once for every (re)lock of the set
        self.bopts = _build_options(opts, pset)
        self.outcomes: list[LockOutcome] = []
        self.results: list[builder.BuildResult] = []
        self.held: dict[str, dict[str, Hold]] = {}

    def relock(self, holds: Mapping[str, Mapping[str, Hold]]) -> list[LockOutcome]:
        return lock_set(
            self.pset, self.opts, self.client, self.started, self.tx, holds, self.library
        )

    def run(
        self, store: str, signing_key: Path | None, locked: Sequence[LockOutcome] | None = None
    ) -> SetOutcome:
        pset, opts, tx, progress = self.pset, self.opts, self.tx, self.progress
        if locked is None:
            progress(f"{pset.name}: locking")
            self.outcomes = self.relock({})
        else:
            self.outcomes = list(locked)
        if all(o.status == "unchanged" for o in self.outcomes):
            progress(f"{pset.name}: checking the cache")
            wanted = builder.out_paths(self.bopts, pset.name, self.pythons)
            # the whole closure: a push cut off part way may have left an environment's
            # narinfo on a file cache without some of its references' (healed by pushing)
            if set(wanted) <= cache.has_closures(store, wanted, ssh_config=opts.ssh_config):
                return SetOutcome(
                    report.SetReport(
                        pset.name,
                        tuple(self.pythons),
                        "unchanged",
                        freshness=_freshness(self.outcomes),
                    )
                )
        for o in self.outcomes:
            o.load()  # a lock a quiet night took as it is, read for the build's bookkeeping
        sha = None
        t0 = time.monotonic()
        try:
            progress(f"{pset.name}: building")
            _write(tx, self.outcomes)
            self.results = builder.build_sets(self.bopts)
            search = self.hold_back()
            failed = [r for r in self.results if not r.ok]
            seconds = time.monotonic() - t0
            if failed:
                tx.undo(self.lock_paths)
                return self.failed(failed, seconds)
            changed = [o for o in self.outcomes if o.status != "unchanged"]
            paths = sorted({p for r in self.results for p in r.store_paths})
            progress(f"{pset.name}: pushing {len(paths)} paths")
            pushed = cache.push(
                [r.out_path for r in self.results if r.out_path],
                to=store,
                signing_key=signing_key,
                ssh_config=opts.ssh_config,
                timeout=opts.push_timeout,
            )
            holds = held_report(self.held, search)
            if changed:
                sha = self.commit(changed, holds)
        except BaseException:
            # nothing half-done: an uncommitted lock goes back to what it was (a committed one
            # is left as it is: undo compares with HEAD)
            tx.undo(self.lock_paths)
            raise
        status: report.SetStatus = "held" if holds else "ok"
        return SetOutcome(
            report.SetReport(
                pset.name,
                tuple(self.pythons),
                status,
                diff=_rows(changed),
                build_seconds=seconds,
                closure_bytes=_closure_bytes(paths),
                commit=sha,
                held=tuple(holds),
                failing_package=holds[0].name if holds else None,
                log_tail=hold_log(self.held, search) if holds else None,
                freshness=_freshness(self.outcomes, [h.name for h in holds]),
                pushed_bytes=_closure_bytes(pushed.copied) if pushed.copied else 0,
            ),
            commit=sha,
            built=True,
            failures=[
                (p, h.name, hold_log(self.held, search))
                for p, hs in self.held.items()
                for h in hs.values()
            ],
        )

    def builds_with(
        self,
        names: frozenset[str],
        reason: str,
        previous: Mapping[str, Mapping[str, Hold]],
        moved: Mapping[str, Mapping[str, tuple[str, str]]],
    ) -> bool:
        """Re-lock holding ``names`` back and build: whether every Python's build succeeds."""
        today = night_date(self.opts, self.started)
        self.held = holds_for(sorted(names), moved, previous, reason, today)
        held_names = ", ".join(sorted(names)) or "nothing"
        self.progress(f"{self.pset.name}: building with {held_names} held")
        try:
            self.outcomes = self.relock(self.held)
        except BotError as exc:
            # as CI's hold-back counts it: this probe does not build (a hold that cannot
            # be resolved tonight, or the index failing part way), and the search goes on
            log.warning("%s: locking with %s held failed: %s", self.pset.name, held_names, exc)
            error = f"locking with {held_names} held failed: {exc}"
            self.results = [
                builder.BuildResult(self.pset.name, p, ok=False, error=error) for p in self.pythons
            ]
            return False
        for o in self.outcomes:
            o.load()
        _write(self.tx, self.outcomes)
        self.results = builder.build_sets(self.bopts)
        return all(r.ok for r in self.results)

    def hold_back(self) -> Search | None:
        """When a set that built before fails after bumps, find the bumps that break it and
        keep those back (the state is left at the search's answer); the search, if any."""
        failed = [r for r in self.results if not r.ok]
        moved = bumps(self.outcomes)
        if not (failed and moved and all(o.old is not None for o in self.outcomes)):
            return None
        previous = {o.python: recorded_holds(o.old) for o in self.outcomes}
        suspects = {r.failed_package for r in failed if r.failed_package}
        suspects |= {n for hs in previous.values() for n in hs}
        reason = f"{failed[0].failed_package or 'the set'} failed to build"

        def builds_with(names: frozenset[str]) -> bool:
            return self.builds_with(names, reason, previous, moved)

        search = find_holds(sorted(moved), sorted(suspects), builds_with)
        if search.held is not None and not (
            set(search.held) == {n for hs in self.held.values() for n in hs}
            and all(r.ok for r in self.results)
        ):
            builds_with(frozenset(search.held))
        return search

    def failed(self, failed: Sequence[builder.BuildResult], seconds: float) -> SetOutcome:
        first = failed[0]
        return SetOutcome(
            report.SetReport(
                self.pset.name,
                tuple(self.pythons),
                "failed",
                diff=_rows(self.outcomes),
                build_seconds=seconds,
                failing_package=first.failed_package,
                log_tail=first.log_tail or first.error,
                suggestions=tuple(x.line() for x in first.suggestions),
            ),
            failures=[(r.python, r.failed_package, r.log_tail or r.error or "") for r in failed],
        )

    def commit(self, changed: Sequence[LockOutcome], holds: Sequence[report.HeldPackage]) -> str:
        """Commit the changed locks (naming what is held back); the commit id."""
        name = self.pset.name
        diffs = [diff_locks(o.old, o.new or {}) for o in changed]
        body = commit_body(name, diffs)
        if holds:
            body += "\n\nHeld back:\n" + "\n".join(
                f"- {h.name} kept at {h.kept}: {h.wanted} {h.reason}" for h in holds
            )
        subject = commit_subject(name, diffs)
        if holds and not any(d.changes for d in diffs):
            subject = f"{name}: hold " + ", ".join(
                f"{h.name} at {h.kept} ({h.wanted} does not build)" for h in holds
            )
        with self.tx.commit([o.path for o in changed]):
            return git.commit_set(self.opts.repo, name, [o.path for o in changed], subject, body)


def quiet_sets(
    opts: NightlyOptions,
    locked: Sequence[tuple[PackageSet, Sequence[LockOutcome]]],
    store: str,
    progress: Callable[[str], None],
) -> dict[str, SetOutcome]:
    """The sets among ``locked`` whose locks did not change and whose environments the cache
    has, with their whole closures: one evaluation and one cache query for all of them (for a
    file or rsync+ssh cache, one narinfo read or rsync run per level of the closures).
    Anything going wrong here returns no set (each then takes the one-set path, which
    reports its own errors)."""
    quiet = [(pset, outs) for pset, outs in locked if all(o.status == "unchanged" for o in outs)]
    if not quiet:
        return {}
    progress(f"checking the cache for {len(quiet)} unchanged set(s)")
    wanted = [(pset.name, o.python) for pset, outs in quiet for o in outs]
    try:
        paths = builder.many_out_paths(
            _build_options(opts, quiet[0][0]), wanted, what="evaluating the unchanged sets"
        )
        have = cache.has_closures(store, sorted(set(paths.values())), ssh_config=opts.ssh_config)
    except BotError as exc:
        log.debug("the unchanged sets are checked one by one: %s", exc)
        return {}
    return {
        pset.name: SetOutcome(
            report.SetReport(
                pset.name, tuple(o.python for o in outs), "unchanged", freshness=_freshness(outs)
            )
        )
        for pset, outs in quiet
        if all(paths[(pset.name, o.python)] in have for o in outs)
    }


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


__all__ = ["SetNight", "night_set"]
