"""``nixpkgs-python generate``: lock a user's own requirements and write a Nix directory.

The directory holds three files (plus copies of local ``--overrides`` sources):

- ``pylock.toml``: the lock, written by the same resolver and writer as the sets' locks;
- ``nixpkgs-python.json``: the pins (the Nix library's git URL and revision, each overrides
  source with its revision or sha256, the standalone interpreter found at generation);
- ``default.nix``: static text (a copy of ``nix/generated.nix``) that reads the two.

Nothing is written to the output directory until everything has worked: the files go to a
temporary directory beside it, which is renamed into place at the end.

Overrides sources (``--overrides``, repeatable, applied in order after the default library):

- a local path: a directory like ``overrides/`` (``packages/*.toml`` and/or ``default.nix``)
  or a ``.nix`` file holding an overlay ``self: super: { ... }``; copied into the directory;
- ``https://...``: a ``.nix`` file or a tarball of such a directory, fetched once and pinned
  by its sha256;
- ``git+URL?rev=REV#path=PATH``: ``PATH`` (default: the repository root) in the git
  repository at exactly the commit ``REV``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from bot import __version__
from bot import lock as lockfile
from bot.errors import BotError, CommandError, NixError
from bot.index.client import IndexClient
from bot.interpreters import build_options, detect
from bot.locker import build_request, index_routes, overrides_inputs
from bot.nix import eval_json, run_nix
from bot.overrides import Override, extra_build_requires, load_file, load_overrides
from bot.proc import run
from bot.resolve import resolve
from bot.sets import Located, PackageSet, read_requirements_file
from bot.targets import SUPPORTED_PYTHONS

log = logging.getLogger(__name__)

#: where the Nix library and the default overrides library are published
PROJECT_URL = "https://github.com/nixpkgs-python/nixpkgs-python"
#: the Python used when none is given and this machine has none of the supported ones
FALLBACK_PYTHON = "3.13"
#: the static Nix files (in this project's nix/ directory)
NIX_DIR = Path(__file__).resolve().parents[1] / "nix"
DEFAULT_NIX = NIX_DIR / "generated.nix"
FETCH_NIX = NIX_DIR / "generated-fetch.nix"
#: the files a generated directory holds (anything else there is not ours to replace)
LOCK_NAME = "pylock.toml"
DATA_NAME = "nixpkgs-python.json"
OWNED = frozenset({LOCK_NAME, DATA_NAME, "default.nix", "overrides"})
TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar", ".zip")
_REV = re.compile(r"[0-9a-fA-F]{40}")
_STORE_NAME_BAD = re.compile(r"[^A-Za-z0-9+._?=-]")
_GIT_SCHEMES = ("file", "https", "http", "ssh", "git")

Kind = Literal["path", "url", "git"]
SourceType = Literal["directory", "file"]


class GenerateError(BotError):
    """``generate`` was given something it cannot use."""


@dataclass(frozen=True)
class Source:
    """One ``--overrides`` source, parsed but not fetched yet."""

    spec: str  #: as the user wrote it (for messages)
    kind: Kind
    url: str = ""  #: url and git kinds: what to fetch
    rev: str = ""  #: git: the full commit id
    path: str = ""  #: git: the path inside the repository ("" = its root); path: the local path
    type: SourceType | None = None  #: known up front for URLs, after fetching otherwise


@dataclass
class Fetched:
    """A source after fetching: its pin (an entry of nixpkgs-python.json's "overrides") and
    its data entries (for their build requirements)."""

    pin: dict[str, str]
    data: dict[NormalizedName, list[Override]] = field(default_factory=dict)


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
    build_command: list[str]

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


# --- overrides sources: parsing -------------------------------------------------------------


def check_rev(rev: str, where: str) -> str:
    """A full 40-hex commit id, lower-cased; anything else is a GenerateError."""
    if not _REV.fullmatch(rev):
        raise GenerateError(
            f"{rev!r} is not a full commit id (40 hexadecimal digits)",
            where=where,
            hint="a branch, tag or short id can move or be ambiguous; "
            "find the full id with `git ls-remote URL` or `git rev-parse REF`",
        )
    return rev.lower()


def parse_git_source(spec: str) -> Source:
    """Parse ``git+URL?rev=REV#path=PATH`` (``#path`` optional: the repository root)."""
    parts = urlsplit(spec)
    inner_scheme = parts.scheme.removeprefix("git+")
    if not parts.scheme.startswith("git+") or inner_scheme not in _GIT_SCHEMES:
        raise GenerateError(
            f"unsupported git URL scheme {parts.scheme!r}",
            where=spec,
            hint=f"use git+{'/git+'.join(_GIT_SCHEMES)}, e.g. "
            "git+https://example.org/repo.git?rev=<commit>#path=overrides",
        )
    if inner_scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise GenerateError(
                "a git+file URL needs an absolute path",
                where=spec,
                hint="write git+file:///absolute/path/to/repo?rev=...",
            )
    elif not parts.netloc:
        raise GenerateError("the git URL has no host", where=spec)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"rev"})
    if unknown:
        raise GenerateError(
            f"unknown query parameter(s) {', '.join(unknown)}",
            where=spec,
            hint="only ?rev=<full commit id> is understood (the path goes in #path=...)",
        )
    revs = query.get("rev", [])
    if len(revs) != 1 or not revs[0]:
        raise GenerateError(
            "a git source needs exactly one ?rev=<full commit id>",
            where=spec,
            hint="pinning a commit keeps the generation reproducible; "
            "find it with `git ls-remote URL`",
        )
    rev = check_rev(revs[0], spec)
    path = ""
    if parts.fragment:
        fragment = parse_qs(parts.fragment, keep_blank_values=True)
        if set(fragment) != {"path"} or len(fragment["path"]) != 1:
            raise GenerateError(
                f"cannot read the fragment {parts.fragment!r}",
                where=spec,
                hint="the fragment is #path=<directory or .nix file in the repository>",
            )
        path = _repo_path(fragment["path"][0], spec)
    url = urlunsplit((inner_scheme, parts.netloc, parts.path, "", ""))
    return Source(
        spec, "git", url=url, rev=rev, path=path, type="file" if path.endswith(".nix") else None
    )


