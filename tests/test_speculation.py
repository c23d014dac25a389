"""The resolver's speculative work: walking ahead only to versions the resolution could pin
(a build hook runs the sdist's own code), and stopping when the resolution ends."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bot.core.errors import ResolutionError
from bot.core.repolock import Terminated, handle_signals
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.cache import Cache
from bot.lock.index.models import DistFile
from bot.lock.index.pep517 import DYNAMIC, FAILURES
from bot.lock.provider import Provider, Req
from bot.lock.resolve import Request, resolve
from bot.model.targets import targets_for
from tests.frozen_index import FrozenIndex
from tests.plugins.pypi import IndexServer, make_wheel
from tests.plugins.pypi_backend import fixture_backend
from tests.test_lock_cli import lock, make_repo
from tests.test_resolve import FRONTEND
from tests.test_sdist_python import needs_312

TARGETS = targets_for("3.12")
LINUX = ["cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux_2_17_aarch64"]


# --- the walk, against a frozen index --------------------------------------------------------


class RecordingIndex(FrozenIndex):
    """A frozen index that records each sdist whose build requirements are asked for (a
    download, then a PEP 517 hook on a real index)."""

    def __init__(self, spec: Any) -> None:
        super().__init__({**FRONTEND, **spec})
        self.hooks: list[str] = []

    def dynamic_build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        self.hooks.append(file.filename)
        return super().dynamic_build_requires(file)


class CountingPool(ThreadPoolExecutor):
    """A pool that knows when every task given to it, and every task those gave it, ended."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def settle(self) -> None:
        with self._idle:
            assert self._idle.wait_for(lambda: self._pending == 0, timeout=10)


def walk(
    spec: Any,
    requirements: tuple[str, ...] = (),
    *,
    hints: tuple[str, ...] = (),
    constraints: tuple[str, ...] = (),
    **request: Any,
) -> RecordingIndex:
    """The index after the provider walked ahead from ``requirements`` and ``hints`` (and
    everything that walk led to) to the end."""
    index = RecordingIndex(spec)
    pool = CountingPool()
    provider = Provider(
        index,
        Request(
            requirements=[],
            constraints=[(Requirement(c), "set.yaml") for c in constraints],
            targets=TARGETS,
            **request,
        ),
        pool,
    )
    try:
        provider.warm([Req.of(Requirement(r), frozenset(TARGETS), "case") for r in requirements])
        provider.hint([canonicalize_name(h) for h in hints])
        pool.settle()
    finally:
        pool.shutdown()
    return index


def test_the_walk_keeps_to_the_sets_constraints() -> None:
    index = walk(
        {"foo": {"2.0": {"files": ["sdist"]}, "1.1": {"files": ["sdist"]}}},
        ("foo",),
        constraints=("foo<2",),
    )
    assert index.hooks == ["foo-1.1.tar.gz"]


def test_the_walk_keeps_to_the_requirement_that_led_to_it() -> None:
    index = walk(
        {
            "top": {"1.0": {"requires": ["foo<2"]}},
            "foo": {"2.0": {"files": ["sdist"]}, "1.1": {"files": ["sdist"]}},
        },
        ("top",),
    )
    assert index.hooks == ["foo-1.1.tar.gz"]
    assert "top-1.0-py3-none-any.whl" in index.metadata_calls


