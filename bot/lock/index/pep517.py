"""Core metadata of an sdist whose PKG-INFO cannot be trusted: ask its PEP 517 backend.

The sdist is unpacked into a temporary directory.  When its ``pyproject.toml`` states every
field the resolver reads statically (PEP 621: ``dependencies``, ``optional-dependencies`` and
``requires-python`` not ``dynamic``), that is the metadata, whatever the backend.  Otherwise
its build requirements are put into a fresh isolated environment made from the LOCK'S
interpreter (the Python minor version being locked: a backend may refuse any other), from the
SAME indexes the bot resolves against (never from any other index, find-links directory or
configuration file): composed of their wheels (:mod:`bot.lock.index.buildenv`), or installed
by uv or pip where no wheels install them; and the backend's
``prepare_metadata_for_build_wheel`` hook runs (falling back to ``build_wheel``), each step
within a bounded time.  :func:`cached_metadata` remembers
a failure by the sdist's sha256 and the Python version, so a broken sdist costs one attempt,
not one per lock (``--refresh`` tries again).

Everything run for it (unpacking, the installer, the hooks) runs in the allow-listed
environment of :func:`~bot.lock.index.hookenv.hook_environ`, with a scratch HOME: none of
the bot's secrets or index settings reach the sdist's code.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import tomllib
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from pyproject_hooks import (
    BackendUnavailable,
    BuildBackendHookCaller,
    BuildBackendWarning,
    HookMissing,
    UnsupportedOperation,
)

from bot.core.errors import CommandError, MetadataError, PackageIndexError
from bot.core.proc import run
from bot.lock.index.buildenv import Unpacked, UnresolvableError, compose, make_venv
from bot.lock.index.buildenv import interpreter as probe_interpreter
from bot.lock.index.cache import Cache
from bot.lock.index.fields import shown
from bot.lock.index.hookenv import hook_environ
from bot.lock.index.limits import Limits, child_over_limit
from bot.lock.index.models import DistFile
from bot.lock.index.unzip import OVER_LIMIT

log = logging.getLogger(__name__)

LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
BUILD_TIMEOUT = 900.0
#: bound on each step of a metadata hook run (installing, asking the backend)
HOOK_TIMEOUT = 600.0
#: cache kind of remembered hook failures (key: sdist sha256 and Python minor version)
FAILURES = "pep517-failure"
#: cache kind of get_requires_for_build_wheel answers (same key)
DYNAMIC = "pep517-build-requires"


def find_uv() -> str | None:
    """The uv executable next to this interpreter or on PATH, if any."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def install_command(
    python: str, requirements_file: Path, index_urls: Sequence[str], uv: str | None
) -> list[str]:
    """The installer command line; the first index is --index-url, the rest extra indexes.
    It runs in :func:`~bot.lock.index.hookenv.hook_environ` (an installer builds sdists, and
    no index or configuration setting of the environment reaches it)."""
    first, *rest = index_urls
    indexes = ["--index-url", first]
    for url in rest:
        indexes += ["--extra-index-url", url]
    if not uv:
        # pip ignores plain-http indexes unless told to trust them; these are configured ones
        for host in dict.fromkeys(
            urlsplit(u).hostname for u in index_urls if u.startswith("http:")
        ):
            indexes += ["--trusted-host", str(host)]
    if uv:
        return [
            uv,
            "pip",
            "install",
            "--no-config",
            "--python",
            python,
            *indexes,
            "-r",
            str(requirements_file),
        ]
    return [
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-input",
        "--no-warn-script-location",
        "--no-compile",
        *indexes,
        "-r",
        str(requirements_file),
    ]


