"""Build environments for PEP 517 hooks composed from verified wheels, without an installer.

A hook run used to make a fresh virtual environment and have uv (or pip) resolve, download
and install the backend into it: seconds per sdist, most of it the installer's own index
traffic and file copying, repeated for every sdist with the same backend.  Here the
backend's requirements are resolved by the bot itself (resolvelib, wheels only, for the
hook's interpreter as it reports its tags and markers, at the lock's snapshot), each wheel
is downloaded through the index client (its sha256 checked) and unpacked once into a
content-addressed directory of the cache, and the environment is a bare virtual
environment whose one ``.pth`` file adds exactly those directories as site directories
(so the wheels' own ``.pth`` files, such as setuptools' distutils shim, take effect) and
whose ``bin`` holds the wheels' console scripts.  The hook still runs in its own
environment holding only its declared build requirements.

Layout under the cache root::

    index-v1/wheels/ab/<sha256 of the wheel>/site/     the wheel's importable tree
    index-v1/wheels/ab/<sha256 of the wheel>/scripts/  its ``.data/scripts`` files

A directory appears only complete (unpacked beside it, then renamed), from bytes whose
sha256 was checked, so its name is the hash of what it was unpacked from.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Protocol

import packaging
from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, ResolutionError, Resolver
from resolvelib.structs import RequirementInformation

from bot.core.errors import CommandError, MetadataError, StoppedError
from bot.core.proc import run
from bot.lock.index import unzip
from bot.lock.index.hookenv import hook_environ
from bot.lock.index.limits import Limits, child_over_limit, over_unpack_limit
from bot.lock.index.metadata import ARCHIVE_ERRORS
from bot.lock.index.models import CoreMetadata, DistFile, Releases

log = logging.getLogger(__name__)

#: cache kind of unpacked wheels (key: the wheel's sha256)
WHEELS = "wheels"
#: the one .pth file of a composed environment
PTH_NAME = "_nixpkgs_python_build.pth"


class UnresolvableError(MetadataError):
    """The backend's requirements have no all-wheel solution for the hook's interpreter
    (the caller may fall back to an installer that builds sdists)."""


@dataclass(frozen=True)
class Interpreter:
    """What decides which wheels suit an interpreter: its tags (most specific first) and the
    values of its environment markers, as the interpreter itself reports them."""

    executable: str
    tags: Mapping[Tag, int]  #: tag -> priority (0 is best)
    markers: Mapping[str, str]
    #: the interpreter a virtual environment of it runs (itself, unless it is one's)
    base: str = ""
    #: where a virtual environment of it keeps its packages, relative to the environment
    purelib: str = ""

    @property
    def version(self) -> Version:
        return Version(self.markers["python_full_version"])


_PROBE = """
import json, sys, sysconfig
sys.path.insert(0, sys.argv[1])
from packaging import markers, tags
scheme = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"
at = {"base": "/@", "platbase": "/@", "installed_base": "/@", "installed_platbase": "/@"}
print(json.dumps({"tags": [str(t) for t in tags.sys_tags()],
                  "markers": markers.default_environment(),
                  "base": getattr(sys, "_base_executable", "") or sys.executable,
                  "purelib": sysconfig.get_path("purelib", scheme, vars=at)}))
