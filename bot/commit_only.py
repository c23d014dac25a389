"""CI's final job: the set jobs locked, built and pushed on their own runners; this commits
their locks (one commit per set), reports their recorded outcomes, and publishes.

``nixpkgs-python nightly --commit-only`` runs it; nothing is locked or built here.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime
from pathlib import Path

from bot import git, publish, report
from bot import lock as lockfile
from bot.diff import LockDiff, commit_body, commit_subject, diff_locks
from bot.nightly import NightlyOptions, NightResult, SetOutcome, github_client
from bot.proc import tail
from bot.sets import load_sets

_FAILED_PACKAGE = re.compile(r"package '([^']+)' failed to build")


def _recorded_outcome(opts: NightlyOptions, name: str) -> tuple[str, str | None, str]:
    """(status, failing package, log tail) that a CI matrix job recorded for a set."""
    if opts.outcomes_dir is None:
        return "ok", None, ""
    folder = opts.outcomes_dir / f"outcome-{name}"
    try:
        data = json.loads((folder / "outcome.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "failed", None, f"no outcome was recorded for set {name} (its job did not finish)"
    for step in ("lock", "build", "push"):
        if data.get(step) not in ("success", "skipped", ""):
            log_file = folder / f"{step}.log"
            text = (
                log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
            )
            match = _FAILED_PACKAGE.search(text)
            return "failed", match.group(1) if match else None, tail(text, 40) or f"{step} failed"
    return "ok", None, ""


def commit_only(opts: NightlyOptions, started: datetime) -> NightResult:
    """Commit each set's rewritten locks (one commit per set), then publish and report."""
    lock_paths = {str(p.relative_to(opts.repo)) for p in opts.repo.glob("sets/*/pylock.*.toml")}
    git.ensure_clean(opts.repo, allow=lock_paths)
    git.ensure_identity(opts.repo)
    outcomes: list[SetOutcome] = []
    snapshot: str | None = None
    for pset in load_sets(opts.repo, list(opts.sets)):
        status, package, log_tail = _recorded_outcome(opts, pset.name)
        if status == "failed":
            for path in pset.path.glob("pylock.*.toml"):
                git.restore(opts.repo, path)
            outcomes.append(
                SetOutcome(
                    report.SetReport(
                        pset.name, pset.python, "failed", failing_package=package, log_tail=log_tail
                    ),
                    failures=[(p, package, log_tail) for p in pset.python],
                )
            )
            continue
        diffs: list[LockDiff] = []
        paths: list[Path] = []
        for python in pset.python:
            path = pset.lock_path(python)
            if not path.exists():
                continue
            new = lockfile.read_lock(path)
            old_text = git.show_head(opts.repo, path)
            old = tomllib.loads(old_text) if old_text is not None else None
            if lockfile.same_content(old, new):
                if old_text is not None:
                    git.restore(opts.repo, path)  # only the snapshot time moved
                continue
            diffs.append(diff_locks(old, new))
            paths.append(path)
            snapshot = lockfile.provenance(new).get("exclude-newer", snapshot)
        if not paths:
            outcomes.append(SetOutcome(report.SetReport(pset.name, pset.python, "unchanged")))
            continue
        sha = git.commit_set(
            opts.repo,
            pset.name,
            paths,
            commit_subject(pset.name, diffs),
            commit_body(pset.name, diffs),
        )
        outcomes.append(
            SetOutcome(
                report.SetReport(
                    pset.name, pset.python, "ok", diff=report.rows_from_diffs(diffs), commit=sha
                ),
                commit=sha,
                built=True,
            )
        )
    night = report.NightReport(
        date=started.date().isoformat(),
        sets=tuple(o.report for o in outcomes),
        exclude_newer=snapshot,
        run_url=opts.run_url,
    )
    provenance = publish.build_provenance(opts)
    errors = publish.publish(
        opts, night, outcomes, github_client(opts), lambda _msg: None, provenance=provenance
    )
    publish.write_reports(opts, night, provenance=provenance)
    failed = any(o.report.status == "failed" for o in outcomes) or errors
    return NightResult(night, errors, 2 if failed else 0)