#: unpacks an sdist (argv: archive, destination, most bytes, most members); run by this
#: interpreter as a child.  The bounds are checked before each member is written, from the
#: sizes the archive states: a zip member yields no more than its stated size, a tar
#: member's data is exactly its stated size
_UNPACK = """
import lzma, sys, tarfile, zipfile, zlib
archive, dest = sys.argv[1:3]
most_bytes, most_members = int(sys.argv[3]), int(sys.argv[4])

class Limit(Exception):
    pass

def bounded(members, size):
    total = 0
    for count, member in enumerate(members, 1):
        if count > most_members:
            raise Limit("members")
        total += size(member)
        if total > most_bytes:
            raise Limit("unpacked")
        yield member

try:
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest, members=bounded(zf.infolist(), lambda m: m.file_size))
    else:
        with tarfile.open(archive, mode="r:*") as tf:
            sizes = lambda m: m.size if m.isreg() else 0
            tf.extractall(dest, members=bounded(tf, sizes), filter="data")
except Limit as exc:
    print(exc, file=sys.stderr)
    sys.exit(OVER_LIMIT)
except (
    tarfile.TarError, zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error,
    lzma.LZMAError, NotImplementedError, RuntimeError,  # see metadata.ARCHIVE_ERRORS
) as exc:
    sys.exit(f"{type(exc).__name__}: {exc}")
""".replace("OVER_LIMIT", str(OVER_LIMIT))


def _unpack(data: bytes, file: DistFile, dest: Path, limits: Limits | None = None) -> Path:
    """Unpack an sdist into ``dest`` (zip members sanitised by zipfile, tar members by the
    "data" filter; what it unpacks to bounded by ``limits``, else a MetadataError) in a
    child process: it is a few hundred files of pure-Python work, which in this process
    would take turns for the interpreter lock with the resolver (1.7-1.9 s for
    cryptography's or libcst's sdist in a cold lock of a big set; 0.15-0.2 s of CPU in a
    child)."""
    bounds = limits if limits is not None else Limits.from_env()
    dest.mkdir(parents=True, exist_ok=True)
    filename = file.filename
    archive = dest.parent / ("sdist.zip" if filename.endswith(".zip") else "sdist.tar")
    archive.write_bytes(data)
    argv = [sys.executable, "-I", "-c", _UNPACK, str(archive), str(dest)]
    try:
        run(
            [*argv, str(bounds.unpacked), str(bounds.members)],
            env=hook_environ(dest.parent / "home"),
            inherit_env=False,
            timeout=HOOK_TIMEOUT,
            what=f"unpacking {filename}",
        )
    except CommandError as exc:
        refused = child_over_limit(exc, filename, file.url, bounds)
        if refused is not None:
            raise refused from exc
        raise ValueError(exc.stderr_tail or exc.message) from exc
    finally:
        archive.unlink(missing_ok=True)
    roots = [p for p in dest.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise ValueError("an sdist must contain exactly one top-level directory")
    return roots[0]


@functools.cache
def _discarder() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="discard")


def _discard(path: str) -> None:
    """Remove a scratch directory in the background: a build environment is thousands of
    files, and the hook's answer need not wait for them to go.  The interpreter waits for
    the removals before it exits (the executor's threads are joined then)."""
    try:
        _discarder().submit(shutil.rmtree, path, True)
    except RuntimeError:  # the interpreter is shutting down: remove it here and now
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _scratch(prefix: str) -> Iterator[str]:
    """A fresh temporary directory, removed after use (see :func:`_discard`)."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        _discard(path)


class TargetEnv:
    """A fresh virtual environment of a given interpreter (the lock's Python, not the bot's);
    ``bare``: made directly (:func:`~bot.lock.index.buildenv.make_venv`) when the
    interpreter answers the probe, for an environment no installer needs to know.  What runs
    for it (the installer, the hooks) gets :meth:`environ`, with ``home`` as its HOME."""

    def __init__(self, python: str, uv: str | None, timeout: float, *, bare: bool = False) -> None:
        self.base, self.uv, self.timeout, self.bare = python, uv, timeout, bare
        self._tmp: str | None = None
        self.python_executable = ""
        self.scripts_dir = ""
        self.home = Path()

    def __enter__(self) -> TargetEnv:
        self._tmp = tempfile.mkdtemp(prefix="nixpkgs-python-env-")
        path = Path(self._tmp) / "env"
        self.home = Path(self._tmp) / "home"
        self.scripts_dir = str(path / "bin")
        self.python_executable = str(path / "bin" / "python")
        if self.bare:
            try:
                make_venv(path, probe_interpreter(self.base))
            except UnresolvableError as exc:  # the installer's way may still work
                log.debug("%s; making the environment with the installer", exc.message)
            else:
                return self
        if self.uv:
            argv = [self.uv, "venv", "--no-config", "--quiet"]
            argv += ["--python", self.base, str(path)]
        else:
            argv = [self.base, "-m", "venv", "--without-pip", str(path)]
        run(
            argv,
            env=self.environ(),
            inherit_env=False,
            timeout=self.timeout,
            what=f"creating a build environment with {self.base}",
            hint="check the interpreter the lock's Python version is built with",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            _discard(self._tmp)
            self._tmp = None

    def make_extra_environ(self) -> dict[str, str]:
        return {"PATH": os.pathsep.join([self.scripts_dir, os.environ.get("PATH", "")])}

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a child run for this environment (see
        :func:`~bot.lock.index.hookenv.hook_environ`): its scripts first on PATH."""
        return hook_environ(self.home, {**self.make_extra_environ(), **(extra or {})})


