"""Publishing a night: push the commits, open or update the pull request, file and close
failure issues, set commit statuses, and write the reports (Markdown, JSON, step summary)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bot.core import files, git
from bot.core.errors import BotError, GitHubError, UpstreamChangedError
from bot.lock import document as lockfile
from bot.model import locks
from bot.model.interpreters import standalone_interpreters
from bot.nightly import report, revalidate
from bot.nightly.options import NightResult

if TYPE_CHECKING:
    from bot.nightly.advisories import NightAdvisories
    from bot.nightly.github import GitHubClient
    from bot.nightly.options import NightlyOptions, SetOutcome


def build_provenance(opts: NightlyOptions) -> dict[str, Any]:
    """What the night built with: the pinned nixpkgs revision, or the standalone interpreters."""
    if opts.nixpkgs and opts.nixpkgs_path is not None:
        return {"source": "nixpkgs", "path": str(opts.nixpkgs_path), "rev": None}
    if opts.nixpkgs:
        pin = json.loads((opts.repo / "nix" / "nixpkgs.json").read_text(encoding="utf-8"))
        return {
            "source": "nixpkgs",
            "release": pin.get("release"),
            "rev": pin.get("rev"),
            "url": pin.get("url"),
        }
    return {"source": "standalone", "interpreters": standalone_interpreters(opts.repo)}


def _provenance_line(provenance: Mapping[str, Any]) -> str:
    if provenance.get("source") == "nixpkgs" and provenance.get("path"):
        return f"Built with the nixpkgs at `{provenance['path']}` (not the pin)."
    if provenance.get("source") == "nixpkgs":
        return f"Built with nixpkgs {provenance.get('release')} `{provenance.get('rev')}`."
    pythons = ", ".join(
        f"{k}: `{v}`" for k, v in sorted(provenance.get("interpreters", {}).items())
    )
    return f"Built with standalone interpreters ({pythons})."


def markdown(
    night: report.NightReport,
    findings: Sequence[revalidate.Finding],
    provenance: Mapping[str, Any] | None = None,
) -> str:
    """The night's report in Markdown, with the overrides findings and what it built with."""
    text = report.to_markdown(night)
    if provenance:
        text += "\n" + _provenance_line(provenance) + "\n"
    # entries still needed and guards (never judged by a build) are the library's normal state
    section = revalidate.to_markdown([f for f in findings if f.kind not in ("needed", "guard")])
    return text + ("\n" + section if section else "")


def publish(
    opts: NightlyOptions,
    night: report.NightReport,
    outcomes: Sequence[SetOutcome],
    gh: GitHubClient | None,
    say: Callable[[str], None],
    findings: Sequence[revalidate.Finding] = (),
    provenance: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
) -> list[str]:
    """Push commits, open/update the pull request, file/close issues, set statuses.

    Commits an interrupted night left unpublished are pushed too, even when no set changed
    tonight (noted in ``notes``).  Returns the errors met (each a full message); the commits
    stay local when a push fails.
    """
    commits = [o.commit for o in outcomes if o.commit]
    errors: list[str] = static_index(opts, say)
    notes = notes if notes is not None else []
    pushed: str | None = None  # the commit GitHub has, for the statuses
    try:
        if opts.push_to:
            pushed = _push(opts, opts.push_to, commits, say, notes)
        if opts.pull_request:
            branch_sha = _pull_request(opts, night, outcomes, say, notes)
            pushed = branch_sha or _known_head(opts)
            if branch_sha is not None and gh is not None:
                _open_pull_request(opts, night, outcomes, gh, findings, provenance, notes)
    except BotError as exc:
        errors.append(str(exc))
    if gh is None:
        return errors
    try:
        _issues_and_statuses(opts, outcomes, gh, pushed, errors, notes)
    finally:
        gh.close()
    return errors


def _push(
    opts: NightlyOptions,
    branch: str,
    commits: Sequence[str],
    say: Callable[[str], None],
    notes: list[str],
) -> str | None:
    """``--push-to``: push tonight's (and left-over) commits; the sha the remote has then,
    None when it lacks HEAD (the branch is missing, or upstream changed more than locks)."""
    if not commits:
        ahead = git.unpublished(opts.repo, opts.remote, branch)
        if not ahead:  # 0: the remote has HEAD; None: it lacks the branch
            return git.head_sha(opts.repo) if ahead == 0 else None
        notes.append(_LEFT_OVER.format(ahead))
    say(f"pushing to {opts.remote}/{branch}")
    try:
        return git.push(opts.repo, opts.remote, branch, rebase_over=locks.is_lock_path).sha
    except UpstreamChangedError as exc:
        note = (
            f"not pushed: {opts.remote}/{branch} changed {', '.join(exc.paths[:10])}"
            f"{' and more' if len(exc.paths) > 10 else ''} while the night ran; tonight's "
            "commits stay local and the next night locks and builds against the new branch"
        )
        notes.append(note)
        say(note)
        return None


