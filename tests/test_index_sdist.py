"""IndexClient and sdists: PEP 643 PKG-INFO trust, PEP 517 metadata, build requirements."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bot.core.errors import IndexError_, MetadataError
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.hookenv import hook_environ
from bot.lock.index.models import DistFile
from bot.lock.index.pep517 import install_command
from tests.plugins.pypi import IndexServer, make_sdist


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[object]:
    clients: list[IndexClient] = []

    def make(server: IndexServer, **kwargs: object) -> IndexClient:
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        client = IndexClient([IndexRoute(server.url)], backoff=0.001, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _installer(kind: str) -> dict[str, object]:
    """IndexClient options: build environments composed from wheels, or made by uv or pip."""
    if kind == "composed":
        return {}
    return {"uv": None if kind == "uv" else "", "compose_builds": False}


def only_file(client: IndexClient, name: str) -> DistFile:
    (file,) = client.files(canonicalize_name(name))
    return file


def test_trusted_pkg_info_needs_no_backend(
    pypi_index: IndexServer, client_for, tmp_path: Path
) -> None:
    pypi_index.publish(
        make_sdist(tmp_path, "static", "1.0", requires_dist=["dep>=2"], requires_python=">=3.10")
    )
    client = client_for(pypi_index)
    meta = client.metadata(only_file(client, "static"))
    assert [str(r) for r in meta.requires_dist] == ["dep>=2"]
    assert str(meta.requires_python) == ">=3.10"
    # the backend was never installed: nothing asked the index for it
    assert "/simple/fixture-backend/" not in pypi_index.paths()
    assert pypi_index.paths("/files/") == ["/files/static-1.0.tar.gz"]


def test_dynamic_requires_dist_goes_through_pep517(
    pypi_index_with_backend: IndexServer, client_for, tmp_path: Path
) -> None:
    index = pypi_index_with_backend
    index.publish(
        make_sdist(
            tmp_path,
            "dyn",
            "1.0",
            requires_dist=["dep>=3", "x; extra == 'y'"],
            dynamic=("Requires-Dist",),
        )
    )
    client = client_for(index)
    meta = client.metadata(only_file(client, "dyn"))
    # PKG-INFO lists no Requires-Dist at all: these came from the backend
    assert [str(r) for r in meta.requires_dist] == ["dep>=3", 'x; extra == "y"']
    assert meta.provides_extra == ("y",)
    # the backend was installed from the configured index
    assert "/simple/fixture-backend/" in index.paths()
    assert "/files/fixture_backend-1.0-py3-none-any.whl" in index.paths()


@pytest.mark.parametrize("installer", ["composed", "uv", "pip"])
def test_old_metadata_version_goes_through_pep517(
    pypi_index_with_backend: IndexServer, client_for, tmp_path: Path, installer: str
) -> None:
    index = pypi_index_with_backend
    # dependencies dynamic in pyproject.toml too (static ones need no backend at all)
    index.publish(
        make_sdist(
            tmp_path,
            "old",
            "1.0",
            requires_dist=["dep"],
            metadata_version="2.1",
            dynamic=("Requires-Dist",),
        )
    )
    client = client_for(index, **_installer(installer))
    assert [str(r) for r in client.metadata(only_file(client, "old")).requires_dist] == ["dep"]
    assert "/simple/fixture-backend/" in index.paths()


def test_pep517_failure_names_the_file(pypi_index: IndexServer, client_for, tmp_path: Path) -> None:
    # fixture-backend is not on the index, and nothing else may be used to find it
    pypi_index.publish(make_sdist(tmp_path, "dyn", "1.0", dynamic=("Requires-Dist",)))
    client = client_for(pypi_index)
    file = only_file(client, "dyn")
    with pytest.raises(MetadataError, match=r"PEP 517 backend of dyn-1\.0\.tar\.gz") as info:
        client.metadata(file)
    assert info.value.where == file.url
    assert "/simple/fixture-backend/" in pypi_index.paths()


@pytest.mark.parametrize("installer", ["composed", "uv", "pip"])
def test_build_requirements_never_come_from_elsewhere(
    pypi_index: IndexServer,
    client_for,
    tmp_path: Path,
    backend_wheel: Path,
    monkeypatch: pytest.MonkeyPatch,
    installer: str,
) -> None:
    other = IndexServer(tmp_path / "other")
    try:
        other.publish(backend_wheel)
        for var in ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX_URL"):
            monkeypatch.setenv(var, other.url)
        monkeypatch.setenv("PIP_FIND_LINKS", str(backend_wheel.parent))
        pypi_index.publish(make_sdist(tmp_path, "dyn", "1.0", dynamic=("Requires-Dist",)))
        client = client_for(pypi_index, **_installer(installer))
        with pytest.raises(MetadataError, match="PEP 517 backend"):
            client.metadata(only_file(client, "dyn"))
        assert other.requests == []
    finally:
        other.close()


def test_build_requires_default_and_explicit(
    pypi_index: IndexServer, client_for, tmp_path: Path
) -> None:
    pypi_index.publish(make_sdist(tmp_path, "legacy", "1.0", build_requires=None))
    pypi_index.publish(
        make_sdist(
            tmp_path,
            "modern",
            "1.0",
            build_requires=["flit-core>=3.4,<4", "wheel; python_version<'3.8'"],
            build_backend="flit_core.buildapi",
        )
    )
    client = client_for(pypi_index)
    assert client.build_requires(only_file(client, "legacy")) == (
        Requirement("setuptools>=40.8.0"),
    )
    assert client.build_requires(only_file(client, "modern")) == (
        Requirement("flit-core>=3.4,<4"),
        Requirement("wheel; python_version<'3.8'"),
    )


def test_build_requires_cached_by_sha256(
    pypi_index: IndexServer, client_for, tmp_path: Path
) -> None:
    pypi_index.publish(make_sdist(tmp_path, "modern", "1.0", build_requires=["hatchling"]))
    first = client_for(pypi_index)
    assert first.build_requires(only_file(first, "modern")) == (Requirement("hatchling"),)
    # the sdist is downloaded once for both metadata and build requirements
    first.metadata(only_file(first, "modern"))
    assert pypi_index.paths("/files/") == ["/files/modern-1.0.tar.gz"]
    pypi_index.requests.clear()
    second = client_for(pypi_index)
    assert second.build_requires(only_file(second, "modern")) == (Requirement("hatchling"),)
    assert pypi_index.paths() == ["/simple/modern/"]


def test_sdist_read_once_for_metadata_and_build_system(
    pypi_index: IndexServer, client_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PKG-INFO and pyproject.toml come out of one pass over the archive, whichever question
    comes first and however many threads ask at once (a tar is decompressed to find them)."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.lock.index import metadata as md

    pypi_index.publish(
        make_sdist(
            tmp_path, "modern", "1.0", requires_dist=["dep>=2"], build_requires=["hatchling"]
        )
    )
    reads: list[str] = []
    real = md.sdist_files

    def counted(data: bytes, file: DistFile, **kwargs: int) -> tuple[bytes | None, bytes | None]:
        reads.append(file.filename)
        return real(data, file, **kwargs)

    monkeypatch.setattr(md, "sdist_files", counted)
    client = client_for(pypi_index)
    file = only_file(client, "modern")
    with ThreadPoolExecutor(4) as pool:
        asks = [pool.submit(client.metadata, file) for _ in range(3)]
        asks += [pool.submit(client.build_requires, file) for _ in range(3)]
        answers = [a.result() for a in asks]
    assert [str(r) for r in answers[0].requires_dist] == ["dep>=2"]
    assert answers[3:] == [(Requirement("hatchling"),)] * 3
    assert reads == ["modern-1.0.tar.gz"]
    # a later run (a new client, the same cache) has both answers on disk: no read at all
    other = client_for(pypi_index)
    assert other.build_requires(only_file(other, "modern")) == (Requirement("hatchling"),)
    assert [str(r) for r in other.metadata(only_file(other, "modern")).requires_dist] == ["dep>=2"]
    assert reads == ["modern-1.0.tar.gz"]


def test_tampered_sdist_is_refused(pypi_index: IndexServer, client_for, tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "static", "1.0")
    pypi_index.publish(sdist)
    (pypi_index.files_dir / sdist.name).write_bytes(sdist.read_bytes() + b"\0")
    client = client_for(pypi_index)
    with pytest.raises(IndexError_, match="does not match its sha256"):
        client.build_requires(only_file(client, "static"))


def test_installer_uses_only_the_configured_indexes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("UV_INDEX_URL", "https://elsewhere.invalid/simple/")
    # the environment the installer runs in has no index setting, and pip reads no config
    env = hook_environ(tmp_path / "home")
    assert not [k for k in env if k.startswith(("PIP_", "UV_")) and ("INDEX" in k or "LINKS" in k)]
    assert env["PIP_CONFIG_FILE"] == os.devnull
    reqs = Path("reqs.txt")
    for uv in ("/usr/bin/uv", None):
        argv = install_command(
            "/env/bin/python", reqs, ["http://a/simple/", "http://b/simple/"], uv
        )
        i = argv.index("--index-url")
        assert argv[i + 1 : i + 4] == ["http://a/simple/", "--extra-index-url", "http://b/simple/"]
        if uv:
            assert "--no-config" in argv