def test_the_walk_takes_what_the_provider_would_refuse_as_refused() -> None:
    sdist_on_macs = [*LINUX, "sdist"]
    index = walk(
        {
            "foo": {
                "4.0rc1": {"files": ["sdist"]},
                "3.0": {"files": ["sdist"], "yanked": True},
                "2.5": {"files": ["sdist"], "uploaded": "2025-03-01T00:00:00Z"},
                "2.2": {"files": ["sdist"], "requires-python": ">=3.14"},
                # the index states no Requires-Python: only the wheel's metadata does
                "2.1": {"files": sdist_on_macs, "metadata-requires-python": ">=3.14"},
                "2.0.1": {"files": LINUX},  # nothing the Macs could use
                "2.0": {"files": sdist_on_macs},
            }
        },
        ("foo",),
        exclude_newer=datetime(2025, 2, 1, tzinfo=UTC),
    )
    assert index.hooks == ["foo-2.0.tar.gz"]
    looked = [c for c in index.metadata_calls if c.startswith("foo-")]
    assert looked == [
        "foo-2.1-cp312-cp312-manylinux_2_17_aarch64.whl",
        "foo-2.0-cp312-cp312-manylinux_2_17_aarch64.whl",
    ]


def test_a_pinned_yanked_version_is_one_the_resolution_could_pin() -> None:
    index = walk(
        {"foo": {"2.0": {"files": ["sdist"]}, "1.0": {"files": ["sdist"], "yanked": True}}},
        ("foo==1.0",),
    )
    assert index.hooks == ["foo-1.0.tar.gz"]


def test_a_hint_fetches_metadata_within_the_constraints_and_starts_no_hook() -> None:
    index = walk(
        {
            "foo": {
                "2.0": {"files": ["py3-none-any", "sdist"]},
                "1.0": {"files": [*LINUX, "sdist"], "requires": ["bar>=1"]},
            },
            "bar": {"1.0": {"files": ["sdist"]}},
        },
        hints=("foo",),
        constraints=("foo<2",),
    )
    assert [c for c in index.metadata_calls if c.startswith("foo-")] == [
        "foo-1.0-cp312-cp312-manylinux_2_17_aarch64.whl"
    ]
    # no requirement on foo was seen: no hook for it; its own requirement on bar is one
    assert index.hooks == ["bar-1.0.tar.gz"]


def test_a_hinted_project_is_walked_again_from_a_requirement() -> None:
    index = walk(
        {"foo": {"2.0": {"files": ["sdist"]}, "1.0": {"files": ["sdist"]}}},
        ("foo<2",),
        hints=("foo",),
    )
    assert index.hooks == ["foo-1.0.tar.gz"]


def test_a_stopped_provider_walks_nowhere() -> None:
    index = RecordingIndex({"foo": {"1.0": {"files": ["sdist"]}}})
    pool = CountingPool()
    provider = Provider(index, Request(requirements=[], targets=TARGETS), pool)
    provider.stop()
    provider.warm([Req.of(Requirement("foo"), frozenset(TARGETS), "case")])
    provider.hint([canonicalize_name("foo")])
    pool.settle()
    pool.shutdown()
    assert index.hooks == []
    assert index.metadata_calls == []


def test_a_pin_the_interpreter_refuses_starts_no_hook() -> None:
    # foo 2.1's index entry states no Requires-Python, its metadata does: the resolver
    # pins it, reads its dependencies, backtracks; its sdist is not built on the way
    index = RecordingIndex(
        {
            "foo": {
                "2.1": {"files": [*LINUX, "sdist"], "metadata-requires-python": ">=3.14"},
                "2.0": {"files": [*LINUX, "sdist"]},
            },
            "setuptools": {"75.0": {}},
        }
    )
    request = Request(requirements=[(Requirement("foo"), "case")], targets=TARGETS)
    resolution = resolve(index, request)
    assert str(resolution.packages["foo"].version) == "2.0"
    assert index.hooks == ["foo-2.0.tar.gz"]


# --- cold locks against a real loopback index ------------------------------------------------

#: an in-tree PEP 517 backend that records, in MARKER, that its code ran (at import)
RECORDING_BACKEND = """
import os
with open(MARKER, "a") as log:
    log.write("ran %d\\n" % os.getpid())

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    raise SystemExit("not asked in these tests")

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise SystemExit("not asked in these tests")
"""

