"""Sdist metadata with the lock's Python: hooks run in an environment of the target
interpreter, within a bounded time; failures are remembered (issue 13, item 3)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bot.core.errors import MetadataError
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.models import DistFile
from bot.model.interpreters import detect
from tests.plugins.pypi import IndexServer, make_sdist
from tests.plugins.pypi_backend import fixture_backend

PY312 = detect(["3.12"]).get("3.12", "")
needs_312 = pytest.mark.skipif(not PY312, reason="needs a CPython 3.12 to run the hook with")

#: an in-tree backend that stops on any Python but 3.12, like scipy's meson backend
STRICT_BACKEND = """
import os, sys
from pathlib import Path

def _log(what):
    if LOG:
        with open(LOG, "a") as f:
            f.write(what + "\\n")

def _check():
    _log("hook")
    found = "%d.%d" % sys.version_info[:2]
    if found != "3.12":
        raise SystemExit("Minimum supported Python version is 3.12, found " + found)

def get_requires_for_build_wheel(config_settings=None):
    _check()
    return EXTRA

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    _check()
    info = Path(directory) / "strict-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\\nName: strict\\nVersion: 1.0\\nRequires-Dist: dep>=2\\n\\n"
    )
    return info.name
"""


def strict_sdist(
    dest: Path, *, extra: tuple[str, ...] = (), hook: bool = True, log: Path | None = None
) -> Path:
    """An sdist with a Metadata 2.1 PKG-INFO and dynamic dependencies whose in-tree backend
    needs Python 3.12 (``hook=False``: a backend without prepare_metadata_for_build_wheel,
    whose build_wheel fails loudly).  Each hook run appends a line to ``log``: its path is in
    the backend's source, as a hook gets none of the bot's environment to find it in."""
    source = STRICT_BACKEND.replace("EXTRA", repr(list(extra)))
    source = source.replace("LOG", repr(str(log) if log else ""))
    if not hook:
        source = source.replace("def prepare_metadata_for_build_wheel", "def _unused")
        source += "\ndef build_wheel(wheel_directory, config_settings=None, m=None):\n"
        source += "    _log('build_wheel')\n    raise SystemExit('a whole build was started')\n"
    pyproject = (
        '[build-system]\nrequires = []\nbuild-backend = "strict_backend"\n'
        'backend-path = ["."]\n\n[project]\nname = "strict"\nversion = "1.0"\n'
        'dynamic = ["dependencies"]\n'
    )
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "strict-1.0.tar.gz"
    fixture_backend.write_tar_gz(
        path,
        {
            "strict-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: strict\nVersion: 1.0\n\n",
            "strict-1.0/pyproject.toml": pyproject.encode(),
            "strict-1.0/strict_backend.py": source.encode(),
            "strict-1.0/strict.py": b"",
        },
    )
    return path


@pytest.fixture
def hook_log(tmp_path: Path) -> Path:
    """Where :func:`strict_sdist` (given it as ``log``) records its hooks' runs."""
    return tmp_path / "hooks.log"


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[object]:
    clients: list[IndexClient] = []

    def make(server: IndexServer) -> IndexClient:
        client = IndexClient([IndexRoute(server.url)], cache_dir=tmp_path / "cache", backoff=0.001)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def only_file(client: IndexClient, name: str) -> DistFile:
    (file,) = client.files(canonicalize_name(name))
    return file


@needs_312
def test_hook_runs_with_the_locks_python(
    pypi_index: IndexServer, client_for, tmp_path: Path, hook_log: Path
) -> None:
    assert sys.version_info[:2] != (3, 12), "the bot must run on another Python for this case"
    pypi_index.publish(strict_sdist(tmp_path / "dist", log=hook_log))
    client = client_for(pypi_index)
    client.build_python = ("3.12", PY312)
    meta = client.metadata(only_file(client, "strict"))
    assert [str(r) for r in meta.requires_dist] == ["dep>=2"]


