"""PEP 517 hook environments composed from verified wheels (bot.lock.index.buildenv): real
hook runs against a loopback index, no installer involved."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.core.errors import MetadataError
from bot.lock.index import IndexClient, IndexRoute, buildenv
from bot.lock.index.buildenv import (
    WHEELS,
    Unpacked,
    WheelCache,
    _copy_script,
    check_metadata,
    compose,
    interpreter,
    unpack_wheel,
)
from bot.lock.index.limits import MIB, Limits
from bot.lock.index.models import CoreMetadata, DistFile
from bot.lock.index.unzip import member_target
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel
from tests.plugins.pypi_backend import fixture_backend

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


def _wheel_file(wheel: Path) -> DistFile:
    return DistFile(
        name=canonicalize_name(wheel.name.split("-")[0]),
        version=Version(wheel.name.split("-")[1]),
        kind="wheel",
        filename=wheel.name,
        url="http://127.0.0.1:9/" + wheel.name,
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        index="http://127.0.0.1:9/simple/",
    )


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_unpacking_child_writes_what_this_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel with modules, a script, platlib and headers under its .data directory, and an
    executable member: the same files, bytes and modes from both ways of unpacking it."""
    modules = {f"many/m{i}.py": f"X = {i}\n" for i in range(80)}
    modules["many-1.0.data/scripts/many-tool"] = "#!python\nprint('tool')\n"
    modules["many-1.0.data/platlib/many_native.py"] = "NATIVE = 1\n"
    modules["many-1.0.data/headers/many.h"] = "int x;\n"
    wheel = make_wheel(tmp_path / "dist", "many", "1.0", modules=modules)
    with zipfile.ZipFile(wheel, "a") as zf:  # a member marked executable in the archive
        info = zipfile.ZipInfo("many/run.sh")
        info.external_attr = 0o100755 << 16
        zf.writestr(info, "#!/bin/sh\n")
    trees = {}
    for where, threshold in (("here", 1 << 30), ("child", -1)):
        monkeypatch.setattr(buildenv, "CHILD_UNPACK", threshold)
        trees[where] = _tree(unpack_wheel(tmp_path / where, _wheel_file(wheel), wheel).root)
    assert trees["here"] == trees["child"]
    assert trees["here"]["site/many/m79.py"] == (b"X = 79\n", 0o644)
    assert trees["here"]["site/many/run.sh"][1] == 0o755
    assert trees["here"]["scripts/many-tool"][1] == 0o755
    assert "site/many_native.py" in trees["here"]
    assert not any("many.h" in path for path in trees["here"])


@pytest.mark.parametrize("threshold", [1 << 30, -1], ids=["in process", "in a child"])
def test_a_wheel_member_outside_its_tree_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """One error naming the wheel and the member, nothing written outside the tree or left
    in the cache, whichever way it is unpacked."""
    monkeypatch.setattr(buildenv, "CHILD_UNPACK", threshold)
    wheel = make_wheel(tmp_path / "dist", "evil", "1.0")
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("../../escaped.py", "X = 1\n")
    cache = WheelCache(tmp_path / "wheels", lambda file, path: shutil.copy(wheel, path))
    with pytest.raises(
        MetadataError, match=re.escape("unsafe member path '../../escaped.py'")
    ) as info:
        cache.get(_wheel_file(wheel))
    assert "cannot unpack evil-1.0-py3-none-any.whl" in str(info.value)
    assert not list(tmp_path.rglob("escaped.py"))
    assert [p.name for p in (tmp_path / "wheels").rglob("*") if p.is_file()] == []


def test_unsafe_wheel_members_are_refused() -> None:
    assert member_target("pkg/mod.py", "pkg-1.0.data") == ("site", Path("pkg/mod.py"))
    assert member_target("pkg-1.0.data/platlib/x.so", "pkg-1.0.data") == ("site", Path("x.so"))
    assert member_target("pkg-1.0.data/headers/x.h", "pkg-1.0.data") is None
    for bad in ("../evil.py", "/etc/passwd", "pkg/../../evil.py", "a\\..\\b"):
        with pytest.raises(ValueError, match="unsafe"):
            member_target(bad, "pkg-1.0.data")


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
    calls: list[list[str]] = []

    def counting(requirements: Sequence[str], python: str) -> list[Unpacked]:
        calls.append(list(requirements))
        return client.provision(requirements, python)

    got = pep517_build_requires(
        data,
        file,
        [demo_index.url],
        provision=counting,
        early=["intruder"],  # not what the sdist requires
    )
    assert got == ["helper-seen==2", "pth-ran", "script-ran", "data-script-ran"]
    assert calls == [["intruder"], ["demo-backend"]]  # the guess, then the sdist's own
    # and with the right guess, the same answer from the wheels fetched early: provisioned
    # once, early, and no wheel downloaded again
    assert client._early_requires(file) == ["demo-backend"]
    calls.clear()
    downloads = len(demo_index.paths("/files/"))
    again = pep517_build_requires(
        data, file, [demo_index.url], provision=counting, early=["demo-backend"]
    )
    assert again == got
    assert calls == [["demo-backend"]]
    assert len(demo_index.paths("/files/")) == downloads


