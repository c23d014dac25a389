"""Optional smoke test against the live PyPI (``pytest -m live``); never part of CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bot.lock.index import IndexClient

pytestmark = pytest.mark.live


def test_live_pypi_pages_and_metadata(tmp_path: Path) -> None:
    names = [canonicalize_name(n) for n in ("iniconfig", "pluggy", "packaging")]
    with IndexClient(cache_dir=tmp_path) as client:
        client.prefetch(names)
        for name in names:
            files = client.files(name)
            assert files
            assert all(len(f.sha256) == 64 for f in files)
            newest = max(
                (f for f in files if f.kind == "wheel" and f.yanked is None),
                key=lambda f: f.version,
            )
            meta = client.metadata(newest)
            assert meta.name == name
            assert meta.version == newest.version
        sdist = next(f for f in client.files(names[0]) if f.kind == "sdist")
        assert client.build_requires(sdist)
