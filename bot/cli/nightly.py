"""The scheduled job: ``nightly``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from bot.cli.base import (
    Context,
    NixpkgsChoice,
    cache_dir_option,
    cli,
    exclude_newer_option,
    index_url_option,
    json_option,
    nixpkgs_option,
    pass_ctx,
    print_error,
    print_warning,
    push_timeout_option,
    python_option,
    ssh_config_option,
)
from bot.cli.build import max_jobs_option


@cli.command("nightly")
@click.argument("sets", nargs=-1)
@python_option
@exclude_newer_option()
@index_url_option
@cache_dir_option
@click.option(
    "--to",
    "store",
    metavar="STORE_URI",
    help="Binary cache [default: the signed file cache in <repo>/binary-cache].",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Secret signing key file (or $NIXPKGS_PYTHON_SIGNING_KEY[_FILE]).",
)
@ssh_config_option
@push_timeout_option
@click.option("--push-to", metavar="BRANCH", help="Push the night's commits to this branch.")
@click.option(
    "--pull-request",
    is_flag=True,
    help="Push a nightly/<date> branch and open or update one pull request.",
)
@click.option("--base", default="main", show_default=True, help="Pull request base branch.")
@click.option("--remote", default="origin", show_default=True, help="Git remote to push to.")
@click.option(
    "--github-repo",
    envvar="GITHUB_REPOSITORY",
    metavar="OWNER/NAME",
    help="GitHub repository for the pull request, issues and statuses "
    "(with a token in $NIXPKGS_PYTHON_GITHUB_TOKEN or $GITHUB_TOKEN).",
)
@click.option(
    "--github-api",
    default="https://api.github.com",
    show_default=True,
    envvar="GITHUB_API_URL",
    metavar="URL",
)
@click.option(
    "--run-url",
    envvar="NIXPKGS_PYTHON_RUN_URL",
    metavar="URL",
    help="Link to this run, for reports and issues.",
)
@click.option(
    "--commit-only",
    is_flag=True,
    help="CI's final job: commit the locks already in sets/ (made by other jobs), "
    "then publish and report; no locking or building.",
)
@click.option(
    "--outcomes",
    "outcomes_dir",
    envvar="NIXPKGS_PYTHON_OUTCOMES",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --commit-only: the outcome-<set>/ folders the set jobs recorded.",
)
@click.option(
    "--revalidate-budget",
    type=click.IntRange(0, 100),
    default=3,
    show_default=True,
    help="Throwaway builds per night checking whether overrides are still needed "
    "(0: only check their version ranges against the locks).",
)
@click.option("--no-revalidate", is_flag=True, help="Skip the overrides re-validation.")
@click.option(
    "--static-index/--no-static-index",
    default=True,
    show_default=True,
    help="Write the sets' static package index to <cache>/python-index/ "
    "(file:// and rsync+ssh:// caches).",
)
@click.option(
    "--static-index-to",
    metavar="DIR_URI",
    envvar="NIXPKGS_PYTHON_STATIC_INDEX",
    help="Write the static index to this directory instead (file:///DIR or "
    "rsync+ssh://HOST/DIR; for caches that are Nix stores, e.g. ssh-ng://).",
)
@click.option(
    "--mirror-index",
    is_flag=True,
    help="Mirror the locked files into the static index (downloads, checked by hash).",
)
@click.option(
    "--advisories",
    type=click.Path(exists=False, path_type=Path),
    envvar="NIXPKGS_PYTHON_ADVISORIES",
    help="Local copy of the OSV advisory database for PyPI (a directory of OSV JSON files "
    "or OSV's PyPI all.zip): the report lists advisories fixed and new.",
)
@click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report-markdown", type=click.Path(dir_okay=False, path_type=Path))
@max_jobs_option
@nixpkgs_option
@json_option
@pass_ctx
def nightly_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    exclude_newer: datetime | None,
    index_url: str | None,
    cache_dir: Path | None,
    store: str | None,
    signing_key: Path | None,
    ssh_config: Path | None,
    push_timeout: float,
    push_to: str | None,
    pull_request: bool,
    base: str,
    remote: str,
    github_repo: str | None,
    github_api: str,
    run_url: str | None,
    commit_only: bool,
    outcomes_dir: Path | None,
    revalidate_budget: int,
    no_revalidate: bool,
    static_index: bool,
    static_index_to: str | None,
    mirror_index: bool,
    advisories: Path | None,
    report_json: Path | None,
    report_markdown: Path | None,
    max_jobs: int | None,
    nixpkgs: NixpkgsChoice,
    as_json: bool,
) -> None:
    """Re-lock, build, push and commit every set (the scheduled job)."""
    from bot.nightly import report
    from bot.nightly.options import NightlyOptions
    from bot.nightly.run import run_nightly

    if push_to and pull_request:
        raise click.UsageError("use either --push-to or --pull-request, not both")
    opts = NightlyOptions(
        repo=obj.repo,
        sets=sets,
        python=python,
        exclude_newer=exclude_newer,
        index_url=index_url,
        cache_dir=cache_dir,
        store=store,
        signing_key=signing_key,
        ssh_config=ssh_config,
        push_timeout=push_timeout,
        push_to=push_to,
        pull_request=pull_request,
        base=base,
        remote=remote,
        github_repo=github_repo,
        github_api=github_api,
        run_url=run_url,
        commit_only=commit_only,
        outcomes_dir=outcomes_dir,
        revalidate_budget=None if no_revalidate else revalidate_budget,
        static_index=static_index,
        static_index_to=static_index_to,
        static_index_mirror=mirror_index,
        advisories=advisories,
        report_json=report_json,
        report_markdown=report_markdown,
        nixpkgs=nixpkgs.nixpkgs,
        nixpkgs_path=nixpkgs.path,
        standalone_fallback=not nixpkgs.explicit,
        max_jobs=max_jobs,
    )
    if not commit_only:
        from bot.nightly.per_set import choose_nixpkgs

        note = choose_nixpkgs(opts)  # once, before the night; run_nightly then has nothing to do
        if note is not None:
            print_warning(note)
    with obj.progress("nightly", enabled=not as_json) as progress:
        result = run_nightly(opts, progress=progress)
    if as_json:
        click.echo(report.to_json(result.report))
    else:
        for s in result.report.sets:
            line = f"{s.name}: {s.status}"
            if s.commit:
                line += f" ({s.commit[:12]})"
            if s.failing_package:
                line += f", failing package {s.failing_package}"
            click.echo(line)
    for error in result.errors:
        print_error(error)
    raise SystemExit(result.exit_code)
