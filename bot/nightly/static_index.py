"""A static Python package index of the sets: pip and uv install a tested set without Nix.

``write_index(repo, dest)`` writes, for every set's locks::

    DEST/simple/index.html, index.json             the project list (PEP 503 / PEP 691)
    DEST/simple/<project>/index.html, index.json   every locked file of the project
    DEST/files/<project>/<file>[.metadata]         with ``mirror``: the files themselves and,
                                                   beside each wheel, its core metadata
    DEST/<set>/constraints.txt                     ``pip install -c``: the set's exact pins
    DEST/<set>/pylock.py3XY.toml                   the set's locks (``uv pip install -r``)
    DEST/.nixpkgs-python-index.json                what this module wrote (the manifest)

Files are the locked ones: each link carries the lock's sha256 (``#sha256=`` and PEP 691
``hashes``), so an installer checks every byte; mirrored downloads are checked against it
before they are written.  A static server cannot negotiate content types, so (following PEP
691's advice for static hosting) HTML ``index.html`` is what a directory URL serves and the
JSON form sits beside it as ``index.json`` for clients and servers configured to map
``Accept: application/vnd.pypi.simple.v1+json`` to it (README: "Static index").

One writer at a time: :func:`write_index` holds an exclusive ``flock`` on ``.<dest>.lock``
beside ``dest`` for the whole write (a second writer waits, bounded, then fails with one
error).  Each write is a new generation directory ``.<dest>.gen-N`` beside ``dest``, and
``dest`` is a symlink to the current one, swapped with one ``rename(2)`` (``os.replace``): a
reader sees the old index or the new one, never none.  The previous generation is removed
only after the swap; a failed write removes only its own generation.  Under the lock every
other leftover beside ``dest`` belongs to a writer that is gone and is removed (the next
write heals an interrupted one).  A real directory at ``dest`` (an older bot's) is replaced
by the link once, by two renames (a moment with no index; an interruption between them is
undone by the next write).  A directory holding anything this module did not write is
refused.  (An ``rsync+ssh://`` host gets real directories: see
:mod:`bot.nightly.static_index_push`.)

The manifest records what the index was made from (the bot's code, the mode, the sets and
the bytes of every lock) and the sha256 of every file written: when the sources are the same
and every file is still as written, the index is left as it is (a quiet night rewrites
nothing).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import html
import json
import os
import re
import shutil
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name

from bot.core.errors import without_credentials
from bot.lock import document as lockfile
from bot.model import locks
from bot.model.sets import list_sets
from bot.nightly.static_index_content import IndexContent, IndexFile, StaticIndexError
from bot.nightly.static_index_manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    IndexResult,
    current,
    file_sha256,
    listing,
    recorded_sets,
    sources,
)

PEP691_TYPE = "application/vnd.pypi.simple.v1+json"
#: the directory name of the index inside a file:// or rsync+ssh:// binary cache
CACHE_SUBDIR = "python-index"
RESERVED = frozenset({"simple", "files"})
_PROJECT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _chosen(repo: Path, names: Sequence[str]) -> list[str]:
    """The named sets (all by default); an unknown name is an error naming the known ones."""
    known = list_sets(repo)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise StaticIndexError(
            f"no such set: {', '.join(unknown)}",
            where=str(repo / "sets"),
            hint=f"the sets are: {', '.join(known) or 'none'}",
        )
    return list(names or known)


def collect(repo: Path, names: Sequence[str] = ()) -> IndexContent:
    """Read every lock of the named sets (all by default); files must agree on their hashes."""
    content = IndexContent()
    for name in _chosen(repo, names):
        if name in RESERVED:
            raise StaticIndexError(
                f"a set named {name!r} would shadow the index's {name}/ directory",
                where=str(repo / "sets" / name),
                hint="rename the set",
            )
        directory = repo / "sets" / name
        set_locks = locks.locks_in(directory)
        if not set_locks:
            continue
        for path in set_locks:
            document = lockfile.read_lock(path)
            python = str(locks.provenance(document).get("python") or locks.python_of(path))
            content.locks.setdefault(name, {})[python] = path
            pins = content.pins.setdefault(name, {})
            for package in document.get("packages", []):
                _add_package(content, package, str(path))
                project = str(canonicalize_name(str(package["name"])))
                pins.setdefault(project, {})[python] = (
                    str(package.get("version", "")),
                    package.get("marker"),
                )
    return content


def _add_package(content: IndexContent, package: Mapping[str, Any], where: str) -> None:
    project = str(canonicalize_name(str(package["name"])))
    if not _PROJECT.fullmatch(project):
        # it names directories of the index
        raise StaticIndexError(f"not a project name: {package['name']!r}", where=where)
    files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
    for record in files:
        filename = str(record.get("name") or "")
        url = str(record.get("url") or "")
        sha256 = str(record.get("hashes", {}).get("sha256") or "")
        if not filename or "/" in filename or filename.startswith(".") or not url:
            raise StaticIndexError(
                f"package {project}: a file without a plain name and a URL", where=where
            )
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise StaticIndexError(f"{filename}: no sha256 in the lock", where=where)
        item = IndexFile(project, filename, url, sha256, package.get("requires-python"))
        known = content.projects.setdefault(project, {}).get(filename)
        if known is not None and known.sha256 != sha256:
            raise StaticIndexError(
                f"{filename}: two locks name it with different hashes "
                f"({known.sha256[:12]}... and {sha256[:12]}...)",
                where=where,
                hint="re-lock the sets against the same index",
            )
        content.projects[project][filename] = item


# --- rendering -------------------------------------------------------------------------------


def _href(f: IndexFile, mirrored: bool) -> str:
    if mirrored:
        return f"../../files/{quote(f.project)}/{quote(f.filename)}"
    return without_credentials(f.url).split("#", 1)[0]


def project_html(project: str, files: Iterable[IndexFile], mirrored: bool) -> str:
    """A PEP 503 project page (with PEP 658/714 metadata attributes where known)."""
    lines = []
    for f in sorted(files, key=lambda f: f.filename):
        attrs = [f'href="{html.escape(_href(f, mirrored))}#sha256={f.sha256}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
        if f.metadata_sha256:
            value = f"sha256={f.metadata_sha256}"
            attrs += [f'data-core-metadata="{value}"', f'data-dist-info-metadata="{value}"']
        lines.append(f"    <a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>")
    title = html.escape(f"Links for {project}")
    return _page(title, "\n".join(lines))


def project_json(project: str, files: Iterable[IndexFile], mirrored: bool) -> str:
    """A PEP 691 project page."""
    entries = []
    for f in sorted(files, key=lambda f: f.filename):
        entry: dict[str, Any] = {
            "filename": f.filename,
            "url": _href(f, mirrored),
            "hashes": {"sha256": f.sha256},
        }
        if f.requires_python:
            entry["requires-python"] = f.requires_python
        if f.metadata_sha256:
            entry["core-metadata"] = {"sha256": f.metadata_sha256}
            entry["dist-info-metadata"] = {"sha256": f.metadata_sha256}
        entries.append(entry)
    data = {"meta": {"api-version": "1.0"}, "name": project, "files": entries}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def root_html(projects: Iterable[str]) -> str:
    """The PEP 503 project list."""
    links = "\n".join(f'    <a href="{quote(p)}/">{html.escape(p)}</a><br/>' for p in projects)
    return _page("Simple index", links)


def root_json(projects: Iterable[str]) -> str:
    """The PEP 691 project list."""
    data = {"meta": {"api-version": "1.0"}, "projects": [{"name": p} for p in projects]}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" '
        f'content="1.0">\n    <title>{title}</title>\n  </head>\n  <body>\n'
        f"    <h1>{title}</h1>\n{body}\n  </body>\n</html>\n"
    )


def constraints(
    pins: Mapping[str, Mapping[str, tuple[str, str | None]]], pythons: Sequence[str] = ()
) -> str:
    """``pip install -c`` pins of one set: one line per project, per Python where they differ.

    No hashes: a constraints file with hashes puts pip in hash-checking mode for every
    requirement; the index's ``#sha256=`` links check each file instead.
    """
    lines = ["# pins of the tested set: pip install --index-url .../simple/ -c constraints.txt"]
    for project in sorted(pins):
        by_python = pins[project]
        # one line for all Pythons when they agree, else one per Python
        split = len({v for v, _ in by_python.values()}) > 1 or not set(pythons) <= set(by_python)
        for python in sorted(by_python, key=_python_key):
            version, marker = by_python[python]
            parts = [f"python_version == '{python}'"] if split else []
            if marker:
                parts.append(f"({marker})" if split else marker)
            line = f"{project}=={version}" + (f" ; {' and '.join(parts)}" if parts else "")
            if line not in lines:
                lines.append(line)
    return "\n".join(lines) + "\n"


def _python_key(python: str) -> tuple[int, ...]:
    return tuple(int(p) for p in python.split(".") if p.isdigit())


# --- the directory ---------------------------------------------------------------------------


def check_ours(dest: Path) -> None:
    """Refuse a directory that holds anything but an index this module wrote."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise StaticIndexError("not a directory", where=str(dest))
    present = listing(dest)
    if not present:
        return
    try:
        manifest = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
        written = set(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise StaticIndexError(
            "the directory holds files but no static index manifest",
            where=str(dest),
            hint=f"choose an empty or new directory (it is replaced as a whole), or remove "
            f"its contents; an index written here has {MANIFEST}",
        ) from None
    foreign = [p for p in present if p not in written and p != MANIFEST]
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise StaticIndexError(
            f"the static index directory holds files it did not write: {shown}",
            where=str(dest),
            hint="move them elsewhere: the directory is replaced as a whole",
        )


#: how long a writer waits for another one (``$NIXPKGS_PYTHON_LOCK_WAIT`` when set): a
#: mirroring write downloads files for minutes
LOCK_WAIT = 600.0


def lock_path(dest: Path) -> Path:
    """The writers' lock of the index at ``dest``: ``.<name>.lock`` beside it."""
    return dest.parent / f".{dest.name}.lock"


def _wait_seconds(wait: float | None) -> float:
    from bot.core.repolock import WAIT_ENV

    if wait is not None:
        return wait
    try:
        return float(os.environ[WAIT_ENV])
    except (KeyError, ValueError):
        return LOCK_WAIT


@contextlib.contextmanager
def writer_lock(
    dest: Path, *, wait: float | None = None, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the exclusive lock of the index at ``dest`` (``flock``; the kernel releases it when
    the holder dies, even by SIGKILL).  Waits up to ``wait`` seconds for another writer (the
    nightly, another ``index write``), then raises one :class:`StaticIndexError` naming it."""
    path = lock_path(dest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StaticIndexError(
            f"cannot open the static index's lock file: {exc.strerror}",
            where=str(path),
            hint="the directory beside the index must be writable",
        ) from None
    try:
        seconds = _wait_seconds(wait)
        deadline = time.monotonic() + seconds
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            if time.monotonic() >= deadline:
                raise StaticIndexError(
                    f"another writer (pid {holder}) has been writing the static index for "
                    f"more than {seconds:g} seconds",
                    where=str(dest),
                    hint="let it finish (the nightly or another `index write`) and run again, "
                    "or wait longer with $NIXPKGS_PYTHON_LOCK_WAIT=SECONDS",
                )
            if not said and on_wait is not None:
                on_wait(f"waiting for another writer (pid {holder})")
                said = True
            time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _generation(dest: Path) -> str | None:
    """The generation ``dest`` links to (``.<name>.gen-N`` beside it), else None."""
    try:
        target = os.readlink(dest)
    except OSError:
        return None
    if re.fullmatch(rf"\.{re.escape(dest.name)}\.gen-\d+", target):
        return target
    return None


def _leftover(dest: Path) -> re.Pattern[str]:
    # this module's names beside dest (never another index's: ".a.b.gen-1" is not ".a"'s),
    # and an older bot's ".<name>.<pid>.tmp" / ".old"
    return re.compile(
        rf"\.{re.escape(dest.name)}\.(?:gen-\d+|link|previous|(?P<pid>\d+)\.(?:tmp|old))"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _heal(dest: Path) -> None:
    """Clear what interrupted writes left beside ``dest``; called under the lock, where no
    other writer of this version runs, so every leftover's writer is gone.  (An older bot
    took no lock: its ``.<pid>.tmp`` of a live PID is left alone.)"""
    previous = dest.parent / f".{dest.name}.previous"
    if previous.is_dir() and not os.path.lexists(dest):
        # killed between the two renames that turn a real directory into a generation:
        # the last good index goes back where it was
        previous.rename(dest)
    keep = _generation(dest)
    pattern = _leftover(dest)
    for entry in os.scandir(dest.parent):
        found = pattern.fullmatch(entry.name)
        if found is None or entry.name == keep:
            continue
        if found["pid"] is not None and _alive(int(found["pid"])):
            continue
        _remove(Path(entry.path))


def _swap(dest: Path, generation: Path) -> Path | None:
    """Point ``dest`` at ``generation``; returns what to remove now (the previous one).

    A symlink (or nothing) at ``dest`` is replaced by one ``rename(2)``: readers see the old
    index or the new one.  A real directory (an older bot's) is first renamed aside, then the
    link put in its place (two renames); if the second fails, it is renamed back."""
    link = dest.parent / f".{dest.name}.link"
    link.unlink(missing_ok=True)
    os.symlink(generation.name, link)
    try:
        if dest.is_symlink() or not dest.exists():
            before = _generation(dest)
            os.replace(link, dest)
            return dest.parent / before if before else None
        previous = dest.parent / f".{dest.name}.previous"
        dest.rename(previous)
        try:
            os.replace(link, dest)
        except BaseException:
            previous.rename(dest)
            raise
        return previous
    finally:
        link.unlink(missing_ok=True)


def render(
    content: IndexContent,
    tmp: Path,
    *,
    mirror: bool = False,
    previous: Path | None = None,
    fetch: Callable[[str], bytes] | None = None,
    downloads: Path | None = None,
    source: Mapping[str, Any] | None = None,
) -> int:
    """Write the index tree into ``tmp`` (an empty directory); returns the files mirrored.
    ``source``: what the index is made from (:func:`sources`), recorded in the manifest."""
    if mirror:
        from bot.nightly.static_index_mirror import mirror_files

        projects, mirrored = mirror_files(content, tmp, previous, fetch, downloads)
    else:
        projects, mirrored = content.projects, 0
    names = sorted(projects)
    simple = tmp / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    (simple / "index.html").write_text(root_html(names), encoding="utf-8")
    (simple / "index.json").write_text(root_json(names), encoding="utf-8")
    for project in names:
        page = simple / project
        page.mkdir()
        entries = list(projects[project].values())
        (page / "index.html").write_text(project_html(project, entries, mirror), encoding="utf-8")
        (page / "index.json").write_text(project_json(project, entries, mirror), encoding="utf-8")
    for set_name, by_python in sorted(content.locks.items()):
        directory = tmp / set_name
        directory.mkdir()
        (directory / "constraints.txt").write_text(
            constraints(content.pins[set_name], list(by_python)), encoding="utf-8"
        )
        for _python, path in sorted(by_python.items()):
            text = path.read_text(encoding="utf-8")
            if mirror:
                text = _local_lock(text, projects)
            (directory / path.name).write_text(text, encoding="utf-8")
    files = listing(tmp)
    manifest = {
        "format": MANIFEST_FORMAT,
        "mirrored": mirror,
        "files": files,
        "sha256": {f: file_sha256(tmp / f) for f in files},
        "source": dict(source or {}),
        "summary": {
            "sets": sorted(content.locks),
            "projects": len(content.projects),
            "files": content.file_count,
            "mirrored": mirrored,
        },
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return mirrored


def _local_lock(text: str, projects: Mapping[str, Mapping[str, IndexFile]]) -> str:
    """A mirrored index's copy of a lock: each file's ``url`` becomes a ``path`` into files/."""
    document = tomllib.loads(text)
    for package in document.get("packages", []):
        project = str(canonicalize_name(str(package["name"])))
        records = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        for record in records:
            if record.get("name") in projects.get(project, {}):
                record.pop("url", None)
                record["path"] = f"../files/{project}/{record['name']}"
    return lockfile.dumps(document)


def write_index(
    repo: Path,
    dest: Path,
    *,
    sets: Sequence[str] = (),
    mirror: bool = False,
    fetch: Callable[[str], bytes] | None = None,
    downloads: Path | None = None,
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> IndexResult:
    """Write the static index of ``sets`` (all by default) to ``dest``, replacing it whole.

    ``downloads``: a directory keeping mirrored files by sha256 between runs (the nightly and
    ``index write`` use ``$XDG_CACHE_HOME/nixpkgs-python/index-files``).  ``wait``: seconds to
    wait for another writer (:func:`writer_lock`).

    An index at ``dest`` made from the same sources (:func:`sources`) and still intact
    (:func:`current`) is left as it is: nothing is read beyond the locks' bytes, nothing is
    written (the result says ``unchanged``)."""
    dest = dest.absolute()
    if dest.is_symlink() and _generation(dest) is None:
        dest = dest.resolve()  # someone's own link: the index is where it points
    names = _chosen(repo, sets)
    with writer_lock(dest, wait=wait, on_wait=on_wait):
        _heal(dest)
        source = sources(repo, names, mirror)
        unchanged = current(dest, source)
        if unchanged is not None:
            return unchanged
        content = collect(repo, names)
        check_ours(dest)
        before = _generation(dest)
        number = int(before.rsplit("-", 1)[1]) + 1 if before else 1
        while os.path.lexists(dest.parent / f".{dest.name}.gen-{number}"):
            number += 1  # a leftover heal could not remove
        generation = dest.parent / f".{dest.name}.gen-{number}"
        generation.mkdir()
        try:
            mirrored = render(
                content,
                generation,
                mirror=mirror,
                previous=dest if dest.is_dir() else None,
                fetch=fetch,
                downloads=downloads,
                source=source,
            )
            for directory in (generation, *(p for p in generation.rglob("*") if p.is_dir())):
                directory.chmod(0o755)
            try:
                old = _swap(dest, generation)
            except OSError as exc:
                raise StaticIndexError(
                    f"cannot put the new static index in place: {exc.strerror or exc}",
                    where=str(dest),
                    hint="the previous index is left as it was",
                ) from None
        except BaseException:
            if _generation(dest) != generation.name:  # (not if interrupted after the swap)
                shutil.rmtree(generation, ignore_errors=True)
            raise
        if old is not None:
            _remove(old)
        size = sum((dest / p).stat().st_size for p in listing(dest))
    return IndexResult(
        dest,
        tuple(sorted(content.locks)),
        len(content.projects),
        content.file_count,
        mirrored,
        size,
    )


__all__ = [
    "CACHE_SUBDIR",
    "MANIFEST",
    "IndexContent",
    "IndexResult",
    "StaticIndexError",
    "collect",
    "constraints",
    "current",
    "lock_path",
    "recorded_sets",
    "write_index",
    "writer_lock",
]
