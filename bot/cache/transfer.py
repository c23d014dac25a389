"""Push store paths to a cache: sign what is missing there, copy it, report what was sent."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.cache.errors import CacheCommandError, CacheNixError, command_failed
from bot.cache.keys import signing_key_file
from bot.cache.narinfo import NARINFO_SUFFIX, Narinfo, read_narinfo
from bot.cache.narinfo import layers as narinfo_layers
from bot.cache.query import (
    _has_paths,
    fetch_files,
    hash_part,
    local_closure,
    store_paths,
)
from bot.cache.stores import CacheStore, parse_store, rsync_shell, ssh_options
from bot.core import nix
from bot.core.errors import CacheError, CommandError
from bot.core.proc import run

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a push may take overall, unless told otherwise (``--push-timeout``)
DEFAULT_PUSH_TIMEOUT = 600.0

#: first retry delay in seconds; doubles on each further retry
RETRY_BACKOFF = 2.0

#: failures that another attempt cannot fix
PERMANENT = (
    "lacks a valid signature",
    "Permission denied",
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "Could not resolve hostname",
    "is not valid",
)

_STORE_PATH = re.compile(r"/nix/store/[0-9a-z]{32}-[^'\"\s]+")


@dataclass(frozen=True)
class SyncPhase:
    """One rsync run of a remote file cache sync and the files it transferred, in order."""

    name: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` did."""

    store: str
    requested: tuple[str, ...]
    closure: tuple[str, ...]
    copied: tuple[str, ...]
    duration: float
    sync: tuple[SyncPhase, ...] = field(default=())

    @property
    def copied_count(self) -> int:
        """How many store paths were sent."""
        return len(self.copied)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``)."""
        data = asdict(self)
        data["copied_count"] = self.copied_count
        return data


def push(
    paths: Sequence[str],
    *,
    to: str,
    signing_key: Path | None = None,
    ssh_config: Path | None = None,
    timeout: float = DEFAULT_PUSH_TIMEOUT,
    retries: int = 3,
) -> PushResult:
    """Sign and copy the closure of ``paths`` to the cache ``to``; only missing paths are sent.

    ``to`` is ``ssh-ng://HOST``, ``ssh://HOST``, ``file:///DIR`` or ``rsync+ssh://HOST/DIR``
    (see :mod:`bot.cache.stores`).  ``signing_key`` is a secret key file; ``None`` reads
    ``$NIXPKGS_PYTHON_SIGNING_KEY_FILE`` or the key text in ``$NIXPKGS_PYTHON_SIGNING_KEY``.
    Network steps are retried ``retries`` times with exponential backoff within ``timeout``
    seconds overall.  A failure raises :class:`CacheError` naming the store and the path.
    """
    start = time.monotonic()
    deadline = start + timeout
    cache = parse_store(to)
    if cache.kind == "http":
        raise CacheError(
            "an HTTP cache is read-only",
            where=to,
            hint="push to the directory it serves (file:///DIR or rsync+ssh://HOST/DIR)",
        )
    requested = store_paths(paths)
    with signing_key_file(signing_key) as key, ssh_options(ssh_config) as env:
        closure = local_closure(requested)
        attempt = _Attempts(cache, closure, deadline, retries)
        staging = Path(tempfile.mkdtemp(prefix="nixpkgs-python-staging-"))
        try:
            if cache.kind == "rsync":
                present = attempt("query", lambda t: _seed_staging(cache, closure, staging, env, t))
            else:
                present = attempt("query", lambda t: _has_paths(cache, closure, env=env, timeout=t))
            missing = [p for p in closure if p not in present]
            sync: tuple[SyncPhase, ...] = ()
            if missing:
                log.info("pushing %d of %d paths to %s", len(missing), len(closure), to)
                nix.store_sign(
                    missing, key_file=key, env=env, error=CacheNixError, timeout=_left(deadline)
                )
                if cache.kind == "rsync":
                    local = f"file://{staging}" + (f"?{cache.query}" if cache.query else "")
                    attempt("stage", lambda t: _copy(missing, local, env, t))
                    for name in present:
                        (staging / (hash_part(name) + NARINFO_SUFFIX)).unlink(missing_ok=True)
                    sync = attempt("sync", lambda t: sync_file_cache(staging, cache, env, t))
                else:
                    attempt("copy", lambda t: _copy(missing, cache.nix_uri, env, t))
            else:
                log.info("%s already has all %d paths", to, len(closure))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return PushResult(
        store=to,
        requested=tuple(requested),
        closure=tuple(closure),
        copied=tuple(missing),
        duration=time.monotonic() - start,
        sync=sync,
    )


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 1.0)


def _copy(paths: Sequence[str], to: str, env: Mapping[str, str], timeout: float) -> None:
    nix.copy_paths(paths, to=to, env=env, timeout=timeout, error=CacheNixError)


def _seed_staging(
    cache: CacheStore, closure: Sequence[str], staging: Path, env: Mapping[str, str], t: float
) -> set[str]:
    """Fetch the remote narinfos of ``closure`` into ``staging``; return the paths present.

    With them in place, ``nix copy --to file://STAGING`` skips what the remote has and still
    finds every reference valid, so the staging cache holds exactly the missing paths.
    """
    names = {hash_part(p) + NARINFO_SUFFIX: p for p in closure}
    found = fetch_files(cache, [*names, "nix-cache-info"], staging, env=env, timeout=t)
    return {names[n] for n in found if n in names}


def sync_file_cache(
    staging: Path, cache: CacheStore, env: Mapping[str, str], timeout: float
) -> tuple[SyncPhase, ...]:
    """rsync a local binary cache directory to the rsync+ssh ``cache``, references first.

    ``nar/`` first; then the narinfos in layers (:func:`~bot.cache.narinfo.layers`), one
    rsync run each, every path's after those of its references (and ``log/``,
    ``realisations/`` with the last); then ``nix-cache-info``.  rsync writes each file under
    a temporary name and renames it, so wherever the sync is cut off (a signal, a dropped
    connection, the deadline) every narinfo the cache shows has its NAR and its references'
    narinfos: a client never meets a half-published closure, and the next push sends the
    rest.  Existing remote files are never overwritten (``--ignore-existing``), so
    concurrent pushes cannot clobber each other.
    """
    deadline = time.monotonic() + timeout
    infos: dict[str, Narinfo] = {}
    others: list[str] = []
    for file in sorted(staging.rglob("*")):
        name = file.relative_to(staging).as_posix()
        if file.is_dir() and not file.is_symlink():
            continue
        if name == "nix-cache-info" or name.startswith("nar/"):
            continue
        info = read_narinfo(file) if "/" not in name and name.endswith(NARINFO_SUFFIX) else None
        if info is not None and hash_part(info.store_path) + NARINFO_SUFFIX == name:
            infos[info.store_path] = info
        else:  # log/, realisations/; a narinfo nix wrote and this cannot read (none known)
            others.append(name)
    narinfos = [
        [hash_part(p) + NARINFO_SUFFIX for p in layer] for layer in narinfo_layers(infos)
    ] or [[]]
    narinfos[-1] += others
    runs: list[tuple[str, list[str], list[str]]] = [
        ("nar", ["--include=/nar/***", "--exclude=*"], []),
        *((f"narinfo-{i}", [], files) for i, files in enumerate(narinfos, 1) if files),
        ("nix-cache-info", ["--include=/nix-cache-info", "--exclude=*"], []),
    ]
    done: list[SyncPhase] = []
    for name, filters, files in runs:
        if time.monotonic() >= deadline:
            # the next layer's narinfos would otherwise go up in a run of its own a second
            # past the deadline; what is up is consistent, the next push sends the rest
            raise CacheError(f"timed out before the {name} phase of the rsync upload")
        done.append(_rsync_up(staging, cache, env, name, filters, files, _left(deadline)))
    return tuple(done)


def _rsync_up(
    staging: Path,
    cache: CacheStore,
    env: Mapping[str, str],
    name: str,
    filters: Sequence[str],
    files: Sequence[str],
    timeout: float,
) -> SyncPhase:
    """One rsync run: the files matching ``filters``, or exactly ``files`` (relative)."""
    with tempfile.NamedTemporaryFile("w", prefix="files-from-", suffix=".txt") as listing:
        if files:
            listing.write("\n".join(files) + "\n")
            listing.flush()
        argv = [
            "rsync", "--recursive", "--links", "--times", "--ignore-existing",
            "--chmod=Du=rwx,Dgo=rx,Fu=rw,Fgo=r", "--out-format=%n", *filters,
            *(["--files-from", listing.name] if files else []),
            "-e", rsync_shell(dict(env)), f"{staging}/", cache.rsync_target,
        ]  # fmt: skip
        what = f"rsync ({name} phase)"
        proc = run(argv, timeout=timeout, check=False, error=CacheCommandError, what=what)
    if proc.returncode != 0:
        raise command_failed(cache.uri, proc, what=what)
    return SyncPhase(name, tuple(f for f in proc.stdout.splitlines() if f and not f.endswith("/")))


class _Attempts:
    """Run a network step with retries, backoff and the push's overall deadline."""

    def __init__(self, cache: CacheStore, paths: Sequence[str], deadline: float, retries: int):
        self.cache, self.paths, self.deadline, self.retries = cache, paths, deadline, retries

    def __call__(self, step: str, action: Callable[[float], T]) -> T:
        attempt = 0
        while True:
            try:
                return action(self._remaining(step))
            except CacheError as exc:
                delay = RETRY_BACKOFF * 2**attempt
                text = str(exc)
                permanent = any(p in text for p in PERMANENT)
                if permanent or attempt >= self.retries or time.monotonic() + delay > self.deadline:
                    raise self._final(step, exc, attempt + 1) from exc
                log.warning(
                    "%s: %s step failed (attempt %d of %d), retrying in %.0fs: %s",
                    self.cache.uri,
                    step,
                    attempt + 1,
                    self.retries + 1,
                    delay,
                    exc.message,
                )
                time.sleep(delay)
                attempt += 1

    def _remaining(self, step: str) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise CacheError(f"timed out before the {step} step")
        return remaining

    def _final(self, step: str, exc: CacheError, attempts: int) -> CacheError:
        tail = exc.stderr_tail if isinstance(exc, CommandError) else ""
        named = _STORE_PATH.findall(tail)
        path = named[-1] if named else (self.paths[0] if self.paths else "?")
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return CacheCommandError(
            f"pushing to {self.cache.uri} failed at {path} ({step} step{tries}): {exc.message}",
            where=self.cache.uri,
            hint=exc.hint or _hint(self.cache, tail),
            command=exc.command if isinstance(exc, CommandError) else "",
            returncode=exc.returncode if isinstance(exc, CommandError) else None,
            stderr_tail=tail,
        )


def _hint(cache: CacheStore, tail: str) -> str | None:
    if "lacks a valid signature" in tail:
        return (
            "the receiving nix-daemon does not trust the signing key: add its public key to "
            "trusted-public-keys in the remote nix.conf (require-sigs = true)"
        )
    if cache.ssh:
        return "check the host with `ssh -F SSH_CONFIG HOST true` and pass --ssh-config"
    return None
