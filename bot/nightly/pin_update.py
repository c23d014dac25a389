"""``nixpkgs update --pull-request``: the moved pin as its own commit and pull request.

The weekly workflow (``.github/workflows/nixpkgs.yml``) runs it: the pin moves in a commit of
its own, on a branch ``nixpkgs/<release>-<rev12>``, and one pull request proposes it.  A pull
request opened with the workflow's ``GITHUB_TOKEN`` starts no workflow by itself, so ``ci.yml``
is then dispatched on that branch: its checks (the tests, every set evaluated against the new
nixpkgs) show on the pull request before it is merged.  Building and pushing every set with the
new pin is the next night's work, once it is merged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.core import git
from bot.model.nixpkgs import PIN_FILE, PinUpdate


@dataclass(frozen=True)
class PinProposal:
    """Where the moved pin went."""

    commit: str
    branch: str
    pull_request: int | None  #: None without a GitHub token and repository


def branch_for(update: PinUpdate) -> str:
    """The pull-request branch of a pin move."""
    return f"nixpkgs/{update.new.release}-{update.new.rev[:12]}"


def commit_message(update: PinUpdate) -> tuple[str, str]:
    """Subject and body of the pin's commit (and of the pull request)."""
    new = update.new
    old = update.old
    before = f"{old.release} {old.rev[:12]}" if old else "no pin"
    subject = f"nixpkgs: {before} -> {new.release} {new.rev[:12]}"
    lines = [
        f"Moves `{PIN_FILE}` to the newest commit of `{new.branch}`.",
        "",
        f"- before: `{old.rev}` ({old.branch})" if old else "- before: no pin",
        f"- after: `{new.rev}` ({new.branch})",
        f"- tarball: {new.url}",
        f"- sha256 (unpacked, checked by `nix-prefetch-url --unpack`): `{new.sha256}`",
        "",
        "Every set builds against this nixpkgs once merged; the binary cache is refilled by "
        "the next night.",
    ]
    return subject, "\n".join(lines)


def propose(
    repo: Path,
    update: PinUpdate,
    *,
    remote: str = "origin",
    base: str = "main",
    github_api: str | None = None,
) -> PinProposal:
    """Commit the moved pin, push it as its own branch and open (or update) its pull request
    when ``$GITHUB_TOKEN`` and ``$GITHUB_REPOSITORY`` are set (as on a GitHub runner)."""
    subject, body = commit_message(update)
    sha = git.commit_set(repo, "nixpkgs", [repo / PIN_FILE], subject, body)
    branch = branch_for(update)
    git.push_pull_request_branch(repo, remote, branch)
    env = dict(os.environ)
    if github_api:
        env["GITHUB_API_URL"] = github_api
    from bot.nightly.github import client_from_env  # PyGithub is slow to import: only when used

    client = client_from_env(env)
    number = None
    if client is not None:
        try:
            number = client.upsert_pull_request(branch, base, subject, body)
            client.dispatch_workflow(branch)  # the token's pull request runs none
        finally:
            client.close()
    return PinProposal(sha, branch, number)
