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
    "--upstream",
    metavar="URL",
    default="https://github.com/NixOS/nixpkgs",
    show_default=True,
    envvar="NIXPKGS_PYTHON_NIXPKGS_UPSTREAM",
    help="The nixpkgs git repository to ask for the branch's newest commit "
    "[env: NIXPKGS_PYTHON_NIXPKGS_UPSTREAM].",
)
@click.option(
    "--archive-url",
    metavar="TEMPLATE",
    default="{remote}/archive/{rev}.tar.gz",
    show_default=True,
    envvar="NIXPKGS_PYTHON_NIXPKGS_ARCHIVE",
    help="Where the commit's tarball is ({remote} and {rev} are filled in) "
    "[env: NIXPKGS_PYTHON_NIXPKGS_ARCHIVE].",
)
@click.option(
    "--pull-request",
    is_flag=True,
    help="Commit the moved pin on its own branch (nixpkgs/<release>-<rev>), push it and open "
    "or update its pull request (with $GITHUB_TOKEN and $GITHUB_REPOSITORY).",
)
@click.option("--remote", "git_remote", default="origin", show_default=True, metavar="NAME",
              help="The git remote to push the branch to.")  # fmt: skip
@click.option("--base", default="main", show_default=True, help="The pull request's base.")
@json_option
@pass_ctx
def update_command(
    obj: Context,
    branch: str | None,
    upstream: str,
    archive_url: str,
    pull_request: bool,
    git_remote: str,
    base: str,
    as_json: bool,
) -> None:
    """Move the pin to the newest commit of its release branch (hash checked by unpacking)."""
    import json

    from bot.core.repolock import repository_lock
    from bot.model.nixpkgs import update_pin

    with repository_lock(obj.repo, "nixpkgs update"):
        result = update_pin(obj.repo, branch=branch, remote=upstream, archive=archive_url)
        proposal = None
        if pull_request and result.changed:
            from bot.nightly.pin_update import propose

            proposal = propose(obj.repo, result, remote=git_remote, base=base)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "changed": result.changed,
                    "old": result.old.to_json() if result.old else None,
                    "new": result.new.to_json(),
                    "branch": proposal.branch if proposal else None,
                    "commit": proposal.commit if proposal else None,
                    "pull-request": proposal.pull_request if proposal else None,
                },
                indent=2,
            )
        )
        return
    if result.changed:
        old = f"{result.old.release} {result.old.rev[:12]}" if result.old else "nothing"
        click.echo(f"nix/nixpkgs.json: {old} -> {result.new.release} {result.new.rev[:12]}")
    else:
        click.echo(f"nix/nixpkgs.json: unchanged ({result.new.branch} {result.new.rev[:12]})")
    if proposal is not None:
        number = proposal.pull_request
        pull = f"pull request #{number}" if number else "no GitHub token and repository: no PR"
        click.echo(f"committed {proposal.commit[:12]}, pushed {proposal.branch}; {pull}")