#: resolves build requirements for an interpreter to unpacked, verified wheels (the index
#: client's :meth:`~bot.lock.index.client.IndexClient.provision`)
Provision = Callable[[Sequence[str], str], Sequence[Unpacked]]


class _Env:
    """An isolated build environment that installs only from the configured indexes."""

    def __init__(
        self,
        env: TargetEnv,
        index_urls: Sequence[str],
        uv: str | None,
        file: DistFile,
        timeout: float,
    ) -> None:
        self.env, self.index_urls, self.uv, self.file = env, index_urls, uv, file
        self.timeout = timeout

    def install(self, requirements: Sequence[str]) -> None:
        if not requirements:
            return
        with tempfile.TemporaryDirectory(prefix="nixpkgs-python-reqs-") as tmp:
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text("\n".join(requirements) + "\n", encoding="utf-8")
            argv = install_command(self.env.python_executable, reqs, self.index_urls, self.uv)
            run(
                argv,
                env=self.env.environ(),
                inherit_env=False,
                timeout=self.timeout,
                what="installing build requirements",
                hint=f"the build requirements of {self.file.filename} must be on the "
                f"configured indexes: {', '.join(self.index_urls)}",
            )

    def runner(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None:
        proc = run(
            cmd,
            cwd=Path(cwd) if cwd else None,
            env=self.env.environ(extra_environ),
            inherit_env=False,
            timeout=self.timeout,
            what="the PEP 517 backend",
        )
        log.debug("%s", proc.stdout)


@functools.cache
def _provisioner() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="provision")


class _Early(NamedTuple):
    """Wheels being provisioned for the build requirements an sdist is known to have
    (while it is unpacked and its environment made)."""

    requirements: tuple[str, ...]
    wheels: Future[Sequence[Unpacked]]


def _normal(requirements: Sequence[str]) -> tuple[str, ...]:
    out = []
    for text in requirements:
        try:
            out.append(str(Requirement(text)))
        except InvalidRequirement:
            out.append(text)  # the provisioning says what is wrong with it
    return tuple(out)


def _start(provision: Provision | None, early: Sequence[str] | None, python: str) -> _Early | None:
    if provision is None or early is None:
        return None
    wanted = _normal(early)
    return _Early(wanted, _provisioner().submit(provision, list(wanted), python))


