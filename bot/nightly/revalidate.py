"""Re-validating the overrides library: which entries still change the outcome?

Three checks, reported as :class:`Finding` values, with a suggested edit where there is one:

- ``unmatched`` (cheap, every night, every entry): the entry's ``[from, until)`` range
  matches no version of its package in any lock of the repository; suggested edit: remove it.
- ``unneeded`` / ``needed`` (a Nix build, at most ``budget`` entries a night, rotating through
  the library across nights): the package's own derivation, in one set and Python whose lock
  has a version the entry matches (the newest such version), is built with the entry left
  out (``default.nix``'s ``disabledOverrides``) as a throwaway attempt (``--no-out-link``).
  It builds and passes its import check: ``unneeded``, suggested edit ``until = "<version>"``
  (older versions may still need it; once no locked version is in range the entry turns
  ``unmatched`` and is removed).  It fails while the build with the entry succeeds:
  ``needed``.  Anything else (a timeout, a failure with the entry too, no interpreter) is
  ``inconclusive``: nothing to suggest.
- ``guard`` (no build): an entry marked ``guard = true`` only makes a failure loud (pyyaml's
  ``PYYAML_FORCE_LIBYAML = "1"``: a missing libyaml fails the build instead of giving a
  pure-Python pyyaml).  It never changes a build that succeeds, so "builds without it" says
  nothing about it, on any build: it is reported as a guard, no build is spent on it and no
  edit is suggested.  Only the ``unmatched`` check removes a guard.

Impure builds.  A standalone build (this machine's interpreters; ``PATH`` is
``/usr/local/bin:/usr/bin:/bin``, the compilers find ``/usr/include`` and ``/usr/lib``) and a
nixpkgs build with Nix's ``sandbox`` off (:func:`bot.core.nix.sandboxed`; nixpkgs builds on
GitHub's runners have it on) see the host.  There a build that succeeds without an entry may
only succeed because the host has what the entry adds, so ``unneeded`` is trusted only for an
entry none of whose fields the host can mask; otherwise the verdict is ``inconclusive``
("impure build: the host may provide what this entry adds ...").  A failure without the entry
(``needed``) is trusted on any build.  The fields (:func:`host_maskable`):

- host-maskable: ``native-build-inputs``, ``build-inputs`` (tools, headers, libraries: the
  host's ``/usr`` has many), ``system-libraries`` (the host's loader finds its libraries),
  ``imports-check`` and ``check`` (the checks run the package's code, which may run a tool
  from ``PATH`` -- gitpython runs ``git`` when imported -- or load a host library), and an
  ``env`` variable that points at the host: a value with a ``/`` (a path, a search path) or a
  variable that names a tool, flags or a search path (``CC``, ``CFLAGS``, ``PKG_CONFIG_PATH``,
  ``*_CONFIG``, ``*_PATH``, ``*_DIR``, ``*_HOME`` ...: :data:`HOST_ENV`, :data:`HOST_ENV_SUFFIXES`);
- not host-maskable: ``patches`` (they change the sdist itself), ``build-requires`` (Python
  packages come from the lock: a build's environment is a venv of them, without the host's
  site-packages) and any other ``env`` variable, read by the package's own build script
  (``SETUPTOOLS_SCM_PRETEND_VERSION = "1.0"``).  An ``env`` setting of this kind whose effect
  still depends on the host is not recognised: mark it a guard if it only makes a failure loud.

Where the last night stopped is kept outside the repository, in ``state_file`` (by default
``<cache dir>/revalidate.json``).  An entry's id is ``"<package>#<n>"``, ``n`` its 1-based
position among the ``[[override]]`` tables of ``overrides/packages/<package>.toml`` (as in
:mod:`bot.model.overrides`' ``(override #n)``).

Limits: an entry's build requirements are already in the lock (the resolver added them);
without the entry they are left out of the package's build, which also drops them when the
package's own build system requires them (then ``needed`` is reported although the entry
is redundant: the error is on the safe side).  ``overrides/default.nix`` and the sets'
``overrides.nix`` are not re-validated.

The suggested edits are made as text by :mod:`bot.nightly.overrides_edit` (:meth:`Finding.apply`,
:func:`apply_findings`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from bot.build import command as builder
from bot.build.evaluation import evaluation_key
from bot.core.errors import BotError
from bot.core.files import default_cache_dir
from bot.core.nix import sandboxed
from bot.model.interpreters import standalone_interpreters, temporary_interpreters_file
from bot.model.overrides import Override, load_overrides
from bot.nightly.overrides_edit import apply_edit, apply_edits, header_lines
from bot.nightly.revalidate_state import (
    LOCKED_FILE,
    VERDICTS_FILE,
    Locked,
    keep_verdict,
    kept_verdict,
    load_state,
    locked_versions,
    rotate,
    save_state,
)

log = logging.getLogger(__name__)

Kind = Literal["unneeded", "unmatched", "needed", "guard", "inconclusive"]
KINDS: tuple[Kind, ...] = ("unneeded", "unmatched", "needed", "guard", "inconclusive")
STATE_FILE = "revalidate.json"
BUILD_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Finding:
    """What re-validation found out about one ``[[override]]`` entry."""

    package: str
    index: int  #: 1-based position of the entry in its file
    file: str  #: repository-relative path of the TOML file
    line: int | None  #: line of the entry's ``[[override]]`` header
    kind: Kind
    reason: str  #: the entry's own reason
    versions: tuple[str, ...]  #: locked versions involved (unmatched: every locked version)
    suggestion: str = ""  #: the suggested edit, for people ("" when there is none)
    edit: Literal["remove", "until"] | None = None
    until: str | None = None  #: the new ``until`` when ``edit == "until"``
    set: str | None = None  #: where it was built
    python: str | None = None
    tested_version: str | None = None
    log_tail: str = ""
    detail: str = ""

    @property
    def id(self) -> str:
        """``"<package>#<n>"``, as ``default.nix``'s ``disabledOverrides`` takes it."""
        return f"{self.package}#{self.index}"

    @property
    def where(self) -> str:
        """``file:line`` (or ``file (override #n)``)."""
        return f"{self.file}:{self.line}" if self.line else f"{self.file} (override #{self.index})"

    def apply(self, repo: Path) -> Path | None:
        """Make the suggested edit in ``repo`` (text-level, comments kept); the file changed
        or removed, ``None`` when there is nothing to edit.

        Removing the last entry of a file removes the file.  Raises :class:`OverrideError`
        when the file no longer has this entry at this position (it was edited meanwhile) or
        the text edit would not give the intended TOML (see
        :func:`bot.nightly.overrides_edit.apply_edit`).
        """
        return apply_edit(repo, self)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "id": self.id,
            "package": self.package,
            "index": self.index,
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "reason": self.reason,
            "versions": list(self.versions),
            "suggestion": self.suggestion,
            "edit": self.edit,
            "until": self.until,
            "set": self.set,
            "python": self.python,
            "tested_version": self.tested_version,
            "log_tail": self.log_tail,
            "detail": self.detail,
        }