"""


_probed: dict[str, Future[Interpreter]] = {}
_probed_lock = threading.Lock()


def interpreter(executable: str, timeout: float = 60.0) -> Interpreter:
    """Ask ``executable`` for its tags and markers, once per run however many threads ask
    at the same time (a failure too is remembered)."""
    with _probed_lock:
        known = _probed.get(executable)
        mine = known is None
        if known is None:
            known = _probed[executable] = Future()
    if mine:
        try:
            known.set_result(_probe(executable, timeout))
        except BaseException as exc:
            if isinstance(exc, StoppedError):  # given up, not failed: the next one asks again
                with _probed_lock:
                    _probed.pop(executable, None)
            known.set_exception(exc)
            raise
    return known.result()


def _probe(executable: str, timeout: float) -> Interpreter:
    """Ask ``executable`` for its tags and markers: the bot's own ``packaging`` is put on its
    path, isolated from its environment and user site, in the environment hooks get."""
    where = str(Path(packaging.__file__).parent.parent)
    try:
        with tempfile.TemporaryDirectory(prefix="nixpkgs-python-probe-") as home:
            proc = run(
                [executable, "-I", "-S", "-c", _PROBE, where],
                env=hook_environ(Path(home)),
                inherit_env=False,
                timeout=timeout,
                what=f"asking {executable} for its wheel tags",
            )
        data = json.loads(proc.stdout)
        tags = {t: i for i, t in enumerate(Tag(*str(s).split("-")) for s in data["tags"])}
        markers = {str(k): str(v) for k, v in data["markers"].items()}
        base, purelib = str(data["base"]), str(data["purelib"])
    except (CommandError, ValueError, KeyError, TypeError) as exc:
        raise UnresolvableError(
            f"cannot ask {executable} for its wheel tags: {exc}", where=executable
        ) from exc
    relative = PurePosixPath(purelib).relative_to("/@") if purelib.startswith("/@/") else None
    if not Path(base).is_absolute() or relative is None or ".." in relative.parts:
        raise UnresolvableError(
            f"{executable} reported an unusable interpreter ({base!r}) or site directory "
            f"({purelib!r})",
            where=executable,
        )
    return Interpreter(executable, tags, markers, base, str(relative))


def make_venv(path: Path, python: Interpreter) -> Path:
    """A bare virtual environment of ``python`` at ``path`` (PEP 405: ``pyvenv.cfg`` naming
    the base interpreter's directory, ``bin/python`` a link to it, an empty site-packages
    directory), made directly: running ``uv venv`` or ``python -m venv`` for it took 40-85
    ms of each hook run.  Its interpreter is returned."""
    bin_dir = path / "bin"
    bin_dir.mkdir(parents=True)
    (path / python.purelib).mkdir(parents=True)
    version = python.markers.get("python_full_version", "")
    (path / "pyvenv.cfg").write_text(
        f"home = {Path(python.base).parent}\ninclude-system-site-packages = false\n"
        f"version = {version}\n",
        encoding="utf-8",
    )
    executable = bin_dir / "python"
    executable.symlink_to(python.base)
    for alias in sorted({"python3", f"python{python.markers.get('python_version', '3')}"}):
        (bin_dir / alias).symlink_to("python")
    return executable


class WheelIndex(Protocol):
    """What the backend resolution reads: the index client's pages and core metadata."""

    def releases(self, name: NormalizedName) -> Releases: ...

    def metadata(self, file: DistFile) -> CoreMetadata: ...

    def prefetch(self, names: list[NormalizedName]) -> None: ...


# --- the backend's requirements, resolved to wheels ---------------------------------------


@dataclass(frozen=True)
class _Candidate:
    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName]
    file: DistFile


def _key(name: str, extras: Iterable[str]) -> str:
    names = sorted(canonicalize_name(e) for e in extras)
    return f"{canonicalize_name(name)}[{','.join(names)}]" if names else canonicalize_name(name)


class _Provider(AbstractProvider[Requirement, _Candidate, str]):
    """resolvelib over the index for one interpreter: wheels only, newest first, not yanked,
    uploaded by ``cutoff`` when one is given (as the lock's resolution reads it: a file
    without an upload time is taken)."""

    def __init__(self, index: WheelIndex, python: Interpreter, cutoff: datetime | None) -> None:
        self.index, self.python, self.cutoff = index, python, cutoff
        self.used: dict[str, CoreMetadata] = {}  #: wheel sha256 -> the metadata it was read by

    def identify(self, requirement_or_candidate: Requirement | _Candidate) -> str:
        return _key(requirement_or_candidate.name, requirement_or_candidate.extras)

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, _Candidate],
        candidates: Mapping[str, Iterator[_Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Requirement, _Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Requirement, _Candidate]],
    ) -> str:
        return identifier

    def _wheel(self, files: Iterable[DistFile]) -> DistFile | None:
        best: tuple[int, str, DistFile] | None = None
        version = self.python.version
        for f in files:
            if f.kind != "wheel" or f.yanked is not None:
                continue
            if not f.uploaded_by(self.cutoff):  # the lock's rule (files without a time: in)
                continue
            if f.requires_python is not None and not f.requires_python.contains(
                version, prereleases=True
            ):
                continue
            prio = min((self.python.tags.get(t, 1 << 30) for t in f.tags), default=1 << 30)
            if prio < 1 << 30 and (best is None or (prio, f.filename) < best[:2]):
                best = (prio, f.filename, f)
        return best[2] if best else None

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Requirement]],
        incompatibilities: Mapping[str, Iterator[_Candidate]],
    ) -> Callable[[], Iterator[_Candidate]]:
        reqs = list(requirements[identifier])
        name = canonicalize_name(reqs[0].name)
        extras = frozenset(canonicalize_name(e) for r in reqs for e in r.extras)
        bad = {c.version for c in incompatibilities[identifier]}
        specs = [r.specifier for r in reqs]
        releases = self.index.releases(name)

        def matches() -> Iterator[_Candidate]:
            for version in releases.versions():  # newest first
                if version in bad or not all(s.contains(version) for s in specs):
                    continue
                wheel = self._wheel(releases.files(version))
                if wheel is not None:
                    yield _Candidate(name, version, extras, wheel)

        return matches

    def is_satisfied_by(self, requirement: Requirement, candidate: _Candidate) -> bool:
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: _Candidate) -> list[Requirement]:
        meta = self.index.metadata(candidate.file)
        self.used[candidate.file.sha256] = meta
        out: list[Requirement] = []
        if candidate.extras:  # the project itself, at the same version
            out.append(Requirement(f"{candidate.name}=={candidate.version}"))
        for extra in sorted(candidate.extras) or ("",):
            env = {**self.python.markers, "extra": extra}
            for req in meta.requires_dist:
                if req.marker is None:
                    if not candidate.extras:
                        out.append(req)
                elif req.marker.evaluate(env) and (
                    not candidate.extras or not req.marker.evaluate({**env, "extra": ""})
                ):
                    out.append(req)
        # the resolver asks for one project at a time: fetch the pages it needs next now
        # (only these: a backend's extras name dozens of test tools)
        self.index.prefetch([canonicalize_name(r.name) for r in out])
        return out


