"""Commands about locks: ``sets``, ``lock`` and ``generate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    Context,
    cache_dir_option,
    check_python,
    cli,
    exclude_newer_option,
    index_url_option,
    json_option,
    pass_ctx,
    print_error,
    python_option,
)
from bot.model.sets import KNOWN_SYSTEMS


@cli.command("sets")
@json_option
@pass_ctx
def sets_command(obj: Context, as_json: bool) -> None:
    """List the sets and their Python versions."""
    from bot.model.sets import load_sets

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
    from bot.lock.command import LockOptions, lock_sets

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
                for r in o.refusals:
                    held = "" if r["newest"] == r["locked"] else f" held below {r['newest']}"
                    click.echo(f"  {r['name']} {r['locked']}{held}: {r['reason']}")
            else:
                print_error(f"{line}\n{o.error or ''}")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise SystemExit(2)
    if check and any(o.status == "would-change" for o in outcomes):
        raise SystemExit(1)


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
    callback=check_python,
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
@click.option(
    "--system",
    "systems",
    multiple=True,
    type=click.Choice(KNOWN_SYSTEMS),
    help="Lock for this Nix system only (repeatable) [default: every system of the pin].",
)
@click.option(
    "--prefer",
    type=click.Choice(["wheel", "sdist"]),
    default="wheel",
    show_default=True,
    help="Use wheels where they exist, or build every package from its sdist.",
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
    systems: tuple[str, ...],
    prefer: str,
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Lock your own requirements and write a directory that nix-build builds."""
    import shlex

    from bot.generate.command import PROJECT_URL, GenerateOptions, generate

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
        systems=systems,
        prefer=prefer,
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
    if result.interpreter is not None:
        click.echo(f"or, without nixpkgs: {shlex.join(result.standalone_command)}")
    else:
        click.echo(
            f"note: no Python {result.python} on this machine; without nixpkgs pass "
            f"--arg interpreters '{{ \"{result.python}\" = /path/to/python; }}'"
        )
