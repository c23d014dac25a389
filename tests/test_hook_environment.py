"""Index-supplied code (an sdist's backend, a build requirement the installer builds) sees
none of the bot's secrets: it runs with an allow-listed environment and a scratch HOME
(bot.lock.index.hookenv).  Real locks against the loopback index, whose sdists' in-tree
backends write what they see of their environment to a report."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
from packaging.utils import canonicalize_name

from bot.lock.index import IndexClient, IndexRoute
from tests.plugins.pypi import IndexServer
from tests.plugins.pypi_backend import fixture_backend
from tests.test_lock_cli import lock, make_repo
from tests.test_sdist_python import needs_312

#: an in-tree backend (fixture-backend's hooks) that first records each hook's environment
SPY_BACKEND = """
import json, os
import fixture_backend as _fb

def _record(hook):
    with open(REPORT, "a") as f:
        f.write(json.dumps({"who": WHO, "hook": hook, "env": dict(os.environ),
                            "home": os.path.expanduser("~")}) + "\\n")

def get_requires_for_build_wheel(config_settings=None):
    _record("get_requires_for_build_wheel")
    return []

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    _record("prepare_metadata_for_build_wheel")
    return _fb.prepare_metadata_for_build_wheel(directory, config_settings)

def build_wheel(directory, config_settings=None, metadata_directory=None):
    _record("build_wheel")
    return _fb.build_wheel(directory, config_settings, metadata_directory)

def get_requires_for_build_sdist(config_settings=None):
    return []

def build_sdist(directory, config_settings=None):
    return _fb.build_sdist(directory, config_settings)
"""

#: the bot's secrets, by the names it reads them from, and others a runner may hold
SECRETS = {
    "NIXPKGS_PYTHON_SIGNING_KEY": "cache-1:c2lnbmluZy1rZXktc2VjcmV0LXRleHQ=",
    "NIXPKGS_PYTHON_SIGNING_KEY_FILE": "/run/secrets/signing-key-secret-path",
    "NIXPKGS_PYTHON_SSH_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nssh-key-secret\n",
    "NIXPKGS_PYTHON_SSH_KNOWN_HOSTS": "cache.invalid ssh-ed25519 known-hosts-secret",
    "NIXPKGS_PYTHON_GITHUB_TOKEN": "ghp_nixpkgs_python_token_secret",
    "GITHUB_TOKEN": "ghs_github_token_secret",
    "FOO_SECRET": "foo-secret-value",
}
#: settings that would point an installer elsewhere, or a hook at the bot's own files
ELSEWHERE = {
    "PIP_INDEX_URL": "http://elsewhere.invalid/simple/",
    "PIP_FIND_LINKS": "/elsewhere/wheels",
    "UV_INDEX_URL": "http://elsewhere.invalid/simple/",
    "UV_EXTRA_INDEX_URL": "http://elsewhere.invalid/simple/",
    "PYTHONPATH": "/elsewhere/lib",
    "VIRTUAL_ENV": "/elsewhere/venv",
}
#: what must reach a hook as it is: proxies (the loopback index bypasses them), CA bundles,
#: locale and reproducibility settings
PASSED = {
    "http_proxy": "http://proxy.invalid:3128",
    "HTTPS_PROXY": "http://proxy.invalid:3129",
    "no_proxy": "127.0.0.1,localhost",
    "NO_PROXY": "127.0.0.1,localhost",
    "SSL_CERT_FILE": certifi.where(),
    "SSL_CERT_DIR": str(Path(certifi.where()).parent),
    "LANG": "C.UTF-8",
    "SOURCE_DATE_EPOCH": "315532800",
}


def spy_sdist(
    dest: Path, name: str, report: Path, build_requires: list[str], backend: str = SPY_BACKEND
) -> Path:
    """An sdist of ``name`` whose in-tree ``backend`` records each hook's environment in
    ``report`` (its path is in the backend's source: a hook is given no variable to find
    it by).  It has dynamic dependencies behind an untrusted Metadata 2.1 PKG-INFO, so the
    lock asks its backend; ``build_requires`` are its ``[build-system] requires``."""
    module = fixture_backend.dist_name(name)
    source = f"REPORT = {str(report)!r}\nWHO = {name!r}\n" + backend
    pyproject = (
        f"[build-system]\nrequires = {json.dumps(build_requires)}\n"
        'build-backend = "spy_backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\ndynamic = ["dependencies"]\n\n'
        f'[tool.fixture-backend]\ninclude = ["{module}.py"]\ndependencies = []\n'
    )
    base = f"{module}-1.0"
    path = dest / f"{base}.tar.gz"
    dest.mkdir(parents=True, exist_ok=True)
    fixture_backend.write_tar_gz(
        path,
        {
            f"{base}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n".encode(),
            f"{base}/pyproject.toml": pyproject.encode(),
            f"{base}/spy_backend.py": source.encode(),
            f"{base}/fixture_backend.py": Path(fixture_backend.__file__).read_bytes(),
            f"{base}/{module}.py": b"",
        },
    )
    return path


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return tmp_path / "hooks.jsonl"


@pytest.fixture
def spy_index(pypi_index: IndexServer, tmp_path: Path, report: Path) -> IndexServer:
    """``spy``, whose build requirement ``spy-helper`` is on the index only as an sdist: no
    composed environment holds it, so the installer (uv or pip) builds it, running its
    backend too."""
    dist = tmp_path / "dist"
    pypi_index.publish(spy_sdist(dist, "spy", report, ["spy-helper"]))
    pypi_index.publish(spy_sdist(dist, "spy-helper", report, []))
    return pypi_index


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The bot's environment as on a night's runner: secrets, stray index settings, and
    the settings a hook must still get."""
    for name, value in {**SECRETS, **ELSEWHERE, **PASSED}.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