def _matches(entry: Override, version: str) -> bool:
    try:
        return entry.matches(version)
    except InvalidVersion:
        return False


def _vkey(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _sorted_versions(versions: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(versions), key=_vkey))


def current_system() -> str:
    """This machine's Nix system (``x86_64-linux``, ``aarch64-darwin`` ...)."""
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{arch}-{'darwin' if sys.platform == 'darwin' else 'linux'}"


# --- the night's re-validation ----------------------------------------------------------------


def _file_of(entry: Override) -> str:
    return f"overrides/packages/{entry.name}.toml"


def _describe_range(entry: Override) -> str:
    parts = []
    if entry.from_ is not None:
        parts.append(f'from = "{entry.from_}"')
    if entry.until is not None:
        parts.append(f'until = "{entry.until}"')
    return ", ".join(parts) or "no range"


def _finding(
    entry: Override,
    index: int,
    lines: Mapping[str, list[int]],
    kind: Kind,
    versions: Iterable[str],
    **kw: Any,
) -> Finding:
    headers = lines.get(entry.name, [])
    line = headers[index - 1] + 1 if index <= len(headers) else None
    return Finding(
        entry.name,
        index,
        _file_of(entry),
        line,
        kind,
        entry.reason,
        _sorted_versions(versions),
        **kw,
    )


