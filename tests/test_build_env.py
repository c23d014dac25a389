"""PEP 517 hook environments composed from verified wheels (bot.lock.index.buildenv): real
hook runs against a loopback index, no installer involved."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.core.errors import MetadataError
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.buildenv import (
    WHEELS,
    _copy_script,
    _member_target,
    compose,
    interpreter,
    unpack_wheel,
)
from bot.lock.index.models import DistFile
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel

#: a backend that reports what its environment lets it see, as its build requirements
DEMO_BACKEND = """
import os, shutil, subprocess

def _ran(tool, expect):
    path = shutil.which(tool)
    return bool(path) and subprocess.run(
        [path], capture_output=True, text=True
    ).stdout.strip() == expect

def get_requires_for_build_wheel(config_settings=None):
    import helper_lib
    out = ["helper-seen==%d" % helper_lib.VALUE]
    if os.environ.get("HELPER_PTH") == "1":
        out.append("pth-ran")
    if _ran("helper-tool", "tool-ok"):
        out.append("script-ran")
    if _ran("data-tool", "data-ok"):
        out.append("data-script-ran")
    try:
        import intruder  # on the index, but no build requirement
    except ImportError:
        pass
    else:
        out.append("intruder-visible")
    return out
"""


def helper_wheel(dest: Path, version: str) -> Path:
    major = version.split(".", maxsplit=1)[0]
    return make_wheel(
        dest,
        "helper-lib",
        version,
        modules={
            "helper_lib.py": f"VALUE = {major}\ndef tool():\n    print('tool-ok')\n",
            # a wheel's own .pth must take effect, as setuptools' distutils shim needs
            "helper_boot.pth": "import os; os.environ['HELPER_PTH'] = '1'\n",
            f"helper_lib-{version}.data/scripts/data-tool": "#!python\nprint('data-ok')\n",
        },
        console_scripts={"helper-tool": "helper_lib:tool"},
    )


@pytest.fixture
def demo_index(pypi_index: IndexServer, tmp_path: Path) -> IndexServer:
    dist = tmp_path / "dists"
    pypi_index.publish(
        make_wheel(
            dist,
            "demo-backend",
            "1.0",
            requires_dist=["helper-lib>=2"],
            modules={"demo_backend.py": DEMO_BACKEND},
        )
    )
    pypi_index.publish(helper_wheel(dist, "2.0"), upload_time="2025-01-01T00:00:00Z")
    # after the lock's snapshot: the hook must not get it
    pypi_index.publish(helper_wheel(dist, "3.0"), upload_time="2025-09-01T00:00:00Z")
    pypi_index.publish(make_wheel(dist, "intruder", "1.0"))
    for name in ("one", "two"):
        pypi_index.publish(
            make_sdist(
                dist,
                name,
                "1.0",
                build_requires=["demo-backend"],
                build_backend="demo_backend",
            )
        )
    return pypi_index


@pytest.fixture
def client(demo_index: IndexServer, tmp_path: Path) -> Iterator[IndexClient]:
    with IndexClient([IndexRoute(demo_index.url)], cache_dir=tmp_path / "cache") as c:
        c.build_cutoff = datetime(2025, 6, 1, tzinfo=UTC)
        yield c


def sdist_of(client: IndexClient, name: str) -> DistFile:
    (file,) = client.files(canonicalize_name(name))
    return file


def test_the_hook_sees_exactly_its_build_requirements(
    client: IndexClient, demo_index: IndexServer
) -> None:
    got = [str(r) for r in client.dynamic_build_requires(sdist_of(client, "one"))]
    # helper-lib as of the snapshot; its .pth, console script and data script all work;
    # a project on the index that nothing requires stays out
    assert got == ["helper-seen==2", "pth-ran", "script-ran", "data-script-ran"]
    # no installer asked the index: the bot fetched each wheel itself, once
    fetched = [p for p in demo_index.paths("/files/") if not p.endswith(".metadata")]
    assert sorted(fetched) == [
        "/files/demo_backend-1.0-py3-none-any.whl",
        "/files/helper_lib-2.0-py3-none-any.whl",
        "/files/one-1.0.tar.gz",
    ]


def test_data_scripts_are_copied_with_their_python_line_pointed_at_the_interpreter(
    tmp_path: Path,
) -> None:
    src = tmp_path / "scripts"
    src.mkdir()
    # a program of several megabytes (as maturin's is) is copied as it is, in chunks
    program = b"\x7fELF" + bytes(range(256)) * (3 * 4096 + 7)
    (src / "program").write_bytes(program)
    (src / "short").write_bytes(b"#!python\nprint('ok')\n")
    (src / "flags").write_bytes(b"#!python3 -E\nimport sys\n")
    (src / "shell").write_bytes(b"#!/bin/sh\necho ok\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "program").write_bytes(b"stale")  # replaced, not appended to
    for script in sorted(src.iterdir()):
        _copy_script(script, bin_dir / script.name, "/env/bin/python")
    assert (bin_dir / "program").read_bytes() == program
    assert (bin_dir / "short").read_bytes() == b"#!/env/bin/python\nprint('ok')\n"
    assert (bin_dir / "flags").read_bytes() == b"#!/env/bin/python\nimport sys\n"
    assert (bin_dir / "shell").read_bytes() == b"#!/bin/sh\necho ok\n"
    assert all((bin_dir / name).stat().st_mode & 0o111 == 0o111 for name in ("program", "short"))


def test_wheels_are_unpacked_once_for_every_sdist_and_run(
    client: IndexClient, demo_index: IndexServer, tmp_path: Path
) -> None:
    first = client.dynamic_build_requires(sdist_of(client, "one"))
    second = client.dynamic_build_requires(sdist_of(client, "two"))
    assert first == second
    wheels = [p.name for p in (tmp_path / "cache" / "index-v1" / WHEELS).glob("*/*")]
    assert len(wheels) == 2  # demo-backend and helper-lib 2.0, each under its sha256
    assert all(len(name) == 64 for name in wheels)
    downloads = [p for p in demo_index.paths("/files/") if p.endswith(".whl")]
    assert len(downloads) == 2


def test_a_wheel_that_does_not_match_its_hash_is_refused(
    pypi_index_with_backend: IndexServer, backend_wheel: Path, tmp_path: Path
) -> None:
    index = pypi_index_with_backend
    index.publish(make_sdist(tmp_path, "dyn", "1.0", dynamic=("Requires-Dist",)))
    served = index.files_dir / backend_wheel.name
    served.write_bytes(served.read_bytes() + b"\0")
    with (
        IndexClient([IndexRoute(index.url)], cache_dir=tmp_path / "cache") as client,
        pytest.raises(MetadataError, match="does not match its sha256") as info,
    ):
        client.metadata(sdist_of(client, "dyn"))
    assert "dyn-1.0.tar.gz" in str(info.value)
    assert not list((tmp_path / "cache" / "index-v1" / WHEELS).glob("*/*"))


def test_a_backend_without_wheels_falls_back_to_the_installer(
    pypi_index_with_backend: IndexServer, tmp_path: Path
) -> None:
    index = pypi_index_with_backend
    source = "def get_requires_for_build_wheel(config_settings=None):\n    return ['fell-back']\n"
    # only an sdist (built by fixture-backend): uv builds it, the bot composes nothing
    index.publish(
        make_sdist(tmp_path, "plain-backend", "1.0", modules={"plain_backend.py": source})
    )
    index.publish(
        make_sdist(
            tmp_path / "s",
            "user",
            "1.0",
            build_requires=["plain-backend"],
            build_backend="plain_backend",
        )
    )
    with IndexClient([IndexRoute(index.url)], cache_dir=tmp_path / "cache") as client:
        got = client.dynamic_build_requires(sdist_of(client, "user"))
    assert [str(r) for r in got] == ["fell-back"]


def test_unsafe_wheel_members_are_refused() -> None:
    assert _member_target("pkg/mod.py", "pkg-1.0.data") == ("site", Path("pkg/mod.py"))
    assert _member_target("pkg-1.0.data/platlib/x.so", "pkg-1.0.data") == ("site", Path("x.so"))
    assert _member_target("pkg-1.0.data/headers/x.h", "pkg-1.0.data") is None
    for bad in ("../evil.py", "/etc/passwd", "pkg/../../evil.py", "a\\..\\b"):
        with pytest.raises(ValueError, match="unsafe"):
            _member_target(bad, "pkg-1.0.data")


def test_a_composed_environment_runs_console_scripts_with_its_python(tmp_path: Path) -> None:
    wheel = helper_wheel(tmp_path / "dist", "2.0")
    file = DistFile(
        name=canonicalize_name("helper-lib"),
        version=Version("2.0"),
        kind="wheel",
        filename=wheel.name,
        url="http://127.0.0.1:9/" + wheel.name,
        sha256="ab" * 32,
        index="http://127.0.0.1:9/simple/",
    )
    unpacked = unpack_wheel(tmp_path / "wheels", file, wheel)
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = str(env / "bin" / "python")
    compose(env, python, [unpacked])
    out = subprocess.run(
        [str(env / "bin" / "helper-tool")], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "tool-ok"
    seen = subprocess.run(
        [python, "-c", "import helper_lib, os; print(helper_lib.VALUE, os.environ['HELPER_PTH'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert seen.stdout.split() == ["2", "1"]
    # the interpreter's own report decides which wheels fit it
    me = interpreter(sys.executable)
    assert me.markers["python_version"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert min(me.tags.values()) == 0


def test_the_sdists_own_requirements_win_over_the_early_guess(
    client: IndexClient, demo_index: IndexServer
) -> None:
    """Wheels are provisioned while the sdist is unpacked, for the requirements the caller
    read; when the unpacked sdist says otherwise, its own are what the hook gets."""
    from bot.lock.index.pep517 import pep517_build_requires

    file = sdist_of(client, "one")
    data = client._sdist_bytes(file)
    got = pep517_build_requires(
        data,
        file,
        [demo_index.url],
        provision=client.provision,
        early=["intruder"],  # not what the sdist requires
    )
    assert got == ["helper-seen==2", "pth-ran", "script-ran", "data-script-ran"]
    # and with the right guess, the same answer from the wheels fetched early
    assert client._early_requires(file) == ["demo-backend"]
    again = pep517_build_requires(
        data, file, [demo_index.url], provision=client.provision, early=["demo-backend"]
    )
    assert again == got
