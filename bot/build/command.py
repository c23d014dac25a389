"""``nixpkgs-python build``: build each set's interpreter environment with Nix.

One ``nix-build`` per (set, Python version) of ``default.nix``'s ``<set>.py3XY.python``.  A
failing set never stops the others; a failure names the package whose derivation failed and
carries the tail of its build log.  With ``out_link`` set, ``<out_link>-<set>-py3XY`` links to
the environment, so ``<out_link>-<set>-py3XY/bin/python`` runs it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from bot.build import evaluation
from bot.build.suggest import SuggestError, Suggestion, render, repo_map, suggest
from bot.core.errors import BotError, NixError
from bot.core.nix import run_nix
from bot.core.proc import tail
from bot.lock.document import read_lock
from bot.model.interpreters import (
    build_options,
    standalone_interpreters,
    temporary_interpreters_file,
)
from bot.model.locks import locked_pythons, python_tag, set_lock_path

#: nix's messages naming a failed derivation (Nix 2.8 and later)
FAILED_DRV = re.compile(
    r"(?:builder for|hash mismatch in fixed-output derivation|cannot build derivation) "
    r"'(/nix/store/[a-z0-9]{32}-([^']+)\.drv)'"
)
#: the Nix library's trace of an override a standalone build cannot honour
NOT_HONOURED = re.compile(
    r"^trace: (nixpkgs-python: package '[^']+': override not honoured.*)$", re.M
)
#: the builder's linkage check: a library found only on this machine (standalone builds)
LINKAGE_WARNING = re.compile(r"^(?:[^\n]*> )?nixpkgs-python: (linkage check: warning: .*)$", re.M)
#: the Nix library's line naming a package whose check failed an environment (nix/builder.py)
CHECK_FAILED = re.compile(r"nixpkgs-python: package '([^']+)' (?:imports|tests) check failed")
LOG_LINES = 30


@dataclass
class BuildOptions:
    """Parsed options of ``nixpkgs-python build``.

    ``keep_going`` lets nix build every package it can within a set (other sets are always
    built).  ``nixpkgs`` (the default) builds with nixpkgs: the one pinned in
    ``nix/nixpkgs.json``, or ``nixpkgs_path`` when given, with the machine's substituters
    left on (the public cache serves that nixpkgs' interpreters and stdenv).  ``nixpkgs=False``
    builds with the standalone interpreters (``interpreters``; by default ``nix/local.json``,
    else detected) and no substituters: outputs for this machine only.
    """

    sets: list[str]
    python: str | None
    out_link: Path | None
    keep_going: bool
    repo: Path
    nixpkgs: bool = True
    nixpkgs_path: Path | None = None
    interpreters: Mapping[str, str] | None = None
    timeout: float = 4 * 3600
    #: derivations nix builds at once (``--max-jobs``); None: one per core of the machine.
    #: Each build may use every core (``--cores 0``: an environment runs its checks in
    #: parallel).
    max_jobs: int | None = None
    #: the Nix system to build for (default.nix's ``system``; None: this machine's), with
    #: nixpkgs only.  Another system builds on remote builders (nix.conf ``builders``) or,
    #: for a system this machine can run, with ``extra-platforms``.
    system: str | None = None


@dataclass
class BuildResult:
    """The outcome of building one set for one Python version."""

    set: str
    python: str
    ok: bool
    system: str | None = None
    out_path: str | None = None
    out_link: Path | None = None
    #: the environment's runtime closure (every package of the set), for the binary cache
    store_paths: list[str] = field(default_factory=list)
    failed_package: str | None = None
    failed_packages: list[str] = field(default_factory=list)
    failed_drv: str | None = None
    log_tail: str = ""
    error: str | None = None
    duration: float = 0.0
    #: override entries that would fix the failed package, from its log (bot/build/suggest.py)
    suggestions: list[Suggestion] = field(default_factory=list)
    #: override entries this build could not honour (standalone: no nixpkgs inputs)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "set": self.set,
            "python": self.python,
            "system": self.system,
            "ok": self.ok,
            "out_path": self.out_path,
            "out_link": str(self.out_link) if self.out_link else None,
            "store_paths": len(self.store_paths),
            "failed_package": self.failed_package,
            "failed_packages": self.failed_packages,
            "failed_drv": self.failed_drv,
            "log_tail": self.log_tail,
            "error": self.error,
            "suggestions": [s.to_json() for s in self.suggestions],
            "notes": self.notes,
            "seconds": round(self.duration, 3),
        }


def package_of(drv_name: str) -> str:
    """The package a derivation name belongs to.

    ``python3.12-foo-bar-1.0`` (a package) -> ``foo-bar``; an artifact's fetch derivation is
    named after its file (``foo_bar-1.0-py3-none-any.whl``, ``foo-bar-1.0.tar.gz``).
    """
    if drv_name.endswith(".whl"):
        try:
            return str(parse_wheel_filename(drv_name)[0])
        except InvalidWheelFilename:
            pass
    elif drv_name.endswith((".tar.gz", ".zip")):
        try:
            return str(parse_sdist_filename(drv_name)[0])
        except InvalidSdistFilename:
            pass
    match = re.match(r"^python3\.\d+-(.+)-[^-]+$", drv_name)
    if match:
        return str(canonicalize_name(match.group(1)))
    return drv_name


def failed_derivations(stderr: str) -> list[tuple[str, str]]:
    """(drv path, package) of every derivation nix reports as failed, in order, deduplicated."""
    seen: dict[str, str] = {}
    for match in FAILED_DRV.finditer(stderr):
        drv, name = match.group(1), match.group(2)
        if drv not in seen:
            seen[drv] = package_of(name)
    return list(seen.items())


def failed_checks(text: str) -> list[str]:
    """The packages whose checks failed an environment's build (in the order reported)."""
    return list(dict.fromkeys(str(canonicalize_name(m)) for m in CHECK_FAILED.findall(text)))


def jobs_args(max_jobs: int | None) -> list[str]:
    """``--max-jobs N|auto --cores 0``: use the machine's cores."""
    return ["--max-jobs", "auto" if max_jobs is None else str(max_jobs), "--cores", "0"]


def error_block(stderr: str, drv: str) -> str:
    """nix's own ``error:`` message about ``drv`` (e.g. a hash mismatch with both hashes)."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("error:") and drv in line:
            block = [line.removeprefix("error: ")]
            for follow in lines[i + 1 :]:
                if follow.startswith("error:"):
                    break
                if follow.strip():
                    block.append(follow.strip())
            return "\n".join(block)
    return ""


def full_log(drv: str) -> str:
    """``drv``'s build log (``nix log``), empty when there is none."""
    try:
        proc = run_nix("nix", ["log", drv], check=True, timeout=60, what="nix log")
    except NixError:
        return ""
    return "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("@nix "))


def build_log(drv: str, fallback: str) -> str:
    """The tail of ``drv``'s build log (``nix log``), or of ``fallback`` when there is none."""
    text = full_log(drv)
    return tail(text if text.strip() else fallback, LOG_LINES)


def suggestions_for(repo: Path, log: str) -> list[Suggestion]:
    """The override entries ``log`` (a failed package's) suggests; none if the map is broken
    (the build's failure is the news, the map's error is reported by `overrides check`)."""
    try:
        return suggest(log, repo_map(repo))
    except SuggestError:
        return []


def _interpreters(opts: BuildOptions) -> Mapping[str, str]:
    if opts.interpreters is not None:
        return opts.interpreters
    return standalone_interpreters(opts.repo)


@dataclass(frozen=True)
class SetBuild:
    """One set build: a set, a Python version and an attribute of it (``python``: its
    environment; ``packages.<name>``: one package).  The nix-build command line and the
    evaluation of the same attribute's out path come from one expression (:meth:`expression`).

    ``disabled_overrides`` (``"<package>#<n>"``) leaves those entries of the overrides library
    out (``default.nix``'s ``disabledOverrides``); ``interpreters_file`` is the standalone
    interpreters' file (see :func:`~bot.model.interpreters.temporary_interpreters_file`).
    """

    opts: BuildOptions
    set_name: str
    python: str
    interpreters_file: Path | None = None
    attr: str = "python"
    disabled_overrides: Sequence[str] = ()

    def expression(self, attr: str, *more: tuple[str, str]) -> list[str]:
        """``default.nix -A <set>.py3XY.<attr>`` and the arguments that choose what it builds;
        ``more``: further (set, Python) pairs whose same attribute one evaluation also gives."""
        opts = self.opts
        argv: list[str] = [str(opts.repo / "default.nix")]
        for set_name, python in ((self.set_name, self.python), *more):
            argv += ["-A", f"{set_name}.{python_tag(python)}.{attr}"]
        argv += [
            "--argstr",
            "setsDir",
            str(opts.repo.resolve() / "sets"),
            "--argstr",
            "overridesDir",
            str(opts.repo.resolve() / "overrides"),
        ]
        if self.disabled_overrides:
            argv += ["--argstr", "disabledOverrides", ",".join(self.disabled_overrides)]
        if opts.nixpkgs:
            if opts.nixpkgs_path is not None:
                argv += ["--argstr", "nixpkgs", str(opts.nixpkgs_path.resolve())]
        else:
            argv += ["--arg", "pkgs", "null"]
            if self.interpreters_file is not None:
                argv += ["--argstr", "interpretersFile", str(self.interpreters_file)]
        if opts.system is not None:
            argv += ["--argstr", "system", opts.system]  # default.nix passes it to nixpkgs
        return argv

    def build_args(self) -> list[str]:
        """The nix-build arguments."""
        opts = self.opts
        argv = self.expression(self.attr)
        if opts.keep_going:
            argv.append("--keep-going")
        argv += jobs_args(opts.max_jobs)
        if opts.out_link is not None:
            argv += [
                "--out-link",
                f"{opts.out_link}-{self.set_name}-{python_tag(self.python)}",
            ]
        else:
            argv.append("--no-out-link")
        return argv

    def out_path_args(self, *more: tuple[str, str]) -> list[str]:
        """The nix-instantiate arguments that print the attribute's out path (JSON), and the
        same attribute's of the (set, Python) pairs in ``more``, one value after another."""
        return [
            "--eval",
            "--json",
            *self.expression(f"{self.attr}.outPath", *more),
            *jobs_args(self.opts.max_jobs),
        ]


def nix_build_args(
    opts: BuildOptions,
    set_name: str,
    python: str,
    interpreters_file: Path | None,
    *,
    attr: str = "python",
    disabled_overrides: Sequence[str] = (),
) -> list[str]:
    """The nix-build arguments for one set and Python version (see :class:`SetBuild`)."""
    return SetBuild(
        opts, set_name, python, interpreters_file, attr=attr, disabled_overrides=disabled_overrides
    ).build_args()


def out_paths(opts: BuildOptions, set_name: str, pythons: Sequence[str]) -> list[str]:
    """The store paths a set's environments would have, by evaluation only (no build)."""
    found = many_out_paths(
        opts, [(set_name, p) for p in pythons], what=f"evaluating set {set_name}"
    )
    return [found[(set_name, p)] for p in pythons]


def many_out_paths(
    opts: BuildOptions, wanted: Sequence[tuple[str, str]], *, what: str
) -> dict[tuple[str, str], str]:
    """The store paths of these (set, Python) environments, by one evaluation (one
    ``nix-instantiate --eval`` with an ``-A`` for each; no build)."""
    if not wanted:
        return {}
    interpreters = standalone_interpreters(opts.repo)
    (first, python), *more = wanted
    key = None
    if not opts.nixpkgs:  # standalone: the paths follow from the repository's files alone
        key = evaluation.evaluation_key(
            opts.repo, SetBuild(opts, first, python).out_path_args(*more), interpreters
        )
        known = evaluation.remembered(key, len(wanted)) if key is not None else None
        if known is not None:
            return dict(zip(wanted, known, strict=True))
    with temporary_interpreters_file(
        None if opts.nixpkgs else interpreters, prefix="nixpkgs-python-eval-"
    ) as file:
        proc = run_nix(
            "nix-instantiate",
            SetBuild(opts, first, python, file).out_path_args(*more),
            options={} if opts.nixpkgs else build_options(interpreters.values()),
            what=what,
        )
    values = _json_values(proc.stdout)
    if len(values) != len(wanted) or not all(isinstance(v, str) for v in values):
        raise BotError(f"{what}: nix-instantiate printed {len(values)} values for {len(wanted)}")
    if key is not None:
        evaluation.remember(key, [str(v) for v in values])
    return {w: str(v) for w, v in zip(wanted, values, strict=True)}


def _json_values(text: str) -> list[object]:
    """The JSON values nix-instantiate printed one after another (one per ``-A``)."""
    decoder = json.JSONDecoder()
    out: list[object] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        value, i = decoder.raw_decode(text, i)
        out.append(value)


def substituters(opts: BuildOptions) -> str | None:
    """``None`` (the machine's own) with nixpkgs, whose outputs come from a binary cache;
    none at all for standalone builds, which nothing can substitute."""
    return None if opts.nixpkgs else ""


def prepare_nixpkgs(repo: Path, *, nixpkgs: bool, path: Path | None) -> None:
    """Before building with the pin: fetch it once and check it against its hash, so a bad
    pin is one error naming nix/nixpkgs.json instead of one per set; another nixpkgs
    (``path``) must at least be one."""
    if nixpkgs and path is None:
        from bot.model.nixpkgs import ensure_pin

        ensure_pin(repo)
    elif path is not None and not ((path / "default.nix").is_file() or path.is_file()):
        raise BotError(
            "not a nixpkgs: no default.nix",
            where=str(path),
            hint="pass a nixpkgs checkout (the directory holding default.nix) to --nixpkgs",
        )


def _targets(opts: BuildOptions) -> list[tuple[str, str | None, str | None]]:
    """(set, python or None, error) for every requested set and Python version."""
    sets_dir = opts.repo / "sets"
    if not sets_dir.is_dir():
        raise BotError(
            "no sets directory",
            where=str(sets_dir),
            hint="run from the repository, or pass its path",
        )
    names = list(opts.sets) or sorted(
        p.name for p in sets_dir.iterdir() if p.is_dir() and locked_pythons(p)
    )
    out: list[tuple[str, str | None, str | None]] = []
    for name in names:
        if not (sets_dir / name).is_dir():
            raise BotError(
                f"unknown set {name!r}", where=str(sets_dir), hint="see the directories under sets/"
            )
        pythons = locked_pythons(sets_dir / name)
        if opts.python is not None:
            if opts.python in pythons:
                out.append((name, opts.python, None))
            else:
                out.append(
                    (
                        name,
                        opts.python,
                        f"set {name!r} has no lock for Python {opts.python}; "
                        "run `nixpkgs-python lock` first",
                    )
                )
        elif pythons:
            out.extend((name, p, None) for p in pythons)
        else:
            out.append((name, None, f"set {name!r} has no lock yet; run `nixpkgs-python lock`"))
    return out


_MANYLINUX_TAG = re.compile(r"manylinux_(\d+)_(\d+)_\w+")
_LEGACY_GLIBC = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def host_system() -> str | None:
    """This machine's Nix system (``x86_64-linux``...), None when it is no supported one."""
    import platform
    import sys

    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
    machine = arch.get(platform.machine().lower())
    kernel = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    return f"{machine}-{kernel}" if machine and kernel else None


def host_glibc() -> tuple[int, int] | None:
    """The glibc this machine's programs load (None: not glibc, e.g. musl or macOS)."""
    import os

    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    m = re.fullmatch(r"glibc (\d+)\.(\d+).*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def glibc_shortfall(
    document: Mapping[str, Any], system: str, glibc: tuple[int, int]
) -> list[tuple[str, tuple[int, int]]]:
    """(wheel, glibc it needs) for every wheel a lock uses on ``system`` that needs a newer
    glibc than ``glibc`` (a standalone build loads wheels against the machine's glibc; the
    lock's baseline is the nixpkgs release's)."""
    out: list[tuple[str, tuple[int, int]]] = []
    for pkg in document.get("packages", []):
        artifacts = pkg.get("tool", {}).get("nixpkgs-python", {}).get("artifacts", {})
        filename = artifacts.get(system) if isinstance(artifacts, dict) else None
        if not isinstance(filename, str) or not filename.endswith(".whl"):
            continue
        needs: list[tuple[int, int]] = []
        for platform_tag in filename[:-4].rsplit("-", 1)[-1].split("."):
            m = _MANYLINUX_TAG.fullmatch(platform_tag)
            if m:
                needs.append((int(m.group(1)), int(m.group(2))))
            elif platform_tag.partition("_")[0] in _LEGACY_GLIBC:
                needs.append(_LEGACY_GLIBC[platform_tag.partition("_")[0]])
        if needs and min(needs) > glibc:
            out.append((filename, min(needs)))
    return sorted(out)


def standalone_glibc_error(
    document: Mapping[str, Any],
    set_name: str,
    system: str | None = None,
    glibc: tuple[int, int] | None = None,
) -> str | None:
    """Why a standalone build of a lock cannot work on this machine (its glibc is older than
    a locked wheel needs), or None."""
    system = system or host_system()
    glibc = glibc or host_glibc()
    if system is None or not system.endswith("-linux") or glibc is None:
        return None
    short = glibc_shortfall(document, system, glibc)
    if not short:
        return None
    shown = ", ".join(f"{name} needs glibc {a}.{b}" for name, (a, b) in short[:4])
    more = f" (+{len(short) - 4} more)" if len(short) > 4 else ""
    return (
        f"set {set_name!r}: this machine's glibc {glibc[0]}.{glibc[1]} is older than the "
        f"locked wheels need: {shown}{more}; build with nixpkgs (without --standalone), "
        "whose glibc the lock's baseline is"
    )


def build_one(
    opts: BuildOptions,
    set_name: str,
    python: str,
    interpreters: Mapping[str, str],
    interpreters_file: Path | None,
    *,
    attr: str = "python",
    disabled_overrides: Sequence[str] = (),
) -> BuildResult:
    """Build one set for one Python version (or ``attr`` of it, see :func:`nix_build_args`);
    failures come back in the result."""
    t0 = time.monotonic()
    result = BuildResult(set_name, python, ok=False, system=opts.system)
    lock_path = set_lock_path(opts.repo, set_name, python)
    try:
        # Nix's fromTOML reports a broken lock without naming the set: check it here first
        document = read_lock(lock_path)
    except BotError as exc:
        result.error = f"set {set_name!r}: {exc}"
        result.duration = time.monotonic() - t0
        return result
    if not opts.nixpkgs:
        reason = standalone_glibc_error(document, set_name)
        if reason is not None:
            result.error = reason
            result.duration = time.monotonic() - t0
            return result
    options = {} if opts.nixpkgs else build_options(interpreters.values())
    argv = nix_build_args(
        opts, set_name, python, interpreters_file, attr=attr, disabled_overrides=disabled_overrides
    )
    proc = run_nix(
        "nix-build",
        argv,
        substituters=substituters(opts),
        options=options,
        check=False,
        timeout=opts.timeout,
        cwd=opts.repo,
    )
    result.ok = proc.returncode == 0
    result.notes = list(
        dict.fromkeys(NOT_HONOURED.findall(proc.stderr) + LINKAGE_WARNING.findall(proc.stderr))
    )
    if result.ok:
        out = proc.stdout.strip().splitlines()[-1]
        result.out_path = out
        if opts.out_link is not None:
            result.out_link = Path(f"{opts.out_link}-{set_name}-{python_tag(python)}")
        query = run_nix("nix-store", ["--query", "--requisites", out], check=False)
        result.store_paths = query.stdout.split()
    else:
        failed = failed_derivations(proc.stderr)
        if failed:
            result.failed_drv, result.failed_package = failed[0]
            result.failed_packages = list(dict.fromkeys(p for _, p in failed))
            block = error_block(proc.stderr, failed[0][0])
            text = full_log(failed[0][0])
            result.log_tail = tail(text if text.strip() else (block or proc.stderr), LOG_LINES)
            checked = failed_checks(text or proc.stderr)
            if checked:
                # an environment's check pass failed: the packages it names are the failures
                envs = {d for d, _ in failed if d.endswith("-env.drv")}
                result.failed_package = checked[0]
                result.failed_packages = list(
                    dict.fromkeys([*checked, *(p for d, p in failed if d not in envs)])
                )
                block = f"its checks failed in {result.failed_drv}"
            result.suggestions = suggestions_for(opts.repo, text or block or proc.stderr)
            result.error = f"package '{result.failed_package}' failed to build: " + (
                block or result.failed_drv
            )
        else:
            result.log_tail = tail(proc.stderr, LOG_LINES)
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
            result.error = lines[0].removeprefix("error: ") if lines else "nix-build failed"
    result.duration = time.monotonic() - t0
    return result


def build_sets(
    opts: BuildOptions, *, progress: Callable[[str], None] | None = None
) -> list[BuildResult]:
    """Build every requested set (all sets with a lock when ``opts.sets`` is empty) for each
    of its locked Python versions (or ``opts.python``); one failure never stops the others.

    Unknown set names raise :class:`BotError` before anything is built.
    """
    targets = _targets(opts)
    if opts.system is not None and not opts.nixpkgs:
        raise BotError(
            f"cannot build for {opts.system} with --standalone",
            hint="standalone interpreters build for this machine only; build with nixpkgs",
        )
    prepare_nixpkgs(opts.repo, nixpkgs=opts.nixpkgs, path=opts.nixpkgs_path)
    interpreters: Mapping[str, str] = {} if opts.nixpkgs else _interpreters(opts)
    results: list[BuildResult] = []
    with temporary_interpreters_file(
        None if opts.nixpkgs else interpreters, prefix="nixpkgs-python-build-"
    ) as file:
        for set_name, python, error in targets:
            if error is not None or python is None:
                results.append(
                    BuildResult(set_name, python or "", ok=False, system=opts.system, error=error)
                )
                continue
            if not opts.nixpkgs and python not in interpreters:
                results.append(
                    BuildResult(
                        set_name,
                        python,
                        ok=False,
                        system=opts.system,
                        error=f"no standalone Python {python} on this machine; install it "
                        "(e.g. with pyenv) and run `python -m bot.model.interpreters`, "
                        "or build with nixpkgs (without --standalone)",
                    )
                )
                continue
            if progress is not None:
                progress(f"building {set_name} for Python {python}")
            results.append(build_one(opts, set_name, python, interpreters, file))
    return results


def outcome_document(opts: BuildOptions, results: Sequence[BuildResult]) -> dict[str, Any]:
    """What ``build --outcome FILE`` writes: one build of some sets for one system, for CI's
    commit job (:mod:`bot.nightly.commit_only`), which reads it instead of the logs."""
    return {
        "system": opts.system,
        "ok": all(r.ok for r in results),
        "sets": sorted({r.set for r in results}),
        "results": [r.to_json() for r in results],
    }


def summary(results: Sequence[BuildResult]) -> str:
    """One line per result, for people."""
    lines = []
    for r in results:
        on = f" on {r.system}" if r.system else ""
        if r.ok:
            lines.append(
                f"ok      {r.set} (Python {r.python}{on}): {r.out_path} [{r.duration:.1f}s]"
            )
        else:
            where = f" (Python {r.python}{on})" if r.python else f" ({on.strip()})" if on else ""
            lines.append(f"FAILED  {r.set}{where}: {r.error}")
            lines += [f"    {line}" for line in r.log_tail.splitlines()]
            lines += [f"    {line}" for line in render(r.failed_package or "?", r.suggestions)]
        lines += [f"    note: {n}" for n in r.notes]
    return "\n".join(lines)
