"""Real Nix for tests: builds sets from locks the tests write, with real ``nix-build``.

Builds use the machine's /nix/store (a chroot store cannot build without a sandbox) with
``--option substituters ''``; every test input is fetched from the loopback index, so
nothing reaches the network.

- :func:`repack_installed`: a wheel of an installed distribution, re-packed from its RECORD.
  The Nix library needs real wheels of its build frontend (installer, build, pyproject-hooks,
  packaging); the test venv already has them installed, so they are re-packed offline.
- :func:`write_lock`: a lock in the README format from a few :class:`LockEntry` values.
- :func:`nix_build_cmd`: nix-build of an attribute of a :class:`NixRepo` (standalone, or
  with the fake nixpkgs of tests/nix/fake-nixpkgs); ``NixRepo.eval`` evaluates one.
- Fixtures: ``interpreters`` (the standalone Pythons, from :mod:`bot.model.interpreters`),
  ``frontend_wheels``, ``nix_repo`` (a repository layout in tmp whose ``default.nix`` is the
  real one), ``demo_dists`` / ``demo_index`` (the demo set's distributions on a loopback
  index) with :func:`lock_demo` to write its lock.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import subprocess
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from bot.core.nix import eval_json, run_nix
from bot.model.interpreters import build_options, detect
from tests.plugins.pypi import IndexServer, make_backend_wheel, make_sdist, make_wheel

ROOT = Path(__file__).resolve().parents[2]
WITH_FAKE_NIXPKGS = ROOT / "tests" / "nix" / "with-fake-nixpkgs.nix"
SYSTEMS = ("aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux")
FRONTEND = ("installer", "build", "pyproject_hooks", "packaging")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def repack_installed(dist_name: str, dest: Path) -> Path:
    """A ``py3-none-any`` wheel of the installed distribution ``dist_name``, from its RECORD."""
    dist = importlib.metadata.distribution(dist_name)
    files = [
        f
        for f in dist.files or []
        if not str(f).startswith("..")
        and "__pycache__" not in str(f)
        and not str(f).endswith((".pyc", "/RECORD", "/INSTALLER", "/REQUESTED", "/direct_url.json"))
    ]
    name = dist.metadata["Name"].replace("-", "_").lower()
    version = dist.version
    info = f"{name}-{version}.dist-info"
    members: dict[str, bytes] = {}
    for f in files:
        path = str(f)
        if ".dist-info/" in path:
            path = f"{info}/{path.split('/', 1)[1]}"
        members[path] = Path(str(f.locate())).read_bytes()
    members[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: nixpkgs-python-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = (
        "".join(
            f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
            f"{len(d)}\n"
            for p, d in sorted(members.items())
        )
        + f"{info}/RECORD,,\n"
    )
    members[f"{info}/RECORD"] = record.encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in sorted(members.items()):
            zinfo = zipfile.ZipInfo(path, ZIP_EPOCH)
            zinfo.external_attr = 0o644 << 16
            zf.writestr(zinfo, data, compress_type=zipfile.ZIP_DEFLATED)
    return wheel


@dataclass
class LockEntry:
    """One package of a test lock; ``file`` is served at ``<base_url><file name>``."""

    name: str
    version: str
    file: Path
    dependencies: Sequence[str] = ()
    build_requires: Sequence[str] = ()
    systems: Sequence[str] = SYSTEMS
    sha256: str | None = None  #: default: the file's real hash


def _dist_name_version(path: Path) -> tuple[str, str]:
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    if path.name.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
    else:
        name, version = parse_sdist_filename(path.name)
    return str(name), str(version)


def entry(file: Path, *deps: str, build_requires: Sequence[str] = (), **kw: object) -> LockEntry:
    """A :class:`LockEntry` whose name and version come from the file name."""
    name, version = _dist_name_version(file)
    return LockEntry(name, version, file, deps, build_requires, **kw)  # type: ignore[arg-type]


def lock_document(
    entries: Iterable[LockEntry],
    *,
    base_url: str,
    set_name: str = "test",
    python: str = "3.12",
    roots: Sequence[str] = (),
    frontend: Sequence[str] = ("build", "installer"),
    extra_tool: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The README lock format (abridged to what the Nix library reads, plus provenance)."""
    packages = []
    for e in sorted(entries, key=lambda e: e.name):
        digest = e.sha256 or hashlib.sha256(e.file.read_bytes()).hexdigest()
        record = {
            "name": e.file.name,
            "url": base_url + e.file.name,
            "size": e.file.stat().st_size,
            "hashes": {"sha256": digest},
        }
        pkg: dict[str, object] = {"name": e.name, "version": e.version}
        if e.dependencies:
            pkg["dependencies"] = [{"name": d} for d in e.dependencies]
        if e.file.name.endswith(".whl"):
            pkg["wheels"] = [record]
        else:
            pkg["sdist"] = record
        tool: dict[str, object] = {"artifacts": dict.fromkeys(e.systems, e.file.name)}
        if e.build_requires:
            tool["build-requires"] = list(e.build_requires)
        pkg["tool"] = {"nixpkgs-python": tool}
        packages.append(pkg)
    return {
        "lock-version": "1.0",
        "created-by": "nixpkgs-python",
        "requires-python": f"=={python}.*",
        "packages": packages,
        "tool": {
            "nixpkgs-python": {
                "set": set_name,
                "python": python,
                "systems": list(SYSTEMS),
                "roots": list(roots),
                "build-frontend": list(frontend),
                "exclude-newer": "2026-01-01T00:00:00Z",
                "indexes": [base_url],
                "bot-version": "0.1.0",
                "inputs-hash": "sha256:test",
                **(extra_tool or {}),
            }
        },
    }


