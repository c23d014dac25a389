"""Command line: parses arguments into typed options and hands them to one function each.

The error boundary is :func:`main`: every expected failure is a :class:`bot.errors.BotError`,
printed as one message (what, where, what to do) with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot import __version__
from bot.errors import BotError

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def err_console() -> Console:
    """The stderr console, made on first use (rich is slow to import)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_error(text: str) -> None:
    """One error message on stderr, in bold red where the terminal shows colour."""
    from rich.markup import escape

    err_console().print(
        f"[bold red]error:[/] {escape(text)}", markup=True, highlight=False, soft_wrap=True
    )


class Context:
    """Global options shared by every command."""

    def __init__(self, repo: Path, verbose: int, quiet: bool) -> None:
        self.repo = repo
        self.verbose = verbose
        self.quiet = quiet

    @contextlib.contextmanager
    def progress(self, title: str, enabled: bool = True) -> Iterator[Callable[[str], None]]:
        """A spinner on a terminal; silent when quiet, with --json, or not a TTY."""
        if self.quiet or not enabled or not err_console().is_terminal:
            yield lambda _msg: None
            return
        with err_console().status(title) as status:
            yield lambda msg: status.update(f"{title}: {msg}")


def _default_repo() -> Path:
    env = os.environ.get("NIXPKGS_PYTHON_REPO")
    if env:
        return Path(env)
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "sets").is_dir() and (candidate / "nix").is_dir():
            return candidate
    return here


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="nixpkgs-python")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    help="Repository checkout holding sets/ and nix/ [default: found from the current directory]",
)
@click.option("-v", "--verbose", count=True, help="Show the commands run (-vv: debug logging).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, verbose: int, quiet: bool) -> None:
    """Grouped Python package sets for Nix that keep themselves up to date."""
    # -v: the bot's own account (every command it runs, as `$ cmd`); -vv: every library too
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    if verbose == 1:
        logging.getLogger("bot").setLevel(logging.DEBUG)
    if not verbose:
        # setuptools' deprecation chatter from sdists whose metadata we ask their backend
        # for: not ours to fix, and it buries the bot's own output (-v shows it)
        from pyproject_hooks import BuildBackendWarning

        warnings.filterwarnings("ignore", category=BuildBackendWarning)
    ctx.obj = Context((repo or _default_repo()).resolve(), verbose, quiet)


def _timestamp(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from bot.lock import parse_time  # heavy (resolver, index client): only when used

    try:
        return parse_time(value)
    except BotError as exc:
        raise click.BadParameter(str(exc)) from None


def _python(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from bot.targets import SUPPORTED_PYTHONS

    if value is not None and value not in SUPPORTED_PYTHONS:
        raise click.BadParameter(f"{value!r}: use one of {', '.join(SUPPORTED_PYTHONS)}")
    return value


python_option = click.option(
    "--python", callback=_python, metavar="X.Y", help="Only this Python minor version."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def exclude_newer_option(default: str = "now") -> Callable[[Any], Any]:
    """``--exclude-newer TIMESTAMP`` (parsed into an aware datetime)."""
    return click.option(
        "--exclude-newer",
        callback=_timestamp,
        metavar="TIMESTAMP",
        help=f"Ignore files uploaded after this time [default: {default}].",
    )


index_url_option = click.option(
    "--index-url", metavar="URL", help="Default package index [default: PyPI]."
)
cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Metadata cache [default: $XDG_CACHE_HOME/nixpkgs-python].",
)


@cli.command("sets")
@json_option
@pass_ctx
def sets_command(obj: Context, as_json: bool) -> None:
    """List the sets and their Python versions."""
    from bot.sets import load_sets

    psets = load_sets(obj.repo)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"name": s.name, "python": list(s.python), "description": s.description}
                    for s in psets
                ]
            )
        )
        return
    for s in psets:
        click.echo(f"{s.name:<12} {' '.join(s.python):<12} {s.description}")


@cli.command("lock")
@click.argument("sets", nargs=-1)
@python_option
@exclude_newer_option("now; with --check: the lock's")
@index_url_option
@cache_dir_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a lock would change.")
@click.option("--offline", is_flag=True, help="Use only the metadata cache; no network.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Ask the index for every page, even one cached after the --exclude-newer time.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=4,
    show_default=True,
    help="Retries of a failed request (with backoff) before giving up.",
)
@json_option
@pass_ctx
def lock_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    exclude_newer: Any,
    index_url: str | None,
    cache_dir: Path | None,
    check: bool,
    offline: bool,
    refresh: bool,
    retries: int,
    as_json: bool,
) -> None:
    """Resolve sets against the index and write their PEP 751 locks."""
    from bot.locker import LockOptions, lock_sets

    opts = LockOptions(
        repo=obj.repo,
        sets=sets,
        python=python,
        exclude_newer=exclude_newer,
        index_url=index_url,
        cache_dir=cache_dir,
        check=check,
        offline=offline,
        refresh=refresh,
        retries=retries,
    )
    with obj.progress("locking", enabled=not as_json) as progress:
        outcomes = lock_sets(opts, progress=progress)
    if as_json:
        click.echo(json.dumps([o.to_json() for o in outcomes], indent=2))
    else:
        for o in outcomes:
            line = f"{o.set} (Python {o.python}): {o.status}"
            if o.status != "failed":
                line += f", {o.packages} packages"
                if o.changes:
                    shown = ", ".join(f"{n} {a or '-'} -> {b or '-'}" for n, a, b in o.changes[:4])
                    more = len(o.changes) - 4
                    line += f"; {shown}" + (f" (+{more} more)" if more > 0 else "")
                click.echo(line)
            else:
                print_error(f"{line}\n{o.error or ''}")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise SystemExit(2)
    if check and any(o.status == "would-change" for o in outcomes):
        raise SystemExit(1)