def resolve_wheels(
    index: WheelIndex,
    requirements: Sequence[Requirement],
    python: Interpreter,
    cutoff: datetime | None,
) -> tuple[list[DistFile], dict[str, CoreMetadata]]:
    """The wheels that install ``requirements`` for ``python`` (markers evaluated for it),
    and the metadata each wheel's dependencies were read from (by sha256)."""
    env = {**python.markers, "extra": ""}
    wanted = [r for r in requirements if r.marker is None or r.marker.evaluate(env)]
    index.prefetch([canonicalize_name(r.name) for r in wanted])
    provider = _Provider(index, python, cutoff)
    resolver: Resolver[Requirement, _Candidate, str] = Resolver(provider, BaseReporter())
    try:
        result = resolver.resolve(wanted, max_rounds=500)
    except ResolutionError as exc:
        raise UnresolvableError(
            f"no wheels install {', '.join(map(str, wanted))} for {python.executable}: {exc}"
        ) from exc
    files = {c.file.sha256: c.file for c in result.mapping.values()}
    return sorted(files.values(), key=lambda f: f.filename), provider.used


# --- wheels unpacked once, by sha256 ---------------------------------------------------------


@dataclass(frozen=True)
class Unpacked:
    """One wheel's tree in the cache (``file``: the wheel it was unpacked from, which its
    errors name)."""

    root: Path
    file: DistFile | None = None

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def scripts(self) -> Path:
        return self.root / "scripts"

    def malformed(self, what: str, exc: Exception) -> MetadataError:
        """The error for a part of the wheel that cannot be used: one message naming it."""
        name = self.file.filename if self.file is not None else f"the wheel {self.root.name}"
        return MetadataError(
            f"{what} in {name} is malformed: {type(exc).__name__}: {exc}",
            where=self.file.url if self.file is not None else str(self.root),
            hint="the wheel is broken (report it to its project); until a fixed release, "
            "exclude that version of it, or the version of the build backend requiring it",
        )

    def dist_info(self) -> Path | None:
        found = sorted(self.site.glob("*.dist-info"))
        return found[0] if found else None

    def requires_dist(self) -> list[Requirement]:
        """The Requires-Dist of the wheel's own METADATA."""
        info = self.dist_info()
        if info is None:
            return []
        from email.parser import BytesParser

        try:
            data = (info / "METADATA").read_bytes()
            headers = BytesParser().parsebytes(data, headersonly=True)
            return [Requirement(str(v)) for v in headers.get_all("Requires-Dist") or []]
        except (OSError, ValueError) as exc:  # InvalidRequirement is a ValueError
            raise self.malformed(f"{info.name}/METADATA", exc) from exc

    def entry_points(self) -> dict[str, str]:
        """Console and GUI script name -> ``module:attr``."""
        info = self.dist_info()
        path = info / "entry_points.txt" if info is not None else None
        if path is None or not path.is_file():
            return {}
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            raise self.malformed(f"{path.parent.name}/{path.name}", exc) from exc
        out: dict[str, str] = {}
        for section in ("console_scripts", "gui_scripts"):
            if parser.has_section(section):
                out.update({k: v.strip() for k, v in parser.items(section)})
        return out


