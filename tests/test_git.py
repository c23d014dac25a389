"""bot.core.git against real git: a temp clone pushing to a bare remote (hermetic identity)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import bot.core.git as gitmod
from bot.core.errors import GitError, UpstreamChangedError
from bot.core.git import (
    commit_set,
    ensure_clean,
    head_sha,
    night_branch,
    push,
    push_pull_request_branch,
    remote_url,
)
from tests.harness import git


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository with one commit on main: two sets and a .gitignore."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    git(seed, "checkout", "-q", "-b", "main")
    write(seed / ".gitignore", "result\n.cache/\n")
    write(seed / "sets/alpha/pylock.py312.toml", "# alpha 1\n")
    write(seed / "sets/beta/pylock.py312.toml", "# beta 1\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "initial")
    git(seed, "push", "-q", "origin", "main")
    return bare


def clone(remote: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", str(remote), str(dest))
    return dest


@pytest.fixture
def work(remote: Path, tmp_path: Path) -> Path:
    return clone(remote, tmp_path / "work")


def status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


# --- ensure_clean ---------------------------------------------------------------------------


def test_clean_tree_passes_and_ignored_files_do_not_count(work: Path) -> None:
    write(work / "result", "a nix-build symlink stand-in")
    write(work / ".cache/x", "cache")
    ensure_clean(work)


def test_dirty_tree_detected_with_hint(work: Path) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# edited by hand\n")
    with pytest.raises(GitError) as info:
        ensure_clean(work)
    text = str(info.value)
    assert "uncommitted changes: sets/alpha/pylock.py312.toml" in text
    assert "git stash" in text


def test_untracked_not_ignored_file_is_dirty(work: Path) -> None:
    write(work / "stray.txt", "x")
    with pytest.raises(GitError, match=r"stray\.txt"):
        ensure_clean(work)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        ensure_clean(tmp_path)


# --- commit_set -----------------------------------------------------------------------------


def test_commit_set_commits_only_its_paths(work: Path) -> None:
    lock = write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    new_lock = write(work / "sets/alpha/pylock.py313.toml", "# alpha 313\n")
    other = write(work / "sets/beta/pylock.py312.toml", "# beta staged\n")
    git(work, "add", str(other))  # staged but not ours: must stay out of the commit

    sha = commit_set(
        work, "alpha", [lock, "sets/alpha/pylock.py313.toml"], "alpha: a 1 → 2", "body\n"
    )

    assert sha == head_sha(work)
    assert git(work, "show", "--name-only", "--format=", sha).splitlines() == [
        "sets/alpha/pylock.py312.toml",
        "sets/alpha/pylock.py313.toml",
    ]
    assert git(work, "log", "-1", "--format=%s%n%n%b", sha) == "alpha: a 1 → 2\n\nbody"
    assert git(work, "log", "-1", "--format=%an <%ae>", sha) == (
        "nixpkgs-python tests <tests@nixpkgs-python.invalid>"
    )
    assert new_lock.read_text() == "# alpha 313\n"
    assert status(work) == "M  sets/beta/pylock.py312.toml"


def test_commit_set_records_deletion(work: Path) -> None:
    (work / "sets/alpha/pylock.py312.toml").unlink()
    sha = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: drop py312", "")
    assert git(work, "show", "--name-status", "--format=", sha) == "D\tsets/alpha/pylock.py312.toml"


def test_commit_set_refuses_when_nothing_changed(work: Path) -> None:
    before = head_sha(work)
    with pytest.raises(GitError, match="nothing changed"):
        commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: x", "")
    assert head_sha(work) == before


def test_commit_set_refuses_paths_outside(work: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="outside the repository"):
        commit_set(work, "alpha", [tmp_path / "elsewhere"], "x", "")


def test_commit_without_identity_fails_clearly_and_unstages(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("EMAIL", "")
    git(work, "config", "user.useConfigOnly", "true")
    write(work / "sets/alpha/pylock.py313.toml", "# new\n")
    with pytest.raises(GitError) as info:
        commit_set(work, "alpha", ["sets/alpha/pylock.py313.toml"], "alpha: x", "")
    assert "GIT_AUTHOR_NAME" in str(info.value)
    assert status(work) == "?? sets/alpha/pylock.py313.toml"  # nothing left staged


# --- push -----------------------------------------------------------------------------------


def test_push_fast_forward(work: Path, remote: Path) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    sha = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    result = push(work, "origin")
    assert result.sha == sha
    assert result.rebases == 0
    assert git(remote, "rev-parse", "main") == sha


def test_non_fast_forward_resolved_by_rebase(work: Path, remote: Path, tmp_path: Path) -> None:
    other = clone(remote, tmp_path / "other")
    write(other / "sets/beta/pylock.py312.toml", "# beta 2 from elsewhere\n")
    git(other, "commit", "-qam", "beta: 2")
    git(other, "push", "-q", "origin", "main")

    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    result = push(work, "origin", "main")

    assert result.rebases == 1
    assert git(remote, "rev-parse", "main") == result.sha == head_sha(work)
    assert git(remote, "log", "--format=%s", "main").splitlines() == [
        "alpha: 2",
        "beta: 2",
        "initial",
    ]
    assert status(work) == ""


def test_rebase_conflict_restores_pre_push_state(work: Path, remote: Path, tmp_path: Path) -> None:
    other = clone(remote, tmp_path / "other")
    write(other / "sets/alpha/pylock.py312.toml", "# alpha from elsewhere\n")
    git(other, "commit", "-qam", "alpha: elsewhere")
    git(other, "push", "-q", "origin", "main")

    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    mine = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    with pytest.raises(GitError, match="rebasing onto origin/main failed"):
        push(work, "origin")
    assert head_sha(work) == mine
    assert status(work) == ""
    assert not (work / ".git/rebase-merge").exists()
    assert not (work / ".git/rebase-apply").exists()


def test_rejecting_hook_gives_clear_error_and_clean_tree(work: Path, remote: Path) -> None:
    hook = write(remote / "hooks/pre-receive", "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    mine = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    with pytest.raises(GitError) as info:
        push(work, "origin", "main")
    text = str(info.value)
    assert "the remote rejected the push to origin/main" in text
    assert "pre-receive hook declined" in text
    assert "hint:" in text
    assert head_sha(work) == mine
    assert status(work) == ""


def test_unreachable_remote(work: Path, tmp_path: Path) -> None:
    git(work, "remote", "add", "gone", "https://user:s3cret@127.0.0.1:9/nothing.git")
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    with pytest.raises(GitError) as info:
        push(work, "gone", "main")
    assert "push to gone/main failed" in str(info.value)
    assert "s3cret" not in str(info.value)
    assert remote_url(work, "gone") == "https://***@127.0.0.1:9/nothing.git"
    # the same redaction as every other message: a password may hold an "@"
    git(work, "remote", "add", "at", "https://user:p@ss@127.0.0.1:9/nothing.git")
    assert remote_url(work, "at") == "https://***@127.0.0.1:9/nothing.git"


def test_detached_head_needs_branch(work: Path) -> None:
    git(work, "checkout", "-q", "--detach")
    with pytest.raises(GitError, match="detached"):
        push(work, "origin")


# --- pull-request branch --------------------------------------------------------------------


def test_night_branch_name() -> None:
    assert night_branch(dt.date(2026, 11, 21)) == "nightly/2026-11-21"


def test_pull_request_branch_created_then_replaced(work: Path, remote: Path) -> None:
    branch = night_branch(dt.date(2026, 11, 21))
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    first = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    assert push_pull_request_branch(work, "origin", branch) == first
    assert git(remote, "rev-parse", branch) == first
    assert git(remote, "rev-parse", "main") != first  # main untouched

    # the same night runs again from main: a different history replaces the branch
    git(work, "reset", "-q", "--hard", "origin/main")
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 3\n")
    second = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 3", "")
    assert push_pull_request_branch(work, "origin", branch) == second
    assert git(remote, "rev-parse", branch) == second
    # pushing the same commit again is a no-op
    assert push_pull_request_branch(work, "origin", branch) == second


def test_pull_request_branch_rejected_by_hook(work: Path, remote: Path) -> None:
    hook = write(remote / "hooks/pre-receive", "#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    with pytest.raises(GitError, match="rejected the push to origin/nightly/2026-11-21"):
        push_pull_request_branch(work, "origin", "nightly/2026-11-21")
    assert status(work) == ""


def test_retries_exhausted_restores_state(work: Path, remote: Path, tmp_path: Path) -> None:
    other = clone(remote, tmp_path / "other")
    write(other / "sets/beta/pylock.py312.toml", "# beta 2\n")
    git(other, "commit", "-qam", "beta: 2")
    git(other, "push", "-q", "origin", "main")
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    mine = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    with pytest.raises(GitError, match=r"still rejected after 0 rebase\(s\)"):
        push(work, "origin", retries=0)
    assert head_sha(work) == mine
    assert status(work) == ""


# --- identity, show_head, restore --------------------------------------------------------------


def test_missing_identity_gets_the_bot_identity(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for role in ("AUTHOR", "COMMITTER"):
        for key in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{role}_{key}")
    gitmod.ensure_identity(work)
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    gitmod.commit_set(work, "alpha", [work / "sets/alpha/pylock.py312.toml"], "alpha: bump", "")
    assert (
        git(work, "log", "-1", "--format=%an <%ae>")
        == "nixpkgs-python bot <bot@nixpkgs-python.invalid>"
    )


def test_configured_identity_wins(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("AUTHOR", "COMMITTER"):
        for key in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{role}_{key}")
    git(work, "config", "user.name", "Someone")
    git(work, "config", "user.email", "someone@example.invalid")
    gitmod.ensure_identity(work)
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    gitmod.commit_set(work, "alpha", [work / "sets/alpha/pylock.py312.toml"], "alpha: bump", "")
    assert git(work, "log", "-1", "--format=%an") == "Someone"


def test_show_head_and_restore(work: Path) -> None:
    path = work / "sets/alpha/pylock.py312.toml"
    assert gitmod.show_head(work, path) == "# alpha 1\n"
    assert gitmod.show_head(work, work / "sets/alpha/pylock.py313.toml") is None
    path.write_text("# changed\n")
    new = write(work / "sets/alpha/pylock.py313.toml", "# new\n")
    gitmod.restore(work, path)
    gitmod.restore(work, new)
    assert status(work) == ""


def test_the_checks_before_a_night_run_git_without_loading_gitpython(
    work: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from bot.core import git\n"
        "repo = sys.argv[1]\n"
        "git.ensure_clean(repo)\n"
        "print(git.dirty_paths(repo))\n"
        "git.ensure_identity(repo)\n"
        "print(type(sys.modules['git']).__name__)\n"
        "print(len(git.head_sha(repo)))\n"
        "print(type(sys.modules['git']).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(work)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["[]", "_LazyModule", "40", "module"]  # loaded by the first real use
    # the same refusals as before
    (work / "stray.txt").write_text("x")
    with pytest.raises(GitError, match=r"uncommitted changes: stray\.txt"):
        gitmod.ensure_clean(work)
    assert gitmod.dirty_paths(work) == ["stray.txt"]
    (work / "sub").mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        gitmod.dirty_paths(work / "sub")
    with pytest.raises(GitError, match="not a git repository"):
        gitmod.ensure_clean(tmp_path / "nowhere")


# --- sync: a night starts from the remote branch ----------------------------------------------


def is_lock(path: str) -> bool:
    return path.startswith("sets/") and "/pylock." in path


def maintainer_commit(remote: Path, tmp_path: Path, path: str, text: str) -> str:
    """A commit pushed to the remote's main from another clone (a maintainer's merge)."""
    other = tmp_path / "maintainer"
    if not other.exists():
        clone(remote, other)
    git(other, "pull", "-q", "--ff-only", "origin", "main")
    write(other / path, text)
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", f"maintainer: {path}")
    git(other, "push", "-q", "origin", "main")
    return git(other, "rev-parse", "HEAD")


def test_sync_fast_forwards_to_the_remote(work: Path, remote: Path, tmp_path: Path) -> None:
    assert gitmod.sync(work, "origin", "main", own=is_lock) is None  # nothing new
    theirs = maintainer_commit(remote, tmp_path, "sets/alpha/set.yaml", "python: ['3.13']\n")
    note = gitmod.sync(work, "origin", "main", own=is_lock)
    assert note is not None
    assert "1 new commit" in note
    assert theirs[:12] in note
    assert head_sha(work) == theirs
    assert (work / "sets/alpha/set.yaml").read_text() == "python: ['3.13']\n"
    assert status(work) == ""


def test_sync_without_remote_or_branch_does_nothing(work: Path, tmp_path: Path) -> None:
    before = head_sha(work)
    assert gitmod.sync(work, "upstream", "main", own=is_lock) is None  # no such remote
    assert gitmod.sync(work, "origin", "no-such-branch", own=is_lock) is None
    local = tmp_path / "local"
    git(tmp_path, "init", "-q", "-b", "main", str(local))
    write(local / "a", "a\n")
    git(local, "add", "-A")
    git(local, "commit", "-q", "-m", "a")
    assert gitmod.sync(local, "origin", "main", own=is_lock) is None
    assert head_sha(work) == before


def test_sync_rebases_the_bots_unpublished_lock_commits(
    work: Path, remote: Path, tmp_path: Path
) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    theirs = maintainer_commit(remote, tmp_path, "sets/beta/pylock.py312.toml", "# beta 2\n")
    note = gitmod.sync(work, "origin", "main", own=is_lock)
    assert note is not None
    assert "1 unpublished bot commit(s) rebased" in note
    assert git(work, "rev-parse", "HEAD~1") == theirs
    assert git(work, "log", "-1", "--format=%s") == "alpha: 2"
    assert (work / "sets/beta/pylock.py312.toml").read_text() == "# beta 2\n"
    assert status(work) == ""


def test_sync_drops_the_bots_commits_made_against_a_tree_that_changed(
    work: Path, remote: Path, tmp_path: Path
) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    theirs = maintainer_commit(remote, tmp_path, "overrides/x.yaml", "x: 1\n")
    note = gitmod.sync(work, "origin", "main", own=is_lock)
    assert note is not None
    assert "changed overrides/x.yaml" in note
    assert "1 unpublished commit(s) made against the old tree were dropped" in note
    assert head_sha(work) == theirs
    assert (work / "sets/alpha/pylock.py312.toml").read_text() == "# alpha 1\n"
    assert status(work) == ""


def test_sync_refuses_a_diverged_checkout_with_foreign_commits(
    work: Path, remote: Path, tmp_path: Path
) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    write(work / "nix/local-hack.nix", "{}\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "a local hack")
    mine = head_sha(work)
    maintainer_commit(remote, tmp_path, "sets/alpha/set.yaml", "python: ['3.13']\n")
    with pytest.raises(GitError) as info:
        gitmod.sync(work, "origin", "main", own=is_lock)
    text = str(info.value)
    assert "diverged from origin/main: 1 local commit(s)" in text
    assert mine[:12] in text
    assert "git reset --keep origin/main" in text
    assert head_sha(work) == mine  # nothing moved
    assert status(work) == ""


def test_sync_counts_commits_on_the_bots_pull_request_branches_as_its_own(
    work: Path, remote: Path, tmp_path: Path
) -> None:
    write(work / "overrides/edit.yaml", "suggested: 1\n")  # an overrides edit of the bot's
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "overrides: suggested edit")
    push_pull_request_branch(work, "origin", "nightly/2026-11-21")
    theirs = maintainer_commit(remote, tmp_path, "sets/beta/pylock.py312.toml", "# beta 2\n")
    with pytest.raises(GitError, match="diverged"):
        gitmod.sync(work, "origin", "main", own=is_lock)  # without knowing the PR branches
    note = gitmod.sync(work, "origin", "main", own=is_lock, published="nightly/*")
    assert note is not None
    assert "rebased" in note
    assert git(work, "rev-parse", "HEAD~1") == theirs


def test_sync_rebase_conflict_leaves_head_where_it_was(
    work: Path, remote: Path, tmp_path: Path
) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    mine = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    maintainer_commit(remote, tmp_path, "sets/alpha/pylock.py312.toml", "# alpha by hand\n")
    with pytest.raises(GitError, match="changed the same locks"):
        gitmod.sync(work, "origin", "main", own=is_lock)
    assert head_sha(work) == mine
    assert status(work) == ""
    assert not (work / ".git/rebase-merge").exists()


# --- push: a rejected push rebases over locks only -------------------------------------------


def test_rejected_push_over_non_lock_changes_is_not_pushed(
    work: Path, remote: Path, tmp_path: Path
) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    mine = commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    theirs = maintainer_commit(remote, tmp_path, "sets/alpha/set.yaml", "python: ['3.13']\n")
    with pytest.raises(UpstreamChangedError) as info:
        push(work, "origin", "main", rebase_over=is_lock)
    assert info.value.paths == ("sets/alpha/set.yaml",)
    assert "not pushed" in str(info.value)
    assert "sets/alpha/set.yaml" in str(info.value)
    assert git(remote, "rev-parse", "main") == theirs  # the remote has none of it
    assert head_sha(work) == mine
    assert status(work) == ""


def test_rejected_push_over_lock_changes_only_is_rebased(
    work: Path, remote: Path, tmp_path: Path
) -> None:
    write(work / "sets/alpha/pylock.py312.toml", "# alpha 2\n")
    commit_set(work, "alpha", ["sets/alpha/pylock.py312.toml"], "alpha: 2", "")
    theirs = maintainer_commit(remote, tmp_path, "sets/beta/pylock.py312.toml", "# beta 2\n")
    result = push(work, "origin", "main", rebase_over=is_lock)
    assert result.rebases == 1
    assert git(remote, "rev-parse", "main") == result.sha
    assert git(remote, "rev-parse", "main~1") == theirs


def test_delete_remote_branch(work: Path, remote: Path) -> None:
    push_pull_request_branch(work, "origin", "nightly/2026-11-21")
    assert git(remote, "branch", "--list", "nightly/*") != ""
    gitmod.delete_remote_branch(work, "origin", "nightly/2026-11-21")
    assert git(remote, "branch", "--list", "nightly/*") == ""
