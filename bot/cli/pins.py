"""The nixpkgs pin: ``nixpkgs update``."""

from __future__ import annotations

import click

from bot.cli.base import Context, cli, json_option, pass_ctx


@cli.group("nixpkgs")
def nixpkgs_group() -> None:
    """The pinned nixpkgs (nix/nixpkgs.json)."""


@nixpkgs_group.command("update")
@click.option(
    "--branch",
    metavar="BRANCH",
    help="Follow this release branch, e.g. nixos-26.05 [default: the pin's own branch].",
)
@click.option(
    "--remote",
    metavar="URL",
    default="https://github.com/NixOS/nixpkgs",
    show_default=True,
    help="The nixpkgs git repository to ask for the branch's newest commit.",
)
@click.option(
    "--archive-url",
    metavar="TEMPLATE",
    default="{remote}/archive/{rev}.tar.gz",
    show_default=True,
    help="Where the commit's tarball is ({remote} and {rev} are filled in).",
)
@json_option
@pass_ctx
def update_command(
    obj: Context, branch: str | None, remote: str, archive_url: str, as_json: bool
) -> None:
    """Move the pin to the newest commit of its release branch (hash checked by unpacking)."""
    import json

    from bot.nixpkgs import update_pin

    result = update_pin(obj.repo, branch=branch, remote=remote, archive=archive_url)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "changed": result.changed,
                    "old": result.old.to_json() if result.old else None,
                    "new": result.new.to_json(),
                },
                indent=2,
            )
        )
    elif result.changed:
        old = f"{result.old.release} {result.old.rev[:12]}" if result.old else "nothing"
        click.echo(f"nix/nixpkgs.json: {old} -> {result.new.release} {result.new.rev[:12]}")
    else:
        click.echo(f"nix/nixpkgs.json: unchanged ({result.new.branch} {result.new.rev[:12]})")