# --- a malformed wheel is one error naming it ---------------------------------------------


def raw_wheel(dest: Path, name: str, files: dict[str, bytes], requires: list[str]) -> Path:
    """A wheel of exactly ``files`` (bytes as given) and a METADATA requiring ``requires``."""
    metadata = fixture_backend.core_metadata(name, "1.0", requires_dist=requires)
    dest.mkdir(parents=True, exist_ok=True)
    return dest / fixture_backend.write_wheel(dest, name, "1.0", metadata=metadata, files=files)


def local_file(wheel: Path) -> DistFile:
    import hashlib

    name, version = wheel.name.split("-")[:2]
    return DistFile(
        name=canonicalize_name(name),
        version=Version(version),
        kind="wheel",
        filename=wheel.name,
        url="http://127.0.0.1:9/files/" + wheel.name,
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        index="http://127.0.0.1:9/simple/",
    )


def venv(path: Path) -> str:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return str(path / "bin" / "python")


@pytest.mark.parametrize(
    ("entry_points", "what"),
    [
        (b"[console_scripts]\ntool = a:b\ntool = a:c\n", "DuplicateOptionError"),
        (b"[console_scripts]\ntool = caf\xe9:main\n", "UnicodeDecodeError"),
    ],
)
def test_malformed_entry_points_are_one_error_naming_the_wheel(
    tmp_path: Path, entry_points: bytes, what: str
) -> None:
    wheel = raw_wheel(
        tmp_path / "dist", "odd-tool", {"odd_tool-1.0.dist-info/entry_points.txt": entry_points}, []
    )
    unpacked = unpack_wheel(tmp_path / "wheels", local_file(wheel), wheel)
    python = venv(tmp_path / "env")
    with pytest.raises(MetadataError, match=r"entry_points\.txt in odd_tool-1\.0") as info:
        compose(tmp_path / "env", python, [unpacked])
    assert what in str(info.value)
    assert str(info.value).startswith(local_file(wheel).url)
    assert "hint:" in str(info.value)


def test_a_bad_requires_dist_in_the_wheel_is_one_error_naming_it(tmp_path: Path) -> None:
    wheel = raw_wheel(tmp_path / "dist", "odd-deps", {"odd_deps.py": b""}, ["good", "bad (("])
    file = local_file(wheel)
    unpacked = unpack_wheel(tmp_path / "wheels", file, wheel)
    served = CoreMetadata(canonicalize_name("odd-deps"), Version("1.0"))
    with pytest.raises(MetadataError, match=r"METADATA in odd_deps-1\.0") as info:
        check_metadata(unpacked, file, served)
    assert "InvalidRequirement" in str(info.value)


def test_a_python_script_of_its_shebang_alone_is_composed(tmp_path: Path) -> None:
    """``#!python`` without a newline (an installer would rewrite it): the script is that
    interpreter's, not a traceback."""
    wheel = raw_wheel(
        tmp_path / "dist",
        "bare-script",
        {"bare_script-1.0.data/scripts/bare": b"#!python", "bare_script.py": b""},
        [],
    )
    unpacked = unpack_wheel(tmp_path / "wheels", local_file(wheel), wheel)
    python = venv(tmp_path / "env")
    compose(tmp_path / "env", python, [unpacked])
    script = tmp_path / "env" / "bin" / "bare"
    assert script.read_bytes() == f"#!{python}\n".encode()
    assert subprocess.run([str(script)], check=False).returncode == 0


def test_a_hook_whose_backend_wheel_is_malformed_fails_with_one_error(
    pypi_index: IndexServer, tmp_path: Path
) -> None:
    """Through a real hook run: the malformed wheel's error, inside the sdist's."""
    from bot.lock.index.pep517 import pep517_build_requires

    dist = tmp_path / "dists"
    broken = b"[console_scripts]\ntool = a:b\ntool = a:c\n"
    pypi_index.publish(
        raw_wheel(
            dist,
            "broken-backend",
            {
                "broken_backend.py": DEMO_BACKEND.encode(),
                "broken_backend-1.0.dist-info/entry_points.txt": broken,
            },
            [],
        )
    )
    pypi_index.publish(
        make_sdist(
            dist, "user", "1.0", build_requires=["broken-backend"], build_backend="broken_backend"
        )
    )
    with IndexClient([IndexRoute(pypi_index.url)], cache_dir=tmp_path / "cache") as client:
        file = sdist_of(client, "user")
        with pytest.raises(MetadataError) as info:
            pep517_build_requires(
                client._sdist_bytes(file), file, [pypi_index.url], provision=client.provision
            )
    message = str(info.value)
    assert "user-1.0.tar.gz" in message
    assert "entry_points.txt in broken_backend-1.0-py3-none-any.whl is malformed" in message


