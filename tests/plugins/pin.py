"""A fetchable pin: ``nix/nixpkgs.json`` pointing at a local tarball of a nixpkgs stand-in.

The pinned nixpkgs (``nix/nixpkgs.nix``) is a ``fetchTarball`` of the pin's URL; tests that
must evaluate what the pin gives (not only see that it is asked for) write a pin to a
``file://`` tarball of ``tests/nix/fake-nixpkgs`` instead, so it evaluates for real.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

from bot.core.nix import run_nix

ROOT = Path(__file__).resolve().parents[2]
FAKE_NIXPKGS = ROOT / "tests" / "nix" / "fake-nixpkgs" / "default.nix"

# the fake nixpkgs as nixpkgs is called (`import <pin> { system; ... }`), its interpreters
# (which it takes as a file) bundled beside it
WRAPPER = """\
{ system ? builtins.currentSystem, config ? { }, overlays ? [ ] }:
import ./fake.nix { interpretersFile = ./interpreters.json; inherit system; }
"""

#: the fake pin's revision (its tarball is named after it)
REV = "f" * 40


def _tarball(source: Path, dest: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=f"nixpkgs/{path.name}")
    dest.write_bytes(buf.getvalue())


def _sri(url: str) -> str:
    proc = run_nix("nix-prefetch-url", ["--unpack", url], substituters=None)
    base32 = proc.stdout.strip().splitlines()[-1]
    return run_nix("nix", ["hash", "to-sri", "--type", "sha256", base32]).stdout.strip()


# the fake nixpkgs as nixpkgs is called, recording the arguments it was called with in
# `python3XY.calledWith` (what a set exposes of its nixpkgs: `<set>.interpreter.drv`)
RECORDING_WRAPPER = """\
args@{ system ? builtins.currentSystem, ... }:
let
  pkgs = import ./fake.nix { interpretersFile = ./interpreters.json; inherit system; };
  record = name: value:
    if builtins.match "python3[0-9]+" name != null then value // { calledWith = args; } else value;
in
builtins.mapAttrs record pkgs
"""


def fake_nixpkgs_dir(dest: Path, interpreters: dict[str, str], *, wrapper: str = WRAPPER) -> Path:
    """A directory ``dest`` holding the fake nixpkgs as nixpkgs is called (``wrapper``: its
    default.nix), with ``interpreters``."""
    dest.mkdir(parents=True)
    shutil.copy(FAKE_NIXPKGS, dest / "fake.nix")
    (dest / "interpreters.json").write_text(json.dumps({"interpreters": interpreters}))
    (dest / "default.nix").write_text(wrapper)
    return dest


def pin_fake_nixpkgs(
    nix_dir: Path, work: Path, interpreters: dict[str, str], *, wrapper: str = WRAPPER
) -> str:
    """Write ``nix_dir/nixpkgs.json`` pinning a tarball (made in ``work``) of the fake nixpkgs
    with ``interpreters`` (``wrapper``: its default.nix); the pin's URL."""
    src = fake_nixpkgs_dir(work / "fake-pin", interpreters, wrapper=wrapper)
    tarball = work / "fake-pin.tar.gz"
    _tarball(src, tarball)
    url = f"file://{tarball}"
    pin = {"release": "26.05", "branch": "nixos-26.05", "rev": REV, "url": url, "sha256": _sri(url)}
    (nix_dir / "nixpkgs.json").write_text(json.dumps(pin))
    return url
