"""Where a cache lives: store URIs, the embedded default, and the SSH environment.

Store URIs understood here:

- ``ssh-ng://[user@]host[?params]`` — a Nix daemon over SSH (``nix-daemon --stdio``).  The
  remote daemon checks signatures against *its own* ``trusted-public-keys``.
- ``ssh://[user@]host[?params]`` — ``nix-store --serve --write`` over SSH.
- ``file:///abs/path[?params]`` — a local binary cache directory.
- ``rsync+ssh://[user@]host/abs/path[?params]`` — a binary cache directory on another
  machine, filled from a local staging ``file://`` cache (``params`` such as
  ``compression=zstd`` apply to it) with rsync over SSH (NARs first, then the narinfos,
  each path's after its references'), served by whatever web server points at it.
- ``http(s)://...`` — read only: :func:`~bot.cache.has_paths` and :func:`~bot.cache.verify`.

Nix 2.8 takes no port in a store URL: ports, users, keys and known hosts go in an ssh config
file that is passed as ``NIX_SSHOPTS="-F FILE"`` to nix and as ``rsync -e "ssh -F FILE"``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bot.cache.keys import SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV, default_signing_key, private_file
from bot.core.errors import CacheError

StoreKind = Literal["ssh-ng", "ssh", "file", "rsync", "http"]

#: environment variable holding an SSH private key's text (used instead of ~/.ssh keys)
SSH_KEY_ENV = "NIXPKGS_PYTHON_SSH_KEY"
#: environment variable holding known_hosts lines for the cache host
SSH_KNOWN_HOSTS_ENV = "NIXPKGS_PYTHON_SSH_KNOWN_HOSTS"

DEFAULT_CACHE_DIR = "binary-cache"

#: secret-holding variables blanked for child processes: they only need the files
SCRUBBED = {SIGNING_KEY_ENV: "", SSH_KEY_ENV: "", SSH_KNOWN_HOSTS_ENV: ""}


@dataclass(frozen=True)
class CacheStore:
    """A parsed cache location."""

    uri: str
    kind: StoreKind
    host: str | None = None
    path: str | None = None
    query: str = ""

    @property
    def nix_uri(self) -> str:
        """The URI nix itself opens (for rsync+ssh there is none: see :attr:`rsync_target`)."""
        if self.kind == "rsync":
            raise CacheError("nix cannot open an rsync+ssh:// cache directly", where=self.uri)
        return self.uri

    @property
    def rsync_target(self) -> str:
        """``host:/path/`` for rsync."""
        if self.host is None or self.path is None:
            raise CacheError("not a remote cache directory", where=self.uri)
        return f"{self.host}:{self.path.rstrip('/')}/"

    @property
    def ssh(self) -> bool:
        """Whether reaching the store needs SSH."""
        return self.kind in ("ssh-ng", "ssh", "rsync")


def parse_store(uri: str) -> CacheStore:
    """Parse and check a cache URI (see the module docstring); errors say what to write."""
    parts = urlsplit(uri)
    scheme = parts.scheme
    if scheme in ("ssh-ng", "ssh", "rsync+ssh"):
        if parts.port is not None or (parts.netloc.rsplit("@", 1)[-1].count(":") == 1):
            raise CacheError(
                "Nix 2.8 takes no port in a store URL",
                where=uri,
                hint="put `Host ALIAS / HostName ... / Port ...` in an ssh config file and "
                "pass it with --ssh-config; use ALIAS as the host",
            )
        if not parts.hostname:
            raise CacheError("the store URL names no host", where=uri)
        host = parts.netloc
        if scheme == "rsync+ssh":
            if not parts.path.startswith("/") or parts.path == "/":
                raise CacheError(
                    "an rsync+ssh:// cache needs an absolute directory",
                    where=uri,
                    hint="e.g. rsync+ssh://cache.example.org/srv/nix-cache",
                )
            return CacheStore(uri, "rsync", host=host, path=parts.path, query=parts.query)
        return CacheStore(uri, "ssh-ng" if scheme == "ssh-ng" else "ssh", host=host)
    if scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise CacheError(
                "a file:// cache needs an absolute path", where=uri, hint="e.g. file:///srv/cache"
            )
        return CacheStore(uri, "file", path=parts.path)
    if scheme in ("http", "https"):
        return CacheStore(uri, "http", host=parts.netloc, path=parts.path)
    raise CacheError(
        f"unsupported cache URL scheme {scheme!r}" if scheme else "not a cache URL",
        where=uri,
        hint="use ssh-ng://HOST, ssh://HOST, file:///PATH or rsync+ssh://HOST/PATH",
    )


def default_store(repo: Path) -> str:
    """The embedded default cache: a signed ``file://`` cache in ``<repo>/binary-cache``.

    NARs are zstd-compressed: nix's default, xz, is ~80x slower to write (33 s instead of
    0.4 s for 100 MiB in benchmarks/push.py) and every Nix since 2.4 reads zstd.
    """
    return f"file://{(repo / DEFAULT_CACHE_DIR).resolve()}?compression=zstd"


def signing_key_for(store: str, repo: Path, signing_key: Path | None) -> Path | None:
    """The secret key file to sign what goes to ``store`` with: ``signing_key`` if given;
    ``None`` when the environment names one (:func:`~bot.cache.keys.signing_key_file` reads
    it); the machine's key (:func:`~bot.cache.keys.default_signing_key`) when ``store`` is
    ``repo``'s default cache.  Any other store without a key is an error, raised before
    anything is built."""
    if signing_key is not None:
        return signing_key
    if os.environ.get(SIGNING_KEY_ENV) or os.environ.get(SIGNING_KEY_FILE_ENV):
        return None
    if store == default_store(repo):
        return default_signing_key()
    raise CacheError(
        f"no signing key for {store}",
        hint=f"pass --signing-key FILE or set {SIGNING_KEY_FILE_ENV}",
    )


@contextmanager
def ssh_options(ssh_config: Path | None) -> Iterator[dict[str, str]]:
    """Environment entries that make nix and rsync use ``ssh -F CONFIG``.

    Yields ``{"NIX_SSHOPTS": "-F FILE"}`` (no ``NIX_SSHOPTS`` with no config and no SSH
    secrets in the environment), plus the secret-holding variables set to ``""`` so that child
    processes never inherit them.  When ``$NIXPKGS_PYTHON_SSH_KEY`` /
    ``$NIXPKGS_PYTHON_SSH_KNOWN_HOSTS`` hold key / known_hosts text, they are written to 0600
    temporary files and a temporary config that uses them and then includes ``ssh_config``
    (or ``~/.ssh/config``) is used instead.
    """
    key_text = os.environ.get(SSH_KEY_ENV, "")
    known_hosts = os.environ.get(SSH_KNOWN_HOSTS_ENV, "")
    if ssh_config is not None and not ssh_config.is_file():
        raise CacheError("ssh config file not found", where=str(ssh_config))
    if not key_text.strip() and not known_hosts.strip():
        opts = {} if ssh_config is None else {"NIX_SSHOPTS": f"-F {_no_space(ssh_config)}"}
        yield {**SCRUBBED, **opts}
        return
    with ExitStack() as stack:
        lines = []
        if key_text.strip():
            key = stack.enter_context(private_file(key_text.strip() + "\n", prefix="ssh-key-"))
            lines += [f"IdentityFile {_no_space(key)}", "IdentitiesOnly yes"]
        if known_hosts.strip():
            hosts = stack.enter_context(private_file(known_hosts.strip() + "\n", prefix="kh-"))
            lines += [f"UserKnownHostsFile {_no_space(hosts)}", "StrictHostKeyChecking yes"]
        include = ssh_config if ssh_config is not None else Path.home() / ".ssh" / "config"
        if include.is_file():
            lines.append(f"Include {_no_space(include.resolve())}")
        config = stack.enter_context(private_file("\n".join(lines) + "\n", prefix="ssh-config"))
        yield {**SCRUBBED, "NIX_SSHOPTS": f"-F {_no_space(config)}"}


def rsync_shell(env: dict[str, str]) -> str:
    """The ``rsync -e`` value matching ``env`` from :func:`ssh_options`."""
    return shlex.join(["ssh", *shlex.split(env.get("NIX_SSHOPTS", ""))])


def _no_space(path: Path) -> str:
    # NIX_SSHOPTS is split on whitespace by nix, with no quoting
    text = os.fspath(path)
    if any(c.isspace() for c in text):
        raise CacheError("the ssh config path must not contain whitespace", where=text)
    return text
