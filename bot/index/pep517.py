"""Core metadata of an sdist whose PKG-INFO cannot be trusted: ask its PEP 517 backend.

The sdist is unpacked into a temporary directory, its build requirements are installed into a
fresh isolated environment from the SAME indexes the bot resolves against (never from any
other index, find-links directory or configuration file), and the backend's
``prepare_metadata_for_build_wheel`` hook runs (falling back to ``build_wheel``).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import tomllib
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from build.env import DefaultIsolatedEnv
from pyproject_hooks import BuildBackendHookCaller, BuildBackendWarning, HookMissing

from bot.errors import CommandError, MetadataError
from bot.index.models import DistFile
from bot.proc import run

log = logging.getLogger(__name__)

_INDEX_WORDS = ("INDEX", "FIND_LINKS", "CONFIG", "TRUSTED_HOST", "PREFER_BINARY")
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
BUILD_TIMEOUT = 900.0


def find_uv() -> str | None:
    """The uv executable next to this interpreter or on PATH, if any."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def _without_installer_config() -> list[str]:
    """An ``env`` prefix that drops every setting that could point an installer (or a legacy
    backend fetching setup_requires) at another index or find-links directory, and stops
    pip from reading configuration files.  TLS settings (PIP_CERT, SSL_CERT_FILE) stay."""
    drop = sorted(
        k
        for k in os.environ
        if (k.startswith(("PIP_", "UV_")) and any(w in k for w in _INDEX_WORDS))
        or k in ("PYTHONPATH", "VIRTUAL_ENV")
    )
    return ["env", *(arg for k in drop for arg in ("-u", k)), f"PIP_CONFIG_FILE={os.devnull}"]


def install_command(
    python: str, requirements_file: Path, index_urls: Sequence[str], uv: str | None
) -> list[str]:
    """The installer command line; the first index is --index-url, the rest extra indexes."""
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
            *_without_installer_config(),
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
        *_without_installer_config(),
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


def _unpack(data: bytes, filename: str, dest: Path) -> Path:
    if filename.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(dest)  # noqa: S202 - zipfile sanitises member paths
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            tf.extractall(dest, filter="data")
    roots = [p for p in dest.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise ValueError("an sdist must contain exactly one top-level directory")
    return roots[0]


class _Env:
    """An isolated build environment that installs only from the configured indexes."""

    def __init__(
        self, env: DefaultIsolatedEnv, index_urls: Sequence[str], uv: str | None, file: DistFile
    ) -> None:
        self.env, self.index_urls, self.uv, self.file = env, index_urls, uv, file

    def install(self, requirements: Sequence[str]) -> None:
        if not requirements:
            return
        with tempfile.TemporaryDirectory(prefix="nixpkgs-python-reqs-") as tmp:
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text("\n".join(requirements) + "\n", encoding="utf-8")
            argv = install_command(self.env.python_executable, reqs, self.index_urls, self.uv)
            run(
                argv,
                timeout=BUILD_TIMEOUT,
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
        env = {**self.env.make_extra_environ(), **(extra_environ or {})}
        proc = run(
            [*_without_installer_config(), *cmd],
            cwd=Path(cwd) if cwd else None,
            env=env,
            timeout=BUILD_TIMEOUT,
            what="the PEP 517 backend",
        )
        log.debug("%s", proc.stdout)


def pep517_metadata(
    data: bytes, file: DistFile, index_urls: Sequence[str], *, uv: str | None = None
) -> bytes:
    """METADATA of the sdist ``data`` from its PEP 517 backend, in an isolated environment.

    ``uv``: the uv executable to install build requirements with; None finds it, "" means
    use pip.
    """
    if not log.isEnabledFor(logging.DEBUG):
        # setuptools' deprecation chatter from the backends we ask for metadata: not ours to
        # fix, and it buries the bot's own output (-v shows it)
        warnings.filterwarnings("ignore", category=BuildBackendWarning)
    uv = find_uv() if uv is None else (uv or None)
    with tempfile.TemporaryDirectory(prefix="nixpkgs-python-pep517-") as tmp:
        work = Path(tmp)
        try:
            source = _unpack(data, file.filename, work / "src")
        except (tarfile.TarError, zipfile.BadZipFile, OSError, ValueError) as exc:
            raise MetadataError(f"cannot unpack {file.filename}: {exc}", where=file.url) from exc
        system: dict[str, Any] = {}
        pyproject = source / "pyproject.toml"
        if pyproject.is_file():
            try:
                system = tomllib.loads(pyproject.read_text("utf-8")).get("build-system", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise MetadataError(
                    f"invalid pyproject.toml in {file.filename}: {exc}", where=file.url
                ) from exc
        requires = [str(r) for r in system.get("requires", ["setuptools>=40.8.0"])]
        backend = str(system.get("build-backend") or LEGACY_BACKEND)
        backend_path = system.get("backend-path")
        try:
            with DefaultIsolatedEnv(installer="uv" if uv else "pip") as isolated:
                env = _Env(isolated, index_urls, uv, file)
                env.install(requires)
                hooks = BuildBackendHookCaller(
                    str(source),
                    backend,
                    backend_path=[str(p) for p in backend_path] if backend_path else None,
                    runner=env.runner,
                    python_executable=isolated.python_executable,
                )
                env.install(list(hooks.get_requires_for_build_wheel()))
                out = work / "metadata"
                out.mkdir()
                dist_info = hooks.prepare_metadata_for_build_wheel(str(out), _allow_fallback=True)
                return (out / dist_info / "METADATA").read_bytes()
        except CommandError as exc:
            raise MetadataError(
                f"the PEP 517 backend of {file.filename} failed to produce metadata",
                where=file.url,
                hint=f"{exc.message}; command: {exc.command}\n{exc.stderr_tail}",
            ) from exc
        except (HookMissing, OSError) as exc:
            raise MetadataError(
                f"cannot get metadata of {file.filename} from its backend {backend!r}: {exc}",
                where=file.url,
            ) from exc