#: seconds a child may take to unpack one wheel (a few hundred files: well under one)
UNPACK_TIMEOUT = 300.0
#: a wheel of more members is unpacked by a child (:mod:`bot.lock.index.unzip`), one of fewer
#: in this process: the child's start-up (~30 ms) is about what unpacking 60 members costs
#: here alone, and far less than a few hundred cost beside the resolution
CHILD_UNPACK = 64


def _extract(wheel: Path, tmp: Path, file: DistFile, bounds: Limits) -> None:
    """Write the wheel's installed members into ``tmp`` (``site``, ``scripts``), within
    ``bounds``: its member count, the sizes it states, then the bytes actually written
    (:func:`bot.lock.index.unzip.extract`; in a child for a big wheel)."""
    project = file.filename.split("-")[0]
    version = file.filename.split("-")[1]
    data_dir = f"{project}-{version}.data"
    if unzip.members(wheel) <= CHILD_UNPACK:
        try:
            unzip.extract(wheel, tmp, data_dir, bounds.members, bounds.unpacked)
        except unzip.LimitError as exc:
            raise over_unpack_limit(file.filename, file.url, bounds, exc.args[0]) from None
        return
    argv = [sys.executable, "-I", "-S", unzip.__file__, str(wheel), str(tmp), data_dir]
    try:
        run(
            [*argv, str(bounds.members), str(bounds.unpacked)],
            env={},
            inherit_env=False,
            timeout=UNPACK_TIMEOUT,
            what=f"unpacking {file.filename}",
        )
    except CommandError as exc:
        refused = child_over_limit(exc, file.filename, file.url, bounds)
        if refused is not None:
            raise refused from exc
        last = (exc.stderr_tail or "").strip().splitlines()[-1:]
        raise ValueError(last[0] if last else exc.message) from exc


def unpack_wheel(root: Path, file: DistFile, wheel: Path, limits: Limits | None = None) -> Unpacked:
    """Unpack the wheel file ``wheel``, whose sha256 the caller checked, into ``root``'s
    directory for it (already there: used as is).  What it unpacks to is bounded by
    ``limits`` (its members, and the bytes written: a zip bomb is refused, a MetadataError
    naming it, and nothing of it is kept)."""
    dest = root / file.sha256[:2] / file.sha256
    if dest.is_dir():
        return Unpacked(dest, file)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        _extract(wheel, tmp, file, limits if limits is not None else Limits())
        (tmp / "site").mkdir(exist_ok=True)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # not another process's copy: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Unpacked(dest, file)


# --- the environment ---------------------------------------------------------------------


_SCRIPT = """#!{python}
import sys
from {module} import {head}
if __name__ == "__main__":
    sys.exit({call}())
"""
_ENTRY = re.compile(r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+))?\s*(\[.*\])?$")


def _site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages")) or sorted(env.glob("Lib/site-packages"))
    if not found:
        raise MetadataError(f"no site-packages in the build environment {env}")
    return found[0]


def compose(env: Path, python: str, wheels: Sequence[Unpacked]) -> None:
    """Make the virtual environment ``env`` (its interpreter ``python``) see exactly
    ``wheels``: one ``.pth`` adding each as a site directory, their scripts in ``bin``."""
    site = _site_packages(env)
    dirs = ", ".join(repr(str(w.site)) for w in wheels)
    (site / PTH_NAME).write_text(
        # one line (a .pth runs only lines that start with "import"), no comprehension (its
        # scope does not see the line's names before Python 3.12)
        f"import site; list(map(site.addsitedir, ({dirs},)))\n" if wheels else "",
        encoding="utf-8",
    )
    bin_dir = env / "bin"
    for wheel in wheels:
        for name, spec in wheel.entry_points().items():
            m = _ENTRY.match(spec)
            if m is None or "/" in name or name in ("", ".", ".."):
                log.debug("%s: entry point %s = %s not understood", wheel.root.name, name, spec)
                continue
            attr = m.group("attr") or ""
            head = attr.split(".")[0] if attr else m.group("module")
            module = m.group("module") if attr else m.group("module").rpartition(".")[0] or head
            text = _SCRIPT.format(python=python, module=module, head=head, call=attr or head)
            _write_script(bin_dir / name, text.encode())
        if wheel.scripts.is_dir():
            for script in sorted(wheel.scripts.iterdir()):
                if script.is_file():
                    _copy_script(script, bin_dir / script.name, python)


