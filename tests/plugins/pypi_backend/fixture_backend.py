"""fixture-backend: a minimal but real PEP 517 build backend, pure stdlib.

It builds from the static ``[project]`` table of ``pyproject.toml`` and packs the top-level
modules and packages listed in ``[tool.fixture-backend] include`` (default: every ``*.py``
file and package directory next to ``pyproject.toml``).  When ``dependencies`` is declared
dynamic, they come from ``[tool.fixture-backend] dependencies``.  Wheels carry METADATA,
WHEEL, entry_points.txt and a RECORD with hashes, with fixed timestamps so the same inputs
give the same bytes.  The test index (tests/plugins/pypi.py) builds its wheels with
:func:`write_wheel` and :func:`core_metadata` too.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import itertools
import re
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: a ``[project]`` or ``[tool.*]`` table of pyproject.toml
Table = dict[str, Any]

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: pyproject ``dynamic`` keys -> core metadata fields
DYNAMIC_FIELDS = {
    "dependencies": "Requires-Dist",
    "requires-python": "Requires-Python",
    "urls": "Project-URL",
    "optional-dependencies": "Provides-Extra",
}


def dist_name(name: str) -> str:
    """The escaped name used in wheel and sdist filenames and the .dist-info directory."""
    return re.sub(r"[-_.]+", "_", name).lower()


def core_metadata(
    name: str,
    version: str,
    *,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    project_urls: Mapping[str, str] | None = None,
    metadata_version: str = "2.1",
    dynamic: Iterable[str] = (),
    summary: str = "A test distribution",
) -> str:
    """METADATA / PKG-INFO text."""
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary}",
    ]
    lines += [f"Dynamic: {field}" for field in dynamic]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Project-URL: {label}, {url}" for label, url in (project_urls or {}).items()]
    requires_dist = list(requires_dist)
    extras = sorted(
        {m for r in requires_dist for m in re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", r)}
    )
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {req}" for req in requires_dist]
    return "\n".join(lines) + "\n\n"


def _expand_tag(tag: str) -> list[str]:
    return [("-".join(t)) for t in itertools.product(*(p.split(".") for p in tag.split("-")))]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def dist_info_files(
    name: str,
    version: str,
    metadata: str,
    scripts: Mapping[str, str] | None = None,
    tag: str = "py3-none-any",
) -> dict[str, bytes]:
    """The .dist-info members except RECORD, as {relative path: bytes}."""
    info = f"{dist_name(name)}-{version}.dist-info"
    purelib = tag.endswith("-any")
    wheel = [
        "Wheel-Version: 1.0",
        "Generator: fixture-backend",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
    ]
    wheel += [f"Tag: {t}" for t in _expand_tag(tag)]
    out = {
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": ("\n".join(wheel) + "\n").encode(),
    }
    if scripts:
        body = "".join(f"{k} = {v}\n" for k, v in scripts.items())
        out[f"{info}/entry_points.txt"] = f"[console_scripts]\n{body}".encode()
    return out


def write_wheel(
    wheel_directory: str | Path,
    name: str,
    version: str,
    *,
    metadata: str,
    files: Mapping[str, bytes],
    scripts: Mapping[str, str] | None = None,
    tag: str = "py3-none-any",
) -> str:
    """Write a wheel of ``files`` ({path in wheel: bytes}); return its filename."""
    info = f"{dist_name(name)}-{version}.dist-info"
    members = dict(sorted(files.items()))
    members.update(dist_info_files(name, version, metadata, scripts, tag))
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in members.items())
    members[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    filename = f"{dist_name(name)}-{version}-{tag}.whl"
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w") as zf:
        for path, data in members.items():
            zinfo = zipfile.ZipInfo(path, ZIP_EPOCH)
            zinfo.external_attr = 0o644 << 16
            zf.writestr(zinfo, data, compress_type=zipfile.ZIP_DEFLATED)
    return filename


def write_tar_gz(path: str | Path, members: Mapping[str, bytes]) -> None:
    """A reproducible .tar.gz of {member name: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for member, data in sorted(members.items()):
            tinfo = tarfile.TarInfo(member)
            tinfo.size, tinfo.mode, tinfo.mtime = len(data), 0o644, 0
            tf.addfile(tinfo, io.BytesIO(data))
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buf.getvalue())


# --- the backend proper ---------------------------------------------------------------------


def _load(root: Path = Path()) -> tuple[Table, Table, list[str]]:
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    project, tool = data["project"], data.get("tool", {}).get("fixture-backend", {})
    dynamic = project.get("dynamic", [])
    deps = (
        tool.get("dependencies", [])
        if "dependencies" in dynamic
        else project.get("dependencies", [])
    )
    return project, tool, deps


def _sources(root: Path = Path()) -> dict[str, bytes]:
    _, tool, _ = _load(root)
    include = tool.get("include")
    if include is None:
        include = sorted(
            p.name
            for p in root.iterdir()
            if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())
        )
    files: dict[str, bytes] = {}
    for entry in include:
        top = root / entry
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for p in paths:
            if "__pycache__" not in p.parts:
                files[p.relative_to(root).as_posix()] = p.read_bytes()
    return files


def _metadata(metadata_version: str = "2.1") -> str:
    project, _, deps = _load()
    dynamic = [DYNAMIC_FIELDS[d] for d in project.get("dynamic", []) if d in DYNAMIC_FIELDS]
    return core_metadata(
        project["name"],
        project["version"],
        requires_dist=deps,
        requires_python=project.get("requires-python"),
        project_urls=project.get("urls"),
        metadata_version=metadata_version,
        dynamic=dynamic if metadata_version >= "2.2" else (),
    )


def get_requires_for_build_wheel(config_settings: Table | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: Table | None = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Table | None = None
) -> str:
    project, _, _ = _load()
    name, version = project["name"], project["version"]
    for path, data in dist_info_files(name, version, _metadata(), project.get("scripts")).items():
        target = Path(metadata_directory) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return f"{dist_name(name)}-{version}.dist-info"


def build_wheel(
    wheel_directory: str,
    config_settings: Table | None = None,
    metadata_directory: str | None = None,
) -> str:
    project, _, _ = _load()
    return write_wheel(
        wheel_directory,
        project["name"],
        project["version"],
        metadata=_metadata(),
        files=_sources(),
        scripts=project.get("scripts"),
    )


def build_sdist(sdist_directory: str, config_settings: Table | None = None) -> str:
    project, _, _ = _load()
    base = f"{dist_name(project['name'])}-{project['version']}"
    members = {f"{base}/{p}": d for p, d in _sources().items()}
    members[f"{base}/pyproject.toml"] = Path("pyproject.toml").read_bytes()
    members[f"{base}/PKG-INFO"] = _metadata("2.2").encode()
    write_tar_gz(Path(sdist_directory) / f"{base}.tar.gz", members)
    return f"{base}.tar.gz"
