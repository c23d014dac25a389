"""bot.model.interpreters: finding the standalone interpreters, and asking each only once.

The interpreters here are real executables (small shell scripts answering the probe the way
an interpreter does); each run is counted in a log beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.model import interpreters
from bot.model.interpreters import PROBE_CACHE, detect, probe


def fake_python(path: Path, version: str, *, reports: Path | None = None) -> Path:
    """An executable that answers the probe as Python ``version`` would, reporting ``reports``
    (default: itself) as its executable, and logs each run to ``<path>.runs``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'#!/bin/sh\necho run >> "{path}.runs"\necho "{reports or path}"\necho "{version}"\n'
    )
    path.chmod(0o755)
    return path


def runs(path: Path) -> int:
    log = Path(f"{path}.runs")
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture(autouse=True)
def _fresh_process_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    # each test starts as a new process would (the cache file is per test: conftest's XDG)
    monkeypatch.setattr(interpreters, "_PROBED", {})


def test_an_interpreter_is_asked_once_while_its_file_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    py = fake_python(tmp_path / "pyenv" / "versions" / "3.12.4" / "bin" / "python3.12", "3.12")
    found = detect(["3.12"], pyenv_root=tmp_path / "pyenv", path="")
    assert found == {"3.12": str(py)}
    assert detect(["3.12"], pyenv_root=tmp_path / "pyenv", path="") == found
    assert runs(py) == 1
    # a new process: the answer comes from the cache file, still without running it
    monkeypatch.setattr(interpreters, "_PROBED", {})
    assert probe(py) == (str(py), "3.12")
    assert runs(py) == 1
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "nixpkgs-python" / PROBE_CACHE
    assert str(py) in cache.read_text()
    # the file replaced (another build at the same path): asked again
    fake_python(py, "3.12")
    os.utime(py, ns=(1, 1))
    assert probe(py) == (str(py), "3.12")
    assert runs(py) == 2


def test_a_shim_is_asked_every_time(tmp_path: Path) -> None:
    real = fake_python(tmp_path / "real" / "python3.13", "3.13")
    shim = fake_python(tmp_path / "shims" / "python3.13", "3.13", reports=real)
    assert detect(["3.13"], pyenv_root=tmp_path / "none", path=str(shim.parent)) == {
        "3.13": str(real)
    }
    assert probe(shim) == (str(real), "3.13")
    assert runs(shim) == 2  # what a shim runs can change without the shim changing


def test_a_damaged_cache_file_is_only_a_miss(tmp_path: Path) -> None:
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "nixpkgs-python" / PROBE_CACHE
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("{not json")
    py = fake_python(tmp_path / "bin" / "python3.11", "3.11")
    assert probe(py) == (str(py), "3.11")
    assert runs(py) == 1
    broken = tmp_path / "bin" / "python3.10"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    assert probe(broken) is None
    assert detect(["3.10", "3.11"], pyenv_root=tmp_path / "none", path=str(py.parent)) == {
        "3.11": str(py)
    }
    assert runs(py) == 1
