"""Binary cache: keys, signing, pushing (ssh-ng:// / ssh:// / file:// / rsync+ssh://),
verification by substitution into a fresh store, and "what does the cache have".

Public API (the CLI wires these):

- :func:`cache_keygen` — ``nixpkgs-python cache keygen``
- :func:`push` — ``nixpkgs-python push``
- :func:`verify` — ``nixpkgs-python cache verify``
- :func:`has_closures` — used by the nightly to skip work (:func:`has_paths`: the paths alone)
- :func:`default_store`, :func:`default_signing_key` — the embedded signed file cache;
  :func:`signing_key_for` — which key signs a push to a store

Secrets (signing keys, SSH keys) are read from files or environment variables and reach
nix/ssh only as file paths; they are never printed, logged or put in a command line.
"""

from __future__ import annotations

from bot.cache.keys import (
    SIGNING_KEY_ENV,
    SIGNING_KEY_FILE_ENV,
    cache_keygen,
    config_dir,
    default_signing_key,
    public_key_text,
    signing_key_file,
)
from bot.cache.query import has_closures, has_paths, local_closure
from bot.cache.stores import (
    SSH_KEY_ENV,
    SSH_KNOWN_HOSTS_ENV,
    CacheStore,
    default_store,
    parse_store,
    signing_key_for,
    ssh_options,
)
from bot.cache.transfer import DEFAULT_PUSH_TIMEOUT, PushResult, SyncPhase, push, sync_file_cache
from bot.cache.verification import PathFailure, VerifyResult, verify

__all__ = [
    "DEFAULT_PUSH_TIMEOUT",
    "SIGNING_KEY_ENV",
    "SIGNING_KEY_FILE_ENV",
    "SSH_KEY_ENV",
    "SSH_KNOWN_HOSTS_ENV",
    "CacheStore",
    "PathFailure",
    "PushResult",
    "SyncPhase",
    "VerifyResult",
    "cache_keygen",
    "config_dir",
    "default_signing_key",
    "default_store",
    "has_closures",
    "has_paths",
    "local_closure",
    "parse_store",
    "public_key_text",
    "push",
    "signing_key_file",
    "signing_key_for",
    "ssh_options",
    "sync_file_cache",
    "verify",
]
