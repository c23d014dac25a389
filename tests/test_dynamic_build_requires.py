"""Build requirements a backend asks for while building (get_requires_for_build_wheel) are
locked with the static [build-system] requires (issue 13, item 4)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from bot.lock.resolve import Request, resolve
from bot.model.targets import targets_for
from tests.frozen_index import FrozenIndex
from tests.plugins.pypi import IndexServer, make_wheel
from tests.test_lock_cli import lock, make_repo
from tests.test_resolve import FRONTEND
from tests.test_sdist_python import hook_log, needs_312, strict_sdist  # noqa: F401

LINUX = ["cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux_2_17_aarch64"]


def test_dynamic_build_requirements_join_the_resolution_where_the_sdist_is_built() -> None:
    index = FrozenIndex(
        {
            **FRONTEND,
            "mesonish": {
                "1.0": {
                    "files": [*LINUX, "sdist"],
                    "build-requires": ["meson-python"],
                    "dynamic-build-requires": ["ninja>=1.8"],
                }
            },
            "meson-python": {"0.18": {}},
            "ninja": {"1.13": {}},
        }
    )
    request = Request(requirements=[(Requirement("mesonish"), "case")], targets=targets_for("3.12"))
    resolution = resolve(index, request)
    ninja = resolution.packages["ninja"]
    # only the Macs build mesonish from its sdist: only they need ninja
    assert sorted(t.system for t in ninja.artifacts) == ["aarch64-darwin", "x86_64-darwin"]
    assert resolution.packages["mesonish"].build_requires == {"meson-python", "ninja"}


@needs_312
def test_lock_holds_what_the_backend_asks_for(
    pypi_index_with_backend: IndexServer,
    frontend_wheels: dict[str, Path],
    tmp_path: Path,
    hook_log: Path,  # noqa: F811
) -> None:
    index = pypi_index_with_backend
    for wheel in frontend_wheels.values():
        index.publish(wheel)
    dist = tmp_path / "dist"
    index.publish(strict_sdist(dist, extra=("extra-tool>=1",), log=hook_log))
    index.publish(make_wheel(dist, "dep", "2.0"))
    index.publish(make_wheel(dist, "extra-tool", "1.5"))
    repo = make_repo(tmp_path, ["strict"])
    assert lock(repo, index, "--exclude-newer", "2025-06-01T00:00:00Z") == 0
    doc = tomllib.loads((repo / "sets" / "demo" / "pylock.py312.toml").read_text())
    packages = {p["name"]: p for p in doc["packages"]}
    assert "extra-tool" in packages
    # (an in-tree backend also needs the package's own dependencies to build)
    assert packages["strict"]["tool"]["nixpkgs-python"]["build-requires"] == ["dep", "extra-tool"]
    assert "dep" in packages  # from the metadata hook, run with Python 3.12
    runs = hook_log.read_text().count("hook")
    # asked once: a second lock takes both answers from the cache
    assert lock(repo, index, "--exclude-newer", "2025-06-02T00:00:00Z") == 0
    assert hook_log.read_text().count("hook") == runs


def test_refresh_keeps_an_answer_and_asks_again_after_a_failure(tmp_path: Path) -> None:
    """The nightly locks with ``refresh``: a backend's answer, kept by the sdist's sha256, is
    not asked for again (that re-ran every sdist's hook each night); a failure is."""
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    from bot.lock.index.cache import Cache
    from bot.lock.index.models import DistFile
    from bot.lock.index.pep517 import DYNAMIC, cached_build_requires

    cache = Cache(tmp_path / "cache")
    asked: list[str] = []

    def file(sha: str) -> DistFile:
        return DistFile(
            name=canonicalize_name("demo"),
            version=Version("1.0"),
            kind="sdist",
            filename="demo-1.0.tar.gz",
            url="http://127.0.0.1:9/demo-1.0.tar.gz",
            sha256=sha,
            index="http://127.0.0.1:9/simple/",
        )

    def data() -> bytes:
        asked.append("hook")
        return b"not an sdist"

    known, failed = file("a" * 64), file("b" * 64)
    cache.put_json(DYNAMIC, f"{known.sha256}-py3.12", {"requires": ["ninja>=1.8"]})
    cache.put_json(DYNAMIC, f"{failed.sha256}-py3.12", {"requires": [], "error": "no backend"})
    python = ("3.12", "/nonexistent/python3.12")
    got = cached_build_requires(cache, data, known, [], python=python, refresh=True)
    assert [str(r) for r in got] == ["ninja>=1.8"]
    assert asked == []  # the kept answer stands, refresh or not
    assert cached_build_requires(cache, data, failed, [], python=python, refresh=True) == ()
    assert asked == ["hook"]  # the failure was asked again (and failed again: bad bytes)
    assert cached_build_requires(cache, data, failed, [], python=python) == ()
    assert asked == ["hook"]  # without refresh the remembered failure stands
