"""Damaged archives are one MetadataError naming the file, never a traceback: their bytes
pass the sha256 check (anyone can upload them), so an unknown zip compression method, an
encrypted member, a corrupt deflate or xz stream is the file's fault, read where the bot
reads archives (a wheel's METADATA, an sdist's PKG-INFO, an sdist unpacked for its backend,
a build-environment wheel unpacked; a real loopback index)."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.core.errors import MetadataError
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.buildenv import WheelCache
from bot.lock.index.models import DistFile
from bot.lock.index.pep517 import pep517_build_requires
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel, sdist_members

#: (central-directory changes, whether to garble the member's data) -> what zipfile raises
ZIP_DAMAGE = {
    "unknown-method": ({"method": 99}, False),  # NotImplementedError
    "encrypted": ({"flags": 1}, False),  # RuntimeError
    "corrupt-deflate": ({}, True),  # zlib.error
    "corrupt-lzma": ({"method": zipfile.ZIP_LZMA}, True),  # lzma.LZMAError or a bad CRC
}


def damaged_zip(data: bytes, member: str, damage: str) -> bytes:
    """``data`` (a zip) with ``member`` damaged as :data:`ZIP_DAMAGE` says."""
    fields, garble = ZIP_DAMAGE[damage]
    out = bytearray(data)
    name = member.encode()
    at = out.find(b"PK\x01\x02")
    while at != -1:  # the central directory, which zipfile trusts for method and flags
        if out[at + 46 : at + 46 + struct.unpack_from("<H", out, at + 28)[0]] == name:
            if "method" in fields:
                struct.pack_into("<H", out, at + 10, fields["method"])
            if "flags" in fields:
                struct.pack_into("<H", out, at + 8, fields["flags"])
        at = out.find(b"PK\x01\x02", at + 4)
    if garble:
        info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
        start = info.header_offset + 30 + len(name) + len(info.extra)
        for i in range(info.compress_size):
            out[start + i] = 0xFF ^ (i & 0x7F)
    return bytes(out)


def corrupt_tar_xz(members: dict[str, bytes]) -> bytes:
    """A .tar.xz of 300 KiB of incompressible data then ``members``, corrupt near its end
    (xz checks its data only at the end of a block: tarfile.open succeeds, reading fails)."""
    buf = io.BytesIO()
    blob = random.Random(0).randbytes(300 * 1024)  # noqa: S311 (test data)
    with tarfile.open(fileobj=buf, mode="w:xz") as tf:
        for name, data in [("alpha-1.0/A-blob", blob), *sorted(members.items())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    out = bytearray(buf.getvalue())
    for i in range(len(out) - 200, len(out) - 192):
        out[i] ^= 0xFF
    return bytes(out)


def serve_instead(index: IndexServer, published: Path, data: bytes) -> None:
    """Serve ``data`` as the file ``published`` (published already), its hash updated: the
    index states the damaged file's own sha256, as it would for an upload."""
    (index.files_dir / published.name).write_bytes(data)
    with index.lock:
        for files in index.projects.values():
            if published.name in files:
                files[published.name].sha256 = hashlib.sha256(data).hexdigest()
                files[published.name].size = len(data)


def metadata_of(index: IndexServer, filename: str, cache: Path) -> None:
    client = IndexClient([IndexRoute(index.url)], cache_dir=cache, retries=0)
    try:
        [file] = [f for f in client.files(canonicalize_name("alpha")) if f.filename == filename]
        client.metadata(file)
    finally:
        client.close()


@pytest.mark.parametrize("ranges", [True, False], ids=["range-reads", "whole-file"])
@pytest.mark.parametrize("damage", sorted(ZIP_DAMAGE))
def test_a_wheel_with_a_damaged_metadata_member(
    pypi_index: IndexServer, tmp_path: Path, damage: str, ranges: bool
) -> None:
    wheel = make_wheel(tmp_path / "dist", "alpha", "1.0")
    pypi_index.publish(wheel, with_metadata=False)
    pypi_index.ranges = ranges
    serve_instead(
        pypi_index, wheel, damaged_zip(wheel.read_bytes(), "alpha-1.0.dist-info/METADATA", damage)
    )
    with pytest.raises(MetadataError, match=f"cannot read METADATA from {wheel.name}") as info:
        metadata_of(pypi_index, wheel.name, tmp_path / "cache")
    assert info.value.where is not None
    assert info.value.where.endswith(f"/files/{wheel.name}")
    assert "exclude this version" in str(info.value)


