"""Standalone interpreters: Pythons already on the machine, for builds without nixpkgs.

The Nix library builds a set either with nixpkgs' ``python3XY`` or with an interpreter found
here.  :func:`detect` looks in pyenv's versions directory and on ``PATH`` and asks each
candidate for its real executable (so pyenv shims resolve to the binary they run).
``python -m bot.model.interpreters`` writes the result to ``nix/local.json`` (gitignored), which
``default.nix`` reads when no ``interpreters`` argument is given::

    {"interpreters": {"3.12": "/root/.pyenv/versions/3.12.1/bin/python3.12"}}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from bot import SUPPORTED_PYTHONS
from bot.core.errors import BotError, CommandError
from bot.core.files import default_cache_dir, read_cache, write_cache
from bot.core.proc import run

#: path of the generated file, relative to the repository
LOCAL_FILE = Path("nix") / "local.json"

_PROBE = "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"


def _version_key(name: str) -> tuple[int, ...]:
    parts = []
    for part in name.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _candidates(version: str, pyenv_root: Path | None, path: str | None) -> Iterable[Path]:
    if pyenv_root is not None and (pyenv_root / "versions").is_dir():
        prefix = f"{version}."
        found = [
            d
            for d in (pyenv_root / "versions").iterdir()
            if d.name.startswith(prefix) and d.name[len(prefix) :].isdigit()
        ]
        for d in sorted(found, key=lambda d: _version_key(d.name), reverse=True):
            yield d / "bin" / f"python{version}"
    which = shutil.which(f"python{version}", path=path)
    if which:
        yield Path(which)


#: the file of :func:`probe`'s answers, under the user's cache directory
PROBE_CACHE = "interpreters.json"
#: answers of this process: (candidate, its file's identity) -> the answer
_PROBED: dict[tuple[str, tuple[int, ...]], tuple[str, str]] = {}


def _identity(path: Path) -> tuple[str, tuple[int, ...]] | None:
    """The file ``path`` runs (symlinks resolved) and what changes when it is replaced."""
    try:
        real = path.resolve()
        st = real.stat()
    except (OSError, RuntimeError):
        return None
    return str(real), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _cache_file() -> Path:
    return default_cache_dir() / PROBE_CACHE


def _kept(key: tuple[str, tuple[int, ...]]) -> tuple[str, str] | None:
    try:
        entry = read_cache(_cache_file())["probes"][key[0]]
        if tuple(entry["file"]) != key[1]:
            return None
        return str(entry["executable"]), str(entry["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _keep(key: tuple[str, tuple[int, ...]], answer: tuple[str, str]) -> None:
    path = _cache_file()
    try:
        probes = dict(read_cache(path)["probes"])
    except (KeyError, TypeError, ValueError):
        probes = {}
    probes[key[0]] = {"file": list(key[1]), "executable": answer[0], "version": answer[1]}
    write_cache(path, {"probes": probes})  # a cache: a failed write probes again next run


def probe(executable: Path) -> tuple[str, str] | None:
    """(real executable, "X.Y") of an interpreter, or None when it does not run.

    An interpreter that is its own executable (it reports the file it was started as, not a
    shim or wrapper that runs another) is asked once: its answer is kept, for this process
    and in the user's cache directory, for as long as that file is the same one (device,
    inode, size, mtime).  Shims and wrappers are asked every time.
    """
    key = _identity(executable)
    if key is not None:
        known = _PROBED.get(key) or _kept(key)
        if known is not None:
            _PROBED[key] = known
            return known
    try:
        proc = run([executable, "-c", _PROBE], timeout=30, check=False, what=str(executable))
    except CommandError:
        return None
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) != 2:
        return None
    answer = (lines[0], lines[1])
    if key is not None and _identity(Path(answer[0])) == key:
        _PROBED[key] = answer
        _keep(key, answer)
    return answer


def detect(
    versions: Iterable[str] = SUPPORTED_PYTHONS,
    *,
    pyenv_root: Path | None = None,
    path: str | None = None,
) -> dict[str, str]:
    """``{"3.12": "/abs/python3.12", ...}`` for every version found (newest patch release).

    ``pyenv_root`` defaults to ``$PYENV_ROOT`` or ``~/.pyenv``; ``path`` to ``$PATH``.
    """
    if pyenv_root is None:
        pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found: dict[str, str] = {}
    for version in versions:
        for candidate in _candidates(version, pyenv_root, path):
            if not candidate.exists():
                continue
            probed = probe(candidate)
            if probed is not None and probed[1] == version:
                found[version] = probed[0]
                break
    return found


def _world_executable(path: Path) -> bool:
    """Whether any user (e.g. a nix build user) can run ``path``: o+x on it and its parents."""
    try:
        real = path.resolve()
        chain = [real, *real.parents]
        return all(p.stat().st_mode & 0o001 for p in chain)
    except OSError:
        return False


def build_options(executables: Iterable[str]) -> dict[str, str]:
    """Extra nix options standalone builds need on this machine.

    Builds run as the nix build users; an interpreter they cannot execute (pyenv under a
    ``0700`` home directory) is only usable when root builds as itself
    (``build-users-group = ""``; root without a daemon may set it).
    """
    if all(_world_executable(Path(e)) for e in executables):
        return {}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return {"build-users-group": ""}
    return {}


def write_local(repo: Path, interpreters: Mapping[str, str]) -> Path:
    """Write ``nix/local.json`` atomically; return its path."""
    target = repo / LOCAL_FILE
    text = json.dumps({"interpreters": dict(sorted(interpreters.items()))}, indent=2) + "\n"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target


def load_local(repo: Path) -> dict[str, str]:
    """The interpreters recorded in ``nix/local.json`` (empty when there is none)."""
    target = repo / LOCAL_FILE
    if not target.exists():
        return {}
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data["interpreters"].items()}
    except (ValueError, KeyError, AttributeError) as exc:
        raise BotError(
            f"invalid interpreters file: {exc}",
            where=str(target),
            hint="re-create it with `python -m bot.model.interpreters`",
        ) from exc


def standalone_interpreters(repo: Path) -> dict[str, str]:
    """The interpreters a standalone build of ``repo`` uses: those ``nix/local.json`` records,
    else those :func:`detect` finds."""
    return load_local(repo) or detect()


@contextlib.contextmanager
def temporary_interpreters_file(
    interpreters: Mapping[str, str] | None, *, prefix: str = "nixpkgs-python-"
) -> Iterator[Path | None]:
    """A temporary ``interpretersFile`` for ``default.nix`` naming ``interpreters`` (version ->
    prefix), removed when the block ends; ``None`` (no file) for ``None``: a build with
    nixpkgs takes its interpreters from there."""
    if interpreters is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path = Path(tmp) / "interpreters.json"
        path.write_text(json.dumps({"interpreters": dict(interpreters)}))
        yield path


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.model.interpreters [--repo DIR] [--print]``: detect, record interpreters."""
    parser = argparse.ArgumentParser(prog="python -m bot.model.interpreters", description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--print", action="store_true", help="print, do not write")
    args = parser.parse_args(argv)
    found = detect()
    if args.print:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(
            "nixpkgs-python: no Python 3.10-3.14 interpreter found (pyenv or PATH); "
            "install one, or build with nixpkgs (--arg pkgs)",
            file=sys.stderr,
        )
        return 1
    target = write_local(args.repo, found)
    for version, exe in sorted(found.items()):
        print(f"Python {version}: {exe}")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