def unmatched(
    repo: Path,
    library: Mapping[NormalizedName, list[Override]] | None = None,
    locked: Mapping[NormalizedName, list[Locked]] | None = None,
) -> list[Finding]:
    """Entries whose version range matches no locked version of their package."""
    library = load_overrides(repo) if library is None else library
    locked = locked_versions(repo) if locked is None else locked
    lines = _header_index(repo, library)
    out = []
    for name, entries in sorted(library.items()):
        versions = [lk.version for lk in locked.get(name, [])]
        for i, entry in enumerate(entries, 1):
            if any(_matches(entry, v) for v in versions):
                continue
            finding = _finding(entry, i, lines, "unmatched", versions, edit="remove")
            why = (
                f"{_describe_range(entry)} matches no locked version (locked: "
                f"{', '.join(finding.versions)})"
                if versions
                else f"{name} is in no lock"
            )
            out.append(
                replace(
                    finding,
                    detail=why,
                    suggestion=(
                        f"remove the [[override]] entry at {finding.where} "
                        f"(reason: {json.dumps(entry.reason)}): {why}"
                    ),
                )
            )
    return out


def _header_index(
    repo: Path, library: Mapping[NormalizedName, list[Override]]
) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name in library:
        try:
            out[name] = header_lines(
                (repo / "overrides" / "packages" / f"{name}.toml").read_text(encoding="utf-8")
            )
        except OSError:
            out[name] = []
    return out


