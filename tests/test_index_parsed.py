"""Parsed pages are cached in a compact form that loads back to the same files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.index.client import IndexClient, IndexRoute
from bot.index.simple import foreign_wheel, from_rows, to_rows
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel


def test_parsed_page_round_trip_and_damage(pypi_index: IndexServer, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    pypi_index.publish(make_wheel(dist, "rt-pkg", "1.0", requires_python=">=3.9"))
    pypi_index.publish(
        make_wheel(dist, "rt-pkg", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
        yanked="bad build",
    )
    pypi_index.publish(make_sdist(dist, "rt-pkg", "2.0"), upload_time="2025-02-03T04:05:06Z")
    cache = tmp_path / "cache"
    with IndexClient([IndexRoute(pypi_index.url)], cache_dir=cache) as client:
        parsed = client.files("rt-pkg")
    assert len(parsed) == 3
    assert from_rows(to_rows(parsed)) == parsed
    stored = list((cache).rglob("parsed/*/*"))
    assert len(stored) == 1
    # a second client loads the stored parse; a damaged entry is parsed again, not trusted
    with IndexClient([IndexRoute(pypi_index.url)], cache_dir=cache) as client:
        assert client.files("rt-pkg") == parsed
    stored[0].write_bytes(b"garbage")
    with IndexClient([IndexRoute(pypi_index.url)], cache_dir=cache) as client:
        assert client.files("rt-pkg") == parsed


@pytest.mark.parametrize(
    ("filename", "foreign"),
    [
        ("coverage-7.0-cp39-cp39-win_amd64.whl", True),
        ("coverage-7.0-cp312-cp312-musllinux_1_1_x86_64.whl", True),
        ("coverage-7.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("coverage-7.0-cp312-cp312-manylinux_2_17_i686.manylinux2014_i686.whl", True),
        ("coverage-7.0-cp39-cp39-manylinux_2_17_x86_64.whl", True),
        ("cryptography-42.0-cp39-abi3-manylinux_2_28_x86_64.whl", False),
        ("coverage-7.0-pp39-pypy39_pp73-manylinux_2_17_x86_64.whl", True),
        ("six-1.16.0-py2.py3-none-any.whl", False),
        ("futures-3.0-py2-none-any.whl", True),
        ("x-1.0-cp312-cp312-macosx_10_9_x86_64.whl", False),
        ("x-1.0-cp312-cp312-macosx_11_0_arm64.whl", False),
        ("x-1.0-cp312-cp312-win_amd64.macosx_11_0_arm64.whl", False),
        ("x-1.0-py3-none-any.whl", False),
        ("x-1.0.tar.gz", False),
    ],
)
def test_wheels_no_target_can_use_are_skipped(filename: str, foreign: bool) -> None:
    assert foreign_wheel(filename) is foreign
