"""The command group, its global options, the options commands share, and error output."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot import __version__
from bot.core.errors import BotError, without_credentials

if TYPE_CHECKING:
    from rich.console import Console

R = TypeVar("R")
#: a command's function, before or after click's decorators
CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


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


def print_warning(text: str) -> None:
    """One warning on stderr (shown with ``-q`` too: it says something about the outputs)."""
    from rich.markup import escape

    err_console().print(
        f"[bold yellow]warning:[/] {escape(text)}", markup=True, highlight=False, soft_wrap=True
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
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig, with credentials kept out of the output
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(_redact)
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    if verbose == 1:
        logging.getLogger("bot").setLevel(logging.DEBUG)
    ctx.obj = Context((repo or _default_repo()).resolve(), verbose, quiet)


def _redact(record: logging.LogRecord) -> bool:
    """A log filter: no URL's credentials in the output (an index URL may carry a token)."""
    text = record.getMessage()
    clean = without_credentials(text)
    if clean != text:
        record.msg, record.args = clean, None
    return True


def _timestamp(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    from bot.lock.document import parse_time  # heavy (resolver, index client): only when used

    try:
        return parse_time(value)
    except BotError as exc:
        raise click.BadParameter(str(exc)) from None


def check_python(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from bot import SUPPORTED_PYTHONS

    if value is not None and value not in SUPPORTED_PYTHONS:
        raise click.BadParameter(f"{value!r}: use one of {', '.join(SUPPORTED_PYTHONS)}")
    return value


python_option = click.option(
    "--python", callback=check_python, metavar="X.Y", help="Only this Python minor version."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def exclude_newer_option(default: str = "now") -> Callable[[CommandFunction], CommandFunction]:
    """``--exclude-newer TIMESTAMP`` (parsed into an aware datetime)."""
    return click.option(
        "--exclude-newer",
        callback=_timestamp,
        metavar="TIMESTAMP",
        help=f"Ignore files uploaded after this time [default: {default}].",
    )


index_url_option = click.option(
    "--index-url",
    metavar="URL",
    envvar="NIXPKGS_PYTHON_INDEX_URL",
    help="Default package index [default: $NIXPKGS_PYTHON_INDEX_URL, else PyPI].",
)
cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Metadata cache [default: $XDG_CACHE_HOME/nixpkgs-python].",
)


@dataclass(frozen=True)
class NixpkgsChoice:
    """What ``--standalone`` / ``--nixpkgs PATH`` chose (neither: the pinned nixpkgs)."""

    nixpkgs: bool = True  #: False: the machine's standalone interpreters
    path: Path | None = None  #: another nixpkgs than the pin
    explicit: bool = False  #: the user chose one of the two


def nixpkgs_option(f: Callable[..., R]) -> Callable[..., R]:
    """``--standalone`` and ``--nixpkgs PATH``, handed to the command as ``nixpkgs``."""

    @functools.wraps(f)
    def wrapper(*args: Any, standalone: bool, nixpkgs_path: Path | None, **kw: Any) -> R:
        if standalone and nixpkgs_path is not None:
            raise click.UsageError("use either --standalone or --nixpkgs, not both")
        choice = NixpkgsChoice(
            nixpkgs=not standalone,
            path=nixpkgs_path,
            explicit=standalone or nixpkgs_path is not None,
        )
        return f(*args, nixpkgs=choice, **kw)

    wrapper = click.option(
        "--nixpkgs",
        "nixpkgs_path",
        type=click.Path(exists=True, path_type=Path),
        envvar="NIXPKGS_PYTHON_NIXPKGS",
        metavar="PATH",
        help="Build with this nixpkgs instead of the pinned one (nix/nixpkgs.json); "
        "the binary cache does not have its outputs [env: NIXPKGS_PYTHON_NIXPKGS].",
    )(wrapper)
    return click.option(
        "--standalone",
        is_flag=True,
        help="Build with this machine's standalone interpreters instead of nixpkgs, with no "
        "substituters: outputs for this machine only.",
    )(wrapper)


ssh_config_option = click.option(
    "--ssh-config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="ssh_config for the connection (host, port, identity, known hosts).",
)

push_timeout_option = click.option(
    "--push-timeout",
    type=click.FloatRange(min=1.0),
    default=600.0,
    show_default=True,
    envvar="NIXPKGS_PYTHON_PUSH_TIMEOUT",
    metavar="SECONDS",
    help="How long one push to the binary cache may take, retries included "
    "[env: NIXPKGS_PYTHON_PUSH_TIMEOUT]; a push cut off is resumed by the next.",
)