def _pull_request(
    opts: NightlyOptions,
    night: report.NightReport,
    outcomes: Sequence[SetOutcome],
    say: Callable[[str], None],
    notes: list[str],
) -> str | None:
    """``--pull-request``: push ``nightly/<date>`` when there is something to propose; the
    sha pushed, or None when nothing was."""
    commits = [o.commit for o in outcomes if o.commit]
    branch = git.night_branch(datetime.fromisoformat(night.date).date())
    if not commits:
        if _on_night_branch(opts):
            return None
        ahead = git.unpublished(opts.repo, opts.remote, opts.base)
        if not ahead:
            return None
        notes.append(_LEFT_OVER.format(ahead))
    say(f"pushing {opts.remote}/{branch}")
    return git.push_pull_request_branch(opts.repo, opts.remote, branch)


def _known_head(opts: NightlyOptions) -> str | None:
    """HEAD when the remote has it (the base, or a night branch holds it), else None."""
    if _on_night_branch(opts) or git.unpublished(opts.repo, opts.remote, opts.base) == 0:
        return git.head_sha(opts.repo)
    return None


def _open_pull_request(
    opts: NightlyOptions,
    night: report.NightReport,
    outcomes: Sequence[SetOutcome],
    gh: GitHubClient,
    findings: Sequence[revalidate.Finding],
    provenance: Mapping[str, Any] | None,
    notes: list[str],
) -> None:
    """Open or update tonight's pull request and close the earlier nights' (superseded:
    tonight's branch carries their commits too), deleting their branches."""
    branch = git.night_branch(datetime.fromisoformat(night.date).date())
    names = ", ".join(o.report.name for o in outcomes if o.commit) or "left-over commits"
    title = f"Nightly update {night.date}: {names}"
    number = gh.upsert_pull_request(
        branch,
        opts.base,
        title[:250],
        markdown(night, findings, provenance) + advisories_markdown(opts, night),
    )
    closed = gh.close_superseded(number, opts.base, prefix="nightly/")
    for old_number, old_branch in closed:
        try:
            git.delete_remote_branch(opts.repo, opts.remote, old_branch)
        except BotError as exc:  # the pull request is closed; a branch left is harmless
            notes.append(f"could not delete {old_branch} of closed #{old_number}: {exc}")
    if closed:
        shown = ", ".join(f"#{n} ({b})" for n, b in closed)
        notes.append(f"closed the pull request(s) #{number} supersedes: {shown}")
    # its checks: a pull request the workflow's token opened starts no run itself
    gh.dispatch_workflow(branch)


def _issues_and_statuses(
    opts: NightlyOptions,
    outcomes: Sequence[SetOutcome],
    gh: GitHubClient,
    pushed: str | None,
    errors: list[str],
    notes: list[str],
) -> None:
    """File failure issues, set statuses on ``pushed`` (none when GitHub lacks the commit),
    close fixed issues; each call's :class:`GitHubError` is collected, the others go on."""

    def attempt(call: Callable[[], object]) -> None:
        try:
            call()
        except GitHubError as exc:
            errors.append(str(exc))

    for o in outcomes:
        for python, package, tail in o.failures:
            attempt(lambda: gh.report_failure(o.report.name, python, package, tail, opts.run_url))  # noqa: B023 (called at once)
    if pushed is None:
        if outcomes:
            notes.append(
                f"commit statuses not set: HEAD {git.head_sha(opts.repo)[:12]} was not pushed"
            )
    else:
        for o in outcomes:
            state: Literal["failure", "success"] = (
                "failure" if o.report.status == "failed" else "success"
            )
            description = f"{o.report.name}: {o.report.status}"
            attempt(lambda: gh.set_status(pushed, o.report.name, state, description, opts.run_url))  # noqa: B023
    attempt(
        lambda: gh.close_fixed(
            [o.report.name for o in outcomes if o.report.status in ("ok", "unchanged")],
            opts.run_url,
        )
    )


_LEFT_OVER = "publishing {} commit(s) an earlier run left unpublished"


def _on_night_branch(opts: NightlyOptions) -> bool:
    """Whether HEAD already is the tip of a pull-request branch (an earlier night's)."""
    head = git.head_sha(opts.repo)
    return head in git.remote_heads(opts.repo, opts.remote, "nightly/*").values()


def report_path(opts: NightlyOptions) -> Path:
    """Where the night's report is read: ``--report-markdown``, ``--report-json``, or else
    ``<git dir>/nixpkgs-python-report.md`` (outside the tree, never committed)."""
    if opts.report_markdown is not None:
        return opts.report_markdown
    if opts.report_json is not None:
        return opts.report_json
    from bot.core.repolock import git_dir

    return (git_dir(opts.repo) or opts.repo / ".git") / "nixpkgs-python-report.md"