class _ComposedEnv(_Env):
    """The environment made of the wheels ``provision`` resolves and unpacks (see
    :mod:`bot.lock.index.buildenv`): no installer runs.  Requirements that no set of wheels
    installs (a backend published only as an sdist) fall back to the installer, for
    everything this environment holds."""

    def __init__(
        self,
        env: TargetEnv,
        index_urls: Sequence[str],
        uv: str | None,
        file: DistFile,
        timeout: float,
        provision: Provision,
        early: _Early | None = None,
    ) -> None:
        super().__init__(env, index_urls, uv, file, timeout)
        self.provision = provision
        self.early = early
        self.requirements: list[str] = []
        self.fallback = False

    def _wheels(self, wanted: list[str]) -> Sequence[Unpacked]:
        early, self.early = self.early, None
        if early is not None and early.requirements == _normal(wanted):
            return early.wheels.result()
        return self.provision(wanted, self.env.base)

    def install(self, requirements: Sequence[str]) -> None:
        if not requirements:
            return
        wanted = [*self.requirements, *requirements]
        if not self.fallback:
            try:
                wheels = self._wheels(wanted)
                # a malformed wheel (its entry points, scripts) is refused here, by name
                compose(Path(self.env.scripts_dir).parent, self.env.python_executable, wheels)
            except UnresolvableError as exc:
                log.info("%s: %s; installing them with the installer", self.file.filename, exc)
                self.fallback = True
                compose(Path(self.env.scripts_dir).parent, self.env.python_executable, [])
                requirements = wanted
            except (PackageIndexError, MetadataError) as exc:
                # as an installer's failure reads: the hook's callers name the sdist
                raise CommandError(
                    f"installing the build requirements {', '.join(wanted)} from "
                    f"{', '.join(self.index_urls)} failed: {exc}",
                    hint=f"the build requirements of {self.file.filename} must be on the "
                    f"configured indexes: {', '.join(self.index_urls)}",
                ) from exc
        if self.fallback:
            super().install(requirements)
        self.requirements = wanted


def _quiet_backends() -> None:
    if not log.isEnabledFor(logging.DEBUG):
        # setuptools' deprecation chatter from the backends we ask: not ours to fix, and it
        # buries the bot's own output (-v shows it)
        warnings.filterwarnings("ignore", category=BuildBackendWarning)


def static_metadata(pyproject: Mapping[str, Any], file: DistFile) -> bytes | None:
    """Core metadata from a static PEP 621 ``[project]`` table, or None when any field the
    resolver reads is ``dynamic`` (then only the backend knows it)."""
    project = pyproject.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        return None
    dynamic = project.get("dynamic", [])
    if not isinstance(dynamic, list):
        return None
    if {"dependencies", "optional-dependencies", "requires-python"} & set(map(str, dynamic)):
        return None
    deps = project.get("dependencies", [])
    extras = project.get("optional-dependencies", {})
    requires_python = project.get("requires-python")
    if not isinstance(deps, list) or not isinstance(extras, dict):
        return None
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {file.version}"]
    if isinstance(requires_python, str):
        lines.append(f"Requires-Python: {requires_python}")
    try:
        lines += [f"Requires-Dist: {Requirement(str(d))}" for d in deps]
        for extra, reqs in sorted(extras.items()):
            lines.append(f"Provides-Extra: {extra}")
            for text in reqs if isinstance(reqs, list) else []:
                req = Requirement(str(text))
                cond = f'extra == "{extra}"'
                marker = f"({req.marker}) and {cond}" if req.marker else cond
                req.marker = None
                lines.append(f"Requires-Dist: {req}; {marker}")
    except InvalidRequirement as exc:
        raise MetadataError(
            f"invalid requirement in the pyproject.toml of {file.filename}: {exc}",
            where=file.url,
        ) from exc
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def no_interpreter(version: str, file: DistFile, why: str) -> MetadataError:
    """The one error for an sdist whose backend must run on a Python this machine lacks."""
    return MetadataError(
        f"no Python {version} interpreter to run the build backend of {file.filename} with ({why})",
        where=file.url,
        hint=f"install CPython {version} (e.g. `pyenv install {version}`) or record one "
        "in nix/local.json with `python -m bot.model.interpreters`",
    )


