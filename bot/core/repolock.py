"""One writer at a time, and a journal of what it wrote: a night is a transaction.

:func:`repository_lock` takes an exclusive ``flock`` on ``<git dir>/nixpkgs-python.lock``
for the commands that write the tree (``nightly``, ``lock``, ``generate`` into the
repository).  The kernel releases it when the holder dies, even by SIGKILL, so a killed run
never blocks the next; a second run waits (bounded) and then exits with one clear message.

:class:`Transaction` writes files into the tree and journals each write first
(``<git dir>/nixpkgs-python-journal.json``: the content before, the hash of what was
written).  :meth:`Transaction.undo` puts back only files whose content is still what this
run wrote, and never a file that is committed as written; anything else is left alone and
reported.  The next run's :func:`recover` replays the journal an interrupted run left.

:func:`handle_signals` turns SIGTERM into :class:`Terminated` (a ``KeyboardInterrupt``), so
SIGTERM and Ctrl-C take the same way out through every ``finally``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bot.core import files
from bot.core.errors import BotError
from bot.core.proc import run

log = logging.getLogger(__name__)

LOCK_NAME = "nixpkgs-python.lock"
JOURNAL_NAME = "nixpkgs-python-journal.json"
#: seconds a second writer waits for the first (``$NIXPKGS_PYTHON_LOCK_WAIT``)
DEFAULT_WAIT = 60.0
WAIT_ENV = "NIXPKGS_PYTHON_LOCK_WAIT"
#: exit status when the repository is busy (sysexits' EX_TEMPFAIL: try again later)
BUSY_EXIT = 75
#: seconds recovery waits for a dead run's surviving ``git`` to release ``index.lock``
INDEX_LOCK_GRACE = 10.0


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread so cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGTERM (and SIGHUP) raise :class:`Terminated` in the main thread within the block."""
    sigs = (signal.SIGTERM, signal.SIGHUP)
    before = {sig: signal.signal(sig, _raise_terminated) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def git_dir(repo: Path) -> Path | None:
    """The repository's (worktree's) git directory; None when ``repo`` is not in git."""
    proc = run(["git", "rev-parse", "--absolute-git-dir"], cwd=repo, check=False, timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return Path(proc.stdout.strip())


def _lock_path(repo: Path) -> Path:
    found = git_dir(repo) if repo.is_dir() else None
    if found is not None:
        return found / LOCK_NAME
    # not a git checkout: a per-directory lock outside it, so no stray file lands in it
    digest = hashlib.sha256(os.fsencode(repo.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"nixpkgs-python-{os.getuid()}-{digest}.lock"


def _wait_seconds(wait: float | None) -> float:
    if wait is not None:
        return wait
    try:
        return float(os.environ.get(WAIT_ENV, DEFAULT_WAIT))
    except ValueError:
        return DEFAULT_WAIT


def _holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {data['pid']}: {data['command']}, since {data['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def repository_lock(repo: Path, command: str, *, wait: float | None = None) -> Iterator[Path]:
    """Hold the repository's writer lock for the ``with`` block; yield the lock file's path.

    Waits up to ``wait`` seconds (default ``$NIXPKGS_PYTHON_LOCK_WAIT`` or
    :data:`DEFAULT_WAIT`) for another holder, then raises :class:`BotError` naming it.
    """
    path = _lock_path(repo)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + _wait_seconds(wait)
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            holder = _holder(fd)
            if time.monotonic() >= deadline:
                raise BotError(
                    f"another nixpkgs-python command is writing this repository ({holder})",
                    where=str(repo),
                    hint=f"let it finish and run again, or wait longer with ${WAIT_ENV}=SECONDS",
                    exit_code=BUSY_EXIT,
                )
            if not said:
                log.warning("waiting for %s to finish writing %s", holder, repo)
                said = True
            time.sleep(0.2)
        info = {"pid": os.getpid(), "command": command, "since": time.strftime("%FT%TZ")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def lock_if_in_repository(path: Path, command: str) -> contextlib.AbstractContextManager[object]:
    """:func:`repository_lock` of the nixpkgs-python checkout ``path`` lies in (one with
    ``sets/`` and ``nix/``); nothing to hold when it lies in none."""
    existing = next((p for p in [path, *path.parents] if p.is_dir()), None)
    if existing is None:
        return contextlib.nullcontext()
    proc = run(["git", "rev-parse", "--show-toplevel"], cwd=existing, check=False, timeout=60)
    top = Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
    if top is None or not ((top / "sets").is_dir() and (top / "nix").is_dir()):
        return contextlib.nullcontext()
    return repository_lock(top, command)


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


#: journal values of ``written``: the file was deleted; it was being written (any content)
ABSENT, ANY = "absent", "any"


@dataclass
class _Entry:
    before: str | None  #: the content before this run wrote it (None: absent)
    written: str  #: sha256 of what this run wrote last


class Transaction:
    """The files one run writes into the repository, journalled so they can be undone."""

    def __init__(self, repo: Path, journal: Path | None = None) -> None:
        self.repo = repo.resolve()
        found = journal or git_dir(self.repo)
        self.journal = (
            journal
            if journal is not None
            else (found / JOURNAL_NAME if found else self.repo / ".git" / JOURNAL_NAME)
        )
        self.entries: dict[str, _Entry] = {}
        self.committing: list[str] = []
        self.notes: list[str] = []  #: files left alone, for the report

    def _rel(self, path: Path) -> str:
        return Path(os.path.abspath(path)).relative_to(self.repo).as_posix()

    def _save(self) -> None:
        if not self.entries and not self.committing:
            self.journal.unlink(missing_ok=True)
            return
        data = {
            "pid": os.getpid(),
            "files": {
                k: {"before": e.before, "written": e.written} for k, e in self.entries.items()
            },
            "committing": self.committing,
        }
        files.write_atomic(self.journal, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def write(self, path: Path, text: str) -> None:
        """Write ``text`` to ``path`` atomically, journalled first (write-ahead)."""
        rel = self._rel(path)
        entry = self.entries.get(rel)
        if entry is None:
            entry = self.entries[rel] = _Entry(_read(path), "")
        entry.written = _sha(text) or ""
        self._save()
        files.write_atomic(path, text)

    @contextlib.contextmanager
    def writing(self, paths: Iterable[Path]) -> Iterator[None]:
        """Journal files that code in the block writes (or deletes) itself."""
        paths = list(paths)
        for path in paths:
            self.entries.setdefault(self._rel(path), _Entry(_read(path), ANY))
        self._save()
        yield
        for path in paths:
            self.entries[self._rel(path)].written = _sha(_read(path)) or ABSENT
        self._save()

    def undo(self, paths: Iterable[Path] | None = None) -> list[str]:
        """Put back what this run wrote to ``paths`` (default: everything); return notes about
        the files left alone because they changed since."""
        from bot.core import git

        rels = list(self.entries) if paths is None else [self._rel(p) for p in paths]
        notes: list[str] = []
        for rel in rels:
            entry = self.entries.pop(rel, None)
            if entry is None:
                continue
            path = self.repo / rel
            current = _read(path)
            if (_sha(current) or ABSENT) == entry.written or entry.written == ANY:
                if current != git.show_head(self.repo, path):
                    self._put_back(path, entry.before)
            elif current != entry.before:
                notes.append(f"{rel} changed since this run wrote it; left as it is")
        if paths is None:
            self.committing = []
        self._save()
        self.notes += notes
        for note in notes:
            log.warning("%s", note)
        return notes

    def _put_back(self, path: Path, before: str | None) -> None:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            files.write_atomic(path, before)

    @contextlib.contextmanager
    def commit(self, paths: Iterable[Path]) -> Iterator[None]:
        """Around a ``git commit`` of ``paths``: journalled, so recovery can tidy the index;
        when the block ends without error the paths are no longer this run's to undo."""
        self.committing = [self._rel(p) for p in paths]
        self._save()
        yield
        for rel in self.committing:
            self.entries.pop(rel, None)
        self.committing = []
        self._save()

    def close(self) -> None:
        """Forget the journal (everything was committed or undone)."""
        self.entries.clear()
        self.committing = []
        self._save()


def recover(repo: Path) -> list[str]:
    """Undo what an interrupted run left (its journal), while holding the repository lock.

    Lock files it wrote and did not commit are put back, their index entries reset, and a
    stale ``index.lock`` of a ``git commit`` it was running removed.  Returns notes for the
    report, one per thing done or left alone.
    """
    from bot.core import git

    tx = Transaction(repo)
    try:
        data = json.loads(tx.journal.read_text(encoding="utf-8"))
        files = data["files"]
        committing = list(data.get("committing", []))
        pid = data.get("pid")
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError):
        tx.journal.unlink(missing_ok=True)
        return [f"ignored an unreadable journal {tx.journal}"]
    notes: list[str] = []
    index_lock = tx.journal.parent / "index.lock"
    if committing and index_lock.exists():
        deadline = time.monotonic() + INDEX_LOCK_GRACE
        while index_lock.exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # a surviving `git commit` may still finish
        if index_lock.exists():
            index_lock.unlink(missing_ok=True)
            notes.append(f"removed the index.lock an interrupted commit left (run pid {pid})")
    tx.entries = {
        rel: _Entry(e.get("before"), str(e.get("written"))) for rel, e in dict(files).items()
    }
    paths = [repo / rel for rel in sorted(set(tx.entries) | set(committing))]
    restored = [
        rel
        for rel, e in tx.entries.items()
        if e.written in ((_sha(_read(repo / rel)) or ABSENT), ANY)
        and _read(repo / rel) != git.show_head(repo, repo / rel)
    ]
    left = tx.undo()
    if paths:
        git.unstage(repo, paths)
    if restored:
        notes.append(
            f"restored {', '.join(restored)}: an interrupted run (pid {pid}) wrote "
            "but did not commit them"
        )
    notes += [f"interrupted run (pid {pid}): {n}" for n in left]
    for note in notes:
        log.warning("%s", note)
    return notes


__all__ = [
    "BUSY_EXIT",
    "Terminated",
    "Transaction",
    "git_dir",
    "handle_signals",
    "lock_if_in_repository",
    "recover",
    "repository_lock",
]
