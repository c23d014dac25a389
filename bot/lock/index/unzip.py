"""A wheel's installed members written into a tree, within bounds: the standard library only.

:mod:`bot.lock.index.buildenv` calls :func:`extract` in process for a small wheel and runs
this file as a child (``python -I -S unzip.py WHEEL DEST DATA_DIR MEMBERS BYTES``) for a big
one: unpacking is a few hundred file writes of pure-Python work, which in the locking process
takes turns for the interpreter lock with the resolver and a dozen fetching threads
(setuptools' 348 members: 0.2-0.56 s in a cold lock, about 0.1 s alone).  The child imports
nothing of the bot (its start-up is the interpreter's, ~30 ms), so it holds no credential and
reads no configuration; it exits 0, or :data:`OVER_LIMIT` with the bound passed ("members",
"unpacked") as its last line of stderr, or 1 with the problem as its last line.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path, PurePosixPath

#: the child's exit status for a wheel beyond a bound (its stderr's last line: which one)
OVER_LIMIT = 3


class LimitError(Exception):
    """The wheel goes beyond a bound: ``args[0]`` is "members" or "unpacked"."""


def member_target(name: str, data_dir: str) -> tuple[str, PurePosixPath] | None:
    """("site"|"scripts", relative path) of a wheel member, None for one not installed
    here (headers, data), a ValueError for a path that leaves the tree."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in name:
        raise ValueError(f"unsafe member path {name!r}")
    if path.parts[0] != data_dir:
        return "site", path
    if len(path.parts) < 3:
        return None
    scheme, rest = path.parts[1], PurePosixPath(*path.parts[2:])
    if scheme in ("purelib", "platlib"):
        return "site", rest
    if scheme == "scripts":
        return "scripts", rest
    return None


def members(wheel: Path) -> int:
    """How many members the wheel's central directory lists (read, not unpacked)."""
    with zipfile.ZipFile(wheel) as zf:
        return len(zf.infolist())


def extract(wheel: Path, tmp: Path, data_dir: str, most_members: int, most_bytes: int) -> None:
    """Write the wheel's installed members into ``tmp`` (``site``, ``scripts``), within the
    bounds: its member count, the sizes it states, then the bytes actually written
    (:class:`LimitError` past one)."""
    with zipfile.ZipFile(wheel) as zf:
        infos = zf.infolist()
        if len(infos) > most_members:
            raise LimitError("members")
        budget = most_bytes
        if sum(info.file_size for info in infos) > budget:  # a cheap early refusal
            raise LimitError("unpacked")
        for info in infos:
            if info.is_dir():
                continue
            where = member_target(info.filename, data_dir)
            if where is None:
                continue
            target = tmp / where[0] / where[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    budget -= len(chunk)
                    if budget < 0:
                        raise LimitError("unpacked")
                    out.write(chunk)
            mode = (info.external_attr >> 16) & 0o777
            if mode & 0o111 or where[0] == "scripts":
                target.chmod(0o755)


def main(argv: list[str]) -> int:
    wheel, dest, data_dir, most_members, most_bytes = argv
    try:
        extract(Path(wheel), Path(dest), data_dir, int(most_members), int(most_bytes))
    except LimitError as exc:
        print(exc.args[0], file=sys.stderr)
        return OVER_LIMIT
    except Exception as exc:  # noqa: BLE001 - a damaged wheel (metadata.ARCHIVE_ERRORS): one line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