def zip_sdist(dest: Path) -> Path:
    """alpha 1.0 as a .zip sdist (the members make_sdist writes)."""
    members = sdist_members(make_sdist(dest / "tar", "alpha", "1.0"))
    path = dest / "alpha-1.0.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in sorted(members.items()):
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


@pytest.mark.parametrize("damage", ["unknown-method", "encrypted", "corrupt-deflate"])
def test_a_zip_sdist_with_a_damaged_pkg_info(
    pypi_index: IndexServer, tmp_path: Path, damage: str
) -> None:
    sdist = zip_sdist(tmp_path)
    pypi_index.publish(sdist)
    serve_instead(pypi_index, sdist, damaged_zip(sdist.read_bytes(), "alpha-1.0/PKG-INFO", damage))
    with pytest.raises(MetadataError, match=r"cannot open sdist alpha-1\.0\.zip") as info:
        metadata_of(pypi_index, sdist.name, tmp_path / "cache")
    assert "the sdist is damaged" in str(info.value)


def test_a_tar_sdist_with_a_corrupt_xz_stream(pypi_index: IndexServer, tmp_path: Path) -> None:
    """Only .tar.gz and .zip sdists are listed, but tarfile goes by the bytes: a ".tar.gz"
    that is an xz stream opens, and its corrupt data raises LZMAError as it is read."""
    sdist = make_sdist(tmp_path, "alpha", "1.0")
    members = sdist_members(sdist)
    members = {k: v for k, v in members.items() if not k.endswith("pyproject.toml")}
    pypi_index.publish(sdist)
    serve_instead(pypi_index, sdist, corrupt_tar_xz(members))
    with pytest.raises(MetadataError, match=r"cannot open sdist alpha-1\.0\.tar\.gz: Corrupt"):
        metadata_of(pypi_index, sdist.name, tmp_path / "cache")


def local(path: Path, data: bytes) -> DistFile:
    kind = "wheel" if path.name.endswith(".whl") else "sdist"
    return DistFile(
        name=canonicalize_name("alpha"),
        version=Version("1.0"),
        kind=kind,
        filename=path.name,
        url=f"http://127.0.0.1:9/files/{path.name}",
        sha256=hashlib.sha256(data).hexdigest(),
        index="http://127.0.0.1:9/simple/",
    )


@pytest.mark.parametrize(
    "damaged",
    [
        lambda tmp: ("alpha-1.0.tar.gz", corrupt_tar_xz({"alpha-1.0/PKG-INFO": b"Name: alpha\n"})),
        lambda tmp: (
            "alpha-1.0.zip",
            damaged_zip(zip_sdist(tmp).read_bytes(), "alpha-1.0/PKG-INFO", "unknown-method"),
        ),
    ],
    ids=["corrupt-xz", "unknown-zip-method"],
)
def test_an_sdist_unpacked_for_its_backend(tmp_path: Path, damaged: object) -> None:
    name, data = damaged(tmp_path)  # type: ignore[operator]
    file = local(tmp_path / name, data)
    with pytest.raises(MetadataError, match=f"cannot read {name}") as info:
        pep517_build_requires(data, file, [], uv="")
    assert "Traceback" not in str(info.value)
    assert info.value.where == file.url


@pytest.mark.parametrize("damage", sorted(ZIP_DAMAGE))
def test_a_build_environment_wheel_with_a_damaged_member(tmp_path: Path, damage: str) -> None:
    wheel = make_wheel(tmp_path / "dist", "alpha", "1.0")
    data = damaged_zip(wheel.read_bytes(), "alpha/__init__.py", damage)
    file = local(wheel, data)
    cache = WheelCache(tmp_path / "wheels", lambda f, path: path.write_bytes(data))
    with pytest.raises(MetadataError, match=f"cannot unpack {wheel.name}") as info:
        cache.get(file)
    assert info.value.where == file.url
    shard = tmp_path / "wheels" / file.sha256[:2]
    assert sorted(p.name for p in shard.iterdir()) == []  # nothing half-unpacked is kept