#: an in-tree backend whose get_requires_for_build_wheel writes its PID to PIDFILE, then sleeps
SLOW_BACKEND = """
import os, time

def get_requires_for_build_wheel(config_settings=None):
    with open(PIDFILE + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.replace(PIDFILE + ".tmp", PIDFILE)
    time.sleep(30)
    return []
"""


def backend_sdist(
    dest: Path, name: str, version: str, backend: str, *, dynamic: bool = False, **values: str
) -> Path:
    """An sdist with static metadata (no hook needed for it; ``dynamic``: its dependencies
    are known to the backend only) whose build backend is its own ``backend`` source, with
    each ``values`` name replaced by the value's repr."""
    for key, value in values.items():
        backend = backend.replace(key, repr(value))
    base = f"{name}-{version}"
    pyproject = (
        '[build-system]\nrequires = []\nbuild-backend = "inline_backend"\n'
        f'backend-path = ["."]\n\n[project]\nname = "{name}"\nversion = "{version}"\n'
    ) + ('dynamic = ["dependencies"]\n' if dynamic else "")
    pkg_info = fixture_backend.core_metadata(
        name, version, metadata_version="2.2", dynamic=["Requires-Dist"] if dynamic else []
    )
    path = dest / f"{base}.tar.gz"
    dest.mkdir(parents=True, exist_ok=True)
    fixture_backend.write_tar_gz(
        path,
        {
            f"{base}/PKG-INFO": pkg_info.encode(),
            f"{base}/pyproject.toml": pyproject.encode(),
            f"{base}/inline_backend.py": backend.encode(),
            f"{base}/{name}.py": b"",
        },
    )
    return path


def publish_frontend(index: IndexServer, dist: Path) -> None:
    """The build frontend every resolution includes, as plain wheels."""
    for name, versions in FRONTEND.items():
        for version, info in versions.items():
            index.publish(make_wheel(dist, name, version, requires_dist=info.get("requires", [])))


def foo_releases(index: IndexServer, dist: Path, tmp_path: Path) -> tuple[Path, Path]:
    """foo 1.5 and 2.0, each an sdist whose backend records that it ran: (1.5's record,
    2.0's record)."""
    ran_15, ran_20 = tmp_path / "foo-1.5.ran", tmp_path / "foo-2.0.ran"
    index.publish(backend_sdist(dist, "foo", "1.5", RECORDING_BACKEND, MARKER=str(ran_15)))
    index.publish(backend_sdist(dist, "foo", "2.0", RECORDING_BACKEND, MARKER=str(ran_20)))
    return ran_15, ran_20


def locked_versions(repo: Path) -> dict[str, str]:
    import tomllib

    doc = tomllib.loads((repo / "sets" / "demo" / "pylock.py312.toml").read_text())
    return {p["name"]: p["version"] for p in doc["packages"]}


