"""A stand-in nixpkgs whose outputs come only from a signed binary cache on loopback.

On a real runner the sets build against the pinned nixpkgs, and its interpreters and stdenv
are substituted from the public binary cache; building them locally would take hours.  The
stand-in (``tests/nix/standin-nixpkgs``) behaves the same where it matters: each of its own
derivations needs a system feature that no machine has, so it can only be substituted.  The
fixture builds them once with that feature enabled, signs and copies them into a file cache
served over HTTP on 127.0.0.1 (the stand-in for the public cache, with its own key), and
deletes them from the store again.  A build that empties the substituters, or falls back to a
standalone interpreter, then fails (or gives other store paths) exactly as it would on a
runner.

- :func:`make_standin` makes one (fresh store paths each time: a nonce is part of them).
- ``standin_nixpkgs`` (session): one stand-in, its cache served; ``.nix_config`` is what a
  machine's nix.conf would say to use that cache (pass it as ``NIX_CONFIG``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cache import cache_keygen
from bot.core.nix import run_nix
from tests.plugins.static_http import serve_directory

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "nix" / "standin-nixpkgs" / "default.nix"
FEATURE = "nixpkgs-python-standin-cache-only"


@dataclass
class Standin:
    """A stand-in nixpkgs (``path``: pass it as ``--nixpkgs``) and its binary cache."""

    path: Path
    cache_dir: Path
    public_key: str
    outputs: list[str]
    url: str | None = None

    @property
    def nix_config(self) -> str:
        """nix.conf lines that substitute from this stand-in's cache (and only from it).

        ``build-users-group`` is empty because the stand-in's interpreters are copies of
        pyenv's, which load libpython from under /root (unreadable to the build users)."""
        assert self.url is not None, "serve() the cache first"
        return (
            f"substituters = {self.url}\n"
            f"trusted-public-keys = {self.public_key}\n"
            "narinfo-cache-negative-ttl = 0\n"
            "build-users-group = \n"
        )

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment entries for a process that builds with this stand-in."""
        return {"NIX_CONFIG": self.nix_config, **(extra or {})}


def make_standin(
    dest: Path,
    interpreters: Mapping[str, str],
    *,
    prebuild: bool = True,
    systems: Sequence[str] = ("x86_64-linux",),
) -> Standin:
    """Write a stand-in nixpkgs to ``dest/nixpkgs`` for ``interpreters``.

    With ``prebuild`` its outputs (for each of ``systems``; non-native ones need them in the
    machine's ``extra-platforms``) are built, signed into ``dest/cache`` and deleted from the
    store, so that they can only be substituted.  Without, nothing anywhere has them."""
    nixpkgs = dest / "nixpkgs"
    nixpkgs.mkdir(parents=True)
    shutil.copy(SOURCE, nixpkgs / "default.nix")
    prefixes = {v: str(Path(exe).resolve().parent.parent) for v, exe in interpreters.items()}
    (nixpkgs / "standin.json").write_text(
        json.dumps({"feature": FEATURE, "nonce": uuid.uuid4().hex, "interpreters": prefixes})
    )
    cache_dir = dest / "cache"
    cache_dir.mkdir()
    secret, public = dest / "standin-cache.sec", dest / "standin-cache.pub"
    public_key = cache_keygen("standin-public-cache-1", secret, public)
    outputs: list[str] = []
    if prebuild:
        for system in systems:
            proc = run_nix(
                "nix-build",
                [
                    str(nixpkgs),
                    "--argstr",
                    "system",
                    system,
                    "-A",
                    "standinOutputs",
                    "--no-out-link",
                ],
                options={"system-features": FEATURE, "build-users-group": ""},
                timeout=900,
            )
            outputs += proc.stdout.split()
        run_nix(
            "nix",
            ["copy", "--to", f"file://{cache_dir}?compression=none&secret-key={secret}", *outputs],
            timeout=900,
        )
        run_nix("nix-store", ["--delete", *outputs], timeout=300)
    return Standin(nixpkgs, cache_dir, public_key, outputs)


@contextlib.contextmanager
def serve(standin: Standin) -> Iterator[Standin]:
    """Serve the stand-in's cache over HTTP on 127.0.0.1 while the context is open."""
    with serve_directory(standin.cache_dir) as url:
        standin.url = url
        try:
            yield standin
        finally:
            standin.url = None


@pytest.fixture(scope="session")
def standin_nixpkgs(
    tmp_path_factory: pytest.TempPathFactory, interpreters: dict[str, str]
) -> Iterator[Standin]:
    """One stand-in nixpkgs for the session, its cache served on loopback."""
    with serve(make_standin(tmp_path_factory.mktemp("standin"), interpreters)) as standin:
        yield standin
