"""Where the overrides re-validation stopped, and which entries it found needed.

The state lives outside the repository (``<cache dir>/revalidate.json``), one record per
repository: the last entry checked (the next night continues after it) and, for entries
found needed, a fingerprint of what the verdict depended on (so the failing build is not
repeated until the entry or the versions it applies to change).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.files import write_atomic


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
