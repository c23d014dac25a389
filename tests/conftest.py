"""Shared fixtures.  Real components are started by the plugins in tests/plugins/:

- ``tests.plugins.pypi``: a loopback package index serving packages the tests build
- ``tests.plugins.nixenv``: real Nix with isolated state
- ``tests.plugins.sshd``: an OpenSSH server on a free loopback port
- ``tests.plugins.standin``: a stand-in nixpkgs whose outputs only substitute from loopback
- ``tests.plugins.fake_github``: the one fake boundary, the GitHub REST API
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.plugins.pypi",
    "tests.plugins.nixenv",
    "tests.plugins.sshd",
    "tests.plugins.standin",
    "tests.plugins.fake_github",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (README's ``-n``), the workflow runs under act go first: they take
    minutes each, and started last one of them would keep a worker busy long after the other
    has run out of tests.  A plain run keeps the file order."""
    if not hasattr(config, "workerinput"):  # the controller or a plain run
        return
    items.sort(key=lambda item: "act" not in getattr(item, "fixturenames", ()))  # stable


@pytest.fixture(autouse=True)
def _hermetic_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test reads the developer's git/XDG configuration or caches, nor goes through the
    machine's HTTP proxy (every server a test talks to is on loopback).  Each test has its own
    XDG directories: nothing is shared between tests or between pytest-xdist workers (the
    default signing key, made on first use in the config directory, included)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "nixpkgs-python tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@nixpkgs-python.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "nixpkgs-python tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@nixpkgs-python.invalid")
