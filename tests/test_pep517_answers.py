"""A PEP 517 backend's answers are the sdist's own code talking: each is checked (a list of
requirement strings; a plain directory name) and a wrong one is one MetadataError naming the
backend and the sdist, never a traceback or junk requirements (real in-tree backends, run in
real hook environments, from sdists on a loopback index)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bot.core.errors import MetadataError
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.models import DistFile
from bot.lock.index.pep517 import pep517_build_requires
from tests.plugins.pypi import IndexServer, make_wheel
from tests.plugins.pypi_backend import fixture_backend

#: an in-tree backend answering as REQUIRES and DIST_INFO (Python literals) say
ODD_BACKEND = """
from pathlib import Path

def get_requires_for_build_wheel(config_settings=None):
    return REQUIRES

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    info = Path(directory) / "odd-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\\nName: odd\\nVersion: 1.0\\n\\n")
    (Path(directory) / "METADATA").write_text("Metadata-Version: 2.1\\nName: odd\\n\\n")
    return DIST_INFO
"""
PYTHON = (f"{sys.version_info[0]}.{sys.version_info[1]}", sys.executable)


def odd_sdist(dest: Path, requires: str = "[]", dist_info: str = "info.name") -> Path:
    """odd 1.0: an sdist whose PKG-INFO (Metadata 2.1) is not trusted, built by its in-tree
    backend ``odd_backend`` (no build requirements) answering with ``requires`` and
    ``dist_info`` (Python source)."""
    source = ODD_BACKEND.replace("REQUIRES", requires).replace("DIST_INFO", dist_info)
    pyproject = (
        '[build-system]\nrequires = []\nbuild-backend = "odd_backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "odd"\nversion = "1.0"\ndynamic = ["dependencies"]\n'
    )
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "odd-1.0.tar.gz"
    fixture_backend.write_tar_gz(
        path,
        {
            "odd-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: odd\nVersion: 1.0\n\n",
            "odd-1.0/pyproject.toml": pyproject.encode(),
            "odd-1.0/odd_backend.py": source.encode(),
        },
    )
    return path


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[object]:
    clients: list[IndexClient] = []

    def make(server: IndexServer) -> IndexClient:
        client = IndexClient([IndexRoute(server.url)], cache_dir=tmp_path / "cache", retries=0)
        client.build_python = PYTHON
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def served(index: IndexServer, tmp_path: Path, **answers: str) -> DistFile:
    index.publish(odd_sdist(tmp_path / "dist", **answers))
    client = IndexClient([IndexRoute(index.url)], cache_dir=tmp_path / "files", retries=0)
    try:
        [file] = client.files(canonicalize_name("odd"))
    finally:
        client.close()
    return file


def test_an_honest_backend_is_asked(
    pypi_index: IndexServer, client_for: object, tmp_path: Path
) -> None:
    pypi_index.publish(odd_sdist(tmp_path / "dist", requires="['ninja>=1.8']"))
    pypi_index.publish(make_wheel(tmp_path / "dist", "ninja", "1.13"))
    client: IndexClient = client_for(pypi_index)  # type: ignore[operator]
    [file] = client.files(canonicalize_name("odd"))
    assert client.metadata(file).name == "odd"
    assert [str(r) for r in client.dynamic_build_requires(file)] == ["ninja>=1.8"]


BAD_REQUIRES = {
    "None": "not a list of requirement strings",
    "'setuptools'": "not a list of requirement strings",  # would be s, e, t, u... each a name
    "{'ninja': 1}": "not a list of requirement strings",
    "['ninja', 3]": "not a list of requirement strings",
    "['ninja >= ']": "'ninja >= ' is not a requirement",
}


@pytest.mark.parametrize("requires", sorted(BAD_REQUIRES))
def test_build_requirements_that_are_not_a_list_of_requirements(
    pypi_index: IndexServer, tmp_path: Path, requires: str
) -> None:
    file = served(pypi_index, tmp_path, requires=requires)
    data = (pypi_index.files_dir / file.filename).read_bytes()
    with pytest.raises(MetadataError, match=BAD_REQUIRES[requires]) as info:
        pep517_build_requires(data, file, [pypi_index.url], python=sys.executable)
    message = str(info.value)
    assert "the PEP 517 backend 'odd_backend' of odd-1.0.tar.gz answered" in message
    assert "get_requires_for_build_wheel" in message
    assert info.value.where == file.url


@pytest.mark.parametrize("requires", ["None", "'setuptools'"])
def test_the_client_asks_for_no_junk_build_requirements(
    pypi_index: IndexServer, client_for: object, tmp_path: Path, requires: str
) -> None:
    """Where the lock asks (a wrong answer counts as asking for nothing, with a warning, as
    any backend failure there) and where it reads metadata (one error)."""
    pypi_index.publish(odd_sdist(tmp_path / "dist", requires=requires))
    client: IndexClient = client_for(pypi_index)  # type: ignore[operator]
    [file] = client.files(canonicalize_name("odd"))
    assert client.dynamic_build_requires(file) == ()
    with pytest.raises(MetadataError, match="not a list of requirement strings"):
        client.metadata(file)


BAD_DIST_INFO = {
    "None": "not a directory name",
    "42": "not a directory name",
    "['odd-1.0.dist-info']": "not a directory name",
    "'..'": "not a plain directory name",
    "'.'": "not a plain directory name",  # its METADATA exists: it would be read
    "''": "not a plain directory name",
    "'odd-1.0.dist-info/../..'": "not a plain directory name",
    "'/etc'": "not a plain directory name",
}


@pytest.mark.parametrize("dist_info", sorted(BAD_DIST_INFO))
def test_a_dist_info_that_is_not_a_plain_directory_name(
    pypi_index: IndexServer, client_for: object, tmp_path: Path, dist_info: str
) -> None:
    pypi_index.publish(odd_sdist(tmp_path / "dist", dist_info=dist_info))
    client: IndexClient = client_for(pypi_index)  # type: ignore[operator]
    [file] = client.files(canonicalize_name("odd"))
    with pytest.raises(MetadataError, match=BAD_DIST_INFO[dist_info]) as info:
        client.metadata(file)
    message = str(info.value)
    assert "the PEP 517 backend 'odd_backend' of odd-1.0.tar.gz answered" in message
    assert "prepare_metadata_for_build_wheel" in message
    assert "exclude this version" in message


@pytest.mark.parametrize("answers", [{"requires": "None"}, {"dist_info": "'..'"}])
def test_a_lock_through_a_broken_backend_is_one_error(
    pypi_index: IndexServer,
    frontend_wheels: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    answers: dict[str, str],
) -> None:
    from bot.cli import main
    from tests.test_lock_cli import make_repo

    for wheel in frontend_wheels.values():  # what the Nix library builds with
        pypi_index.publish(wheel)
    pypi_index.publish(odd_sdist(tmp_path / "dist", **answers))
    repo = make_repo(tmp_path, ["odd"])
    argv = ["--repo", str(repo), "-q", "lock", "--index-url", pypi_index.url]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache"), "--retries", "0"])
    err = capsys.readouterr().err
    assert code != 0
    assert "the PEP 517 backend 'odd_backend' of odd-1.0.tar.gz answered" in err, err
    assert "Traceback" not in err
    assert not list((repo / "sets" / "demo").glob("pylock*"))