def _repo_path(text: str, spec: str) -> str:
    pure = PurePosixPath(unquote(text))
    if pure.is_absolute() or ".." in pure.parts:
        raise GenerateError(
            f"path {text!r} must be relative to the repository root and stay inside it",
            where=spec,
        )
    return "" if str(pure) == "." else str(pure)


def parse_url_source(spec: str) -> Source:
    """An ``https://`` (or ``http://``) URL of a ``.nix`` file or of a tarball."""
    parts = urlsplit(spec)
    if not parts.netloc:
        raise GenerateError("the URL has no host", where=spec)
    name = parts.path.rsplit("/", 1)[-1]
    if name.endswith(".nix"):
        kind: SourceType = "file"
    elif name.endswith(TARBALL_SUFFIXES):
        kind = "directory"
    else:
        raise GenerateError(
            "cannot tell what the URL holds",
            where=spec,
            hint="use the URL of a .nix file (an overlay) or of a tarball (.tar.gz, .zip...) "
            "of a directory like overrides/",
        )
    return Source(spec, "url", url=spec, type=kind)


def parse_source(spec: str, cwd: Path) -> Source:
    """Parse one ``--overrides`` argument (nothing is fetched yet)."""
    scheme = urlsplit(spec).scheme
    if scheme.startswith("git+"):
        return parse_git_source(spec)
    if scheme in ("https", "http"):
        return parse_url_source(spec)
    if scheme == "file":
        raise GenerateError(
            "file:// URLs are not overrides sources",
            where=spec,
            hint="give the local path itself, or git+file:///repo?rev=<commit>#path=<path>",
        )
    path = (cwd / spec).resolve()
    if path.is_dir():
        kind: SourceType = "directory"
    elif path.is_file() and path.suffix == ".nix":
        kind = "file"
    elif path.exists():
        raise GenerateError(
            "an overrides source is a directory or a .nix file",
            where=str(path),
            hint="a directory like overrides/ (packages/*.toml, default.nix), "
            "or a .nix file holding `self: super: { ... }`",
        )
    else:
        raise GenerateError(
            "overrides source not found",
            where=str(path),
            hint="give an existing directory or .nix file, an https:// URL, "
            "or git+URL?rev=<commit>#path=<path>",
        )
    return Source(spec, "path", path=str(path), type=kind)