def cached_metadata(
    cache: Cache,
    data: bytes,
    file: DistFile,
    index_urls: Sequence[str],
    *,
    python: tuple[str, str] | None,
    uv: str | None = None,
    refresh: bool = False,
    timeout: float = HOOK_TIMEOUT,
    provision: Provision | None = None,
    limits: Limits | None = None,
) -> bytes:
    """:func:`pep517_metadata` for ``python`` = (minor version, executable), with a failure
    remembered by the sdist's sha256 and that version (``refresh`` forgets it)."""
    version = python[0] if python else f"{sys.version_info[0]}.{sys.version_info[1]}"
    if python is not None and not python[1]:
        raise no_interpreter(version, file, "its metadata is not in the sdist")
    key = f"{file.sha256}-py{version}"
    if not refresh:
        known = cache.get_json(FAILURES, key)
        if isinstance(known, dict) and isinstance(known.get("reason"), str):
            raise MetadataError(
                f"{known['reason']} (remembered from an earlier run)",
                where=file.url,
                hint=f"{known.get('hint') or ''}\nrun with --refresh to try again".strip(),
            )
    dynamic: list[str] = []
    try:
        meta = pep517_metadata(
            data,
            file,
            index_urls,
            uv=uv,
            python=python[1] if python else None,
            timeout=timeout,
            requires_out=dynamic,
            provision=provision,
            limits=limits,
        )
    except MetadataError as exc:
        cache.put_json(FAILURES, key, {"reason": exc.message, "hint": exc.hint or ""})
        raise
    if dynamic or cache.get_json(DYNAMIC, key) is None:
        cache.put_json(DYNAMIC, key, {"requires": dynamic})
    return meta


#: backends whose get_requires_for_build_wheel adds nothing to [build-system] requires
STATIC_BACKENDS = frozenset(
    {"flit_core.buildapi", "poetry.core.masonry.api", "pdm.backend", "uv_build"}
)


def cached_build_requires(
    cache: Cache,
    data: Callable[[], bytes],
    file: DistFile,
    index_urls: Sequence[str],
    *,
    python: tuple[str, str] | None,
    uv: str | None = None,
    refresh: bool = False,
    offline: bool = False,
    timeout: float = HOOK_TIMEOUT,
    provision: Provision | None = None,
    early: Sequence[str] | None = None,
    limits: Limits | None = None,
) -> tuple[Requirement, ...]:
    """What the sdist's backend asks for beyond ``[build-system] requires`` when building a
    wheel (``get_requires_for_build_wheel``: ninja for meson-python, a Rust toolchain
    installer for setuptools-rust...), asked once per sha256 and Python version and cached.
    A backend that cannot answer here is logged and counts as asking for nothing (the build
    meets the same problem and names it).  No interpreter for ``python`` (and no answer kept)
    is an error: answering nothing would make the lock depend on the machine that made it
    (the caller skips backends in :data:`STATIC_BACKENDS`, which need none).

    The answer is kept by the sdist's sha256: ``refresh`` (which the nightly always sets, to
    see new uploads) asks again only where the backend could not answer last time, so a night
    does not re-run every sdist's hook in a fresh environment."""
    version = python[0] if python else f"{sys.version_info[0]}.{sys.version_info[1]}"
    key = f"{file.sha256}-py{version}"
    known = cache.get_json(DYNAMIC, key)
    if refresh and isinstance(known, dict) and "error" in known:
        known = None  # the backend failed last time: try it again
    if not (isinstance(known, dict) and isinstance(known.get("requires"), list)):
        if python is not None and not python[1]:
            raise no_interpreter(version, file, "to ask it for its build requirements")
        if offline:
            log.warning("%s: build requirements of its backend not known here", file.filename)
            return ()
        try:
            found = pep517_build_requires(
                data(),
                file,
                index_urls,
                uv=uv,
                python=python[1] if python else None,
                timeout=timeout,
                provision=provision,
                early=early,
                limits=limits,
            )
            known = {"requires": found}
        except MetadataError as exc:
            log.warning("%s: %s", file.filename, exc.message)
            known = {"requires": [], "error": exc.message}
        cache.put_json(DYNAMIC, key, known)
    try:
        return tuple(Requirement(str(r)) for r in known["requires"])
    except InvalidRequirement as exc:
        log.warning("%s: invalid build requirement from its backend: %s", file.filename, exc)
        return ()


