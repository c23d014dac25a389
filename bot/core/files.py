"""Atomic file writes: a temporary file in the same directory, then a rename, so a reader (or
the next run after a kill) sees the old content or the new, never half of it."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename
    (``mode``: the file's permissions exactly, else as the umask gives).

    The temporary name is unique per process and thread (a cold lock writes a hundred cache
    entries from a dozen threads; ``tempfile``'s random names cost more than the writes).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nixpkgs-python``, else ``~/.cache/nixpkgs-python`` (at call time)."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "nixpkgs-python"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, readable by all (it is committed)."""
    write_bytes_atomic(path, text.encode("utf-8"), mode=0o644)


def read_cache(path: Path) -> Any:
    """The JSON document of a cache file; None when it is absent, unreadable or not JSON (a
    cache: its loss costs only the work again).  Its shape is the caller's to check."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def write_cache(path: Path, document: Any) -> None:
    """Write a cache file's JSON document atomically; a failure is only logged (the next
    run does the work again)."""
    try:
        write_atomic(path, json.dumps(document, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        logging.getLogger(__name__).debug("cannot write %s: %s", path, exc)


__all__ = [
    "default_cache_dir",
    "read_cache",
    "read_json",
    "write_atomic",
    "write_bytes_atomic",
    "write_cache",
]


#: the largest JSON file a job hands another (outcome, plan and hold-back files: kilobytes)
MAX_JSON_BYTES = 4 * 1024 * 1024


def read_json(path: Path, *, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON document in ``path``; ValueError when it is larger than ``limit`` bytes or
    not JSON (:class:`json.JSONDecodeError`, a ValueError, says where)."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return json.loads(data)
