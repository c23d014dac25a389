"""Committing locks back, with GitPython.

The nightly run commits each set that changed as its own commit, then pushes either to the
branch it runs on (:func:`push`, rebasing over whatever landed meanwhile) or to a per-night
pull-request branch (:func:`push_pull_request_branch`).  Whatever happens, the working tree
is left clean: a failed rebase is aborted and the branch reset to where it was before the
operation started.

Every git command runs through GitPython's command wrapper (``repo.git``), which raises
``GitCommandError`` carrying stderr; this module turns those into :class:`bot.core.errors.GitError`
with what failed, where, and what to do.  Credentials that may sit in a remote URL are masked
in every message.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.errors import CommandError, GitError, UpstreamChangedError, without_credentials
from bot.core.proc import run


def _lazy_gitpython() -> Any:
    """The ``git`` (GitPython) module, loaded on its first attribute access: the checks a
    quiet night makes (:func:`ensure_clean`, :func:`dirty_paths`, :func:`ensure_identity`)
    run git itself and never touch it."""
    import importlib.util
    import sys

    if "git" in sys.modules:
        return sys.modules["git"]
    spec = importlib.util.find_spec("git")
    if spec is None or spec.loader is None:
        raise ImportError("GitPython is not installed")
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["git"] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import git
else:  # GitPython (~0.1 s to import) loads when a commit, push or query first needs it
    git = _lazy_gitpython()

log = logging.getLogger(__name__)

NETWORK_TIMEOUT = 600  # seconds for one fetch/push
COMMIT_TIMEOUT = 3600  # seconds for `git add`/`git commit` (hooks may run)
# Environment for every git command: never prompt for a password on a terminal nobody watches.
_ENV = {"GIT_TERMINAL_PROMPT": "0"}


def _mask(text: str) -> str:
    """Hide ``user:token@`` in URLs (as ``***@``)."""
    return without_credentials(text, userinfo="***@")


def _stderr(exc: git.GitCommandError) -> str:
    out = exc.stderr if isinstance(exc.stderr, str) else ""
    out = out.strip().removeprefix("stderr:").strip().strip("'").strip()
    return _mask(out)


@contextmanager
def _open(repo_path: Path | str) -> Iterator[git.Repo]:
    try:
        repo = git.Repo(repo_path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(
            "not a git repository",
            where=str(repo_path),
            hint="run the bot inside a clone of the nixpkgs-python repository",
        ) from exc
    try:
        with repo.git.custom_environment(**_ENV):
            yield repo
    finally:
        repo.close()


def _dirty_paths(repo: git.Repo) -> list[str]:
    """Tracked changes (staged or not) and untracked files that are not gitignored."""
    out = repo.git.status("--porcelain=v1", "--untracked-files=all")
    return [line[3:] for line in out.splitlines() if line.strip()]


def _git(repo: git.Repo, *args: str, timeout: float = NETWORK_TIMEOUT) -> str:
    """Run ``git args`` through :func:`bot.core.proc.run`; raise ``git.GitCommandError`` on failure.

    Not GitPython's wrapper: on Ctrl-C or SIGTERM :mod:`bot.core.proc` stops the child at once
    (SIGTERM, so git removes its own lock files) instead of leaving it to GitPython's kill
    timer, and a timeout is the same bound.
    """
    argv = ["git", *args]
    try:
        proc = run(
            argv,
            cwd=Path(repo.working_tree_dir or repo.git_dir),
            env=_ENV,
            check=False,
            timeout=timeout,
        )
    except CommandError as exc:  # timed out
        raise git.GitCommandError(argv, -1, exc.message + "\n" + exc.stderr_tail, "") from exc
    if proc.returncode != 0:
        raise git.GitCommandError(argv, proc.returncode, proc.stderr or "", proc.stdout or "")
    return proc.stdout.rstrip("\n")


def _network(repo: git.Repo, command: str, *args: str) -> str:
    """Run a git command that talks to a remote, bounded by :data:`NETWORK_TIMEOUT`."""
    return _git(repo, command.replace("_", "-"), *args)


def _in_progress(repo: git.Repo) -> str | None:
    return _operation_in(Path(repo.git_dir))


def _plain(repo_path: Path | str) -> Path:
    """The working tree ``repo_path`` (its top directory) checked with git itself, not
    GitPython: the same "not a git repository" error as :func:`_open`; its git directory."""
    root = Path(repo_path)
    proc = None
    if root.is_dir():
        proc = run(
            ["git", "rev-parse", "--show-toplevel", "--absolute-git-dir"],
            cwd=root,
            env=_ENV,
            check=False,
            timeout=60,
        )
    lines = proc.stdout.splitlines() if proc is not None and proc.returncode == 0 else []
    if len(lines) != 2 or Path(lines[0]) != root.resolve():
        raise GitError(
            "not a git repository",
            where=str(repo_path),
            hint="run the bot inside a clone of the nixpkgs-python repository",
        )
    return Path(lines[1])


def _plain_dirty(repo_path: Path | str) -> list[str]:
    out = run(
        ["git", "status", "--porcelain=v1", "--untracked-files=all"],
        cwd=Path(repo_path),
        env=_ENV,
        check=False,
        timeout=COMMIT_TIMEOUT,
    )
    if out.returncode != 0:
        raise GitError(f"git status failed: {_mask(out.stderr.strip())}", where=str(repo_path))
    return [line[3:] for line in out.stdout.splitlines() if line.strip()]


def _operation_in(git_dir: Path) -> str | None:
    for name, what in (
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase"),
        ("MERGE_HEAD", "a merge"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ):
        if (git_dir / name).exists():
            return what
    return None


def ensure_clean(repo_path: Path | str, *, allow: Iterable[str] = ()) -> None:
    """Refuse to start on a working tree with uncommitted changes or an operation in progress.

    Untracked files that are gitignored (caches, build results) are fine; any other change
    would be swept into, or destroyed by, the bot's commits and rebases.  ``allow`` lists
    repository-relative paths that may differ (CI's commit job: the locks other jobs made).
    """
    allowed = set(allow)
    what = _operation_in(_plain(repo_path))
    if what:
        raise GitError(
            f"{what} is in progress",
            where=str(repo_path),
            hint="finish or abort it (e.g. `git rebase --abort`) before running the bot",
        )
    dirty = [p for p in _plain_dirty(repo_path) if p not in allowed]
    if dirty:
        shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
        raise GitError(
            f"the working tree has uncommitted changes: {shown}",
            where=str(repo_path),
            hint="commit or stash them (`git stash --include-untracked`), "
            "or run the bot in a fresh clone",
        )


def dirty_paths(repo_path: Path | str) -> list[str]:
    """Repository-relative paths with uncommitted changes (staged or not, or untracked)."""
    _plain(repo_path)
    return _plain_dirty(repo_path)


def _relative(repo: git.Repo, paths: Sequence[Path | str]) -> list[str]:
    root = Path(repo.working_tree_dir or ".").resolve()
    result: list[str] = []
    for path in paths:
        p = Path(path)
        absolute = p.resolve() if p.is_absolute() else (root / p).resolve()
        try:
            result.append(absolute.relative_to(root).as_posix())
        except ValueError as exc:
            raise GitError(
                f"{path} is outside the repository",
                where=str(root),
                hint="pass paths inside the repository (e.g. sets/<name>/pylock.py312.toml)",
            ) from exc
    return sorted(set(result))


def commit_set(
    repo_path: Path | str, set_name: str, paths: Sequence[Path | str], subject: str, body: str
) -> str:
    """Commit exactly ``paths`` (a set's locks) as one commit; return its sha.

    Nothing else is committed even if other files are staged.  The author and committer come
    from the environment (``GIT_AUTHOR_NAME`` ...) or git config.  Raises :class:`GitError`
    when none of ``paths`` changed.
    """
    if not paths:
        raise GitError(f"set {set_name}: no files to commit", hint="pass the set's lock files")
    with _open(repo_path) as repo:
        rel = _relative(repo, paths)
        changed = repo.git.status("--porcelain=v1", "--untracked-files=all", "--", *rel)
        if not changed.strip():
            raise GitError(
                f"set {set_name}: nothing changed in {', '.join(rel)}",
                where=str(repo_path),
                hint="only commit sets whose locks were rewritten",
            )
        message = subject.strip() + ("\n\n" + body.strip() + "\n" if body.strip() else "\n")
        try:
            # -A records deletions too; --only commits these paths and nothing else staged.
            _git(repo, "add", "-A", "--", *rel, timeout=COMMIT_TIMEOUT)
            _git(repo, "commit", "--only", "-q", "-m", message, "--", *rel, timeout=COMMIT_TIMEOUT)
        except BaseException as exc:
            # interrupted or failed: the index goes back to what it was (git stopped first)
            _unstage(repo, rel)
            if not isinstance(exc, git.GitCommandError):
                raise
            err = _stderr(exc)
            hint = "check the repository state with `git status`"
            if "tell me who you are" in err or "empty ident" in err:
                hint = (
                    "set an identity: GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL (and GIT_COMMITTER_*) "
                    "or `git config user.name/user.email`"
                )
            raise GitError(
                f"set {set_name}: git commit failed: {err}", where=str(repo_path), hint=hint
            ) from exc
        sha = repo.head.commit.hexsha
        log.info("committed %s as %s", set_name, sha[:12])
        return sha


def unstage(repo_path: Path | str, paths: Sequence[Path | str]) -> None:
    """Reset the index entries of ``paths`` to HEAD (what a failed commit staged)."""
    with _open(repo_path) as repo:
        _unstage(repo, _relative(repo, paths))


def _unstage(repo: git.Repo, rel: Sequence[str]) -> None:
    """Leave nothing of a failed commit staged (new files become untracked again)."""
    try:
        if repo.head.is_valid():
            repo.git.reset("-q", "HEAD", "--", *rel)
        else:
            repo.git.rm("-q", "--cached", "-r", "--ignore-unmatch", "--", *rel)
    except git.GitCommandError:  # best effort: the original error is the one to report
        log.debug("could not unstage %s", rel)


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` did: the sha now on the remote and how many rebases it took."""

    sha: str
    rebases: int


def _current_branch(repo: git.Repo, where: str) -> str:
    if repo.head.is_detached:
        raise GitError(
            "HEAD is detached; cannot tell which branch to push",
            where=where,
            hint="check out a branch, or pass the branch explicitly",
        )
    return repo.active_branch.name


def _push_once(repo: git.Repo, remote: str, refspec: str, *extra: str) -> tuple[bool, str]:
    """Push; ``(True, "")`` on success, ``(False, reason)`` when rejected as not a fast-forward.

    Any other failure raises :class:`GitError`.
    """
    target = refspec.split(":", 1)[-1].removeprefix("refs/heads/")
    try:
        _network(repo, "push", "--porcelain", *extra, remote, refspec)
    except git.GitCommandError as exc:
        out = _mask(exc.stdout if isinstance(exc.stdout, str) else "")
        err = _stderr(exc)
        text = f"{out}\n{err}"
        if "[rejected]" in text and ("non-fast-forward" in text or "fetch first" in text):
            return False, "non-fast-forward"
        if "stale info" in text:
            raise GitError(
                f"push to {remote}/{target} refused: the remote branch changed since it was read",
                where=f"{remote}/{target}",
                hint="another run updated the branch at the same time; run the bot again",
            ) from exc
        if "[remote rejected]" in text or "declined" in text:
            reason = re.search(r"\[remote rejected\][^\n]*", text)
            raise GitError(
                f"the remote rejected the push to {remote}/{target}: "
                f"{reason.group(0) if reason else err}",
                where=f"{remote}/{target}",
                hint="a server-side hook or branch protection refused it; check the remote's "
                "rules (protected branch, required checks) or push to a pull-request branch",
            ) from exc
        raise GitError(
            f"push to {remote}/{target} failed: {err or out}",
            where=f"{remote}/{target}",
            hint="check the remote URL and that the SSH key or token may push to it",
        ) from exc
    return True, ""


def _restore(repo: git.Repo, branch_sha: str) -> None:
    """Back to the state before the operation: no rebase in progress, branch at ``branch_sha``."""
    if _in_progress(repo):
        try:
            repo.git.rebase("--abort")
        except git.GitCommandError:
            log.debug("rebase --abort failed; resetting instead")
    # --keep, not --hard: uncommitted changes the bot did not make survive (a hand-edited
    # lock whose set sat the night out); the rebase was refused with them, so none conflict
    try:
        repo.git.reset("-q", "--keep", branch_sha)
    except git.GitCommandError:
        log.warning("could not reset the branch to %s; check `git status`", branch_sha[:12])


def push(
    repo_path: Path | str,
    remote: str = "origin",
    branch: str | None = None,
    *,
    retries: int = 3,
    rebase_over: Callable[[str], bool] | None = None,
) -> PushResult:
    """Push the current branch's commits to ``remote``/``branch`` (default: the same name).

    When the remote moved on (a non-fast-forward rejection), fetch it, rebase the local
    commits onto it and try again, at most ``retries`` times; the nightly commits only touch
    locks of distinct sets, so the rebase does not conflict in practice.  With
    ``rebase_over``, the rebase is only done when every path the remote changed meanwhile
    passes it (the nightly: only locks); otherwise :class:`UpstreamChangedError` names them
    and nothing is pushed (commits made against the old tree would land on the new one).
    On any failure the branch is reset to where it was before and a :class:`GitError` says
    what to do.
    """
    where = str(repo_path)
    with _open(repo_path) as repo:
        local = _current_branch(repo, where)
        target = branch or local
        start = repo.head.commit.hexsha
        try:
            return _push_with_rebase(repo, remote, target, retries, rebase_over)
        except BaseException:
            _restore(repo, start)
            raise


def _push_with_rebase(
    repo: git.Repo,
    remote: str,
    target: str,
    retries: int,
    rebase_over: Callable[[str], bool] | None = None,
) -> PushResult:
    rebases = 0
    while True:
        ok, _ = _push_once(repo, remote, f"HEAD:refs/heads/{target}")
        if ok:
            return PushResult(sha=repo.head.commit.hexsha, rebases=rebases)
        if rebases >= retries:
            raise GitError(
                f"push to {remote}/{target} still rejected after {rebases} rebase(s)",
                where=f"{remote}/{target}",
                hint="the branch is changing faster than the bot can rebase; "
                "run the bot again later",
            )
        rebases += 1
        log.info("%s/%s moved on; fetching and rebasing (%d)", remote, target, rebases)
        _fetch_and_rebase(repo, remote, target, rebase_over)


def _fetch(repo: git.Repo, remote: str, target: str) -> str:
    """Fetch ``remote``/``target`` into its tracking ref; return the ref."""
    tracking = f"refs/remotes/{remote}/{target}"
    try:
        _network(repo, "fetch", "-q", remote, f"+refs/heads/{target}:{tracking}")
    except git.GitCommandError as exc:
        raise GitError(
            f"fetching {remote}/{target} failed: {_stderr(exc)}",
            where=f"{remote}/{target}",
            hint="check the network and that the SSH key or token may read the repository",
        ) from exc
    return tracking


def _shown(paths: Sequence[str], limit: int = 10) -> str:
    more = len(paths) - limit
    return ", ".join(paths[:limit]) + (f" and {more} more" if more > 0 else "")


def _upstream_changes(repo: git.Repo, tracking: str) -> list[str]:
    """The paths ``tracking`` changed since it and HEAD parted (renames as both names)."""
    base = _git(repo, "merge-base", "HEAD", tracking, timeout=60)
    out = _git(repo, "diff", "--name-only", "--no-renames", base, tracking, timeout=60)
    return sorted({line for line in out.splitlines() if line})


def _fetch_and_rebase(
    repo: git.Repo, remote: str, target: str, rebase_over: Callable[[str], bool] | None = None
) -> None:
    tracking = _fetch(repo, remote, target)
    if rebase_over is not None:
        foreign = [p for p in _upstream_changes(repo, tracking) if not rebase_over(p)]
        if foreign:
            raise UpstreamChangedError(
                f"not pushed: {remote}/{target} changed {_shown(foreign)} since tonight's "
                "commits were made, so they were made against the old tree",
                where=f"{remote}/{target}",
                hint="nothing to do: the next night starts from the new branch and locks "
                "and builds against it",
                paths=tuple(foreign),
            )
    if _dirty_paths(repo):
        raise GitError(
            "cannot rebase: the working tree has uncommitted changes",
            where=str(repo.working_tree_dir),
            hint="commit or stash them, then push again",
        )
    try:
        repo.git.rebase("-q", tracking)
    except git.GitCommandError as exc:
        raise GitError(
            f"rebasing onto {remote}/{target} failed: {_stderr(exc)}",
            where=f"{remote}/{target}",
            hint="someone changed the same files upstream; re-run the bot on the new upstream",
        ) from exc


def unpublished(repo_path: Path | str, remote: str, branch: str) -> int | None:
    """How many commits HEAD has that ``remote``/``branch`` lacks (None: no such branch).

    Fetches the branch first.  A night interrupted after committing (or during its push)
    left such commits; the next night publishes them even when no set changed.
    """
    where = f"{remote}/{branch}"
    with _open(repo_path) as repo:
        tracking = f"refs/remotes/{remote}/{branch}"
        try:
            listed = _network(repo, "ls_remote", remote, f"refs/heads/{branch}")
            if not listed.strip():
                return None
            _network(repo, "fetch", "-q", remote, f"+refs/heads/{branch}:{tracking}")
            return int(_git(repo, "rev-list", "--count", f"{tracking}..HEAD", timeout=60))
        except git.GitCommandError as exc:
            raise GitError(
                f"cannot read {where}: {_stderr(exc)}",
                where=where,
                hint="check the network and that the SSH key or token may read the repository",
            ) from exc


def _commit_paths(repo: git.Repo, sha: str) -> list[str] | None:
    """The paths one commit changed (renames as both names); None for a merge commit."""
    parents = _git(repo, "rev-list", "--parents", "-n", "1", sha, timeout=60).split()[1:]
    if len(parents) > 1:
        return None
    out = _git(repo, "diff-tree", "--root", "--no-commit-id", "--name-only", "--no-renames",
               "-r", sha, timeout=60)  # fmt: skip
    return [line for line in out.splitlines() if line]


def sync(
    repo_path: Path | str,
    remote: str,
    branch: str,
    *,
    own: Callable[[str], bool],
    published: str | None = None,
) -> str | None:
    """Bring HEAD up to ``remote``/``branch`` before a night; a line for the report, or None.

    Nothing happens when the remote is not configured, lacks the branch or has nothing HEAD
    lacks.  HEAD behind is fast-forwarded.  HEAD diverged is accepted only when every local
    commit is the bot's own: each path it changed passes ``own`` (the locks an interrupted
    or refused night left unpublished), or it is an ancestor of the tip of a remote branch
    matching ``published`` (``nightly/*``: the bot's pull requests, with its overrides
    edits) that this clone pushed; any other local commit is one :class:`GitError`, and
    HEAD stays where it was.  The bot's commits are rebased onto the remote when it changed
    only paths passing ``own``; when it changed anything else they were made against a
    tree that is gone, and are dropped (the night makes them again; published ones stay on
    their pull-request branches).
    """
    where = f"{remote}/{branch}"
    with _open(repo_path) as repo:
        try:
            if remote not in _git(repo, "remote", timeout=60).split():
                return None
            if not _network(repo, "ls_remote", remote, f"refs/heads/{branch}").strip():
                return None
            listed = (
                ""
                if published is None
                else _network(repo, "ls_remote", remote, f"refs/heads/{published}")
            )
        except git.GitCommandError as exc:
            raise GitError(
                f"cannot read {where}: {_stderr(exc)}",
                where=where,
                hint="check the network and that the SSH key or token may read the repository",
            ) from exc
        tracking = _fetch(repo, remote, branch)
        behind = _git(repo, "rev-list", f"HEAD..{tracking}", timeout=60).split()
        if not behind:
            return None
        ahead = _git(repo, "rev-list", "--reverse", f"{tracking}..HEAD", timeout=60).split()
        start = repo.head.commit.hexsha
        upstream = _git(repo, "rev-parse", tracking, timeout=60)
        if not ahead:
            try:
                _git(repo, "merge", "-q", "--ff-only", tracking, timeout=COMMIT_TIMEOUT)
            except git.GitCommandError as exc:
                _restore(repo, start)
                raise GitError(
                    f"cannot fast-forward to {where}: {_stderr(exc)}",
                    where=str(repo_path),
                    hint="a hand-edited lock the remote also changed; commit or drop the edit "
                    "(`git checkout -- <lock>`), then run the nightly again",
                ) from exc
            return f"updated to {where} ({len(behind)} new commit(s), now {upstream[:12]})"
        shas = [line.split("\t", 1)[0] for line in listed.splitlines() if line.strip()]
        tips = [t for t in shas if _git_ok(repo, "cat-file", "-e", f"{t}^{{commit}}")]
        foreign = [c for c in ahead if not _own_commit(repo, c, own, tips)]
        if foreign:
            raise GitError(
                f"the checkout has diverged from {where}: {len(foreign)} local commit(s) the "
                f"remote lacks are not the bot's unpublished lock commits "
                f"({_shown([c[:12] for c in foreign])})",
                where=str(repo_path),
                hint=f"see `git log {where}..HEAD`; push them, or drop them with "
                f"`git reset --keep {where}`, then run the nightly again",
            )
        moved = [p for p in _upstream_changes(repo, tracking) if not own(p)]
        if moved:
            # made against a tree that is gone (another set.yaml, overrides, nix): pushed
            # as they are they would land on main unbuilt; tonight locks again instead
            try:
                _git(repo, "reset", "-q", "--keep", tracking, timeout=COMMIT_TIMEOUT)
            except git.GitCommandError as exc:
                raise GitError(
                    f"cannot move to {where}: {_stderr(exc)}",
                    where=str(repo_path),
                    hint="commit or drop the hand-edited locks, then run the nightly again",
                ) from exc
            return (
                f"updated to {where} ({len(behind)} new commit(s), now {upstream[:12]}); it "
                f"changed {_shown(moved, 5)}, so the bot's {len(ahead)} unpublished commit(s) "
                "made against the old tree were dropped: tonight locks and builds again"
            )
        if _dirty_paths(repo):
            raise GitError(
                f"cannot rebase the bot's {len(ahead)} unpublished commit(s) onto {where}: "
                "the working tree has uncommitted changes",
                where=str(repo_path),
                hint="commit or drop the hand-edited locks, then run the nightly again",
            )
        try:
            _git(repo, "rebase", "-q", tracking, timeout=COMMIT_TIMEOUT)
        except git.GitCommandError as exc:
            _restore(repo, start)
            raise GitError(
                f"rebasing the bot's {len(ahead)} unpublished commit(s) onto {where} failed: "
                f"{_stderr(exc)}",
                where=str(repo_path),
                hint=f"the remote changed the same locks; drop the bot's commits with "
                f"`git reset --keep {where}` (the night locks again), then run it again",
            ) from exc
        return (
            f"updated to {where} ({len(behind)} new commit(s), now {upstream[:12]}); "
            f"{len(ahead)} unpublished bot commit(s) rebased onto it"
        )


def _git_ok(repo: git.Repo, *args: str) -> bool:
    try:
        _git(repo, *args, timeout=60)
    except git.GitCommandError:
        return False
    return True


def _own_commit(
    repo: git.Repo, sha: str, own: Callable[[str], bool], published: Sequence[str]
) -> bool:
    """Whether a local commit is the bot's (see :func:`sync`)."""
    paths = _commit_paths(repo, sha)
    if paths and all(own(p) for p in paths):
        return True
    return any(_git_ok(repo, "merge-base", "--is-ancestor", sha, tip) for tip in published)


def remote_heads(repo_path: Path | str, remote: str, pattern: str) -> dict[str, str]:
    """Branch name -> sha of the ``remote``'s branches matching ``pattern`` (``nightly/*``)."""
    with _open(repo_path) as repo:
        try:
            listed = _network(repo, "ls_remote", remote, f"refs/heads/{pattern}")
        except git.GitCommandError as exc:
            raise GitError(
                f"cannot list {remote}'s branches: {_stderr(exc)}",
                where=remote,
                hint="check the network and that the SSH key or token may read the repository",
            ) from exc
    heads = {}
    for line in listed.splitlines():
        sha, _, ref = line.partition("\t")
        heads[ref.removeprefix("refs/heads/")] = sha
    return heads


def night_branch(day: dt.date, prefix: str = "nightly") -> str:
    """The pull-request branch of a night, e.g. ``nightly/2026-11-21``."""
    return f"{prefix}/{day.isoformat()}"


def push_pull_request_branch(
    repo_path: Path | str, remote: str, branch: str, *, ref: str = "HEAD"
) -> str:
    """Publish ``ref`` (the night's commits) as ``remote``/``branch``; return the pushed sha.

    Creates the branch, or overwrites it when the same night runs again, but only if the
    remote branch is still what this function read from it just before (``--force-with-lease``
    with an explicit expected value); a concurrent update is reported, never clobbered.
    """
    where = f"{remote}/{branch}"
    with _open(repo_path) as repo:
        try:
            sha = str(repo.git.rev_parse("--verify", f"{ref}^{{commit}}"))
            listed = _network(repo, "ls_remote", remote, f"refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise GitError(
                f"cannot read {where}: {_stderr(exc)}",
                where=where,
                hint="check the remote URL and that the SSH key or token may read it",
            ) from exc
        expected = listed.split()[0] if listed.strip() else ""
        if expected == sha:
            return sha
        ok, _ = _push_once(
            repo,
            remote,
            f"{sha}:refs/heads/{branch}",
            f"--force-with-lease=refs/heads/{branch}:{expected}",
        )
        if not ok:
            raise GitError(
                f"push to {where} refused: the remote branch changed since it was read",
                where=where,
                hint="another run updated the branch at the same time; run the bot again",
            )
        return sha


def delete_remote_branch(repo_path: Path | str, remote: str, branch: str) -> None:
    """Delete ``remote``/``branch`` (a superseded pull request's); raises :class:`GitError`."""
    with _open(repo_path) as repo:
        _push_once(repo, remote, f":refs/heads/{branch}")


def show_head(repo_path: Path | str, path: Path | str) -> str | None:
    """The content of ``path`` at HEAD (None when HEAD does not have it)."""
    with _open(repo_path) as repo:
        rel = _relative(repo, [path])[0]
        try:
            return str(repo.git.show(f"HEAD:{rel}", strip_newline_in_stdout=False))
        except git.GitCommandError:
            return None


def restore(repo_path: Path | str, path: Path | str) -> None:
    """Put ``path`` back as it is at HEAD (delete it when HEAD does not have it)."""
    with _open(repo_path) as repo:
        rel = _relative(repo, [path])[0]
        try:
            repo.git.checkout("HEAD", "--", rel)
        except git.GitCommandError:
            Path(repo.working_tree_dir or ".", rel).unlink(missing_ok=True)


BOT_IDENTITY = ("nixpkgs-python bot", "bot@nixpkgs-python.invalid")


def ensure_identity(repo_path: Path | str) -> None:
    """Give commits an author when neither the environment nor git config names one.

    A fresh machine has no ``user.name``; the embedded-default nightly must still commit.
    Only unset variables are filled in, so a configured identity always wins.
    """
    _plain(repo_path)
    for role in ("AUTHOR", "COMMITTER"):
        for key, default in zip(("NAME", "EMAIL"), BOT_IDENTITY, strict=True):
            env = f"GIT_{role}_{key}"
            if os.environ.get(env):
                continue
            # ask git itself: it honours GIT_CONFIG_GLOBAL and friends (exit 1: not set)
            proc = run(
                ["git", "config", "--get", f"user.{key.lower()}"],
                cwd=Path(repo_path),
                env=_ENV,
                check=False,
                timeout=60,
            )
            if proc.returncode == 0 and proc.stdout.strip():
                continue
            os.environ[env] = default


def head_sha(repo_path: Path | str) -> str:
    """The commit HEAD points at (for commit statuses)."""
    with _open(repo_path) as repo:
        return repo.head.commit.hexsha


def remote_url(repo_path: Path | str, remote: str = "origin") -> str:
    """The remote's URL with any credentials masked, for messages."""
    with _open(repo_path) as repo:
        return _mask(str(repo.git.remote("get-url", remote)))


__all__ = [
    "PushResult",
    "commit_set",
    "delete_remote_branch",
    "dirty_paths",
    "ensure_clean",
    "head_sha",
    "night_branch",
    "push",
    "push_pull_request_branch",
    "remote_heads",
    "remote_url",
    "sync",
    "unpublished",
    "unstage",
]