class BuildSystem(NamedTuple):
    """An sdist's ``[build-system]`` table, with PEP 517's defaults for what it leaves out."""

    requires: list[str]
    backend: str
    backend_path: list[str] | None

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> BuildSystem:
        table = document.get("build-system", {})
        if not isinstance(table, dict):
            table = {}
        path = table.get("backend-path")
        requires = table.get("requires", ["setuptools>=40.8.0"])
        return cls(
            # a malformed `requires` is no list of requirements: the backend then says so
            [str(r) for r in requires] if isinstance(requires, list) else [],
            str(table.get("build-backend") or LEGACY_BACKEND),
            [str(p) for p in path] if isinstance(path, list) and path else None,
        )


@contextlib.contextmanager
def _backend(
    source: Path,
    system: BuildSystem,
    interpreter: str,
    uv: str | None,
    index_urls: Sequence[str],
    file: DistFile,
    timeout: float,
    provision: Provision | None = None,
    early: _Early | None = None,
) -> Iterator[tuple[_Env, BuildBackendHookCaller]]:
    """An isolated environment of ``interpreter`` with the static build requirements
    installed (composed from wheels when ``provision`` is given, else by the installer),
    and the backend's hooks running in it."""
    with TargetEnv(interpreter, uv, timeout, bare=provision is not None) as isolated:
        env = (
            _Env(isolated, index_urls, uv, file, timeout)
            if provision is None
            else _ComposedEnv(isolated, index_urls, uv, file, timeout, provision, early)
        )
        env.install(system.requires)
        yield (
            env,
            BuildBackendHookCaller(
                str(source),
                system.backend,
                backend_path=system.backend_path,
                runner=env.runner,
                python_executable=isolated.python_executable,
            ),
        )


def _hook_error(
    hook: str, answer: object, problem: str, backend: str, file: DistFile
) -> MetadataError:
    return MetadataError(
        f"the PEP 517 backend {backend!r} of {file.filename} answered {hook} with "
        f"{type(answer).__name__} {shown(answer)}: {problem}",
        where=file.url,
        hint="the sdist's build backend is broken; exclude this version, or report it upstream",
    )


def _requirements(answer: object, hook: str, backend: str, file: DistFile) -> list[str]:
    """A hook's answer that must be a list of requirement strings (PEP 517), checked: it
    comes from the sdist's code (a str would be iterated character by character)."""
    if not isinstance(answer, list) or not all(isinstance(r, str) for r in answer):
        raise _hook_error(hook, answer, "not a list of requirement strings", backend, file)
    for text in answer:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise _hook_error(
                hook, answer, f"{text!r} is not a requirement ({exc})", backend, file
            ) from None
    return list(answer)


def _directory_name(answer: object, backend: str, file: DistFile) -> str:
    """prepare_metadata_for_build_wheel's answer: the basename of the ``.dist-info``
    directory it made, checked to be only a name (no path outside the output directory)."""
    hook = "prepare_metadata_for_build_wheel"
    if not isinstance(answer, str):
        raise _hook_error(hook, answer, "not a directory name", backend, file)
    if answer in ("", ".", "..") or any(c in answer for c in "/\\\0"):
        raise _hook_error(hook, answer, "not a plain directory name", backend, file)
    return answer


def pep517_build_requires(
    data: bytes,
    file: DistFile,
    index_urls: Sequence[str],
    *,
    uv: str | None = None,
    python: str | None = None,
    timeout: float = HOOK_TIMEOUT,
    provision: Provision | None = None,
    early: Sequence[str] | None = None,
    limits: Limits | None = None,
) -> list[str]:
    """``get_requires_for_build_wheel`` of the sdist ``data``, asked in an isolated
    environment of ``python`` with its ``[build-system] requires`` installed (``provision``:
    see :func:`_backend`; ``early``: those requirements as the caller read them, provisioned
    while the sdist is unpacked; the sdist's own are used if they differ; ``limits`` bound
    what the sdist unpacks to)."""
    _quiet_backends()
    uv = find_uv() if uv is None else (uv or None)
    interpreter = python or sys.executable
    pending = _start(provision, early, interpreter)
    with _scratch("nixpkgs-python-pep517-") as tmp:
        work = Path(tmp)
        try:
            source = _unpack(data, file, work / "src", limits)
            document = (
                tomllib.loads((source / "pyproject.toml").read_text("utf-8"))
                if (source / "pyproject.toml").is_file()
                else {}
            )
        except (tarfile.TarError, zipfile.BadZipFile, OSError, ValueError) as exc:
            raise MetadataError(f"cannot read {file.filename}: {exc}", where=file.url) from exc
        system = BuildSystem.of(document)
        backend = system.backend
        if backend in STATIC_BACKENDS and not system.backend_path:
            return []
        try:
            with _backend(
                source, system, interpreter, uv, index_urls, file, timeout, provision, pending
            ) as (_, hooks):
                answer = hooks.get_requires_for_build_wheel()
                return _requirements(answer, "get_requires_for_build_wheel", backend, file)
        except (HookMissing, BackendUnavailable, UnsupportedOperation, OSError) as exc:
            raise MetadataError(
                f"the PEP 517 backend {backend!r} of {file.filename} is unusable: "
                f"{exc or type(exc).__name__}",
                where=file.url,
            ) from exc
        except CommandError as exc:
            raise MetadataError(
                f"the PEP 517 backend of {file.filename} could not say its build requirements "
                f"with {interpreter}: {exc.message}",
                where=file.url,
                hint=exc.stderr_tail,
            ) from exc


