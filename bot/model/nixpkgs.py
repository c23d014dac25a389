"""The nixpkgs the sets are built against: the pin, its release's facts, and moving the pin.

``nix/nixpkgs.json`` pins one nixpkgs revision (what CI, the nightly and the binary cache
build against, and what ``import ./. { }`` uses).  Each supported nixpkgs release has one row
in :data:`RELEASES`: the systems it supports and the wheel baselines that follow from it (the
darwin deployment target, the glibc manylinux wheels may need).  Locks take their systems and
baselines from the pin's row, so moving the pin to another release changes them in one place.

``nix/nixpkgs.json``::

    {
      "release": "26.05",               # a row of RELEASES
      "branch": "nixos-26.05",          # what `nixpkgs update` follows
      "rev": "<40 hex digits>",
      "url": "https://github.com/NixOS/nixpkgs/archive/<rev>.tar.gz",
      "sha256": "sha256-..."            # SRI hash of the unpacked tarball (fetchTarball's)
    }
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.errors import BotError, CommandError, NixError
from bot.core.files import read_cache, write_atomic, write_cache
from bot.core.nix import run_nix
from bot.core.proc import run

log = logging.getLogger(__name__)

PIN_FILE = Path("nix") / "nixpkgs.json"
DEFAULT_REMOTE = "https://github.com/NixOS/nixpkgs"
#: GitHub's archive of a commit; `{remote}` and `{rev}` are filled in
DEFAULT_ARCHIVE = "{remote}/archive/{rev}.tar.gz"

_ALL_SYSTEMS = ("aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux")


@dataclass(frozen=True, order=True)
class Release:
    """What one nixpkgs release supports, as far as a lock needs to know."""

    name: str
    #: the Nix systems the release builds (and the binary cache serves) for
    systems: tuple[str, ...]
    #: the darwin deployment target (``darwinMinVersion``): the oldest macOS a wheel may need
    macos_min: tuple[int, int]
    #: the release's glibc: the newest glibc a manylinux wheel may need
    glibc: tuple[int, int]


#: One row per supported nixpkgs release.  Sources: nixpkgs' release notes and its glibc
#: and darwin SDK updates (glibc 2.40 in 25.11; 2.42 from 26.05; darwinMinVersion 14.0 since
#: 25.11; 26.11 drops x86_64-darwin, its glibc is taken to be 26.05's until checked).
RELEASES: Mapping[str, Release] = {
    r.name: r
    for r in (
        Release("25.11", _ALL_SYSTEMS, (14, 0), (2, 40)),
        Release("26.05", _ALL_SYSTEMS, (14, 0), (2, 42)),
        Release("26.11", tuple(s for s in _ALL_SYSTEMS if s != "x86_64-darwin"), (14, 0), (2, 42)),
    )
}
#: the release of this repository's pin; used where no pin file is at hand (``generate``
#: reads the pin of the Nix library it pins instead)
DEFAULT_RELEASE = "26.05"

_REV = re.compile(r"[0-9a-f]{40}")
_SRI = re.compile(r"sha256-[A-Za-z0-9+/]{43}=")
_BASE32 = re.compile(r"[0-9a-df-np-sv-z]{52}")
_BRANCH = re.compile(r"(?:nixos|nixpkgs)-(\d\d\.\d\d)(?:-darwin)?")


class PinError(BotError):
    """``nix/nixpkgs.json`` is invalid, or its tarball does not match its hash."""


class PinUnavailableError(BotError):
    """The pinned nixpkgs cannot be fetched on this machine (no network, no copy in the store)."""


@dataclass(frozen=True)
class Pin:
    """One pinned nixpkgs revision (``nix/nixpkgs.json``)."""

    release: str
    branch: str
    rev: str
    url: str
    sha256: str
    file: Path

    @property
    def facts(self) -> Release:
        return RELEASES[self.release]

    @property
    def store_name(self) -> str:
        """The store path name ``nix/nixpkgs.nix`` fetches the tarball under."""
        return f"nixpkgs-{self.rev}"

    def to_json(self) -> dict[str, str]:
        return {
            "release": self.release,
            "branch": self.branch,
            "rev": self.rev,
            "url": self.url,
            "sha256": self.sha256,
        }


def release_for(branch: str) -> str:
    """``nixos-26.05`` -> ``26.05`` (a release of :data:`RELEASES`), else :class:`PinError`."""
    match = _BRANCH.fullmatch(branch)
    if match is None or match.group(1) not in RELEASES:
        raise PinError(
            f"branch {branch!r} is not a supported nixpkgs release branch",
            hint=f"use nixos-<release> for a release of {', '.join(RELEASES)} "
            "(a new release needs its row in bot/model/nixpkgs.py RELEASES first)",
        )
    return match.group(1)


def parse_pin(data: Any, file: Path) -> Pin:
    """Validate the contents of a pin file; one :class:`PinError` naming the file and field."""
    where = str(file)
    if not isinstance(data, dict):
        raise PinError("not a JSON object", where=where)

    def field(name: str, pattern: re.Pattern[str] | None = None) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise PinError(f"field {name!r} is missing or not a string", where=where)
        if pattern is not None and not pattern.fullmatch(value):
            raise PinError(f"field {name!r} is malformed: {value!r}", where=where)
        return value

    release = field("release")
    if release not in RELEASES:
        raise PinError(
            f"release {release!r} is not supported",
            where=where,
            hint=f"supported: {', '.join(RELEASES)}",
        )
    branch = field("branch")
    rev = field("rev", _REV)
    url = field("url")
    if not url.startswith(("https://", "http://", "file://")):
        raise PinError(f"field 'url' is not an http(s) or file URL: {url!r}", where=where)
    sha256 = field("sha256")
    if not (_SRI.fullmatch(sha256) or _BASE32.fullmatch(sha256)):
        raise PinError(
            f"field 'sha256' is not a sha256 hash (SRI or Nix base32): {sha256!r}", where=where
        )
    return Pin(release, branch, rev, url, sha256, file)


def read_pin(repo: Path) -> Pin:
    """The pin of the repository at ``repo``."""
    file = repo / PIN_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PinError("no nixpkgs pin", where=str(file), hint="restore it from git") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PinError(f"unreadable: {exc}", where=str(file)) from None
    return parse_pin(data, file)


def release_of(repo: Path | None) -> Release:
    """The release facts for locks made in ``repo`` (its pin), or the default release."""
    if repo is not None and (repo / PIN_FILE).exists():
        return read_pin(repo).facts
    return RELEASES[DEFAULT_RELEASE]


def _fixed_path(pin: Pin) -> str:
    proc = run_nix(
        "nix-store",
        ["--print-fixed-path", "--recursive", "sha256", _base32(pin.sha256), pin.store_name],
        what="nix-store --print-fixed-path",
    )
    return proc.stdout.strip()


def _base32(sha256: str) -> str:
    if _BASE32.fullmatch(sha256):
        return sha256
    proc = run_nix(
        "nix", ["hash", "to-base32", "--type", "sha256", sha256], what="nix hash to-base32"
    )
    return proc.stdout.strip()


def _sri(base32: str) -> str:
    proc = run_nix("nix", ["hash", "to-sri", "--type", "sha256", base32], what="nix hash to-sri")
    return proc.stdout.strip()


def _prefetch(url: str, name: str, expected: str | None, *, timeout: float) -> str:
    """``nix-prefetch-url --unpack``: the base32 hash of the unpacked tarball at ``url``."""
    args = ["--unpack", "--type", "sha256", "--name", name, url]
    if expected is not None:
        args.append(_base32(expected))
    proc = run_nix(
        "nix-prefetch-url",
        args,
        substituters=None,
        options={"connect-timeout": "15"},
        timeout=timeout,
        check=False,
        what="nix-prefetch-url",
    )
    if proc.returncode != 0:
        text = proc.stderr
        if "hash mismatch" in text:
            raise PinError(
                f"the tarball at {url} does not match the pinned sha256 {expected}",
                where=str(PIN_FILE),
                hint="re-check the pin with `nixpkgs-python nixpkgs update` (or restore it)",
            )
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
        # nix says "error: unable to download 'URL': REASON": the URL once is enough
        reason = last[0].removeprefix("error: ").replace(f"unable to download '{url}': ", "")
        raise PinUnavailableError(
            f"cannot fetch {url}: {reason}",
            where=str(PIN_FILE),
            hint="build with --standalone (this machine's interpreters) or --nixpkgs PATH",
        )
    return proc.stdout.strip().splitlines()[-1]


#: pins this process found (or fetched) in the store, and their store paths
_ENSURED: dict[Pin, str] = {}


def ensure_pin(repo: Path, *, timeout: float = 900) -> str:
    """Make the pinned nixpkgs available in the store (fetched and checked against its hash
    once; later calls only look it up); its store path.

    :class:`PinError` when the pin is invalid or its tarball differs from its hash,
    :class:`PinUnavailableError` when it cannot be fetched here.
    """
    pin = read_pin(repo)
    if pin in _ENSURED:  # the CLI, the night and every set's build all ask: look once
        return _ENSURED[pin]
    path = _fixed_path(pin)
    valid = run_nix(
        "nix-store", ["--check-validity", path], check=False, what="nix-store --check-validity"
    )
    if valid.returncode != 0:
        log.info("fetching the pinned nixpkgs %s", pin.rev)
        _prefetch(pin.url, pin.store_name, pin.sha256, timeout=timeout)
    _ENSURED[pin] = path
    return path


# --- a pin this machine could not fetch -----------------------------------------------------
#
# A machine without a route to the pin's host (GitHub) fails to fetch it every run, after the
# connect timeout (~5 s here), before building with its standalone interpreters instead.  The
# nightly remembers the failure of this very pin and does not try again until a while later:
# an hour after the first failure, doubling with each one after, at most a week.  A changed
# pin is tried at once; removing the file tries at once too.

#: the file of the remembered failure, in the user's (or the night's) cache directory
PIN_FAILURE_FILE = "pin-unavailable.json"
PIN_RETRY_FIRST = 3600.0
PIN_RETRY_MAX = 7 * 86400.0


@dataclass(frozen=True)
class PinFailure:
    """The remembered failure to fetch one pin."""

    reason: str  #: the error's message
    last: float  #: when it last failed (epoch seconds)
    failures: int  #: how many times in a row
    file: Path  #: where it is remembered

    @property
    def retry_at(self) -> float:
        """When the pin is tried again."""
        return self.last + min(PIN_RETRY_FIRST * 2.0 ** (self.failures - 1), PIN_RETRY_MAX)


def _failure_key(pin: Pin) -> dict[str, str]:
    return {"rev": pin.rev, "url": pin.url, "sha256": pin.sha256}


def remembered_failure(file: Path, repo: Path, now: float) -> PinFailure | None:
    """The failure to fetch the repository's pin remembered in ``file``, while it stands (the
    same pin, the retry time not reached); None: try fetching it."""
    try:
        data = read_cache(file)
        pin = read_pin(repo)
        if data["pin"] != _failure_key(pin):
            return None
        failure = PinFailure(str(data["reason"]), float(data["last"]), int(data["failures"]), file)
    except (OSError, ValueError, KeyError, TypeError, BotError):
        return None
    if failure.failures < 1 or not failure.last <= now < failure.retry_at:
        return None
    return failure


def remember_failure(file: Path, repo: Path, reason: str, now: float) -> PinFailure:
    """Record that fetching the repository's pin failed now (one more in a row when the same
    pin failed before)."""
    pin = read_pin(repo)
    failures = 1
    try:
        data = read_cache(file)
        if data["pin"] == _failure_key(pin):
            failures = int(data["failures"]) + 1
    except (KeyError, TypeError, ValueError):
        pass
    record = {"pin": _failure_key(pin), "reason": reason, "last": now, "failures": failures}
    write_cache(file, record)  # not written: the next run tries again
    return PinFailure(reason, now, failures, file)


def forget_failure(file: Path) -> None:
    """The pin was fetched: no failure stands."""
    try:
        file.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("cannot remove %s: %s", file, exc)


@dataclass(frozen=True)
class PinUpdate:
    """What ``nixpkgs update`` did."""

    old: Pin | None
    new: Pin

    @property
    def changed(self) -> bool:
        return self.old is None or self.old.to_json() != self.new.to_json()


def _ls_remote(remote: str, branch: str) -> str:
    try:
        proc = run(
            ["git", "ls-remote", "--exit-code", remote, f"refs/heads/{branch}"],
            timeout=120,
            what="git ls-remote",
        )
    except CommandError as exc:
        raise PinError(
            f"cannot read branch {branch!r} of {remote}",
            where=remote,
            hint=f"check the branch name and the network ({exc.message})",
        ) from None
    fields = proc.stdout.split()
    if not fields or not _REV.fullmatch(fields[0]):
        raise PinError(f"git ls-remote gave no commit for {branch!r}", where=remote)
    return fields[0]


def update_pin(
    repo: Path,
    *,
    branch: str | None = None,
    remote: str = DEFAULT_REMOTE,
    archive: str = DEFAULT_ARCHIVE,
    timeout: float = 1800,
) -> PinUpdate:
    """Move ``nix/nixpkgs.json`` to the newest commit of ``branch`` (default: the pin's own
    branch): ``git ls-remote`` for the commit, ``nix-prefetch-url --unpack`` of its archive for
    the hash; written atomically, only when something changed."""

    old: Pin | None
    try:
        old = read_pin(repo)
    except PinError:
        if branch is None:
            raise
        old = None
    branch = branch or (old.branch if old else "")
    release = release_for(branch)
    rev = _ls_remote(remote, branch)
    url = archive.format(remote=remote.removesuffix(".git").rstrip("/"), rev=rev)
    if old is not None and old.rev == rev and old.url == url and old.release == release:
        return PinUpdate(old, old)
    try:
        base32 = _prefetch(url, f"nixpkgs-{rev}", None, timeout=timeout)
    except NixError as exc:
        raise PinError(f"cannot fetch {url}", where=url, hint=exc.message) from None
    new = Pin(release, branch, rev, url, _sri(base32), repo / PIN_FILE)
    write_atomic(repo / PIN_FILE, json.dumps(new.to_json(), indent=2) + "\n")
    return PinUpdate(old, new)