def records(report: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in report.read_text().splitlines()]


def assert_clean(seen: list[dict[str, Any]], bot_env: dict[str, str]) -> None:
    """No hook saw a secret, a stray index setting or the bot's own directories; each saw
    what must pass, and a scratch HOME of the run."""
    assert seen
    scratch = os.path.realpath(tempfile.gettempdir())
    for record in seen:
        env, where = record["env"], f"{record['who']} {record['hook']}"
        leaked = sorted({*SECRETS, "XDG_CACHE_HOME", "XDG_CONFIG_HOME"} & set(env))
        assert leaked == [], f"{where} saw {leaked}"
        # (an installer's build isolation sets a PYTHONPATH of its own: not the bot's)
        dump = json.dumps(env)
        found = [v for v in [*SECRETS.values(), *ELSEWHERE.values()] if v in dump]
        assert found == [], f"{where} saw {found}"
        for name, value in PASSED.items():
            assert env.get(name) == value, f"{where}: {name}={env.get(name)!r}"
        assert env["PATH"].endswith(bot_env["PATH"]), where  # its environment's bin/ first
        assert env["HOME"] == record["home"] != bot_env["HOME"], where
        assert os.path.realpath(env["HOME"]).startswith(scratch + os.sep), where
        assert "nixpkgs-python-" in env["HOME"], where


@needs_312
def test_a_lock_hands_its_hooks_and_installer_none_of_its_secrets(
    spy_index: IndexServer,
    frontend_wheels: dict[str, Path],
    tmp_path: Path,
    report: Path,
    secrets_set: dict[str, str],
) -> None:
    for wheel in frontend_wheels.values():
        spy_index.publish(wheel)
    repo = make_repo(tmp_path, ["spy"])
    assert lock(repo, spy_index, "--exclude-newer", "2099-01-01T00:00:00Z") == 0
    assert (repo / "sets" / "demo" / "pylock.py312.toml").is_file()
    seen = records(report)
    hooks = {(r["who"], r["hook"]) for r in seen}
    # spy's hooks ran in its environment; the installer fallback built spy-helper
    assert {
        ("spy", "get_requires_for_build_wheel"),
        ("spy", "prepare_metadata_for_build_wheel"),
        ("spy-helper", "build_wheel"),
    } <= hooks, hooks
    assert_clean(seen, secrets_set)
    # and the stray index settings reached nothing: every request went to the loopback index
    assert spy_index.paths("/simple/spy-helper/")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    made: list[IndexClient] = []

    def make(server: IndexServer, uv: str | None) -> IndexClient:
        c = IndexClient(
            [IndexRoute(server.url)],
            cache_dir=tmp_path / "cache",
            backoff=0.001,
            uv=uv,
            compose_builds=False,
        )
        c.build_python = ("3.12", sys.executable)  # the backend runs on any Python
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_the_installers_and_the_builds_they_run_get_none_of_the_secrets(
    spy_index: IndexServer,
    client: Any,
    report: Path,
    secrets_set: dict[str, str],
    installer: str,
) -> None:
    index_client = client(spy_index, None if installer == "uv" else "")
    (file,) = index_client.files(canonicalize_name("spy"))
    assert index_client.metadata(file).requires_dist == ()
    seen = records(report)
    assert ("spy-helper", "build_wheel") in {(r["who"], r["hook"]) for r in seen}
    assert_clean(seen, secrets_set)
