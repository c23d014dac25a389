"""Signing keys: generation, loading from files or the environment, public key parsing.

Secret keys are only ever handed to nix as a file (``--key-file``).  A key given as text in
:data:`SIGNING_KEY_ENV` (and the SSH secrets of :mod:`bot.cache.stores`) never touches a
disk: it lives in an anonymous memory file (``memfd_create``) that child processes open as
``/proc/<pid>/fd/<n>``, and the kernel frees it when the process exits, however it exits
(SIGKILL included).  Nix 2.8's ``nix store sign --key-file``, ``ssh -F``/``IdentityFile``
and ``rsync -e ssh`` all read such a path.  Only where there is no memfd (not Linux) a 0600
temporary file is used, removed on every exit path that runs Python (SIGTERM included, see
:mod:`bot.core.repolock`), not after SIGKILL.  No function here logs, prints or returns secret key
text, and error messages never quote it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.cache.errors import CacheNixError
from bot.core import nix
from bot.core.errors import CacheError

log = logging.getLogger(__name__)

#: environment variable holding a secret signing key's *text* (``name:base64``)
SIGNING_KEY_ENV = "NIXPKGS_PYTHON_SIGNING_KEY"
#: environment variable naming a secret signing key *file*
SIGNING_KEY_FILE_ENV = "NIXPKGS_PYTHON_SIGNING_KEY_FILE"

PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 64


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/nixpkgs-python`` (``~/.config/nixpkgs-python`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "nixpkgs-python"


def default_signing_key() -> Path:
    """The machine's default secret key for the embedded cache; created on first use.

    It lives in :func:`config_dir` (never in the repository), next to its ``.pub``.
    """
    secret = config_dir() / "cache-key.sec"
    if not secret.exists():
        name = f"nixpkgs-python-{_hostname()}-1"
        cache_keygen(name, secret, secret.with_suffix(".pub"))
        log.info("created the default signing key %s", secret)
    return secret


def _hostname() -> str:
    host = os.uname().nodename.split(".")[0] or "local"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in host)


def parse_key(text: str, *, secret: bool, where: str) -> str:
    """Validate ``name:base64`` key text; return the key name.  Never echoes the key."""
    name, sep, data = text.strip().partition(":")
    expected = SECRET_KEY_BYTES if secret else PUBLIC_KEY_BYTES
    kind = "secret" if secret else "public"
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not sep or not name or len(raw) != expected:
        raise CacheError(
            f"not a Nix {kind} signing key (expected 'name:base64' of {expected} bytes)",
            where=where,
            hint="generate one with `nixpkgs-python cache keygen NAME`",
        )
    return name


def public_key_text(key: str | Path) -> str:
    """The public key text ``name:base64`` from key text or a ``.pub`` file."""
    if isinstance(key, Path):
        try:
            text = key.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CacheError(f"cannot read public key: {exc.strerror}", where=str(key)) from exc
        where = str(key)
    else:
        text, where = key.strip(), "public key"
    parse_key(text, secret=False, where=where)
    return text


def cache_keygen(name: str, secret_key: Path, public_key: Path) -> str:
    """Generate a binary cache key pair ``name`` with ``nix-store --generate-binary-cache-key``.

    Refuses to overwrite an existing secret key.  The secret file is created with mode 0600
    in a 0700-or-stricter directory; returns the public key text (``name:base64``).
    """
    if not name or any(c.isspace() or c == ":" for c in name):
        raise CacheError(f"invalid key name {name!r}", hint="use e.g. 'cache.example.org-1'")
    if secret_key.exists() or secret_key.is_symlink():
        raise CacheError(
            "refusing to overwrite an existing secret key",
            where=str(secret_key),
            hint="move it away first, or use it as it is",
        )
    secret_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    public_key.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".keygen-", dir=secret_key.parent))
    try:
        tmp_secret, tmp_public = workdir / "key.sec", workdir / "key.pub"
        nix.generate_binary_cache_key(name, tmp_secret, tmp_public, error=CacheNixError)
        tmp_secret.chmod(0o600)
        text = tmp_public.read_text(encoding="utf-8").strip()
        try:
            # a hard link fails if the target appeared meanwhile: never overwrite a secret
            os.link(tmp_secret, secret_key)
        except FileExistsError as exc:
            raise CacheError(
                "refusing to overwrite an existing secret key", where=str(secret_key)
            ) from exc
        public_key.write_text(text + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return text


def _check_secret_file(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CacheError(
            f"cannot read the secret signing key: {exc.strerror}", where=str(path)
        ) from exc
    parse_key(text, secret=True, where=str(path))


@contextmanager
def signing_key_file(signing_key: Path | None) -> Iterator[Path]:
    """A file nix can read the secret key from, for the duration of the ``with`` block.

    ``signing_key`` if given; else ``$NIXPKGS_PYTHON_SIGNING_KEY_FILE``; else the key text in
    ``$NIXPKGS_PYTHON_SIGNING_KEY``, written to a 0600 temporary file that is removed after.
    """
    if signing_key is None and os.environ.get(SIGNING_KEY_FILE_ENV):
        signing_key = Path(os.environ[SIGNING_KEY_FILE_ENV])
    if signing_key is not None:
        _check_secret_file(signing_key)
        yield signing_key
        return
    text = os.environ.get(SIGNING_KEY_ENV, "")
    if not text.strip():
        raise CacheError(
            "no signing key",
            hint=f"pass --signing-key FILE or set {SIGNING_KEY_FILE_ENV} / {SIGNING_KEY_ENV}",
        )
    parse_key(text, secret=True, where=f"${SIGNING_KEY_ENV}")
    with private_file(text.strip() + "\n", prefix="signing-key-") as path:
        yield path


def _memfd_dir() -> Path | None:
    """``/proc/<pid>/fd`` when this system has memfds and a /proc to open them through."""
    fds = Path(f"/proc/{os.getpid()}/fd")
    return fds if hasattr(os, "memfd_create") and fds.is_dir() else None


@contextmanager
def private_file(text: str, *, prefix: str) -> Iterator[Path]:
    """A path holding ``text`` that only this user can read, for the ``with`` block.

    A memfd (no file on any disk; freed by the kernel when this process ends, even when it is
    killed), opened by others as ``/proc/<pid>/fd/<n>``; without memfds, a fresh 0600 file in
    a 0700 temp directory, both removed after.
    """
    fds = _memfd_dir()
    if fds is not None:
        fd = os.memfd_create(prefix.rstrip("-"), os.MFD_CLOEXEC)
        try:
            os.fchmod(fd, 0o600)  # ssh refuses a key or config others may read
            data = text.encode("utf-8")
            while data:
                data = data[os.write(fd, data) :]
            yield fds / str(fd)
        finally:
            os.close(fd)
        return
    workdir = Path(tempfile.mkdtemp(prefix="nixpkgs-python-"))
    try:
        path = workdir / prefix.rstrip("-")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        yield path
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