# --- overrides sources: fetching ------------------------------------------------------------


def _error_lines(exc: CommandError) -> str:
    """The last ``error:`` line of a failed command, without nix's advice for Nix code."""
    lines = [
        ln.strip().removeprefix("error: ")
        for ln in exc.stderr_tail.splitlines()
        if ln.strip().startswith("error:")
    ]
    return re.sub(r"\s*Please make sure .*$", "", lines[-1]) if lines else exc.message


def head_rev(url: str) -> str:
    """The commit ``HEAD`` of the git repository ``url`` points to (``git ls-remote``)."""
    try:
        proc = run(
            ["git", "ls-remote", url, "HEAD"],
            timeout=120,
            what="git ls-remote",
            env={"GIT_TERMINAL_PROMPT": "0"},
        )
    except CommandError as exc:
        raise GenerateError(
            f"cannot read the current revision of {url}: {_error_lines(exc)}",
            where="--default-overrides-url",
            hint="check the URL, or pin a revision with --default-overrides-rev <commit>",
        ) from None
    fields = proc.stdout.split()
    if not fields or not _REV.fullmatch(fields[0]):
        raise GenerateError(
            f"{url} has no HEAD",
            where="--default-overrides-url",
            hint="pin a revision with --default-overrides-rev <commit>",
        )
    return fields[0].lower()


def fetch_git(url: str, rev: str, where: str) -> Path:
    """Fetch ``url`` at commit ``rev`` with ``builtins.fetchGit`` (as default.nix will)."""
    try:
        out = eval_json(FETCH_NIX, argstrs={"url": url, "rev": rev})
    except NixError as exc:
        raise GenerateError(
            f"cannot fetch {url} at revision {rev}: {_error_lines(exc)}",
            where=where,
            hint="check that the repository is reachable and that the commit exists in it "
            "(`git ls-remote URL`, or `git branch --contains REV` in a clone)",
        ) from None
    return Path(str(out))


def _store_name(url: str, default: str) -> str:
    name = _STORE_NAME_BAD.sub("-", urlsplit(url).path.rsplit("/", 1)[-1]).lstrip(".")
    return name or default


def fetch_url(source: Source) -> tuple[Path, dict[str, str]]:
    """Fetch a URL once with ``nix-prefetch-url``: (local path, pin with its sha256)."""
    unpack = source.type == "directory"
    name = "source" if unpack else _store_name(source.url, "overrides.nix")
    args = [source.url, "--name", name, "--print-path", *(["--unpack"] if unpack else [])]
    try:
        proc = run_nix("nix-prefetch-url", args, timeout=600, what="nix-prefetch-url")
    except NixError as exc:
        raise GenerateError(
            f"cannot fetch the overrides source: {_error_lines(exc)}",
            where=source.spec,
            hint="check the URL (it is fetched once now and pinned by its sha256)",
        ) from None
    lines = proc.stdout.split()
    sha256, path = lines[-2], lines[-1]
    pin = {
        "kind": "url",
        "type": str(source.type),
        "url": source.url,
        "sha256": sha256,
        "name": name,
    }
    return Path(path), pin


def load_data(directory: Path) -> dict[NormalizedName, list[Override]]:
    """The data entries of an overrides directory (``packages/*.toml``), validated."""
    return {
        canonicalize_name(p.stem): entries
        for p in sorted(directory.glob("packages/*.toml"))
        if (entries := load_file(p, directory))
    }


