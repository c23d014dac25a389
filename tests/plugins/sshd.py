"""A real OpenSSH server on a free loopback port, standing in for a cache host.

The ``sshd`` fixture (session scope) starts ``/usr/sbin/sshd -D -e -f CONFIG`` with its own
host key, key-only authentication (a generated client key in ``authorized_keys``),
``PermitRootLogin prohibit-password`` (the tests run as root) and ``StrictModes no`` (the
files live in a temp dir).  It writes an ssh config (``Host cachehost`` -> 127.0.0.1, the
port, the client key, a known_hosts file pinning the host key, ``StrictHostKeyChecking
yes``, ``BatchMode yes``) for ``NIX_SSHOPTS="-F FILE"`` / ``rsync -e "ssh -F FILE"``.

The remote side's nix is configured by ``SetEnv NIX_CONF_DIR=...``: its nix.conf has
``require-sigs = true`` and the ``trusted-public-keys`` set with
:meth:`SshServer.trust` — the remote ``nix-daemon --stdio`` (ssh-ng://) checks
signatures against exactly these keys.  Tests give each remote store its own root with the
store URL parameter ``?remote-store=/some/dir`` (Nix 2.8 passes it as ``--store`` to the
remote ``nix-daemon --stdio`` / ``nix-store --serve``), so a push really copies.

The server is stopped by the PID this fixture started, never by name.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
HOST_ALIAS = "cachehost"


@dataclass
class SshServer:
    """A running sshd and the files a client needs to reach it."""

    host: str
    port: int
    ssh_config: Path
    client_key: Path
    nix_conf_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def trust(self, *public_keys: str) -> None:
        """Make the remote nix trust exactly ``public_keys`` (and require signatures)."""
        lines = [
            "sandbox = false",
            "require-sigs = true",
            "substituters =",
            "narinfo-cache-negative-ttl = 0",
            f"trusted-public-keys = {' '.join(public_keys)}",
        ]
        (self.nix_conf_dir / "nix.conf").write_text("\n".join(lines) + "\n")

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on the "remote host" through ssh."""
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), self.host, command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nixpkgs-python-tests", "-f", path],
        check=True,
        capture_output=True,
    )


def start_sshd(root: Path) -> SshServer:
    """Start sshd with all its files under ``root``; wait until it accepts connections.

    The port is a free one when chosen; should another process (a parallel test worker) bind
    it before sshd does, sshd exits and a new port is tried."""
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = root / "host_key", root / "client_key"
    _keygen(host_key)
    _keygen(client_key)
    shutil.copy(client_key.with_suffix(".pub"), root / "authorized_keys")
    nix_conf_dir = root / "remote-nix"
    nix_conf_dir.mkdir()
    # sshd insists on its privilege separation directory (normally made by the service unit)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    for _attempt in range(5):
        server = _start_on(root, _free_port(), host_key, client_key, nix_conf_dir)
        if server is not None:
            return server
    raise RuntimeError(f"sshd found no free port in 5 tries:\n{(root / 'sshd.log').read_text()}")


def _start_on(
    root: Path, port: int, host_key: Path, client_key: Path, nix_conf_dir: Path
) -> SshServer | None:
    """sshd on ``port``, once it listens there; None when the port was taken meanwhile."""
    config = root / "sshd_config"
    config.write_text(
        f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
AuthorizedKeysFile {root / "authorized_keys"}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile none
LogLevel VERBOSE
SetEnv NIX_CONF_DIR={nix_conf_dir}
"""
    )
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text()}")
    ssh_config = root / "ssh_config"
    ssh_config.write_text(
        f"""\
Host {HOST_ALIAS}
  HostName 127.0.0.1
  Port {port}
  User {getpass.getuser()}
  IdentityFile {client_key}
  IdentitiesOnly yes
  UserKnownHostsFile {known_hosts}
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
"""
    )
    log = root / "sshd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    server = SshServer(HOST_ALIAS, port, ssh_config, client_key, nix_conf_dir, log, process)
    server.trust()
    # our sshd holds the port once it says so: only then can a connection reach no other
    listening = f"Server listening on 127.0.0.1 port {port}."
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            text = log.read_text()
            if "Address already in use" in text:
                return None
            raise RuntimeError(f"sshd exited with {process.returncode}:\n{text}")
        try:
            if listening in log.read_text():
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_sshd(server)
            raise RuntimeError(f"sshd did not start:\n{log.read_text()}")
        time.sleep(0.05)


def stop_sshd(server: SshServer) -> None:
    """Stop the sshd we started, by its PID."""
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A running OpenSSH server on 127.0.0.1 (see the module docstring)."""
    if not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")):
        pytest.skip("OpenSSH server not installed (need /usr/sbin/sshd, ssh, ssh-keygen)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        stop_sshd(server)
