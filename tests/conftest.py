"""Shared fixtures.  Real components are started by the plugins in tests/plugins/:

- ``tests.plugins.pypi``: a loopback package index serving packages the tests build
- ``tests.plugins.nixenv``: real Nix with isolated state
- ``tests.plugins.sshd``: an OpenSSH server on a free loopback port

The one fake boundary, the GitHub REST API, lives in this file.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.plugins.pypi",
]


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the developer's git/XDG configuration or caches."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "nixpkgs-python tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@nixpkgs-python.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "nixpkgs-python tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@nixpkgs-python.invalid")
