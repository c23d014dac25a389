"""cext-backend: a minimal PEP 517 backend compiling one C extension module, pure stdlib.

``pyproject.toml``::

    [project]
    name = "npext"
    version = "1.0"

    [tool.cext]
    module = "npext"            # the extension module's name
    source = "npext.c"
    libraries = ["nptest"]      # -l flags
    run = [["nptool", "gen"]]   # commands run first (a build that needs a tool)

It compiles with ``cc`` (``$CC``) and the interpreter's headers, as setuptools would, so a
missing header, library or command fails the way real builds fail.  Wheels come from
fixture_backend (shipped beside it in the same wheel).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same module, as mypy sees it from the repository
    from tests.plugins.pypi_backend.fixture_backend import core_metadata, write_wheel
else:  # shipped beside this one in the backend's wheel
    from fixture_backend import core_metadata, write_wheel


def _config() -> tuple[dict[str, Any], dict[str, Any]]:
    data = tomllib.loads(Path("pyproject.toml").read_text())
    return data["project"], data.get("tool", {}).get("cext", {})


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    project, cext = _config()
    for argv in cext.get("run", []):
        print("$", " ".join(argv), flush=True)
        subprocess.run(argv, check=True)
    module = cext["module"]
    target = module + sysconfig.get_config_var("EXT_SUFFIX")
    argv = [
        os.environ.get("CC", "cc"),
        "-shared",
        "-fPIC",
        "-I" + sysconfig.get_paths()["include"],
        cext["source"],
        "-o",
        target,
        *("-l" + lib for lib in cext.get("libraries", [])),
    ]
    print("$", " ".join(argv), flush=True)
    if subprocess.run(argv, check=False).returncode != 0:
        sys.exit(f"error: command {argv[0]!r} failed")
    abi = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    return write_wheel(
        wheel_directory,
        project["name"],
        project["version"],
        metadata=core_metadata(project["name"], project["version"]),
        files={target: Path(target).read_bytes()},
        tag=f"{abi}-{abi}-linux_x86_64",
    )