def _fingerprint(entry: Override, where: Sequence[Locked]) -> str:
    """What a verdict depends on: the entry and the locked versions it applies to (with the
    systems each is built from its sdist on: an sdist-only override is judged on those)."""
    blob = repr(
        (
            entry,
            sorted(
                (lk.set, lk.python, lk.version, sorted(lk.systems), sorted(lk.sdists))
                for lk in where
            ),
        )
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _unneeded(base: Finding, entry: Override, version: str) -> Finding:
    tested = Version(version)
    if entry.from_ is not None and entry.from_ >= tested:
        edit: Literal["remove", "until"] = "remove"
        suggestion = (
            f"remove the [[override]] entry at {base.where} (reason: {json.dumps(entry.reason)})"
        )
    else:
        edit = "until"
        suggestion = (
            f'set until = "{version}" in the [[override]] entry at {base.where} '
            f"(reason: {json.dumps(entry.reason)}), or remove it if no older "
            "version needs it"
        )
    why = (
        f"{entry.name} {version} builds and passes its import check without it "
        f"(set {base.set}, Python {base.python})"
    )
    return replace(
        base,
        kind="unneeded",
        edit=edit,
        until=version if edit == "until" else None,
        suggestion=f"{suggestion}: {why}",
        detail=why,
    )


def revalidate(
    repo: Path,
    *,
    sets: Sequence[str] = (),
    budget: int = 3,
    state_file: Path | None = None,
    interpreters: Mapping[str, str] | None = None,
    nixpkgs: bool = False,
    nixpkgs_path: Path | None = None,
    timeout: float = BUILD_TIMEOUT,
    progress: Callable[[str], None] | None = None,
    sandbox: bool | None = None,
) -> list[Finding]:
    """Re-validate the overrides library of ``repo``: every ``unmatched`` entry, then up to
    ``budget`` Nix builds of entries that apply to a locked package of ``sets`` (all sets
    when empty), continuing where the last run stopped (``state_file``).

    Builds use the standalone ``interpreters`` (default: ``nix/local.json``, else detected)
    or, with ``nixpkgs``, the pinned nixpkgs (or ``nixpkgs_path``); each build is bounded by
    ``timeout`` seconds.  Standalone builds are impure; nixpkgs builds are when Nix's
    sandbox is off (``sandbox``; default: this machine's setting, :func:`bot.core.nix.sandboxed`).
    Entries marked ``guard`` that apply are reported as ``guard``, without a build.
    Nothing in the repository is changed (see :meth:`Finding.apply`, :func:`apply_findings`).
    """
    say = progress or (lambda _msg: None)
    library = load_overrides(repo)
    state = state_file or default_cache_dir() / STATE_FILE
    locked = locked_versions(repo, memo=state.with_name(LOCKED_FILE))
    findings = unmatched(repo, library, locked)
    lines = _header_index(repo, library)
    system = current_system()
    wanted = set(sets)
    # entry id -> (entry, index, the lock entries it matches that can be built here)
    candidates: dict[str, tuple[Override, int, list[Locked]]] = {}
    for name, entries in library.items():
        for i, entry in enumerate(entries, 1):
            where = [
                lk
                for lk in locked.get(name, [])
                if _matches(entry, lk.version)
                and (not wanted or lk.set in wanted)
                and system in lk.systems
            ]
            if where and entry.guard:
                findings.append(_guard(entry, i, lines, where))
            elif where:
                candidates[f"{name}#{i}"] = (entry, i, where)
    key = str(repo.resolve())
    # an entry found needed stays needed until it or the versions it applies to change:
    # skip it rather than repeat a failing build every night
    saved = load_state(state, key)
    fingerprints = {i: _fingerprint(c[0], c[2]) for i, c in candidates.items()}
    needed = {i: f for i, f in saved.needed.items() if fingerprints.get(i) == f}
    chosen = rotate([i for i in candidates if i not in needed], saved.last, budget)
    if not chosen:
        return findings
    impure = not nixpkgs or not (sandboxed() if sandbox is None else sandbox)
    if not nixpkgs and interpreters is None:
        interpreters = standalone_interpreters(repo)
    interps: Mapping[str, str] = {} if nixpkgs else dict(interpreters or {})
    opts = builder.BuildOptions(
        sets=[],
        python=None,
        out_link=None,
        keep_going=False,
        repo=repo,
        nixpkgs=nixpkgs,
        nixpkgs_path=nixpkgs_path,
        timeout=timeout,
    )
    verdicts = state.with_name(VERDICTS_FILE)
    with temporary_interpreters_file(
        None if nixpkgs else interps, prefix="nixpkgs-python-revalidate-"
    ) as file:
        for entry_id in chosen:
            entry, index, where = candidates[entry_id]
            # standalone: the builds' outcome follows from what they evaluate (as an
            # evaluation's out paths do): the same inputs, the verdict of the last build
            vkey = None
            if not nixpkgs:
                vkey = evaluation_key(
                    repo, ["revalidate", entry_id, fingerprints[entry_id]], interps
                )
            finding = _from_json(kept_verdict(verdicts, entry_id, vkey)) if vkey else None
            if finding is not None:
                kind = _trusted(finding, entry, impure=impure).kind
                say(f"override {entry_id}: {kind}, as built with these inputs before")
            else:
                say(f"re-validating override {entry_id} ({entry.reason})")
                finding = _check(opts, entry, index, where, lines, interps, file)
                if vkey is not None and finding.kind in ("needed", "unneeded"):
                    keep_verdict(verdicts, entry_id, vkey, finding.to_json())
            # the build's own verdict is kept; whether it is trusted is decided each night
            finding = _trusted(finding, entry, impure=impure)
            findings.append(finding)
            if finding.kind == "needed":
                needed[entry_id] = fingerprints[entry_id]
            save_state(state, key, entry_id, needed)
    return findings


def _from_json(data: Mapping[str, Any] | None) -> Finding | None:
    """A finding read back from :meth:`Finding.to_json` (None: not one)."""
    if data is None:
        return None
    try:
        fields = {k: v for k, v in data.items() if k != "id"}
        return Finding(**{**fields, "versions": tuple(fields["versions"])})
    except (KeyError, TypeError):
        return None


def native_only(entry: Override) -> bool:
    """Whether ``entry`` says nothing but nixpkgs inputs (which standalone builds ignore)."""
    native = entry.native_build_inputs or entry.build_inputs or entry.system_libraries
    other = (
        entry.build_requires
        or entry.env
        or entry.patches
        or entry.imports_check is not None
        or entry.check_command
    )
    return bool(native) and not other


#: ``env`` variables that name a tool, compiler flags or a search path of the host
HOST_ENV = frozenset(
    {
        "PATH", "CC", "CXX", "CPP", "LD", "AR", "NM", "RANLIB", "FC", "F77", "F90",
        "CFLAGS", "CPPFLAGS", "CXXFLAGS", "FFLAGS", "LDFLAGS", "LDSHARED", "LIBS",
        "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "LIBRARY_PATH", "LD_LIBRARY_PATH",
        "PKG_CONFIG", "PKG_CONFIG_PATH", "CMAKE_PREFIX_PATH", "CARGO", "RUSTC", "MAKE",
    }
)  # fmt: skip
#: suffixes of ``env`` variables that point at something of the host (``PG_CONFIG``,
#: ``HDF5_DIR``, ``JAVA_HOME``, ``BLAS_LIBS``, ``GIT_EXECUTABLE`` ...)
HOST_ENV_SUFFIXES = (
    "_CONFIG", "_PATH", "_DIR", "_DIRS", "_HOME", "_ROOT", "_PREFIX", "_INCLUDE",
    "_INCLUDES", "_INCLUDE_DIR", "_LIB", "_LIBS", "_LIBDIR", "_LIBRARY", "_LIBRARIES",
    "_EXECUTABLE", "_BIN", "_CMD", "_COMMAND", "_CC", "_CFLAGS", "_LDFLAGS",
)  # fmt: skip


def host_env(name: str, value: str) -> bool:
    """Whether an ``env`` setting points at the host: a path (a value with ``/``) or a
    variable naming a tool, flags or a search path (:data:`HOST_ENV`, :data:`HOST_ENV_SUFFIXES`)."""
    return "/" in value or name in HOST_ENV or name.endswith(HOST_ENV_SUFFIXES)


def host_maskable(entry: Override) -> tuple[str, ...]:
    """The fields of ``entry`` whose effect an impure build's host can supply (the module's
    docstring has the rule): an ``unneeded`` verdict of an impure build is not trusted for an
    entry with any."""
    fields = [
        key
        for key, present in (
            ("native-build-inputs", entry.native_build_inputs),
            ("build-inputs", entry.build_inputs),
            ("system-libraries", entry.system_libraries),
            ("imports-check", entry.imports_check is not None),
            ("check", entry.check_command or entry.check_requires),
        )
        if present
    ]
    fields += [f"env.{k}" for k, v in sorted(entry.env.items()) if host_env(k, v)]
    return tuple(fields)


def _trusted(finding: Finding, entry: Override, *, impure: bool) -> Finding:
    """``finding``, or for an ``unneeded`` verdict of an impure build that the host could have
    masked, ``inconclusive`` with the reason."""
    masked = host_maskable(entry) if impure and finding.kind == "unneeded" else ()
    if not masked:
        return finding
    return replace(
        finding,
        kind="inconclusive",
        edit=None,
        until=None,
        suggestion="",
        detail=(
            f"impure build: the host may provide what this entry adds ({', '.join(masked)}); "
            f"judge it on a sandboxed nixpkgs build ({finding.detail})"
        ),
    )


def _guard(
    entry: Override, index: int, lines: Mapping[str, list[int]], where: Sequence[Locked]
) -> Finding:
    return _finding(
        entry,
        index,
        lines,
        "guard",
        [lk.version for lk in where],
        detail=(
            "a guard (guard = true) only makes a failure loud: a build that succeeds without "
            "it says nothing about whether it is needed, so it is not judged by build success"
        ),
    )


def changes_wheels(entry: Override, *, nixpkgs: bool) -> bool:
    """Whether ``entry`` can change a package installed from a wheel: its imports or tests
    check (the check's ``env`` included), the system libraries a wheel is patched against,
    or, with nixpkgs, the inputs its linkage is checked against.  An entry that only changes
    a build from the sdist (``env``, ``patches``, ``build-requires``) cannot: a wheel builds
    "without it" whether or not the sdist needs it."""
    return bool(
        entry.imports_check is not None
        or entry.check_command
        or entry.check_requires
        or entry.system_libraries
        or (nixpkgs and (entry.build_inputs or entry.native_build_inputs))
    )


def _from_source(
    entry: Override, where: Sequence[Locked], *, nixpkgs: bool
) -> tuple[list[Locked], str | None]:
    """The locks that can judge ``entry``: all of them, or for an entry that only changes a
    build from the sdist, those built from the sdist on this system; and when none can, why."""
    if changes_wheels(entry, nixpkgs=nixpkgs):
        return list(where), None
    system = current_system()
    from_source = [lk for lk in where if system in lk.sdists]
    if from_source:
        return from_source, None
    sets = ", ".join(sorted({lk.set for lk in where}))
    return [], (
        f"every lock here installs {entry.name} from a wheel (set {sets}), and the entry only "
        "changes a build from its sdist: a wheel cannot tell whether it is still needed"
    )


def _check(
    opts: builder.BuildOptions,
    entry: Override,
    index: int,
    where: Sequence[Locked],
    lines: Mapping[str, list[int]],
    interps: Mapping[str, str],
    interpreters_file: Path | None,
) -> Finding:
    """Build ``entry``'s package without it (and, when that fails, with it)."""
    versions = [lk.version for lk in where]
    where, detail = _from_source(entry, where, nixpkgs=opts.nixpkgs)
    newest = max((lk.version for lk in where), key=_vkey) if where else max(versions, key=_vkey)
    at = [lk for lk in where if lk.version == newest]
    runnable = [lk for lk in at if opts.nixpkgs or lk.python in interps]
    if detail is None and not runnable:
        pythons = " or ".join(sorted({lk.python for lk in at}))
        detail = f"no standalone Python {pythons} on this machine to build it with"
    elif detail is None and not opts.nixpkgs and native_only(entry):
        # standalone builds ignore native inputs: "builds without it" would prove nothing
        detail = (
            "its nixpkgs inputs are not honoured by a standalone build; "
            "only a build with nixpkgs can tell whether it is still needed"
        )
    if detail is not None:
        return _finding(
            entry, index, lines, "inconclusive", versions, tested_version=newest, detail=detail
        )
    # newest Python first: the one most likely to show a change upstream made
    lk = sorted(runnable, key=lambda x: (_vkey(x.python), x.set), reverse=True)[0]
    base = _finding(
        entry,
        index,
        lines,
        "inconclusive",
        versions,
        set=lk.set,
        python=lk.python,
        tested_version=newest,
    )
    # the package with its runtime closure: where its imports and tests checks run
    attr = f"packages.{entry.name}.env"
    try:
        without = builder.build_one(
            opts,
            lk.set,
            lk.python,
            interps,
            interpreters_file,
            attr=attr,
            disabled_overrides=[base.id],
        )
    except BotError as exc:
        return replace(base, detail=f"building without the entry: {exc}")
    if without.ok:
        return _unneeded(base, entry, newest)
    try:
        with_entry = builder.build_one(
            opts, lk.set, lk.python, interps, interpreters_file, attr=attr
        )
    except BotError as exc:
        return replace(base, log_tail=without.log_tail, detail=f"building with the entry: {exc}")
    at_set = f"(set {lk.set}, Python {lk.python})"
    if not with_entry.ok:
        return replace(
            base,
            log_tail=with_entry.log_tail or with_entry.error or "",
            detail=f"{entry.name} {newest} fails with the entry too {at_set}",
        )
    failed = (
        ""
        if without.failed_package in (None, entry.name)
        else (f" ({without.failed_package} failed)")
    )
    return replace(
        base,
        kind="needed",
        log_tail=without.log_tail or without.error or "",
        detail=f"{entry.name} {newest} fails without it{failed} {at_set}",
    )


# --- using the findings -----------------------------------------------------------------------


def apply_findings(repo: Path, findings: Iterable[Finding]) -> list[Path]:
    """Make every suggested edit (later entries of a file first, so positions hold); the
    files changed or removed, for a commit."""
    return apply_edits(repo, findings)


def commit_message(findings: Sequence[Finding]) -> tuple[str, str]:
    """(subject, body) of the commit that makes the suggested edits."""
    edits = [f for f in findings if f.edit is not None]
    names = ", ".join(sorted({f.package for f in edits}))
    subject = f"overrides: drop or narrow entries no longer needed ({names})"
    body = "\n".join(f"- {f.suggestion}" for f in edits)
    return subject[:200], body


def to_markdown(findings: Sequence[Finding]) -> str:
    """A report section ("" when there is nothing to say)."""
    if not findings:
        return ""
    titles = {
        "unneeded": "no longer needed",
        "unmatched": "match no locked version",
        "needed": "still needed",
        "guard": "guards (not judged by build success)",
        "inconclusive": "could not tell",
    }
    out = ["### Overrides re-validation", ""]
    for kind in KINDS:
        group = [f for f in findings if f.kind == kind]
        if not group:
            continue
        out.append(f"**{titles[kind]}**")
        out.append("")
        for f in group:
            text = f.suggestion or f"`{f.id}` at {f.where}: {f.detail}"
            out.append(f"- {text}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
