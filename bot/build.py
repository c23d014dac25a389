"""``nixpkgs-python build``: build each set's interpreter environment with Nix.

One ``nix-build`` per (set, Python version) of ``default.nix``'s ``<set>.py3XY.python``.  A
failing set never stops the others; a failure names the package whose derivation failed and
carries the tail of its build log.  With ``out_link`` set, ``<out_link>-<set>-py3XY`` links to
the environment, so ``<out_link>-<set>-py3XY/bin/python`` runs it.
"""

from __future__ import annotations

import json
import re
import tempfile
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

from bot.errors import BotError, NixError
from bot.interpreters import build_options, detect, load_local
from bot.lock import read_lock
from bot.nix import run_nix
from bot.proc import tail
from bot.suggest import SuggestError, Suggestion, render, repo_map, suggest

LOCK = re.compile(r"^pylock\.py3(\d+)\.toml$")
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
DEPENDENCIES_FAILED = re.compile(r"dependencies of derivation '/nix/store/[^']+' failed to build")
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


@dataclass
class BuildResult:
    """The outcome of building one set for one Python version."""

    set: str
    python: str
    ok: bool
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
    #: override entries that would fix the failed package, from its log (bot/suggest.py)
    suggestions: list[Suggestion] = field(default_factory=list)
    #: override entries this build could not honour (standalone: no nixpkgs inputs)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "set": self.set,
            "python": self.python,
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


def locked_pythons(set_dir: Path) -> list[str]:
    """The Python versions ``set_dir`` has a lock for, oldest first."""
    minors = sorted(
        int(m.group(1)) for p in set_dir.glob("pylock.py3*.toml") if (m := LOCK.match(p.name))
    )
    return [f"3.{m}" for m in minors]


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


def full_build_log(drv: str, fallback: str) -> str:
    """``drv``'s build log (``nix log``), or ``fallback`` when there is none."""
    try:
        proc = run_nix("nix", ["log", drv], check=True, timeout=60, what="nix log")
        text = "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("@nix "))
    except NixError:
        text = ""
    return text if text.strip() else fallback


def build_log(drv: str, fallback: str) -> str:
    """The tail of ``drv``'s build log (``nix log``), or of ``fallback`` when there is none."""
    return tail(full_build_log(drv, fallback), LOG_LINES)


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
    return load_local(opts.repo) or detect()


def nix_build_args(
    opts: BuildOptions,
    set_name: str,
    python: str,
    interpreters_file: Path | None,
    *,
    attr: str = "python",
    disabled_overrides: Sequence[str] = (),
) -> list[str]:
    """The nix-build arguments for one set and Python version.

    ``attr`` is the attribute of the set to build (``python``: its environment;
    ``packages.<name>``: one package).  ``disabled_overrides`` (``"<package>#<n>"``) leaves
    those entries of the overrides library out (``default.nix``'s ``disabledOverrides``).
    """
    argv: list[str] = [
        str(opts.repo / "default.nix"),
        "-A",
        f"{set_name}.py3{python.split('.')[1]}.{attr}",
        "--argstr",
        "setsDir",
        str(opts.repo.resolve() / "sets"),
        "--argstr",
        "overridesDir",
        str(opts.repo.resolve() / "overrides"),
    ]
    if disabled_overrides:
        argv += ["--argstr", "disabledOverrides", ",".join(disabled_overrides)]
    if opts.nixpkgs:
        if opts.nixpkgs_path is not None:
            argv += ["--argstr", "nixpkgs", str(opts.nixpkgs_path.resolve())]
    else:
        argv += ["--arg", "pkgs", "null"]
        if interpreters_file is not None:
            argv += ["--argstr", "interpretersFile", str(interpreters_file)]
    if opts.keep_going:
        argv.append("--keep-going")
    if opts.out_link is not None:
        argv += ["--out-link", f"{opts.out_link}-{set_name}-py3{python.split('.')[1]}"]
    else:
        argv.append("--no-out-link")
    return argv


def substituters(opts: BuildOptions) -> str | None:
    """``None`` (the machine's own) with nixpkgs, whose outputs come from a binary cache;
    none at all for standalone builds, which nothing can substitute."""
    return None if opts.nixpkgs else ""


