"""The nightly workflow keeps the cache keys off disk, and out of every step's environment,
while the sdists' build code runs: a real night under act (tests/plugins/act.py) whose set
has an sdist with an in-tree backend that looks, as the runner's user can, for the keys
while the lock asks it for its metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot import cache
from tests.plugins.pypi import IndexServer
from tests.test_hook_environment import spy_sdist
from tests.test_workflows import (  # noqa: F401 - fixtures
    HOSTED,
    WORKFLOWS,
    hosted_standin,
    outcomes,
    project_repo,
    runner_env,
    wf_index,
)

if TYPE_CHECKING:
    from tests.plugins.act import Act
    from tests.plugins.fake_github import FakeGitHub
    from tests.plugins.sshd import SshServer
    from tests.plugins.standin import Standin

pytest_plugins = ["tests.plugins.act"]

#: a backend (fixture-backend's hooks) whose lock-time hooks first record what this user can
#: see of the keys: the runner's temporary directory (RUNNER_TEMP, read from an ancestor's
#: /proc environ as any process of the user can) and everything under SCAN, searched for the
#: keys' text; and which ancestor (the lock step's shell, the bot) holds a key or a key
#: file's name in its environment.  Nothing is recorded where REPORT cannot be written (a
#: Nix build's sandbox).
KEY_PROBE_BACKEND = """
import json, os
import fixture_backend as _fb

def _ancestors():
    pid = os.getppid()
    while pid > 1:
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                environ = f.read()
            with open("/proc/%d/stat" % pid) as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return
        yield dict(e.split(b"=", 1) for e in environ.split(b"\\0") if b"=" in e)
        pid = parent

def _holding(root):
    found = []
    for top, _, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            try:
                if os.path.islink(path) or os.path.getsize(path) > 1 << 22:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if any(n.encode() in data for n in NEEDLES):
                found.append(path)
    return found

def _record(hook):
    runner_temp, step_env = None, []
    for entries in _ancestors():
        runner_temp = runner_temp or entries.get(b"RUNNER_TEMP", b"").decode() or None
        step_env += sorted(
            k.decode() for k, v in entries.items()
            if k.endswith(b"KEY_FILE") or any(n.encode() in v for n in NEEDLES)
        )
    keys = os.path.join(runner_temp, "keys") if runner_temp else None
    record = {"who": WHO, "hook": hook, "runner_temp": runner_temp,
              "keys_dir": bool(keys) and os.path.exists(keys),
              "holding": _holding(SCAN), "step_env": step_env, "env": sorted(os.environ)}
    try:
        with open(REPORT, "a") as f:
            f.write(json.dumps(record) + "\\n")
    except OSError:
        pass

def get_requires_for_build_wheel(config_settings=None):
    _record("get_requires_for_build_wheel")
    return []

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    _record("prepare_metadata_for_build_wheel")
    return _fb.prepare_metadata_for_build_wheel(directory, config_settings)

def build_wheel(directory, config_settings=None, metadata_directory=None):
    return _fb.build_wheel(directory, config_settings, metadata_directory)

def get_requires_for_build_sdist(config_settings=None):
    return []

def build_sdist(directory, config_settings=None):
    return _fb.build_sdist(directory, config_settings)
"""


def holding(root: Path, needles: list[str]) -> list[str]:
    """Files under ``root`` whose bytes hold any of ``needles``."""
    found = []
    for top, _, files in os.walk(root):
        for name in files:
            path = Path(top, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if any(n.encode() in data for n in needles):
                found.append(str(path))
    return found


@pytest.mark.nix
def test_no_key_is_on_disk_or_in_a_step_environment_while_the_lock_runs_sdist_code(
    act: Act,
    tmp_path: Path,
    wf_index: IndexServer,  # noqa: F811
    sshd: SshServer,
    fake_github: FakeGitHub,
    hosted_standin: Standin,  # noqa: F811
) -> None:
    secret, public = tmp_path / "keys" / "cache.sec", tmp_path / "keys" / "cache.pub"
    key_text = cache.cache_keygen("workflow-keys-1", secret, public)
    sshd.trust(key_text)
    ssh_key = sshd.client_key.read_text()
    # the secret parts: the signing key after its name, a line of the SSH key's body
    needles = [secret.read_text().strip().split(":", 1)[1], ssh_key.splitlines()[1]]
    report = tmp_path / "hooks.jsonl"
    backend = f"NEEDLES = {needles!r}\nSCAN = {str(act.root)!r}\n" + KEY_PROBE_BACKEND
    wf_index.publish(
        spy_sdist(tmp_path / "dist", "nb-spy", report, [], backend=backend),
        upload_time="2025-01-01T00:00:00Z",
    )
    work, remote = project_repo(
        tmp_path, {"demo": "description: demo\npython: ['3.12']\nrequirements: ['nb-spy']\n"}
    )
    store_root = tmp_path / "cache-store"
    run = act.run(
        WORKFLOWS / "nightly.yml", "workflow_dispatch", workdir=work, remote=remote,
        secrets={
            "CACHE_SSH_KEY": ssh_key,
            "CACHE_SSH_KNOWN_HOSTS": (sshd.ssh_config.parent / "known_hosts").read_text(),
            "CACHE_SIGNING_KEY": secret.read_text(),
            "GITHUB_TOKEN": fake_github.token,
        },
        variables={
            "CACHE_URI": f"ssh-ng://root@127.0.0.1?remote-store={store_root}",
            "CACHE_SSH_PORT": str(sshd.port),
        },
        env=runner_env(
            hosted_standin,
            GITHUB_API_URL=fake_github.base_url,
            NIXPKGS_PYTHON_INDEX_URL=wf_index.url,
        ),
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.log[-8000:]
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert {r["hook"] for r in records} >= {
        "get_requires_for_build_wheel",
        "prepare_metadata_for_build_wheel",
    }, records
    for record in records:
        # the probe looked where the keys were written before (it found the runner's temp)
        assert record["runner_temp"], record
        assert Path(record["runner_temp"]).is_relative_to(act.root), record
        assert record["keys_dir"] is False, record
        assert record["holding"] == [], record
        assert record["step_env"] == [], record
        assert not [k for k in record["env"] if "KEY" in k or "TOKEN" in k], record
    # the keys were there when the push needed them: every system pushed ...
    found = outcomes(run)
    assert sorted(found) == [("demo", s) for s in HOSTED], run.log[-4000:]
    for data in found.values():
        assert (data["lock"], data["build"], data["push"], data["pushed"]) == (
            "success", "success", "success", True,
        ), data  # fmt: skip
    # ... and are gone after it
    assert holding(act.root, needles) == []
