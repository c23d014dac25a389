"""Where ``nixpkgs-python generate`` gets overrides from: parsing, fetching and pinning them.

Overrides sources (``--overrides``, repeatable, applied in order after the default library):

- a local path: a directory like ``overrides/`` (``packages/*.toml`` and/or ``default.nix``)
  or a ``.nix`` file holding an overlay ``self: super: { ... }``; copied into the directory;
- ``https://...``: a ``.nix`` file or a tarball of such a directory, fetched once and pinned
  by its sha256;
- ``git+URL?rev=REV#path=PATH``: ``PATH`` (default: the repository root) in the git
  repository at exactly the commit ``REV``.

The default overrides library is the nixpkgs-python repository itself, at a pinned commit
(default: its current ``HEAD``, looked up once with ``git ls-remote``).  The command that
uses all this is :mod:`bot.generate.command`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from packaging.utils import NormalizedName, canonicalize_name

from bot.core.errors import BotError, CommandError, NixError
from bot.core.nix import eval_json, run_nix
from bot.core.proc import run
from bot.model.overrides import Override, load_file

#: the static Nix files (in this project's nix/ directory)
NIX_DIR = Path(__file__).resolve().parents[2] / "nix"
FETCH_NIX = NIX_DIR / "generated-fetch.nix"
TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar", ".zip")
#: characters a Nix store name (or a file name generate derives from one) cannot hold
STORE_NAME_BAD = re.compile(r"[^A-Za-z0-9+._?=-]")
_REV = re.compile(r"[0-9a-fA-F]{40}")
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


# --- parsing --------------------------------------------------------------------------------


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


# --- fetching -------------------------------------------------------------------------------


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
    name = STORE_NAME_BAD.sub("-", urlsplit(url).path.rsplit("/", 1)[-1]).lstrip(".")
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
        stem = STORE_NAME_BAD.sub("-", origin.stem if source.type == "file" else origin.name)
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


# --- the default overrides library ----------------------------------------------------------


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
