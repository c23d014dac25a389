"""PEP 751 lock files: build from a resolution, write deterministically and atomically, read.

The format (and the ``tool.nixpkgs-python`` tables the Nix library reads) is documented in
README.md, "Lock format".  Locks are validated with :mod:`packaging.pylock` on write and on
read.  There are no TOML datetimes anywhere (Nix's ``builtins.fromTOML`` rejects them): file
upload times are omitted and the snapshot time is a string.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from bot import __version__
from bot.core.errors import LockError, without_credentials
from bot.lock.index.models import DistFile
from bot.model.locks import TOOL, provenance, unusable
from bot.model.targets import SYSTEMS, Target, systems_marker

if TYPE_CHECKING:
    from packaging.pylock import Pylock

    from bot.lock.resolve import Resolution, Resolved


def format_time(when: datetime) -> str:
    """``2026-11-21T20:00:00Z``: UTC, whole seconds."""
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (a date alone means its midnight UTC)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise LockError(
            f"not a timestamp: {text!r}",
            hint="use ISO 8601, e.g. 2026-11-21T00:00:00Z or 2026-11-21",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


@dataclass(frozen=True)
class LockInfo:
    """Provenance recorded in ``[tool.nixpkgs-python]``."""

    set_name: str
    python: str
    exclude_newer: datetime | None
    indexes: Sequence[str]
    inputs_hash: str
    description: str = ""
    maintainers: Sequence[str] = ()
    held: Sequence[Mapping[str, str]] = ()
    #: what wrote the lock when it is not a set's (``"generate"``); the Nix library's errors
    #: then say how to re-make it
    origin: str = ""


def _file_entry(f: DistFile) -> dict[str, Any]:
    # no size: not every index page states it (PEP 503 HTML does not), and a lock must not
    # depend on which page format an index happened to answer with
    # a private index's credentials stay out of the lock (they would be committed): the
    # lock names the file, fetchers bring their own authentication (Nix: netrc-file)
    entry: dict[str, Any] = {"name": f.filename, "url": without_credentials(f.url)}
    entry["hashes"] = {"sha256": f.sha256}
    return entry


def _package(pkg: Resolved, systems: Sequence[str]) -> dict[str, Any]:
    used = {t.system: f for t, f in pkg.artifacts.items()}
    files = {f.filename: f for f in used.values()}
    sdists = [f for f in files.values() if f.kind == "sdist"]
    wheels = sorted((f for f in files.values() if f.kind == "wheel"), key=lambda f: f.filename)
    entry: dict[str, Any] = {"name": pkg.name, "version": str(pkg.version)}
    marker = systems_marker(frozenset(used), systems)
    if marker is not None:
        entry["marker"] = marker
    requires_python = pkg.metadata.requires_python
    if requires_python is not None and str(requires_python):
        entry["requires-python"] = str(requires_python)
    indexes = sorted({f.index for f in files.values()})
    entry["index"] = without_credentials(indexes[0])
    if pkg.dependencies:
        entry["dependencies"] = [{"name": d} for d in sorted(pkg.dependencies)]
    if sdists:
        entry["sdist"] = _file_entry(sdists[0])
    if wheels:
        entry["wheels"] = [_file_entry(w) for w in wheels]
    tool: dict[str, Any] = {
        "artifacts": {s: used[s].filename for s in systems if s in used},
    }
    if sdists and pkg.build_requires:
        tool["build-requires"] = sorted(pkg.build_requires)
    unverified = pkg.metadata.unverified
    if unverified is not None:
        # no hash bound the metadata this resolution used to its file: the Nix build
        # compares it with the metadata of the file it installs (nix/builder.py)
        tool["unverified-metadata"] = {
            "file": unverified.file,
            "sha256": unverified.sha256,
            "requires-dist": sorted(set(unverified.requires_dist)),
        }
    entry["tool"] = {TOOL: tool}
    return entry


def _without_upload_times(resolution: Resolution) -> list[str]:
    """The indexes (without credentials, sorted) of locked files that have no upload time."""
    return sorted(
        {
            without_credentials(f.index)
            for pkg in resolution.packages.values()
            for f in pkg.files
            if f.upload_time is None
        }
    )


def build_lock(resolution: Resolution, info: LockInfo, targets: Sequence[Target]) -> dict[str, Any]:
    """The lock document (a TOML-ready dict) for a resolution."""
    systems = sorted(t.system for t in targets)
    release = targets[0].release
    packages = [_package(resolution.packages[n], systems) for n in sorted(resolution.packages)]
    provenance: dict[str, Any] = {
        "set": info.set_name,
        "description": info.description,
        "maintainers": list(info.maintainers),
        "python": info.python,
        "systems": systems,
        # the wheel baselines the artifacts were chosen with (the pin's nixpkgs release)
        "nixpkgs-release": release.name,
        "macos-min": f"{release.macos_min[0]}.{release.macos_min[1]}",
        "glibc": f"{release.glibc[0]}.{release.glibc[1]}",
        "roots": list(resolution.roots),
        "build-frontend": list(resolution.frontend),
    }
    if info.exclude_newer is not None:
        provenance["exclude-newer"] = format_time(info.exclude_newer)
    if info.held:
        provenance["held"] = [dict(h) for h in info.held]
    unsnapshotted = _without_upload_times(resolution)
    if info.exclude_newer is not None and unsnapshotted:
        # these indexes state no upload time for some locked file: exclude-newer could not
        # be applied to them, their files were taken as they are
        provenance["snapshot-not-applied"] = unsnapshotted
    provenance |= {
        "indexes": [without_credentials(url) for url in info.indexes],
        "bot-version": __version__,
        "inputs-hash": info.inputs_hash,
    }
    if info.origin:
        provenance["origin"] = info.origin
    return {
        "lock-version": "1.0",
        "environments": [Target(info.python, s).marker() for s in systems],
        "requires-python": f"=={info.python}.*",
        "created-by": TOOL,
        "packages": packages,
        "tool": {TOOL: provenance},
    }


def validate(document: Mapping[str, Any], where: str) -> Pylock:
    """Validate a lock document with packaging.pylock; LockError names the problem."""
    from packaging.pylock import Pylock, PylockValidationError

    try:
        return Pylock.from_dict(document)
    except PylockValidationError as exc:
        raise LockError(f"not a valid PEP 751 lock: {exc}", where=where) from None


def dumps(document: Mapping[str, Any]) -> str:
    """Serialize deterministically (the dict's order is already canonical)."""
    return tomli_w.dumps(document, indent=4)


#: what to do about a lock file that cannot be used
DAMAGED_HINT = (
    "the lock is damaged: restore it (`git checkout -- <path>`) or delete it, "
    "then run `nixpkgs-python lock` for the set"
)


def damaged(path: Path, problem: str) -> LockError:
    """The error for a lock file at ``path`` that cannot be used, ``problem`` saying why."""
    return LockError(problem, where=str(path), hint=DAMAGED_HINT.replace("<path>", str(path)))


def read_lock(path: Path) -> dict[str, Any]:
    """Read and validate a lock file; any way it cannot be used is one LockError naming it."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError(
            "lock file not found", where=str(path), hint="run `nixpkgs-python lock` first"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise damaged(path, f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise damaged(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise damaged(path, "a directory, not a lock file") from None
    except OSError as exc:
        raise damaged(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        validate(document, str(path))
    except LockError as exc:
        raise damaged(path, exc.message) from None
    problem = unusable(document)
    if problem is not None:
        raise damaged(path, f"not a usable lock: {problem}")
    return document


#: provenance fields newer than some committed locks: a check does not fail on their absence
BASELINE_FIELDS = ("nixpkgs-release", "macos-min", "glibc")


def same_content(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], *, tolerate_absent: bool = False
) -> bool:
    """Whether two locks differ at most in their snapshot time (exclude-newer); with
    ``tolerate_absent``, also in :data:`BASELINE_FIELDS` that ``old`` does not record yet
    (``lock --check`` of a lock written before they existed)."""
    if old is None:
        return False
    absent = [k for k in BASELINE_FIELDS if k not in provenance(old)] if tolerate_absent else []

    def strip(doc: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        tool = dict(out.get("tool", {}))
        prov = dict(tool.get(TOOL, {}))
        prov.pop("exclude-newer", None)
        for key in absent:
            prov.pop(key, None)
        tool[TOOL] = prov
        out["tool"] = tool
        return out

    return strip(old) == strip(new)


__all__ = [
    "SYSTEMS",
    "LockInfo",
    "build_lock",
    "dumps",
    "format_time",
    "parse_time",
    "read_lock",
    "same_content",
    "validate",
]
