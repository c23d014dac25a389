"""Where the overrides re-validation stopped, which entries it found needed, and what is
locked.

The state lives outside the repository (``<cache dir>/revalidate.json``), one record per
repository: the last entry checked (the next night continues after it) and, for entries
found needed, a fingerprint of what the verdict depended on (so the failing build is not
repeated until the entry or the versions it applies to change).  Beside it
(``revalidate-locked.json``), the packages of the locks, kept for the locks' bytes
(:func:`locked_versions`), and (``revalidate-verdicts.json``) each entry's last verdict of a
standalone build, with the key of everything those builds read
(:func:`bot.build.evaluation.evaluation_key`), so a night with the same inputs does not
build again (:func:`kept_verdict`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from bot.core.files import read_cache, write_atomic, write_cache
from bot.lock.memo import code_digest
from bot.model import locks

log = logging.getLogger(__name__)

#: beside the state: the packages of the locks, by the locks' bytes (see locked_versions)
LOCKED_FILE = "revalidate-locked.json"
#: beside the state: the last built verdict of each entry, with the key of its inputs
VERDICTS_FILE = "revalidate-verdicts.json"


@dataclass
class State:
    """One repository's record."""

    last: str | None = None  #: the entry id checked last
    needed: dict[str, str] = field(default_factory=dict)  #: entry id -> fingerprint


def _repos(state_file: Path) -> dict[str, Any]:
    """The file's records by repository (empty when it is absent or damaged)."""
    try:
        data = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    repos = data.get("repos") if isinstance(data, dict) else None
    return repos if isinstance(repos, dict) else {}


def load_state(state_file: Path, key: str) -> State:
    """The record of the repository ``key`` (an empty one when there is none)."""
    record = _repos(state_file).get(key)
    if not isinstance(record, dict):
        return State()
    last = record.get("last")
    needed = record.get("needed")
    return State(
        last if isinstance(last, str) else None,
        {str(k): str(v) for k, v in needed.items()} if isinstance(needed, dict) else {},
    )


def save_state(
    state_file: Path, key: str, last: str, needed: Mapping[str, str] | None = None
) -> None:
    """Record where the run stopped and the verdicts still standing."""
    repos = _repos(state_file)
    repos[key] = {"last": last, "needed": dict(needed or {})}
    state_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(state_file, json.dumps({"repos": repos}, indent=2, sort_keys=True) + "\n")


def kept_verdict(file: Path, entry_id: str, key: str) -> dict[str, Any] | None:
    """The finding (its JSON) last built for ``entry_id`` when its inputs' key was ``key``."""
    try:
        record = read_cache(file)[entry_id]
        if record["key"] != key or not isinstance(record["finding"], dict):
            return None
        return dict(record["finding"])
    except (KeyError, TypeError):
        return None


def keep_verdict(file: Path, entry_id: str, key: str, finding: Mapping[str, Any]) -> None:
    """Remember ``finding`` as the verdict of ``entry_id``'s builds for the inputs ``key``."""
    data = read_cache(file)
    records = data if isinstance(data, dict) else {}
    records[entry_id] = {"key": key, "finding": dict(finding)}
    write_cache(file, records)  # not written: the entry is built again next time


def _id_key(entry_id: str) -> tuple[str, int]:
    name, _, index = entry_id.rpartition("#")
    return (name, int(index) if index.isdigit() else 0)


def rotate(ids: Sequence[str], last: str | None, budget: int) -> list[str]:
    """Up to ``budget`` of ``ids`` (sorted by package, then position), starting after
    ``last`` and wrapping around."""
    ordered = sorted(ids, key=_id_key)
    if budget <= 0 or not ordered:
        return []
    start = 0
    if last is not None:
        start = next((i for i, x in enumerate(ordered) if _id_key(x) > _id_key(last)), 0)
    return [ordered[(start + i) % len(ordered)] for i in range(min(budget, len(ordered)))]


# --- what is locked ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Locked:
    """One package version in one lock."""

    set: str
    python: str
    version: str
    systems: frozenset[str]
    #: the systems whose artifact is the sdist (built from source there; else a wheel)
    sdists: frozenset[str] = frozenset()


def locked_versions(repo: Path, memo: Path | None = None) -> dict[NormalizedName, list[Locked]]:
    """Every package of every lock of ``repo`` (``sets/*/pylock.py3XY.toml``), by normalized
    name; each with the systems its lock has an artifact for.

    ``memo``: a file keeping the answer for the locks' bytes (and the bot's code), so that a
    night whose locks did not change reads them without parsing them; a lock that cannot be
    read is a warning on every call (nothing is kept then)."""
    paths = locks.repo_locks(repo)
    texts: list[tuple[Path, str | None]] = []
    digest = hashlib.sha256(code_digest().encode())
    for path in paths:
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("%s: skipped, cannot read: %s", path, exc)
            texts.append((path, None))
            continue
        digest.update(f"\0{path.relative_to(repo).as_posix()}\0".encode() + data)
        texts.append((path, text))
    key = digest.hexdigest()
    if memo is not None and all(t is not None for _, t in texts):
        kept = _kept_versions(memo, key)
        if kept is not None:
            return kept
    out: dict[NormalizedName, list[Locked]] = {}
    readable = True
    for path, body in texts:
        if body is None:  # warned above
            readable = False
            continue
        try:
            document = tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            log.warning("%s: skipped, cannot read: %s", path, exc)
            readable = False
            continue
        python = str(locks.python_of(path))
        for pkg in document.get("packages", []):
            if "name" not in pkg or "version" not in pkg:
                continue
            tool = pkg.get("tool", {}).get("nixpkgs-python", {})
            artifacts = tool.get("artifacts", {})
            out.setdefault(canonicalize_name(pkg["name"]), []).append(
                Locked(
                    path.parent.name,
                    python,
                    str(pkg["version"]),
                    frozenset(artifacts),
                    frozenset(s for s, f in artifacts.items() if not str(f).endswith(".whl")),
                )
            )
    if memo is not None and readable:
        _keep_versions(memo, key, out)
    return out


def _kept_versions(memo: Path, key: str) -> dict[NormalizedName, list[Locked]] | None:
    try:
        data = read_cache(memo)
        if data.get("key") != key:
            return None
        return {
            NormalizedName(name): [
                Locked(
                    str(s),
                    str(p),
                    str(v),
                    frozenset(str(x) for x in systems),
                    frozenset(str(x) for x in sdists),
                )
                for s, p, v, systems, sdists in rows
            ]
            for name, rows in data["locked"].items()
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # absent or damaged: the locks are read again


def _keep_versions(memo: Path, key: str, locked: Mapping[NormalizedName, list[Locked]]) -> None:
    rows = {
        name: [
            [lk.set, lk.python, lk.version, sorted(lk.systems), sorted(lk.sdists)] for lk in entries
        ]
        for name, entries in locked.items()
    }
    write_cache(memo, {"key": key, "locked": rows})  # not written: read the locks again
