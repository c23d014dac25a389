"""Command line: parses arguments into typed options and hands them to one function each.

The error boundary is :func:`main`: every expected failure is a :class:`bot.errors.BotError`,
printed as one message (what, where, what to do) with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from bot import __version__
from bot.errors import BotError
from bot.lock import parse_time

err_console = Console(stderr=True, highlight=False)


class Context:
    """Global options shared by every command."""

    def __init__(self, repo: Path, verbose: int, quiet: bool) -> None:
        self.repo = repo
        self.verbose = verbose
        self.quiet = quiet

    @contextlib.contextmanager
    def progress(self, title: str, enabled: bool = True) -> Iterator[Callable[[str], None]]:
        """A spinner on a terminal; silent when quiet, with --json, or not a TTY."""
        if self.quiet or not enabled or not err_console.is_terminal:
            yield lambda _msg: None
            return
        with err_console.status(title) as status:
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
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    ctx.obj = Context((repo or _default_repo()).resolve(), verbose, quiet)


def _timestamp(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
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
@click.option(
    "--exclude-newer",
    callback=_timestamp,
    metavar="TIMESTAMP",
    help="Ignore files uploaded after this time [default: now; with --check: the lock's]",
)
@click.option("--index-url", metavar="URL", help="Default package index [default: PyPI].")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Metadata cache [default: $XDG_CACHE_HOME/nixpkgs-python].",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a lock would change.")
@click.option("--offline", is_flag=True, help="Use only the metadata cache; no network.")
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
                err_console.print(
                    f"[bold red]error:[/] {escape(line)}\n{escape(o.error or '')}",
                    markup=True,
                    highlight=False,
                    soft_wrap=True,
                )
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise SystemExit(2)
    if check and any(o.status == "would-change" for o in outcomes):
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI inside the error boundary."""
    try:
        cli.main(args=argv, prog_name="nixpkgs-python", standalone_mode=False)
    except BotError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
        )
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
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