def test_hook_on_the_wrong_python_fails_once_and_is_remembered(
    pypi_index: IndexServer, client_for, tmp_path: Path, hook_log: Path
) -> None:
    pypi_index.publish(strict_sdist(tmp_path / "dist", log=hook_log))
    first = client_for(pypi_index)
    first.build_python = ("3.12", sys.executable)  # not 3.12: the backend refuses it
    with pytest.raises(MetadataError) as info:
        first.metadata(only_file(first, "strict"))
    assert "Minimum supported Python version is 3.12" in str(info.value)
    runs = hook_log.read_text().count("hook")
    assert runs >= 1
    # a later run (same cache) does not try again ...
    second = client_for(pypi_index)
    second.build_python = ("3.12", sys.executable)
    with pytest.raises(MetadataError, match="remembered from an earlier run") as info:
        second.metadata(only_file(second, "strict"))
    assert "--refresh" in str(info.value)
    assert hook_log.read_text().count("hook") == runs
    # ... until --refresh
    third = client_for(pypi_index)
    third.build_python = ("3.12", sys.executable)
    third.refresh = True
    with pytest.raises(MetadataError, match="Minimum supported Python"):
        third.metadata(only_file(third, "strict"))
    assert hook_log.read_text().count("hook") > runs


def test_no_interpreter_for_the_version_is_one_clear_error(
    pypi_index: IndexServer, client_for, tmp_path: Path, hook_log: Path
) -> None:
    pypi_index.publish(strict_sdist(tmp_path / "dist", log=hook_log))
    client = client_for(pypi_index)
    client.build_python = ("3.12", "")
    with pytest.raises(MetadataError, match=r"no Python 3\.12 interpreter") as info:
        client.metadata(only_file(client, "strict"))
    assert "pyenv install 3.12" in str(info.value)
    assert not hook_log.exists()


def test_no_interpreter_is_an_error_for_build_requirements_too(
    pypi_index: IndexServer, client_for, tmp_path: Path, hook_log: Path
) -> None:
    # once this counted as "asks for nothing" (a warning): a lock made on a machine without
    # the lock's Python then differed from one made with it; now it is the metadata's error
    pypi_index.publish(strict_sdist(tmp_path / "dist", extra=("ninja",)))
    client = client_for(pypi_index)
    client.build_python = ("3.13", "")
    with pytest.raises(MetadataError, match=r"no Python 3\.13 interpreter") as info:
        client.dynamic_build_requires(only_file(client, "strict"))
    assert "build requirements" in str(info.value)
    assert "pyenv install 3.13" in str(info.value)
    assert "nix/local.json" in str(info.value)
    assert not hook_log.exists()


def test_no_interpreter_is_fine_for_a_static_backend(
    pypi_index: IndexServer, client_for, tmp_path: Path
) -> None:
    pypi_index.publish(
        make_sdist(
            tmp_path / "dist", "flat", "1.0", build_requires=["flit_core>=3.2"],
            build_backend="flit_core.buildapi",
        )
    )  # fmt: skip
    client = client_for(pypi_index)
    client.build_python = ("3.13", "")
    file = only_file(client, "flat")
    assert [str(r) for r in client.build_requires(file)] == ["flit_core>=3.2"]
    assert client.dynamic_build_requires(file) == ()


def test_static_project_table_needs_no_backend(
    pypi_index: IndexServer, client_for, tmp_path: Path, hook_log: Path
) -> None:
    # like meson-python's sdists: Metadata 2.1 PKG-INFO (untrusted), no metadata hook, but
    # every field the resolver reads is static in [project]: no backend run, no whole build
    path = tmp_path / "dist" / "strict-1.0.tar.gz"
    strict_sdist(tmp_path / "dist", hook=False, log=hook_log)
    import tarfile

    with tarfile.open(path) as tf:
        members = {
            m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isfile()
        }
    members["strict-1.0/pyproject.toml"] = members["strict-1.0/pyproject.toml"].replace(
        b'dynamic = ["dependencies"]\n',
        b'requires-python = ">=3.12"\ndependencies = ["dep>=2"]\n'
        b"[project.optional-dependencies]\nfast = [\"speed; sys_platform == 'linux'\"]\n",
    )
    fixture_backend.write_tar_gz(path, members)
    pypi_index.publish(path)
    client = client_for(pypi_index)
    client.build_python = ("3.12", sys.executable)
    meta = client.metadata(only_file(client, "strict"))
    assert [str(r) for r in meta.requires_dist] == [
        "dep>=2",
        'speed; sys_platform == "linux" and extra == "fast"',
    ]
    assert str(meta.requires_python) == ">=3.12"
    assert meta.provides_extra == ("fast",)
    assert not hook_log.exists()