def fetch_source(source: Source, index: int, staging: Path) -> Fetched:
    """Fetch (or copy, for a local path into ``staging``) one source and validate it."""
    if source.kind == "git":
        checkout = fetch_git(source.url, source.rev, source.spec)
        local = checkout / source.path if source.path else checkout
        if not local.exists():
            raise GenerateError(
                f"{source.path!r} does not exist at revision {source.rev}",
                where=source.spec,
                hint="check #path=... against the repository at that commit",
            )
        pin = {"kind": "git", "url": source.url, "rev": source.rev, "path": source.path}
    elif source.kind == "url":
        local, pin = fetch_url(source)
    else:
        origin = Path(source.path)
        stem = _STORE_NAME_BAD.sub("-", origin.stem if source.type == "file" else origin.name)
        relative = f"overrides/{index}-{stem}" + (".nix" if source.type == "file" else "")
        local = staging / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        if source.type == "directory":
            shutil.copytree(origin, local, symlinks=False)
        else:
            shutil.copyfile(origin, local)
        pin = {"kind": "path", "path": relative, "source": str(origin)}
    kind: SourceType = "directory" if local.is_dir() else "file"
    if kind == "file" and local.suffix != ".nix" and source.kind != "url":
        raise GenerateError(
            f"{local.name!r} is neither a directory nor a .nix file",
            where=source.spec,
        )
    if kind == "directory" and not (
        (local / "packages").is_dir() or (local / "default.nix").is_file()
    ):
        raise GenerateError(
            "the directory holds neither packages/*.toml nor default.nix",
            where=source.spec,
            hint="point at a directory like overrides/ of nixpkgs-python, or at a .nix file",
        )
    pin["type"] = kind
    return Fetched(pin, load_data(local) if kind == "directory" else {})


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


def fetch_library(url: str, rev: str | None, say: Callable[[str], None]) -> tuple[Path, str]:
    """The nixpkgs-python repository at ``rev`` (default: its HEAD): (checkout, rev)."""
    if rev is None:
        say(f"reading the revision of {url}")
        rev = head_rev(url)
    say(f"fetching {url} at {rev[:12]}")
    checkout = fetch_git(url, rev, "--default-overrides-url")
    if not (checkout / "nix" / "set.nix").is_file():
        raise GenerateError(
            f"revision {rev} of {url} has no nix/set.nix (the nixpkgs-python Nix library)",
            where="--default-overrides-url",
            hint="point --default-overrides-url/--default-overrides-rev at nixpkgs-python",
        )
    return checkout, rev


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

    with _staging(out) as staging:
        library, library_rev = fetch_library(opts.library_url, pinned_rev, say)
        libraries: list[Mapping[NormalizedName, list[Override]]] = []
        if opts.default_overrides:
            libraries.append(load_overrides(library))
        fetched = []
        for number, source in enumerate(sources, 1):
            say(f"fetching {source.spec}")
            fetched.append(fetch_source(source, number, staging))
            libraries.append(fetched[-1].data)
        say("resolving")
        text, document = _lock(opts, requirements, python, libraries, started)
        lockfile.write_atomic(staging / LOCK_NAME, text)
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
        lockfile.write_atomic(
            staging / DATA_NAME, json.dumps(pins, indent=2, sort_keys=True) + "\n"
        )
    command = ["nix-build", str(out)]
    for key, value in build_options(interpreters.values()).items():
        command += ["--option", key, value]
    return GenerateResult(
        out=out,
        python=python,
        packages=len(document["packages"]),
        roots=list(lockfile.provenance(document).get("roots", [])),
        library_url=opts.library_url,
        library_rev=library_rev,
        interpreter=interpreters.get(python),
        build_command=command,
    )


def _lock(
    opts: GenerateOptions,
    requirements: Sequence[Located],
    python: str,
    libraries: Sequence[Mapping[NormalizedName, list[Override]]],
    started: datetime,
) -> tuple[str, dict[str, Any]]:
    """Resolve the requirements (with every overrides library's build requirements)."""
    name = _STORE_NAME_BAD.sub("-", opts.requirements.stem) or "requirements"
    pset = PackageSet(
        name=name,
        path=opts.requirements.parent,
        description="",
        maintainers=(),
        python=(python,),
        requirements=tuple(requirements),
    )

    def extra(pkg: NormalizedName, version: Version) -> list[Requirement]:
        return [r for lib in libraries for r in extra_build_requires(lib, pkg, version)]

    exclude_newer = opts.exclude_newer or started
    request = build_request(pset, python, exclude_newer, extra)
    routes = tuple(index_routes(pset, opts.index_url))
    client = IndexClient(
        routes, cache_dir=opts.cache_dir, retries=opts.retries, concurrency=opts.concurrency
    )
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
    )
    text = lockfile.dumps(lockfile.build_lock(resolution, info, request.targets))
    document = tomllib.loads(text)
    lockfile.validate(document, LOCK_NAME)
    return text, document
