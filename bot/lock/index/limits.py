"""Bounds on what an index may send: everything it answers is untrusted input.

Each limit has a default generous enough for PyPI and can be set in the environment
(README.md, "Index limits"):

=====================================  ===========  ==========================================
variable                               default      bounds
=====================================  ===========  ==========================================
``NIXPKGS_PYTHON_MAX_PAGE_BYTES``      64 MiB       a project page, as sent and once decoded
``NIXPKGS_PYTHON_MAX_DOWNLOAD_BYTES``  1 GiB        a downloaded file (sdist, a whole wheel)
``NIXPKGS_PYTHON_MAX_METADATA_BYTES``  16 MiB       a ``.metadata`` file, METADATA in a wheel,
                                                    PKG-INFO / pyproject.toml in an sdist
``NIXPKGS_PYTHON_RESPONSE_DEADLINE``   900 s        one whole response (connect to last byte)
``NIXPKGS_PYTHON_MAX_UNPACKED_BYTES``  4 GiB        a wheel or sdist unpacked for a build hook
                                                    (the sum of its members' sizes)
``NIXPKGS_PYTHON_MAX_ARCHIVE_MEMBERS`` 200000       the number of members of that archive
=====================================  ===========  ==========================================

The decoded size of a compressed answer counts against the same limit as its raw size, so a
gzip bomb stops at the limit; an archive unpacked for a build hook is bounded by what it
unpacks to, so a zip bomb stops too.  Exceeding a limit is one error naming the URL; nothing of that
answer is cached.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.errors import CommandError, IndexError_, MetadataError
from bot.lock.index.unzip import OVER_LIMIT

MIB = 1024 * 1024

ENV = {
    "page": "NIXPKGS_PYTHON_MAX_PAGE_BYTES",
    "download": "NIXPKGS_PYTHON_MAX_DOWNLOAD_BYTES",
    "metadata": "NIXPKGS_PYTHON_MAX_METADATA_BYTES",
    "deadline": "NIXPKGS_PYTHON_RESPONSE_DEADLINE",
    "unpacked": "NIXPKGS_PYTHON_MAX_UNPACKED_BYTES",
    "members": "NIXPKGS_PYTHON_MAX_ARCHIVE_MEMBERS",
}


class LimitExceeded(IndexError_):
    """An index answered more (or more slowly) than a limit allows."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on index answers (bytes; ``deadline`` in seconds; ``members`` a count)."""

    page: int = 64 * MIB
    download: int = 1024 * MIB
    metadata: int = 16 * MIB
    deadline: float = 900.0
    unpacked: int = 4096 * MIB
    members: int = 200_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by the ``NIXPKGS_PYTHON_*`` variables that are set."""
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for field, var in ENV.items():
            text = env.get(var, "").strip()
            if not text:
                continue
            try:
                value = float(text) if field == "deadline" else int(text)
            except ValueError:
                value = -1
            if value <= 0:
                raise IndexError_(
                    f"${var} must be a positive {'number' if field == 'deadline' else 'integer'}",
                    where=f"{var}={text}",
                    hint={"deadline": "give a number of seconds", "members": "give a count"}.get(
                        field, "give bytes"
                    ),
                )
            values[field] = value
        return cls(**values)  # type: ignore[arg-type]


def too_big(what: str, url: str, limit: int, field: str) -> LimitExceeded:
    """The error for an answer larger than ``limit`` bytes."""
    return LimitExceeded(
        f"{what} is larger than the limit of {limit} bytes",
        where=url,
        hint=f"the index sent too much; if it is trusted and this is expected, raise ${ENV[field]}",
    )


def too_much_unpacked(what: str, where: str, limit: int, field: str) -> MetadataError:
    """The error for an archive (``what``) unpacking to more than ``limit`` bytes, or more
    than ``limit`` members for ``field`` "members"."""
    unit = "members" if field == "members" else "bytes"
    return MetadataError(
        f"{what} unpacks to more than the limit of {limit} {unit} (a zip bomb?); "
        "nothing of it is kept",
        where=where,
        hint=f"the index serves an archive too big to unpack; if it is trusted and this is "
        f"expected, raise ${ENV[field]}",
    )


def too_slow(what: str, url: str, deadline: float) -> LimitExceeded:
    """The error for an answer not complete within ``deadline`` seconds."""
    return LimitExceeded(
        f"{what}: no complete answer within {deadline:g} s",
        where=url,
        hint=f"the index is too slow or stalling; retry later, or raise ${ENV['deadline']}",
    )


def over_unpack_limit(what: str, where: str, bounds: Limits, field: str) -> MetadataError:
    """:func:`too_much_unpacked` for the bound ``field`` ("members" or "unpacked") of
    ``bounds``."""
    limit = bounds.members if field == "members" else bounds.unpacked
    return too_much_unpacked(what, where, limit, field)


def child_over_limit(
    exc: CommandError, what: str, where: str, bounds: Limits
) -> MetadataError | None:
    """The limit error an unpacking child (of a wheel or an sdist) reported: it exits
    :data:`~bot.lock.index.unzip.OVER_LIMIT` with the bound it passed as its last line of
    stderr.  None for any other failure."""
    last = (exc.stderr_tail or "").strip().splitlines()[-1:]
    if exc.returncode == OVER_LIMIT and last in (["members"], ["unpacked"]):
        return over_unpack_limit(what, where, bounds, last[0])
    return None
