"""Parsed pages are cached in a compact form that loads back to the same files."""

from __future__ import annotations

from pathlib import Path

from bot.index.client import IndexClient, IndexRoute
from bot.index.simple import from_rows, to_rows
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