def _build_options(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    nixpkgs: bool,
    out_link: Path | None = None,
    keep_going: bool = False,
) -> Any:
    from bot.build import BuildOptions

    return BuildOptions(
        sets=list(sets),
        python=python,
        out_link=out_link,
        keep_going=keep_going,
        repo=obj.repo,
        nixpkgs=nixpkgs,
    )


nixpkgs_option = click.option(
    "--nixpkgs",
    is_flag=True,
    help="Build with the pinned nixpkgs (nix/nixpkgs.json) instead of standalone interpreters.",
)


@cli.command("build")
@click.argument("sets", nargs=-1)
@python_option
@click.option(
    "--out-link",
    type=click.Path(path_type=Path),
    metavar="PREFIX",
    help="Leave PREFIX-<set>-py3XY linking to each set's python environment.",
)
@click.option("--keep-going", is_flag=True, help="Build every package that can be built.")
@nixpkgs_option
@json_option
@pass_ctx
def build_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    out_link: Path | None,
    keep_going: bool,
    nixpkgs: bool,
    as_json: bool,
) -> None:
    """Build sets from their locks with Nix and print the store paths."""
    from bot.build import build_sets, summary

    opts = _build_options(obj, sets, python, nixpkgs, out_link, keep_going)
    with obj.progress("building", enabled=not as_json) as progress:
        results = build_sets(opts, progress=progress)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        click.echo(summary(results))
    if any(not r.ok for r in results):
        raise SystemExit(2)


ssh_config_option = click.option(
    "--ssh-config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="ssh_config for the connection (host, port, identity, known hosts).",
)


def _built_paths(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    nixpkgs: bool,
    progress: Callable[[str], None],
) -> list[str]:
    from bot.build import build_sets, summary

    results = build_sets(_build_options(obj, sets, python, nixpkgs), progress=progress)
    failed = [r for r in results if not r.ok]
    if failed:
        raise BotError("some sets did not build, nothing was pushed", hint="\n" + summary(failed))
    return [r.out_path for r in results if r.out_path]


@cli.command("push")
@click.argument("sets", nargs=-1)
@python_option
@click.option(
    "--to",
    "store",
    metavar="STORE_URI",
    help="ssh-ng://HOST, ssh://HOST, file:///DIR or rsync+ssh://HOST/DIR "
    "[default: the signed file cache in <repo>/binary-cache].",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Secret key file [default: $NIXPKGS_PYTHON_SIGNING_KEY_FILE, "
    "$NIXPKGS_PYTHON_SIGNING_KEY, or the machine's key for the default cache].",
)
@ssh_config_option
@nixpkgs_option
@json_option
@pass_ctx
def push_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    store: str | None,
    signing_key: Path | None,
    ssh_config: Path | None,
    nixpkgs: bool,
    as_json: bool,
) -> None:
    """Sign and push the sets' closures to a binary cache (only missing paths)."""
    from bot import cache

    target = store or cache.default_store(obj.repo)
    if (
        signing_key is None
        and store is None
        and not (
            os.environ.get(cache.SIGNING_KEY_ENV) or os.environ.get(cache.SIGNING_KEY_FILE_ENV)
        )
    ):
        signing_key = cache.default_signing_key()
    with obj.progress("pushing", enabled=not as_json) as progress:
        paths = _built_paths(obj, sets, python, nixpkgs, progress)
        result = cache.push(paths, to=target, signing_key=signing_key, ssh_config=ssh_config)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(
            f"{target}: copied {result.copied_count} of {len(result.closure)} paths "
            f"in {result.duration:.1f}s"
        )


@cli.group("cache")
def cache_group() -> None:
    """Binary cache keys and verification."""


@cache_group.command("keygen")
@click.argument("name")
@click.option(
    "--secret-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the secret key (never commit it).",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the public key (commit it, e.g. nix/cache-key.pub).",
)
def keygen_command(name: str, secret_key: Path, public_key: Path) -> None:
    """Generate a signing key pair NAME (e.g. cache.example.org-1)."""
    from bot import cache

    text = cache.cache_keygen(name, secret_key, public_key)
    click.echo(f"public key: {text}")
    click.echo(f"secret key written to {secret_key} (mode 0600); keep it out of the repository")


