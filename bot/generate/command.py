"""``nixpkgs-python generate``: lock a user's own requirements and write a Nix directory.

The directory holds three files (plus copies of local ``--overrides`` sources):

- ``pylock.toml``: the lock, written by the same resolver and writer as the sets' locks;
- ``nixpkgs-python.json``: the pins (the Nix library's git URL and revision, each overrides
  source with its revision or sha256, the standalone interpreter found at generation);
- ``default.nix``: static text (a copy of ``nix/generated.nix``) that reads the two.

Nothing is written to the output directory until everything has worked: the files go to a
temporary directory beside it, which is renamed into place at the end.

The ``--overrides`` sources and the default overrides library are parsed, fetched and
pinned by :mod:`bot.generate.sources`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version

from bot import SUPPORTED_PYTHONS, __version__
from bot.core import files
from bot.core.repolock import lock_if_in_repository
from bot.generate.sources import (
    NIX_DIR,
    STORE_NAME_BAD,
    GenerateError,
    check_rev,
    fetch_library,
    fetch_source,
    parse_source,
)
from bot.lock import document as lockfile
from bot.lock.command import build_request, index_routes, overrides_inputs
from bot.lock.index.client import IndexClient
from bot.lock.resolve import resolve
from bot.model import locks
from bot.model.interpreters import build_options, detect
from bot.model.nixpkgs import PIN_FILE, RELEASES, PinError, Release, parse_pin
from bot.model.overrides import Override, extra_build_requires, load_overrides
from bot.model.sets import Located, PackageSet, read_requirements_file

log = logging.getLogger(__name__)

#: where the Nix library and the default overrides library are published
PROJECT_URL = "https://github.com/nixpkgs-python/nixpkgs-python"
#: the Python used when none is given and this machine has none of the supported ones
FALLBACK_PYTHON = "3.13"
#: the static Nix file a generated directory's default.nix is a copy of
DEFAULT_NIX = NIX_DIR / "generated.nix"
#: the files a generated directory holds (anything else there is not ours to replace)
LOCK_NAME = "pylock.toml"
DATA_NAME = "nixpkgs-python.json"
OWNED = frozenset({LOCK_NAME, DATA_NAME, "default.nix", "overrides"})


@dataclass
class GenerateOptions:
    """Parsed options of ``nixpkgs-python generate``."""

    requirements: Path
    out: Path
    python: str | None = None  #: None: the newest supported Python found on this machine
    exclude_newer: datetime | None = None  #: None: now
    index_url: str | None = None
    default_overrides: bool = True
    library_url: str = PROJECT_URL
    library_rev: str | None = None  #: None: the URL's current HEAD
    overrides: Sequence[str] = ()
    cache_dir: Path | None = None
    retries: int = 4
    concurrency: int = 16
    cwd: Path | None = None  #: resolves relative local --overrides paths (default: cwd)
    #: Nix systems to lock for (empty: every system of the pinned nixpkgs release)
    systems: Sequence[str] = ()
    prefer: str = "wheel"  #: "wheel" or "sdist" (build every package from source)


@dataclass
class GenerateResult:
    """What ``generate`` wrote."""

    out: Path
    python: str
    packages: int
    roots: list[str]
    library_url: str
    library_rev: str
    interpreter: str | None
    build_command: list[str]  #: with the pinned nixpkgs (the default of the generated file)
    standalone_command: list[str]  #: with the interpreter found here (``--arg pkgs null``)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "out": str(self.out),
            "python": self.python,
            "packages": self.packages,
            "roots": self.roots,
            "library": {"url": self.library_url, "rev": self.library_rev},
            "interpreter": self.interpreter,
            "build-command": self.build_command,
            "standalone-build-command": self.standalone_command,
        }


# --- requirements ---------------------------------------------------------------------------


def read_requirements(path: Path) -> list[Located]:
    """The requirement lines of a requirements file, each with ``file:line``.

    Parsed by the same code as a set's requirements.txt, so errors look the same.
    """
    if not path.is_file():
        raise GenerateError(
            "requirements file not found",
            where=str(path),
            hint="pass an existing file with -r, e.g. -r requirements.txt",
        )
    try:
        located = read_requirements_file(
            path,
            options_hint="write one PEP 508 requirement per line; give the index with --index-url",
            url_hint="publish the package to an index and pass it with --index-url",
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise GenerateError(f"cannot read: {exc}", where=str(path)) from None
    if not located:
        raise GenerateError(
            "the requirements file lists no packages",
            where=str(path),
            hint="write one PEP 508 requirement per line, e.g. 'requests>=2'",
        )
    return located


# --- the nixpkgs release -----------------------------------------------------------------------


def library_release(library: Path, url: str, rev: str) -> Release:
    """The release of the nixpkgs the library at ``rev`` pins (its ``nix/nixpkgs.json``): the
    systems and wheel baselines the lock is made for.  A release this nixpkgs-python has no
    row for is one error: an older bot cannot know that release's baselines."""
    where = f"{url} at {rev[:12]}: {PIN_FILE}"
    try:
        data = json.loads((library / PIN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenerateError(
            "the Nix library has no nixpkgs pin",
            where=where,
            hint="point --default-overrides-url/--default-overrides-rev at nixpkgs-python",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenerateError(f"the nixpkgs pin is unreadable: {exc}", where=where) from None
    named = data.get("release") if isinstance(data, dict) else None
    if isinstance(named, str) and named not in RELEASES:
        raise GenerateError(
            f"the Nix library pins nixpkgs {named}, which nixpkgs-python {__version__} does not "
            f"know (it knows {', '.join(RELEASES)})",
            where=where,
            hint="update nixpkgs-python (a newer one knows the release's systems and wheel "
            "baselines), or pin an older library with --default-overrides-rev",
        )
    try:
        return parse_pin(data, library / PIN_FILE).facts
    except PinError as exc:
        raise GenerateError(f"the nixpkgs pin is invalid: {exc.message}", where=where) from None


def _check_systems(systems: Sequence[str], release: Release) -> None:
    unsupported = sorted(set(systems) - set(release.systems))
    if unsupported:
        raise GenerateError(
            f"nixpkgs {release.name} (the Nix library's pin) does not support "
            f"{', '.join(unsupported)}",
            where="--system",
            hint=f"nixpkgs {release.name} has {', '.join(release.systems)}",
        )


# --- the command ----------------------------------------------------------------------------


def _check_out_dir(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise GenerateError(
            "the output exists and is not a directory", where=str(out), hint="choose another -o DIR"
        )
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OWNED)
        if foreign:
            raise GenerateError(
                f"the output directory holds files generate did not write: "
                f"{', '.join(foreign[:5])}",
                where=str(out),
                hint="choose a new or empty directory with -o DIR; a directory written by "
                "generate is replaced as a whole",
            )


def _pick_python(requested: str | None, found: Mapping[str, str]) -> str:
    if requested is not None:
        if requested not in SUPPORTED_PYTHONS:
            raise GenerateError(
                f"unsupported Python version {requested!r}",
                where="--python",
                hint=f"use one of {', '.join(SUPPORTED_PYTHONS)}",
            )
        return requested
    return max(found, key=Version) if found else FALLBACK_PYTHON


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temporary directory beside ``out``; it replaces ``out`` when the block succeeds and
    is removed (with any parent directories this created) when it fails."""
    created = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield staging
        # mkdtemp makes it private; a generated directory is as readable as any checkout
        os.chmod(staging, 0o755)  # noqa: S103
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / out.name)
        os.rename(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in created:
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise


def generate(
    opts: GenerateOptions, *, progress: Callable[[str], None] | None = None
) -> GenerateResult:
    """Lock ``opts.requirements`` and write ``opts.out``; raise BotError, writing nothing, on
    bad input."""
    say = progress or (lambda _msg: None)
    started = datetime.now(UTC).replace(microsecond=0)
    cwd = opts.cwd or Path.cwd()
    out = opts.out if opts.out.is_absolute() else cwd / opts.out
    # everything that needs no network is checked first
    _check_out_dir(out)
    requirements = read_requirements(
        opts.requirements if opts.requirements.is_absolute() else cwd / opts.requirements
    )
    sources = [parse_source(spec, cwd) for spec in opts.overrides]
    pinned_rev = (
        None if opts.library_rev is None else check_rev(opts.library_rev, "--default-overrides-rev")
    )
    if not DEFAULT_NIX.is_file():
        raise GenerateError(
            "the Nix library's generated.nix is missing",
            where=str(DEFAULT_NIX),
            hint="install nixpkgs-python from a checkout (pip install -e .)",
        )
    found = detect()
    python = _pick_python(opts.python, found)
    interpreters = {python: found[python]} if python in found else {}

    with lock_if_in_repository(out, "generate"), _staging(out) as staging:
        library, library_rev = fetch_library(opts.library_url, pinned_rev, say)
        # the lock is for the nixpkgs the generated default.nix builds with: the library's pin
        release = library_release(library, opts.library_url, library_rev)
        _check_systems(opts.systems, release)
        libraries: list[Mapping[NormalizedName, list[Override]]] = []
        if opts.default_overrides:
            libraries.append(load_overrides(library))
        fetched = []
        for number, source in enumerate(sources, 1):
            say(f"fetching {source.spec}")
            fetched.append(fetch_source(source, number, staging))
            libraries.append(fetched[-1].data)
        say("resolving")
        text, document = _lock(opts, requirements, python, libraries, started, release)
        files.write_atomic(staging / LOCK_NAME, text)
        shutil.copyfile(DEFAULT_NIX, staging / "default.nix")
        pins = {
            "format": 1,
            "generated-by": f"nixpkgs-python {__version__}",
            "requirements": str(opts.requirements),
            "python": python,
            "library": {"url": opts.library_url, "rev": library_rev},
            "defaultOverrides": opts.default_overrides,
            "overrides": [f.pin for f in fetched],
            "interpreters": interpreters,
        }
        files.write_atomic(staging / DATA_NAME, json.dumps(pins, indent=2, sort_keys=True) + "\n")
    command = ["nix-build", str(out)]  # with the pinned nixpkgs of the library's revision
    standalone = [*command, "--arg", "pkgs", "null"]
    for key, value in build_options(interpreters.values()).items():
        standalone += ["--option", key, value]
    return GenerateResult(
        out=out,
        python=python,
        packages=len(document["packages"]),
        roots=list(locks.provenance(document).get("roots", [])),
        library_url=opts.library_url,
        library_rev=library_rev,
        interpreter=interpreters.get(python),
        build_command=command,
        standalone_command=standalone,
    )


def _lock(
    opts: GenerateOptions,
    requirements: Sequence[Located],
    python: str,
    libraries: Sequence[Mapping[NormalizedName, list[Override]]],
    started: datetime,
    release: Release,
) -> tuple[str, dict[str, Any]]:
    """Resolve the requirements (with every overrides library's build requirements)."""
    name = STORE_NAME_BAD.sub("-", opts.requirements.stem) or "requirements"
    pset = PackageSet(
        name=name,
        path=opts.requirements.parent,
        description="",
        maintainers=(),
        python=(python,),
        requirements=tuple(requirements),
        prefer=opts.prefer,
        systems=tuple(sorted(set(opts.systems))),
    )

    def extra(pkg: NormalizedName, version: Version) -> list[Requirement]:
        return [r for lib in libraries for r in extra_build_requires(lib, pkg, version)]

    exclude_newer = opts.exclude_newer or started
    request = build_request(pset, python, exclude_newer, extra, release=release)
    routes = tuple(index_routes(pset, opts.index_url))
    client = IndexClient(
        routes, cache_dir=opts.cache_dir, retries=opts.retries, concurrency=opts.concurrency
    )
    # sdist metadata hooks run with the Python being locked (when this machine has it)
    client.build_python = (python, detect([python]).get(python, ""))
    try:
        resolution = resolve(client, request, concurrency=opts.concurrency)
    finally:
        client.close()
    info = lockfile.LockInfo(
        set_name=name,
        python=python,
        exclude_newer=exclude_newer,
        indexes=[r.url for r in routes],
        inputs_hash=pset.inputs_hash(python, [overrides_inputs(lib) for lib in libraries]),
        origin="generate",
    )
    text = lockfile.dumps(lockfile.build_lock(resolution, info, request.targets))
    document = tomllib.loads(text)
    lockfile.validate(document, LOCK_NAME)
    return text, document
