"""The whole night as one transaction: heal what an interrupted night left, run every set
(each contained: any exception fails that set alone), re-validate the overrides, publish,
and always write the report.

:func:`bot.nightly.run.run_nightly` calls :func:`night` while holding the repository lock.
Every
file the night writes goes through one :class:`bot.core.repolock.Transaction`; Ctrl-C or SIGTERM
(:class:`KeyboardInterrupt`) at any point puts back what was written and not committed,
writes the report of what was done, and is raised again.  Commits made before the
interruption stay local; the next night publishes them.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import cache
from bot.core import git
from bot.core.errors import BotError
from bot.core.repolock import Transaction, recover
from bot.lock import document as lockfile
from bot.lock.command import LockOutcome, index_routes
from bot.lock.index.client import IndexClient
from bot.lock.index.models import IndexRoute
from bot.model import locks
from bot.model.overrides import load_overrides
from bot.model.sets import PackageSet, load_sets
from bot.nightly import publish, report, revalidate
from bot.nightly.options import (
    NightlyOptions,
    NightResult,
    SetOutcome,
    github_client,
    night_date,
)
from bot.nightly.per_set import (
    choose_nixpkgs,
    lock_set,
    night_set,
    prefetch_set,
    quiet_sets,
)

if TYPE_CHECKING:
    from bot.nightly.github import GitHubClient

log = logging.getLogger(__name__)


def _unexpected(opts: NightlyOptions, what: str, exc: BaseException) -> str:
    """One console line for an unexpected error; the traceback (returned) goes to the report."""
    log.error(
        "%s: unexpected error %s: %s (the traceback is in %s)",
        what,
        type(exc).__name__,
        exc,
        publish.report_path(opts),
    )
    return "".join(traceback.format_exception(exc))


def _failed(pset: PackageSet, text: str) -> SetOutcome:
    return SetOutcome(
        report.SetReport(pset.name, pset.python, "failed", log_tail=text),
        failures=[(p, None, text) for p in pset.python],
    )


def _report(
    opts: NightlyOptions, started: datetime, outcomes: Sequence[SetOutcome], notes: Sequence[str]
) -> report.NightReport:
    return report.NightReport(
        date=night_date(opts, started),
        sets=tuple(o.report for o in outcomes),
        exclude_newer=lockfile.format_time(opts.exclude_newer or started),
        run_url=opts.run_url,
        notes=tuple(notes),
    )


def night(opts: NightlyOptions, started: datetime, say: Callable[[str], None]) -> NightResult:
    """Recover, every set, re-validation, publishing, the report (see the module)."""
    notes = recover(opts.repo)
    # a changed lock nobody journalled (a hand edit, an older bot killed mid-night) is not
    # this run's to touch: its set sits the night out, the others run
    stray = {p for p in git.dirty_paths(opts.repo) if locks.is_lock_path(p)}
    git.ensure_clean(opts.repo, allow=stray)
    git.ensure_identity(opts.repo)
    synced = _sync(opts)
    if synced is not None:
        log.info("%s", synced)
        say(synced)
        notes.append(synced)
    psets = load_sets(opts.repo, list(opts.sets))
    store = opts.store or cache.default_store(opts.repo)
    signing_key = cache.signing_key_for(store, opts.repo, opts.signing_key)
    note = choose_nixpkgs(opts)  # the CLI has done it already; other callers get it here
    if note is not None:
        log.warning("%s", note)
        say(note)
    gh = github_client(opts)
    outcomes: list[SetOutcome] = []
    tx = Transaction(opts.repo)
    phase = "before the last sets ran"
    try:
        _sets(opts, psets, started, store, signing_key, say, tx, outcomes, stray)
        phase = "during the overrides re-validation"
        findings, errors = _revalidate(opts, outcomes, say, notes, tx)
        phase = "while publishing"
        provenance = _publish(opts, _report(opts, started, outcomes, notes), outcomes, gh, say,
                              findings, notes, errors)  # fmt: skip
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: report what was done, then stop
        notes += tx.undo()
        notes.append(
            f"interrupted ({str(exc) or 'SIGINT'}) {phase}; commits made tonight are published by "
            "the next night"
        )
        publish.write_reports(opts, _report(opts, started, outcomes, notes))
        raise
    finally:
        notes += tx.undo()
        tx.close()
    return publish.end_night(
        opts, _report(opts, started, outcomes, notes), outcomes, errors, findings, provenance
    )


def _sync(opts: NightlyOptions) -> str | None:
    """A publishing night starts from the remote branch it publishes to (``--push-to``, or
    ``--base`` for pull requests): a maintainer's merge since the last night is locked and
    built tonight, not pushed over.  The bot's own unpublished commits are rebased onto it;
    any other local commit is one :class:`GitError` (see :func:`bot.core.git.sync`)."""
    branch = opts.push_to or (opts.base if opts.pull_request else None)
    if branch is None:  # a local night works on the checkout as it is
        return None
    published = "nightly/*" if opts.pull_request else None
    return git.sync(opts.repo, opts.remote, branch, own=locks.is_lock_path, published=published)


def _sets(
    opts: NightlyOptions,
    psets: Sequence[PackageSet],
    started: datetime,
    store: str,
    signing_key: Path | None,
    say: Callable[[str], None],
    tx: Transaction,
    outcomes: list[SetOutcome],
    stray: set[str],
) -> None:
    clients: dict[tuple[IndexRoute, ...], IndexClient] = {}

    def client_for(pset: PackageSet) -> IndexClient:
        key = tuple(index_routes(pset, opts.index_url))
        if key not in clients:
            clients[key] = IndexClient(key, cache_dir=opts.cache_dir, retries=opts.retries)
        return clients[key]

    def skipped(pset: PackageSet) -> bool:
        return any(p.startswith(f"sets/{pset.name}/") for p in stray)

    try:
        # every set is locked first; those whose locks stand and whose outputs the cache
        # has are settled with one evaluation and one cache query for all of them
        locked: dict[str, list[LockOutcome]] = {}
        failed: dict[str, Exception] = {}
        try:
            library = load_overrides(opts.repo)
        except BotError:
            library = None  # each set meets the error and reports it
        if library is not None:  # a quiet night's pages, for every set at once
            for pset in psets:
                if not skipped(pset):
                    try:
                        prefetch_set(pset, opts, client_for(pset), started, library)
                    except Exception:  # an optimisation: locking meets the same error again
                        log.debug("set %s: no early fetch", pset.name, exc_info=True)
        for pset in psets:
            if skipped(pset):
                continue
            say(f"{pset.name}: locking")
            try:
                locked[pset.name] = lock_set(
                    pset, opts, client_for(pset), started, tx, library=library
                )
            except Exception as exc:  # noqa: BLE001 (reported below, as the set's failure)
                failed[pset.name] = exc
        quiet = quiet_sets(opts, [(p, locked[p.name]) for p in psets if p.name in locked],
                           store, say)  # fmt: skip
        for pset in psets:
            if pset.name in quiet:
                outcomes.append(quiet[pset.name])
                continue
            changed = sorted(p for p in stray if p.startswith(f"sets/{pset.name}/"))
            if changed:
                log.error("set %s skipped: %s has uncommitted changes", pset.name, changed[0])
                outcomes.append(
                    _failed(
                        pset,
                        f"set {pset.name} skipped: {', '.join(changed)} has uncommitted changes "
                        "this bot did not make (no journal of a run wrote it)\n  hint: commit "
                        "it, or drop it with `git checkout HEAD -- FILE` (`git rm --cached` "
                        "for a new file)",
                    )
                )
                continue
            try:
                if pset.name in failed:
                    raise failed[pset.name]  # noqa: TRY301 (handled as the one-set path's own)
                outcome = night_set(pset, opts, client_for(pset), started, store, signing_key,
                                    say, tx, locked.get(pset.name))  # fmt: skip
            except BotError as exc:
                log.debug("set %s failed", pset.name, exc_info=True)
                outcome = _failed(pset, str(exc))
            except Exception as exc:  # noqa: BLE001 (a bug or input nobody foresaw: this set fails, the others go on)
                outcome = _failed(pset, _unexpected(opts, f"set {pset.name}", exc))
            outcomes.append(outcome)
    finally:
        for client in clients.values():
            client.close()


def _publish(
    opts: NightlyOptions,
    night_report: report.NightReport,
    outcomes: Sequence[SetOutcome],
    gh: GitHubClient | None,
    say: Callable[[str], None],
    findings: Sequence[revalidate.Finding],
    notes: list[str],
    errors: list[str],
) -> dict[str, Any] | None:
    """Publish; an unexpected error becomes one error line and a note with its traceback.
    Returns the build provenance for the report."""
    try:
        provenance = publish.build_provenance(opts)  # probing interpreters: once a night
        errors += publish.publish(
            opts, night_report, outcomes, gh, say, findings, provenance, notes
        )
    except Exception as exc:  # noqa: BLE001 (the report is still written)
        errors.append(f"publishing: unexpected error {type(exc).__name__}: {exc}")
        notes.append("publishing failed unexpectedly:\n" + _unexpected(opts, "publishing", exc))
        return None
    return provenance


def _revalidate(
    opts: NightlyOptions,
    outcomes: list[SetOutcome],
    say: Callable[[str], None],
    notes: list[str],
    tx: Transaction,
) -> tuple[list[revalidate.Finding], list[str]]:
    """Check the overrides library; in pull-request mode commit the suggested edits (the
    edited files journalled in ``tx``, put back when anything goes wrong)."""
    if opts.revalidate_budget is None:
        return [], []
    what = "overrides re-validation"
    try:
        findings = revalidate.revalidate(
            opts.repo,
            sets=list(opts.sets),
            budget=opts.revalidate_budget,
            nixpkgs=opts.nixpkgs,
            nixpkgs_path=opts.nixpkgs_path,
            state_file=(opts.cache_dir / revalidate.STATE_FILE) if opts.cache_dir else None,
            progress=say,
        )
        if opts.pull_request and any(f.edit for f in findings):
            edited = sorted({opts.repo / f.file for f in findings if f.edit})
            with tx.writing(edited):
                paths = revalidate.apply_findings(opts.repo, findings)
            subject, body = revalidate.commit_message(findings)
            with tx.commit(paths):
                sha = git.commit_set(opts.repo, "overrides", paths, subject, body)
            outcomes.append(
                SetOutcome(
                    report.SetReport("overrides", (), "ok", commit=sha), commit=sha, built=True
                )
            )
    except BotError as exc:
        notes += tx.undo()
        return [], [f"{what}: {exc}"]
    except Exception as exc:  # noqa: BLE001 (the night's report is still written)
        notes += tx.undo()
        notes.append(f"{what} failed unexpectedly:\n" + _unexpected(opts, what, exc))
        return [], [f"{what}: unexpected error {type(exc).__name__}: {exc}"]
    return findings, []