def write_lock(path: Path, entries: Iterable[LockEntry], **kw: object) -> Path:
    """Write :func:`lock_document` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(lock_document(entries, **kw)))  # type: ignore[arg-type]
    return path


@dataclass
class NixRepo:
    """A repository layout in tmp: ``sets/``, ``overrides/``, ``nix/local.json``, symlinks
    to the real ``default.nix``, ``nix/`` and ``overlay.nix``."""

    root: Path
    interpreters: dict[str, str]

    @property
    def sets(self) -> Path:
        return self.root / "sets"

    @property
    def overrides(self) -> Path:
        return self.root / "overrides"

    @property
    def interpreters_file(self) -> Path:
        return self.root / "interpreters.json"

    def entry(self, *, fake_nixpkgs: bool = False) -> Path:
        """The file nix evaluates: default.nix, or default.nix with the fake nixpkgs."""
        return WITH_FAKE_NIXPKGS if fake_nixpkgs else self.root / "default.nix"

    @property
    def argstrs(self) -> dict[str, str]:
        """The --argstr values pointing default.nix at this layout."""
        return {
            "setsDir": str(self.sets),
            "overridesDir": str(self.overrides),
            "interpretersFile": str(self.interpreters_file),
        }

    def args(self, *, fake_nixpkgs: bool = False) -> list[str]:
        """nix-build/nix-instantiate arguments: the entry file and what points it here."""
        argv = [str(self.entry(fake_nixpkgs=fake_nixpkgs))]
        for key, value in self.argstrs.items():
            argv += ["--argstr", key, value]
        if not fake_nixpkgs:
            argv += ["--arg", "pkgs", "null"]
        return argv

    def eval(self, attr: str, *, fake_nixpkgs: bool = False) -> Any:
        """``nix-instantiate --eval --strict --json`` of ``attr``."""
        return eval_json(
            self.entry(fake_nixpkgs=fake_nixpkgs),
            attr=attr,
            argstrs=self.argstrs,
            args=None if fake_nixpkgs else {"pkgs": "null"},
        )


@pytest.fixture(scope="session")
def interpreters() -> dict[str, str]:
    """The standalone interpreters of this machine; skips when there is no Python 3.12."""
    found = detect(("3.12", "3.13"))
    if "3.12" not in found:
        pytest.skip("no standalone Python 3.12 (pyenv or PATH)")
    return found


@pytest.fixture(scope="session")
def frontend_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Wheels of the build frontend, re-packed from the test environment."""
    dest = tmp_path_factory.mktemp("frontend-wheels")
    return {name: repack_installed(name, dest) for name in FRONTEND}


def frontend_entries(wheels: Mapping[str, Path]) -> list[LockEntry]:
    """Lock entries for the frontend wheels (build -> packaging, pyproject-hooks)."""
    return [
        entry(wheels["installer"]),
        entry(wheels["packaging"]),
        entry(wheels["pyproject_hooks"]),
        entry(wheels["build"], "packaging", "pyproject-hooks"),
    ]