@needs_312
def test_a_cold_lock_runs_no_code_of_a_version_the_constraints_exclude(
    pypi_index: IndexServer, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    publish_frontend(pypi_index, dist)
    ran_15, ran_20 = foo_releases(pypi_index, dist, tmp_path)
    repo = make_repo(tmp_path, ["foo"])
    set_file = repo / "sets" / "demo" / "set.yaml"
    set_file.write_text(set_file.read_text() + "constraints:\n  - 'foo<2'\n")
    assert lock(repo, pypi_index) == 0
    assert locked_versions(repo)["foo"] == "1.5"
    assert ran_15.exists()  # hooks do run here: the one of the version locked did
    assert not ran_20.exists()
    assert "/files/foo-2.0.tar.gz" not in pypi_index.paths()  # not even downloaded


@needs_312
def test_a_cold_lock_runs_no_code_of_a_version_its_dependent_excludes(
    pypi_index: IndexServer, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    publish_frontend(pypi_index, dist)
    ran_15, ran_20 = foo_releases(pypi_index, dist, tmp_path)
    pypi_index.publish(make_wheel(dist, "app", "1.0", requires_dist=["foo<2"]))
    repo = make_repo(tmp_path, ["app"])
    assert lock(repo, pypi_index) == 0
    assert locked_versions(repo)["foo"] == "1.5"
    assert ran_15.exists()
    assert not ran_20.exists()
    assert "/files/foo-2.0.tar.gz" not in pypi_index.paths()


# --- stopping -----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_conflict_stops_the_speculative_hook_running_and_waits_for_nothing(
    pypi_index: IndexServer, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    publish_frontend(pypi_index, dist)
    pidfile = tmp_path / "slow.pid"
    pypi_index.publish(backend_sdist(dist, "slow", "1.0", SLOW_BACKEND, PIDFILE=str(pidfile)))
    pypi_index.publish(make_wheel(dist, "app", "1.0", requires_dist=["slow", "lib>=2"]))
    pypi_index.publish(make_wheel(dist, "lib", "1.0"))
    pypi_index.publish(make_wheel(dist, "lib", "2.0"))
    # the resolver meets the conflict (lib<2 asked, app needs lib>=2) only once the walk
    # ahead has started slow's 30-second hook
    pypi_index.hold("/simple/lib/", pidfile.exists)
    client = IndexClient([IndexRoute(pypi_index.url)], cache_dir=tmp_path / "cache", backoff=0)
    request = Request(
        requirements=[(Requirement("app"), "case"), (Requirement("lib<2"), "case")],
        targets=TARGETS,
    )
    started = time.monotonic()
    try:
        (sdist,) = client.files(canonicalize_name("slow"))
        with pytest.raises(ResolutionError, match="no versions of lib"):
            resolve(client, request)
    finally:
        client.close()
    took = time.monotonic() - started
    assert pidfile.exists(), "the hook never started: the case tests nothing"
    assert took < 15, took
    assert _gone(int(pidfile.read_text()))
    # stopped is not failed: nothing is remembered for the sdist, the next lock asks again
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert Cache(tmp_path / "cache").get_json(DYNAMIC, f"{sdist.sha256}-py{version}") is None


#: an in-tree backend whose metadata hook writes its PID to PIDFILE, then sleeps
SLOW_METADATA_BACKEND = """
import os, time

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    with open(PIDFILE + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.replace(PIDFILE + ".tmp", PIDFILE)
    time.sleep(30)
    raise SystemExit("not reached")
"""


def test_sigterm_stops_the_metadata_hook_the_resolver_waits_for(
    pypi_index: IndexServer, tmp_path: Path
) -> None:
    """The hook runs on the index client's own pool, not the resolution's: it is stopped
    all the same, and closing the client does not wait for it either."""
    dist = tmp_path / "dist"
    publish_frontend(pypi_index, dist)
    pidfile = tmp_path / "meta.pid"
    sdist_path = backend_sdist(
        dist, "meta", "1.0", SLOW_METADATA_BACKEND, dynamic=True, PIDFILE=str(pidfile)
    )
    pypi_index.publish(sdist_path)
    client = IndexClient([IndexRoute(pypi_index.url)], cache_dir=tmp_path / "cache", backoff=0)
    request = Request(requirements=[(Requirement("meta"), "case")], targets=TARGETS)

    def terminate_once_the_hook_runs() -> None:
        deadline = time.monotonic() + 20
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if pidfile.exists():
            os.kill(os.getpid(), signal.SIGTERM)

    started = time.monotonic()
    try:
        (sdist,) = client.files(canonicalize_name("meta"))
        threading.Thread(target=terminate_once_the_hook_runs, daemon=True).start()
        with handle_signals(), pytest.raises(Terminated):
            resolve(client, request)
    finally:
        client.close()
    took = time.monotonic() - started
    assert pidfile.exists(), "the hook never started: the case tests nothing"
    assert took < 15, took
    assert _gone(int(pidfile.read_text()))
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert Cache(tmp_path / "cache").get_json(FAILURES, f"{sdist.sha256}-py{version}") is None