def _write_script(path: Path, body: bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    path.write_bytes(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


#: a temporary file or directory a process left in the cache (killed mid-download or
#: mid-unpack) older than this is removed: no live process takes a day over one wheel
STALE_TEMPORARY = 24 * 3600.0
_TEMPORARY = (".download-", ".unpack-")


def _copy_script(source: Path, path: Path, python: str) -> None:
    """A wheel's data script, its ``#!python`` line pointed at ``python``; streamed, as a
    script may be a program of tens of megabytes (maturin's is ~25 MB, which read whole
    was the peak of a cold lock's memory)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with source.open("rb") as src, path.open("wb") as out:
        head = src.read(len(b"#!pythonw"))
        if head.startswith((b"#!python", b"#!pythonw")):
            line = head + src.readline()
            end = line.find(b"\n")  # a script of that line alone: this one
            head = b"#!" + python.encode() + (line[end:] if end >= 0 else b"\n")
        out.write(head)
        shutil.copyfileobj(src, out, 1 << 20)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def remove_stale_temporaries(directory: Path, older_than: float = STALE_TEMPORARY) -> list[str]:
    """Remove what killed processes left in ``directory`` (``.download-*`` files,
    ``.unpack-*`` directories) last changed more than ``older_than`` seconds ago; a live
    process's, being newer, stay.  The names removed."""
    removed: list[str] = []
    deadline = time.time() - older_than
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(_TEMPORARY):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= deadline:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError as exc:  # another process removed it first, or it cannot be: harmless
            log.debug("leftover %s not removed: %s", entry.path, exc)
            continue
        removed.append(entry.name)
    if removed:
        log.debug("removed leftovers of killed runs in %s: %s", directory, ", ".join(removed))
    return removed


class WheelCache:
    """Unpacked wheels under a cache root, each unpacked once however many threads ask, each
    bounded by ``limits``."""

    def __init__(
        self,
        root: Path,
        download: Callable[[DistFile, Path], None],
        limits: Limits | None = None,
    ) -> None:
        self.root = root
        self.download = download
        self.limits = limits if limits is not None else Limits()
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._swept: set[Path] = set()  #: directories cleared of leftovers by this process

    def _sweep(self, path: Path) -> None:
        """The first time this process uses ``path`` (a ``wheels/ab`` directory), remove
        what killed processes left in it."""
        with self._lock:
            if path in self._swept:
                return
            self._swept.add(path)
        remove_stale_temporaries(path)

    def get(self, file: DistFile) -> Unpacked:
        """The wheel's tree, downloaded into a file (its sha256 checked by ``download``)
        and unpacked if new."""
        dest = self.root / file.sha256[:2] / file.sha256
        self._sweep(dest.parent)
        if dest.is_dir():
            return Unpacked(dest, file)
        with self._lock:
            lock = self._locks.setdefault(file.sha256, threading.Lock())
        with lock:
            if dest.is_dir():
                return Unpacked(dest, file)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".download-", dir=dest.parent)
            os.close(fd)
            try:
                self.download(file, Path(name))
                return unpack_wheel(self.root, file, Path(name), self.limits)
            except ARCHIVE_ERRORS as exc:
                raise MetadataError(
                    f"cannot unpack {file.filename} into the build environment cache: "
                    f"{exc or type(exc).__name__}",
                    where=file.url,
                    hint="the wheel is damaged or uses a zip feature wheels may not",
                ) from exc
            finally:
                Path(name).unlink(missing_ok=True)


def check_metadata(wheel: Unpacked, file: DistFile, used: CoreMetadata) -> None:
    """Refuse a wheel whose own METADATA (bytes bound to its sha256) names other
    dependencies than the metadata the resolution read them from: that came without a hash
    (range reads), and what decides the environment must be verified."""
    mine = sorted(str(r) for r in wheel.requires_dist())
    theirs = sorted(str(r) for r in used.requires_dist)
    if mine != theirs:
        raise MetadataError(
            f"the METADATA inside {file.filename} does not match the metadata the index "
            "served for it",
            where=file.url,
            hint="the index (or a proxy) serves inconsistent metadata; report it",
        )


def requirement_text(requirements: Iterable[str]) -> list[Requirement]:
    """Parse build requirements (a bad one is the backend's error to name: refused here)."""
    try:
        return [Requirement(r) for r in requirements]
    except ValueError as exc:
        raise UnresolvableError(f"invalid build requirement: {exc}") from exc