def static_index(opts: NightlyOptions, say: Callable[[str], None]) -> list[str]:
    """Write the sets' static package index to --static-index-to, else beside the binary
    cache (file:// or rsync+ssh://); returns the error met, if any (the night's other
    publishing goes on)."""
    if not opts.static_index:
        return []
    from bot.cache import default_store
    from bot.nightly.static_index import CACHE_SUBDIR, recorded_sets
    from bot.nightly.static_index_push import local_index_dir, publish_index

    target = opts.static_index_to or opts.store or default_store(opts.repo)
    subdir = "" if opts.static_index_to else CACHE_SUBDIR
    try:
        local = local_index_dir(target, subdir)
    except BotError:
        local = None  # publish_index meets the same error and reports it
    # an index made from the locks as they are names its sets: not every lock read again
    recorded = None if local is None else recorded_sets(opts.repo, local, opts.static_index_mirror)
    sets = recorded if recorded is not None else _indexable_sets(opts.repo)
    if not sets:
        say("static index: no set has a readable lock")
        return []
    try:
        result = publish_index(
            opts.repo,
            target,
            ssh_config=opts.ssh_config,
            mirror=opts.static_index_mirror,
            subdir=subdir,
            sets=sets,
            on_wait=lambda msg: say(f"static index: {msg}"),
        )
    except BotError as exc:
        return [f"static index: {exc}"]
    if result is None and opts.static_index_to:
        return [f"static index: {target} is not a directory (use file:// or rsync+ssh://)"]
    if result is None:
        say(f"static index: not written ({target} is no directory; see --static-index-to)")
    else:
        how = "unchanged, " if result.unchanged else ""
        say(f"static index: {how}{result.files} files of {len(result.sets)} sets at {result.path}")
    return []


def _indexable_sets(repo: Path) -> list[str]:
    """The sets whose every lock reads: a set with a broken lock is failing tonight already
    (and reported once, as that set's failure); the index carries the others."""
    from bot.model.sets import list_sets

    out = []
    for name in list_sets(repo):
        try:
            for path in locks.locks_in(repo / "sets" / name):
                lockfile.read_lock(path)
        except BotError:
            continue
        out.append(name)
    return out


def write_reports(
    opts: NightlyOptions,
    night: report.NightReport,
    findings: Sequence[revalidate.Finding] = (),
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """The night's report as JSON and Markdown files (when asked) and the step summary."""
    text = markdown(night, findings, provenance)
    if opts.report_json is None and opts.report_markdown is None:
        files.write_atomic(report_path(opts), text)  # none asked for: the git dir keeps one

    text = markdown(night, findings, provenance) + advisories_markdown(opts, night)
    if opts.report_json is not None:
        data = json.loads(report.to_json(night))
        found = night_advisories(opts, night)
        data["advisories"] = None if found is None else found.to_json()
        data["overrides"] = [f.to_json() for f in findings]
        data["build"] = provenance
        files.write_atomic(opts.report_json, json.dumps(data, indent=2, sort_keys=True) + "\n")
    if opts.report_markdown is not None:
        files.write_atomic(opts.report_markdown, text)
    report.append_step_summary(text + "\n", os.environ)


def end_night(
    opts: NightlyOptions,
    night: report.NightReport,
    outcomes: Sequence[SetOutcome],
    errors: list[str],
    findings: Sequence[revalidate.Finding] = (),
    provenance: Mapping[str, Any] | None = None,
) -> NightResult:
    """The end of a night (the whole night's, or CI's commit job's): the reports written, and
    the result, exit code 2 when a set failed or publishing met errors."""
    write_reports(opts, night, findings, provenance)
    failed = any(o.report.status == "failed" for o in outcomes) or errors
    return NightResult(night, errors, 2 if failed else 0, list(findings))


def night_advisories(opts: NightlyOptions, night: report.NightReport) -> NightAdvisories | None:
    """The advisories of the night's sets before and after (None without --advisories)."""
    if opts.advisories is None:
        return None
    from bot.nightly import advisories

    sets = [(s.name, s.commit) for s in night.sets]
    try:
        locks = advisories.night_locks(opts.repo, sets)
    except (OSError, BotError) as exc:  # never a failed night: one warning instead
        return advisories.NightAdvisories(warning=f"advisories: cannot read the locks: {exc}")
    return advisories.for_sets(opts.advisories, locks)


def advisories_markdown(opts: NightlyOptions, night: report.NightReport) -> str:
    """The report's "Advisories" section ("" without --advisories)."""
    from bot.nightly import advisories

    found = night_advisories(opts, night)
    return "" if found is None else "\n" + advisories.to_markdown(found)