def prepare_nixpkgs(opts: BuildOptions) -> None:
    """Before building with the pin: fetch it once and check it against its hash, so a bad
    pin is one error naming nix/nixpkgs.json instead of one per set."""
    if opts.nixpkgs and opts.nixpkgs_path is None:
        from bot.nixpkgs import ensure_pin

        ensure_pin(opts.repo)
    elif opts.nixpkgs_path is not None and not (
        (opts.nixpkgs_path / "default.nix").is_file() or opts.nixpkgs_path.is_file()
    ):
        raise BotError(
            "not a nixpkgs: no default.nix",
            where=str(opts.nixpkgs_path),
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
    lock_path = opts.repo / "sets" / set_name / f"pylock.py{python.replace('.', '')}.toml"
    try:
        # Nix's fromTOML reports a broken lock without naming the set: check it here first
        read_lock(lock_path)
    except BotError as exc:
        return BuildResult(
            set_name,
            python,
            ok=False,
            error=f"set {set_name!r}: {exc}",
            duration=time.monotonic() - t0,
        )
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
    result = BuildResult(set_name, python, ok=proc.returncode == 0)
    result.notes = list(
        dict.fromkeys(NOT_HONOURED.findall(proc.stderr) + LINKAGE_WARNING.findall(proc.stderr))
    )
    if result.ok:
        out = proc.stdout.strip().splitlines()[-1]
        result.out_path = out
        if opts.out_link is not None:
            result.out_link = Path(f"{opts.out_link}-{set_name}-py3{python.split('.')[1]}")
        query = run_nix("nix-store", ["--query", "--requisites", out], check=False)
        result.store_paths = query.stdout.split()
    else:
        failed = failed_derivations(proc.stderr)
        if failed:
            result.failed_drv, result.failed_package = failed[0]
            result.failed_packages = list(dict.fromkeys(p for _, p in failed))
            block = error_block(proc.stderr, failed[0][0])
            full = full_build_log(failed[0][0], block or proc.stderr)
            result.log_tail = tail(full, LOG_LINES)
            result.suggestions = suggestions_for(opts.repo, full)
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
    prepare_nixpkgs(opts)
    interpreters: Mapping[str, str] = {} if opts.nixpkgs else _interpreters(opts)
    interpreters_file = None
    results: list[BuildResult] = []
    tmp_dir: tempfile.TemporaryDirectory[str] | None = None
    if not opts.nixpkgs:
        tmp_dir = tempfile.TemporaryDirectory(prefix="nixpkgs-python-build-")
        interpreters_file = Path(tmp_dir.name) / "interpreters.json"
        interpreters_file.write_text(json.dumps({"interpreters": dict(interpreters)}))
    try:
        for set_name, python, error in targets:
            if error is not None or python is None:
                results.append(BuildResult(set_name, python or "", ok=False, error=error))
                continue
            if not opts.nixpkgs and python not in interpreters:
                results.append(
                    BuildResult(
                        set_name,
                        python,
                        ok=False,
                        error=f"no standalone Python {python} on this machine; install it "
                        "(e.g. with pyenv) and run `python -m bot.interpreters`, "
                        "or build with nixpkgs (without --standalone)",
                    )
                )
                continue
            if progress is not None:
                progress(f"building {set_name} for Python {python}")
            results.append(build_one(opts, set_name, python, interpreters, interpreters_file))
    finally:
        if tmp_dir is not None:
            tmp_dir.cleanup()
    return results


def summary(results: Sequence[BuildResult]) -> str:
    """One line per result, for people."""
    lines = []
    for r in results:
        if r.ok:
            lines.append(f"ok      {r.set} (Python {r.python}): {r.out_path} [{r.duration:.1f}s]")
        else:
            where = f" (Python {r.python})" if r.python else ""
            lines.append(f"FAILED  {r.set}{where}: {r.error}")
            lines += [f"    {line}" for line in r.log_tail.splitlines()]
            lines += [f"    {line}" for line in render(r.failed_package or "?", r.suggestions)]
        lines += [f"    note: {n}" for n in r.notes]
    return "\n".join(lines)