@cache_group.command("verify")
@click.argument("sets", nargs=-1)
@python_option
@click.option(
    "--from",
    "store",
    metavar="STORE_URI",
    required=True,
    help="The cache to substitute from (http(s)://, file://, ssh-ng://, ssh://).",
)
@click.option(
    "--public-key",
    required=True,
    metavar="FILE_OR_KEY",
    help="The only key to trust: a file holding it, or the key text.",
)
@ssh_config_option
@nixpkgs_option
@json_option
@pass_ctx
def verify_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    store: str,
    public_key: str,
    ssh_config: Path | None,
    nixpkgs: bool,
    as_json: bool,
) -> None:
    """Substitute the sets into a fresh store that trusts only PUBLIC_KEY."""
    from bot import cache
    from bot.build import _targets
    from bot.nightly import out_paths

    opts = _build_options(obj, sets, python, nixpkgs)
    paths: list[str] = []
    for set_name, py, error in _targets(opts):
        if error is not None or py is None:
            raise BotError(error or f"set {set_name} has no lock")
        paths += out_paths(opts, set_name, [py])
    key: str | Path = Path(public_key) if Path(public_key).is_file() else public_key
    with obj.progress("verifying", enabled=not as_json):
        result = cache.verify(paths, from_=store, public_key=key, ssh_config=ssh_config)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif result.ok:
        click.echo(f"{store}: all {len(result.checked)} paths substitute with a trusted signature")
    else:
        for failure in result.failures:
            click.echo(f"FAILED {failure.path}: {failure.reason}: {failure.detail}", err=True)
    if not result.ok:
        raise SystemExit(2)


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
@click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report-markdown", type=click.Path(dir_okay=False, path_type=Path))
@nixpkgs_option
@json_option
@pass_ctx
def nightly_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    exclude_newer: Any,
    index_url: str | None,
    cache_dir: Path | None,
    store: str | None,
    signing_key: Path | None,
    ssh_config: Path | None,
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
    report_json: Path | None,
    report_markdown: Path | None,
    nixpkgs: bool,
    as_json: bool,
) -> None:
    """Re-lock, build, push and commit every set (the scheduled job)."""
    from bot import report
    from bot.nightly import NightlyOptions, run_nightly

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
        report_json=report_json,
        report_markdown=report_markdown,
        nixpkgs=nixpkgs,
    )
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


@cli.command("generate")
@click.option(
    "-r",
    "--requirements",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE",
    help="Your requirements.txt (PEP 508 lines; no pip options).",
)
@click.option(
    "--python",
    callback=_python,
    metavar="X.Y",
    help="Python minor version [default: the newest found on this machine].",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("nix-python"),
    show_default=True,
    metavar="DIR",
    help="Directory to write (replaced as a whole when generate wrote it before).",
)
@exclude_newer_option()
@index_url_option
@click.option(
    "--default-overrides/--no-default-overrides",
    default=True,
    show_default=True,
    help="Apply nixpkgs-python's overrides library (pinned like the Nix library).",
)
@click.option(
    "--default-overrides-url",
    metavar="URL",
    help="Git repository of the Nix library and overrides "
    "[default: https://github.com/nixpkgs-python/nixpkgs-python].",
)
@click.option(
    "--default-overrides-rev",
    metavar="COMMIT",
    help="Its full 40-hex commit id [default: the repository's current HEAD].",
)
@click.option(
    "--overrides",
    multiple=True,
    metavar="SRC",
    help="More overrides, applied in order: a directory or .nix file, an https:// URL "
    "(.nix or tarball), or git+URL?rev=COMMIT#path=PATH.  Repeatable.",
)
@cache_dir_option
@json_option
@pass_ctx
def generate_command(
    obj: Context,
    requirements: Path,
    python: str | None,
    out: Path,
    exclude_newer: Any,
    index_url: str | None,
    default_overrides: bool,
    default_overrides_url: str | None,
    default_overrides_rev: str | None,
    overrides: tuple[str, ...],
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Lock your own requirements and write a directory that nix-build builds."""
    import shlex

    from bot.generate import PROJECT_URL, GenerateOptions, generate

    opts = GenerateOptions(
        requirements=requirements,
        out=out,
        python=python,
        exclude_newer=exclude_newer,
        index_url=index_url,
        default_overrides=default_overrides,
        library_url=default_overrides_url or PROJECT_URL,
        library_rev=default_overrides_rev,
        overrides=overrides,
        cache_dir=cache_dir,
    )
    with obj.progress("generating", enabled=not as_json) as progress:
        result = generate(opts, progress=progress)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    click.echo(
        f"wrote {result.out}: {result.packages} packages for Python {result.python} "
        f"(nixpkgs-python {result.library_rev[:12]})"
    )
    click.echo(f"build it with: {shlex.join(result.build_command)}")
    if result.interpreter is None:
        click.echo(
            f"note: no Python {result.python} on this machine; without nixpkgs pass "
            f"--arg interpreters '{{ \"{result.python}\" = /path/to/python; }}'"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI inside the error boundary."""
    try:
        cli.main(args=argv, prog_name="nixpkgs-python", standalone_mode=False)
    except BotError as exc:
        print_error(str(exc))
        return exc.exit_code
    except click.exceptions.Abort:
        err_console().print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
