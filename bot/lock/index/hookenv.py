"""The environment a child running index-supplied code gets: allow-listed, not inherited.

An sdist's build backend (its ``setup.py``, an in-tree backend, a build requirement's own
code) is code from the index, and runs as the user running the bot.  ``nightly`` and
``hold-back`` lock in the process that then signs and pushes, whose environment may hold the
signing key, the SSH key and GitHub tokens as text (``NIXPKGS_PYTHON_SIGNING_KEY``,
``NIXPKGS_PYTHON_SSH_KEY``, ``NIXPKGS_PYTHON_GITHUB_TOKEN``, ``GITHUB_TOKEN``...).  So every
such child (the PEP 517 hooks, the sdist-unpacking child, the interpreter probe, the
installer fallback) gets only what it needs to run and to reach the indexes, never the rest.

This is not a sandbox: the child can still read whatever the user can (files, and other
processes of the user through ``/proc``).  It keeps the bot's secrets out of the
environment index code is handed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PASSED", "hook_environ"]

#: proxy settings, as :mod:`bot.lock.index.proxies` (and curl, pip, uv) read them
_PROXIES = tuple(
    name
    for scheme in ("http", "https", "all", "no")
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
)

#: what passes from the bot's environment, by exact name
PASSED = (
    "PATH",  # compilers and tools a backend looks for (the environment's bin/ goes first)
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LOCALE_ARCHIVE",  # where glibc of a Nix-built interpreter finds those locales
    "TMPDIR",
    "SOURCE_DATE_EPOCH",
    # CA bundles: those the bot honours (certificates.py), OpenSSL's directory, pip's, and
    # those requests and curl read (a backend fetching setup_requires or a toolchain)
    "SSL_CERT_FILE",
    "NIX_SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    *_PROXIES,
)


def hook_environ(
    home: Path, extra: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The whole environment of a child running index-supplied code: the :data:`PASSED`
    variables of ``environ`` (default: this process's), ``HOME`` at ``home`` (a scratch
    directory of the run, made if missing: no user configuration, cache or credential file
    under the real home is read through it), pip told to read no configuration file, and
    ``extra`` on top (a hook's ``PATH``, pyproject-hooks' own variables).

    Nothing else passes: no index or installer setting (``PIP_INDEX_URL``, ``UV_*``...: the
    installers are given the configured indexes on their command line), no ``PYTHONPATH`` or
    ``VIRTUAL_ENV``, and none of the bot's secrets."""
    env = os.environ if environ is None else environ
    home.mkdir(parents=True, exist_ok=True)
    out = {name: env[name] for name in PASSED if name in env}
    out["HOME"] = str(home)
    out["PIP_CONFIG_FILE"] = os.devnull
    out.update(extra or {})
    return out