# --- the snapshot, as the lock reads it ----------------------------------------------------


def test_an_index_without_upload_times_still_composes(
    client: IndexClient, demo_index: IndexServer
) -> None:
    """No PEP 700 upload times (a static index): its files count as inside the snapshot, as
    in the lock's own resolution, so the backend still resolves to wheels."""
    demo_index.upload_times = False
    wheels = client.provision(["demo-backend"], sys.executable)
    names = sorted(info.name for w in wheels if (info := w.dist_info()) is not None)
    # the newest helper-lib: without upload times the cutoff cannot hold it back
    assert names == ["demo_backend-1.0.dist-info", "helper_lib-3.0.dist-info"]


# --- what an archive unpacks to is bounded ----------------------------------------------


def leftovers(cache: Path) -> list[str]:
    """Everything under the cache's unpacked wheels (hidden temporaries included)."""
    root = cache / "index-v1" / WHEELS
    return sorted(
        str(Path(d).relative_to(root) / n) for d, dirs, files in os.walk(root) for n in dirs + files
    )


@pytest.fixture(params=["in process", "in a child"])
def unpacker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every wheel unpacked in this process, or every one by the unpacking child (which
    takes only the wheels of more than ``CHILD_UNPACK`` members)."""
    monkeypatch.setattr(buildenv, "CHILD_UNPACK", 1 << 30 if request.param == "in process" else -1)
    return str(request.param)


def test_a_wheel_bomb_is_refused_and_leaves_nothing(
    pypi_index: IndexServer, tmp_path: Path, unpacker: str
) -> None:
    """A wheel of a few KB that unpacks to 8 MiB, against a 2 MiB bound: refused by name,
    with nothing of it left in the cache (the download limit bounds only what is sent)."""
    dist = tmp_path / "dists"
    bomb = make_wheel(dist, "bomb-backend", "1.0", modules={"bomb_backend/blob": "\0" * (8 * MIB)})
    assert bomb.stat().st_size < 64 * 1024
    pypi_index.publish(bomb)
    many = {f"many_backend/m{i}.py": "" for i in range(30)}
    pypi_index.publish(make_wheel(dist, "many-backend", "1.0", modules=many))
    pypi_index.publish(make_wheel(dist, "fine-backend", "1.0"))
    limits = Limits(unpacked=2 * MIB, members=20)
    cache = tmp_path / "cache"
    with IndexClient([IndexRoute(pypi_index.url)], cache_dir=cache, limits=limits) as client:
        with pytest.raises(MetadataError, match="unpacks to more than the limit") as info:
            client.provision(["bomb-backend"], sys.executable)
        message = str(info.value)
        assert bomb.name in message
        assert f"{2 * MIB} bytes" in message
        assert "NIXPKGS_PYTHON_MAX_UNPACKED_BYTES" in message
        assert [p for p in leftovers(cache) if "/" in p] == []  # nothing below wheels/ab/
        with pytest.raises(MetadataError, match="more than the limit of 20 members") as info:
            client.provision(["many-backend"], sys.executable)
        assert "many_backend-1.0-py3-none-any.whl" in str(info.value)
        assert "NIXPKGS_PYTHON_MAX_ARCHIVE_MEMBERS" in str(info.value)
        assert [p for p in leftovers(cache) if "/" in p] == []
        # within the bounds: unpacked as before
        (fine,) = client.provision(["fine-backend"], sys.executable)
        assert (fine.site / "fine_backend" / "__init__.py").is_file()


def test_an_sdist_bomb_is_refused_in_its_unpacking_child(
    pypi_index: IndexServer, tmp_path: Path
) -> None:
    """An sdist whose metadata only its backend knows, unpacking beyond the bounds: one
    MetadataError naming it (the child enforces the bounds it is given and exits)."""
    dist = tmp_path / "dists"
    pypi_index.publish(
        make_sdist(
            dist,
            "fat",
            "1.0",
            dynamic=("Requires-Dist",),
            extra_files={"blob": "\0" * (8 * MIB)},
        )
    )
    pypi_index.publish(
        make_sdist(
            dist,
            "crowded",
            "1.0",
            dynamic=("Requires-Dist",),
            extra_files={f"f{i}.txt": "" for i in range(30)},
        )
    )
    assert (pypi_index.files_dir / "fat-1.0.tar.gz").stat().st_size < 64 * 1024
    limits = Limits(unpacked=2 * MIB, members=20)
    with IndexClient(
        [IndexRoute(pypi_index.url)], cache_dir=tmp_path / "cache", limits=limits
    ) as client:
        with pytest.raises(MetadataError, match="unpacks to more than the limit") as info:
            client.metadata(sdist_of(client, "fat"))
        assert "fat-1.0.tar.gz" in str(info.value)
        assert f"{2 * MIB} bytes" in str(info.value)
        assert "NIXPKGS_PYTHON_MAX_UNPACKED_BYTES" in str(info.value)
        with pytest.raises(MetadataError, match="more than the limit of 20 members") as info:
            client.metadata(sdist_of(client, "crowded"))
        assert "crowded-1.0.tar.gz" in str(info.value)


# --- leftovers of killed runs ------------------------------------------------------------


def test_leftovers_of_killed_runs_are_removed_once_old(tmp_path: Path) -> None:
    import shutil
    import time

    wheel = helper_wheel(tmp_path / "dist", "2.0")
    file = local_file(wheel)
    root = tmp_path / "wheels"
    shard = root / file.sha256[:2]
    (shard / ".unpack-old" / "site").mkdir(parents=True)
    (shard / ".unpack-old" / "site" / "x.py").write_text("")
    (shard / ".download-old").write_bytes(b"partial")
    (shard / ".unpack-live").mkdir()
    (shard / ".download-live").write_bytes(b"partial")
    (shard / "keep-me").write_bytes(b"not ours")
    two_days_ago = time.time() - 2 * 24 * 3600
    for name in (".unpack-old", ".download-old", "keep-me"):
        os.utime(shard / name, (two_days_ago, two_days_ago))
    cache = WheelCache(root, lambda f, path: shutil.copyfile(wheel, path))
    got = cache.get(file)
    assert (got.site / "helper_lib.py").is_file()
    # a live process's temporaries (recent) and anything not a temporary stay
    assert sorted(p.name for p in shard.iterdir()) == [
        ".download-live",
        ".unpack-live",
        file.sha256,
        "keep-me",
    ]
    # a later process finding the wheel already unpacked clears its directory too
    (shard / ".download-old").write_bytes(b"partial")
    os.utime(shard / ".download-old", (two_days_ago, two_days_ago))
    again = WheelCache(root, lambda f, path: pytest.fail("no download for a cached wheel"))
    assert again.get(file) == got
    assert not (shard / ".download-old").exists()


_WHERE = "import json, site, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.path]))"


@pytest.mark.parametrize("version", ["bot", "3.12", "3.13"])
def test_a_venv_made_directly_is_one_to_its_interpreter(tmp_path: Path, version: str) -> None:
    """The hand-made environment (PEP 405) is a virtual environment to the interpreter
    itself: its prefix, its own empty site directory on the path, none of the base's."""
    import json

    from bot.lock.index.buildenv import make_venv
    from bot.model.interpreters import detect

    base = sys.executable if version == "bot" else detect([version]).get(version, "")
    if not base:
        pytest.skip(f"no CPython {version} here")
    me = interpreter(base)
    env = tmp_path / "env"
    python = make_venv(env, me)
    assert python == env / "bin" / "python"
    prefix, base_prefix, path = json.loads(
        subprocess.run(
            [python, "-I", "-c", _WHERE], capture_output=True, text=True, check=True
        ).stdout
    )
    assert Path(prefix) == env
    assert Path(base_prefix) != env
    own = str(env / me.purelib)
    assert own in path
    assert not [p for p in path if p.endswith("-packages") and p != own]
    # the installers' fallback treats it as an environment too
    for alias in ("python3", f"python{me.markers['python_version']}"):
        assert (env / "bin" / alias).resolve() == Path(me.base).resolve()


def test_an_interpreter_that_cannot_answer_the_probe_gets_the_installers_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the probe fails (an interpreter without a usable sysconfig, say), the
    environment is made the old way, by the installer."""
    from bot.lock.index import pep517
    from bot.lock.index.buildenv import UnresolvableError

    def refuse(executable: str) -> None:
        raise UnresolvableError(f"cannot ask {executable} for its wheel tags", where=executable)

    monkeypatch.setattr(pep517, "probe_interpreter", refuse)
    with pep517.TargetEnv(sys.executable, None, 60, bare=True) as env:
        made = Path(env.python_executable)
        assert made.is_file()
        cfg = (made.parent.parent / "pyvenv.cfg").read_text()
        assert "command = " in cfg  # written by python -m venv, not by make_venv
        assert "include-system-site-packages = false" in cfg
        out = subprocess.run(
            [made, "-c", "import sys; print(sys.prefix)"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert Path(out.stdout.strip()) == made.parent.parent