def test_backend_without_metadata_hook_falls_back_to_a_bounded_build(
    pypi_index: IndexServer, client_for, tmp_path: Path, hook_log: Path
) -> None:
    pypi_index.publish(strict_sdist(tmp_path / "dist", hook=False, log=hook_log))
    client = client_for(pypi_index)
    client.build_python = ("3.12", PY312 or sys.executable)
    with pytest.raises(MetadataError, match="failed to produce metadata") as info:
        client.metadata(only_file(client, "strict"))
    assert "a whole build was started" in str(info.value)
    assert "build_wheel" in hook_log.read_text()


def test_missing_backend_is_one_clear_error(
    pypi_index: IndexServer, client_for, tmp_path: Path
) -> None:
    path = strict_sdist(tmp_path / "dist")
    import tarfile

    with tarfile.open(path) as tf:
        members = {
            m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isfile()
        }
    del members["strict-1.0/strict_backend.py"]
    fixture_backend.write_tar_gz(path, members)
    pypi_index.publish(path)
    client = client_for(pypi_index)
    client.build_python = ("3.12", sys.executable)
    file = only_file(client, "strict")
    with pytest.raises(MetadataError, match="from its backend 'strict_backend'"):
        client.metadata(file)
    # asking for its build requirements only warns: the build meets the same problem
    assert client.dynamic_build_requires(file) == ()


PY313 = detect(["3.13"]).get("3.13", "")

#: an in-tree backend whose dependencies depend on the Python it runs on, as a setup.py's
#: ``if sys.version_info < (3, 13): install_requires.append(...)`` does
VERSIONED_BACKEND = """
import sys
from pathlib import Path

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    with open(LOG, "a") as f:
        f.write("%d.%d\\n" % sys.version_info[:2])
    extra = "Requires-Dist: tomli\\n" if sys.version_info < (3, 13) else ""
    info = Path(directory) / "versioned-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\\nName: versioned\\nVersion: 1.0\\n" + extra + "\\n"
    )
    return info.name
"""


@pytest.mark.skipif(not (PY312 and PY313), reason="needs CPython 3.12 and 3.13")
def test_an_sdists_hook_metadata_is_kept_per_python(
    pypi_index: IndexServer, client_for, tmp_path: Path, hook_log: Path
) -> None:
    """One client serves the locks of every Python of a run, and one cache every run: what a
    hook answered on 3.12 is not the 3.13 lock's answer."""
    pyproject = (
        '[build-system]\nrequires = []\nbuild-backend = "versioned_backend"\n'
        'backend-path = ["."]\n\n[project]\nname = "versioned"\nversion = "1.0"\n'
        'dynamic = ["dependencies"]\n'
    )
    dist = tmp_path / "dist"
    dist.mkdir()
    fixture_backend.write_tar_gz(
        dist / "versioned-1.0.tar.gz",
        {
            "versioned-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: versioned\nVersion: 1.0\n\n",
            "versioned-1.0/pyproject.toml": pyproject.encode(),
            "versioned-1.0/versioned_backend.py": VERSIONED_BACKEND.replace(
                "LOG", repr(str(hook_log))
            ).encode(),
        },
    )
    pypi_index.publish(dist / "versioned-1.0.tar.gz")

    def requires(client: IndexClient, version: str, python: str) -> list[str]:
        client.build_python = (version, python)
        return [str(r) for r in client.metadata(only_file(client, "versioned")).requires_dist]

    client = client_for(pypi_index)
    assert requires(client, "3.12", PY312) == ["tomli"]
    assert requires(client, "3.13", PY313) == []
    assert hook_log.read_text().split() == ["3.12", "3.13"]
    # a later run with the same cache: each Python's answer from the cache, no hook run
    later = client_for(pypi_index)
    assert requires(later, "3.13", PY313) == []
    assert requires(later, "3.12", PY312) == ["tomli"]
    assert hook_log.read_text().split() == ["3.12", "3.13"]
