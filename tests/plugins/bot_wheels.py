"""The files the bot's own lock (``sets/bot-runtime``) uses on this machine's system, for the
tests that build the bot with Nix.

The tests cannot reach PyPI, so the files are downloaded before them, in README's test
command (``python -m tests.plugins.bot_wheels``): ``pip download --no-deps --require-hashes``
of exactly the locked URLs and hashes into ``<venv>/bot-wheels``.  A test then checks every
file against the lock's sha256 again and serves them on 127.0.0.1 as a *hashed mirror*
(``<url>/sha256/<hex>``): Nix's ``builtin:fetchurl`` (what the stand-in nixpkgs' fetchurl
and the library's standalone fetch use) asks a ``hashed-mirrors`` entry for a fixed-output
file by the very hash the lock gives before it tries the file's URL, and checks what it gets
against that hash.  A missing or different file fails the build (the URL is unreachable).
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SET_DIR = ROOT / "sets" / "bot-runtime"
#: where README's test command puts the files (inside the virtual environment running pytest)
WHEELS = Path(sys.prefix) / "bot-wheels"
COMMAND = ".venv/bin/python -m tests.plugins.bot_wheels"


@dataclass(frozen=True)
class Locked:
    """One file a lock uses on a system."""

    python: str  #: "3.12"
    name: str  #: the file name
    url: str
    sha256: str


def machine_system() -> str:
    """This machine's Nix system (x86_64-linux, aarch64-linux)."""
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    return f"{machine or platform.machine().lower()}-{sys.platform.removesuffix('2')}"


def locked_files(system: str, set_dir: Path = SET_DIR) -> list[Locked]:
    """Every file the set's locks use on ``system`` (each lock's ``artifacts.<system>``)."""
    out: list[Locked] = []
    for path in sorted(set_dir.glob("pylock.py3*.toml")):
        lock = tomllib.loads(path.read_text(encoding="utf-8"))
        python = lock["tool"]["nixpkgs-python"]["python"]
        for pkg in lock["packages"]:
            chosen = pkg.get("tool", {}).get("nixpkgs-python", {}).get("artifacts", {})
            name = chosen.get(system)
            if name is None:
                continue
            files = [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]
            (file,) = [f for f in files if f["name"] == name]
            out.append(Locked(python, name, file["url"], file["hashes"]["sha256"]))
    return out


def _pip_target(files: list[Locked], python: str) -> list[str]:
    """pip's --python-version/--abi/--platform options covering these wheels' tags."""
    abis: set[str] = set()
    platforms: set[str] = set()
    for f in files:
        if f.name.endswith(".whl"):
            *_, abi, plat = f.name.removesuffix(".whl").split("-")
            abis.update(abi.split("."))
            platforms.update(plat.split("."))
    argv = ["--python-version", python, "--implementation", "cp"]
    for abi in sorted(abis):
        argv += ["--abi", abi]
    for plat in sorted(platforms - {"any"}) or ["any"]:
        argv += ["--platform", plat]
    return argv


def download(dest: Path = WHEELS, system: str | None = None) -> list[Path]:
    """pip-download every locked file of ``system`` into ``dest`` (skipping ones already
    there with the right hash); returns the paths."""
    system = system or machine_system()
    files = locked_files(system)
    dest.mkdir(parents=True, exist_ok=True)
    by_python: dict[str, list[Locked]] = {}
    for f in files:
        path = dest / f.name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256:
            continue
        by_python.setdefault(f.python, []).append(f)
    for python, group in sorted(by_python.items()):
        unique = {f.name: f for f in group}.values()
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            for f in unique:
                req.write(f"{f.url} --hash=sha256:{f.sha256}\n")
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        argv += ["--require-hashes", "--only-binary=:all:", "--dest", str(dest), "-r", req.name]
        subprocess.run([*argv, *_pip_target(list(unique), python)], check=True)
        Path(req.name).unlink()
    return [dest / f.name for f in files]


def hashed_mirror(dest: Path, system: str | None = None, source: Path = WHEELS) -> list[Locked]:
    """Lay out ``dest/sha256/<hex>`` from the downloaded files, each checked against the lock.

    Raises ``FileNotFoundError`` naming the command when a file was not downloaded, and
    ``ValueError`` when one differs from its locked hash."""
    files = locked_files(system or machine_system())
    (dest / "sha256").mkdir(parents=True, exist_ok=True)
    for f in files:
        path = source / f.name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the bot's locked files are downloaded before the tests "
                f"(README, 'Run the tests'): run `{COMMAND}`"
            )
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != f.sha256:
            raise ValueError(f"{path} has sha256 {digest}, the lock says {f.sha256}")
        (dest / "sha256" / digest).write_bytes(data)
    return files


def main() -> None:
    paths = download()
    print(f"{len(paths)} locked files of sets/bot-runtime in {WHEELS}")


if __name__ == "__main__":
    main()