def pep517_metadata(
    data: bytes,
    file: DistFile,
    index_urls: Sequence[str],
    *,
    uv: str | None = None,
    python: str | None = None,
    timeout: float = HOOK_TIMEOUT,
    requires_out: list[str] | None = None,
    provision: Provision | None = None,
    limits: Limits | None = None,
) -> bytes:
    """METADATA of the sdist ``data``: static PEP 621 metadata, else from its PEP 517 backend
    in an isolated environment of ``python`` (an interpreter executable; default: this one).

    ``uv``: the uv executable to install build requirements with; None finds it, "" means
    use pip.  ``timeout`` bounds each step (environment, install, hook).  ``provision``:
    compose the environment from verified wheels instead (see :func:`_backend`).
    ``limits`` bound what the sdist unpacks to (default: :meth:`Limits.from_env`).
    """
    _quiet_backends()
    uv = find_uv() if uv is None else (uv or None)
    interpreter = python or sys.executable
    with _scratch("nixpkgs-python-pep517-") as tmp:
        work = Path(tmp)
        try:
            source = _unpack(data, file, work / "src", limits)
        except (tarfile.TarError, zipfile.BadZipFile, OSError, ValueError) as exc:
            raise MetadataError(f"cannot unpack {file.filename}: {exc}", where=file.url) from exc
        document: dict[str, Any] = {}
        pyproject = source / "pyproject.toml"
        if pyproject.is_file():
            try:
                document = tomllib.loads(pyproject.read_text("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise MetadataError(
                    f"invalid pyproject.toml in {file.filename}: {exc}", where=file.url
                ) from exc
        static = static_metadata(document, file)
        if static is not None:
            log.debug("%s: static [project] metadata; no backend run", file.filename)
            return static
        system = BuildSystem.of(document)
        backend = system.backend
        try:
            with _backend(
                source, system, interpreter, uv, index_urls, file, timeout, provision
            ) as (env, hooks):
                answer = hooks.get_requires_for_build_wheel()
                dynamic = _requirements(answer, "get_requires_for_build_wheel", backend, file)
                if requires_out is not None:
                    requires_out.extend(dynamic)
                env.install(dynamic)
                out = work / "metadata"
                out.mkdir()
                dist_info = hooks.prepare_metadata_for_build_wheel(str(out), _allow_fallback=True)
                return (out / _directory_name(dist_info, backend, file) / "METADATA").read_bytes()
        except CommandError as exc:
            raise MetadataError(
                f"the PEP 517 backend of {file.filename} failed to produce metadata "
                f"with {interpreter}",
                where=file.url,
                hint=f"{exc.message}; command: {exc.command}\n{exc.stderr_tail}",
            ) from exc
        except (HookMissing, BackendUnavailable, UnsupportedOperation, OSError) as exc:
            raise MetadataError(
                f"cannot get metadata of {file.filename} from its backend {backend!r}: "
                f"{exc or type(exc).__name__}",
                where=file.url,
            ) from exc