@pytest.fixture
def nix_repo(tmp_path: Path, interpreters: dict[str, str]) -> NixRepo:
    """An empty repository layout using the real Nix library."""
    root = tmp_path / "repo"
    (root / "sets").mkdir(parents=True)
    (root / "overrides" / "packages").mkdir(parents=True)
    for name in ("default.nix", "overlay.nix", "nix"):
        (root / name).symlink_to(ROOT / name)
    repo = NixRepo(root, interpreters)
    repo.interpreters_file.write_text(json.dumps({"interpreters": interpreters}))
    return repo


def nix_build_cmd(
    repo: NixRepo,
    attr: str | None,
    *,
    fake_nixpkgs: bool = False,
    check: bool = True,
    file: Path | None = None,
    argstrs: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run nix-build of ``attr`` of the repo's default.nix (or of ``file``, given the same
    arguments plus ``argstrs``); the CompletedProcess."""
    argv: list[str | Path] = list(repo.args(fake_nixpkgs=fake_nixpkgs))
    if file is not None:
        argv[0] = file
    for key, value in (argstrs or {}).items():
        argv += ["--argstr", key, value]
    argv += ["-A", attr] if attr else []
    argv.append("--no-out-link")
    options = build_options(repo.interpreters.values())
    return run_nix("nix-build", argv, check=check, timeout=900, options=options)


# --- the demo set ---------------------------------------------------------------------------

ALPHA = "import beta\n\ndef main():\n    print('alpha says', beta.X)\n"


@pytest.fixture(scope="session")
def demo_dists(
    tmp_path_factory: pytest.TempPathFactory, frontend_wheels: dict[str, Path]
) -> dict[str, Path]:
    """The frontend wheels plus alpha (wheel, depends on beta, console script), beta, delta
    (wheels), fixture-backend and gamma (an sdist built with fixture-backend)."""
    d = tmp_path_factory.mktemp("dists")
    return {
        **frontend_wheels,
        "alpha": make_wheel(
            d,
            "alpha",
            "1.0",
            requires_dist=["beta"],
            modules={"alpha/__init__.py": ALPHA},
            console_scripts={"alpha": "alpha:main"},
        ),
        "beta": make_wheel(d, "beta", "2.0", modules={"beta.py": "X = 42\n"}),
        "delta": make_wheel(d, "delta", "0.1"),
        "fixture-backend": make_backend_wheel(d),
        "gamma": make_sdist(
            d,
            "gamma",
            "0.5",
            modules={
                "gamma/__init__.py": "Y = 1\n",
                "gamma/cli.py": "def main():\n    print('gamma', 1)\n",
            },
            console_scripts={"gamma": "gamma.cli:main"},
        ),
    }


@pytest.fixture(scope="session")
def demo_index(
    tmp_path_factory: pytest.TempPathFactory, demo_dists: dict[str, Path]
) -> Iterator[IndexServer]:
    """A loopback index serving ``demo_dists`` (session-wide: nix caches fetches by hash)."""
    server = IndexServer(tmp_path_factory.mktemp("nix-index"))
    for path in demo_dists.values():
        server.publish(path)
    yield server
    server.close()


def demo_entries(dists: Mapping[str, Path]) -> list[LockEntry]:
    """Lock entries of the demo set."""
    return [
        *frontend_entries(dists),
        entry(dists["alpha"], "beta"),
        entry(dists["beta"]),
        entry(dists["delta"]),
        entry(dists["fixture-backend"]),
        entry(dists["gamma"], build_requires=["fixture-backend"]),
    ]


def lock_demo(
    repo: NixRepo, index: IndexServer, dists: Mapping[str, Path], python: str = "3.12", **kw: object
) -> None:
    """Write ``sets/demo/pylock.py3XY.toml`` (``entries=`` replaces the demo entries)."""
    entries = kw.pop("entries", None) or demo_entries(dists)
    write_lock(
        repo.sets / "demo" / f"pylock.py3{python.split('.')[1]}.toml",
        entries,
        base_url=f"{index.root_url}/files/",
        set_name="demo",
        python=python,
        roots=["alpha", "gamma"],
        **kw,
    )
