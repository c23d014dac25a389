"""The static package index of the sets: ``index write``."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.base import Context, cli, json_option, pass_ctx


@cli.group("index")
def index_group() -> None:
    """A static PyPI-style index of the sets (pip and uv install a tested set without Nix)."""


@index_group.command("write")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("sets", nargs=-1)
@click.option(
    "--mirror",
    is_flag=True,
    help="Download every locked file into DIRECTORY/files/ (each byte checked against the "
    "lock's sha256) with its core metadata beside each wheel, instead of linking to the "
    "files' own URLs.",
)
@json_option
@pass_ctx
def write_command(
    obj: Context, directory: Path, sets: tuple[str, ...], mirror: bool, as_json: bool
) -> None:
    """Write the static index of SETS (all by default) to DIRECTORY, replacing it whole.

    DIRECTORY/simple/ is the index (PEP 503 index.html, PEP 691 index.json);
    DIRECTORY/<set>/ holds constraints.txt and the set's pylock.py3XY.toml files.
    DIRECTORY is a symlink to the current generation beside it (swapped atomically); one
    writer at a time: another one (the nightly) is waited for up to
    $NIXPKGS_PYTHON_LOCK_WAIT seconds (default 600).
    """
    import json

    from bot.core.files import default_cache_dir
    from bot.nightly.static_index import write_index

    downloads = default_cache_dir() / "index-files" if mirror else None
    with obj.progress("index", enabled=not as_json) as progress:
        progress(f"writing {directory}")
        result = write_index(
            obj.repo, directory, sets=sets, mirror=mirror, downloads=downloads, on_wait=progress
        )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        how = f"{result.mirrored} mirrored" if mirror else "linked"
        click.echo(
            f"{result.path}: {len(result.sets)} sets, {result.projects} projects, "
            f"{result.files} files ({how}), {result.size} bytes"
        )
