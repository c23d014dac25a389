"""The flake, with flakes enabled and the pinned nixpkgs replaced by the stand-in: it checks,
builds a set's environment (its interpreter substituted from the stand-in's loopback cache),
runs the bot, and gives what default.nix gives."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.core.nix import run_nix
from tests.plugins.nixenv import demo_entries, write_lock
from tests.plugins.pypi import IndexServer
from tests.plugins.standin import ROOT, SOURCE, Standin, make_standin, serve

pytestmark = pytest.mark.nix


# What the flake needs of nixpkgs beyond what the stand-in has (the set library only needs
# python3XY, stdenv, fetchurl and autoPatchelfHook): mkShell, python3.pkgs for the bot, a few
# tools.  The bot is wrapped to run this checkout's bot/ with the stand-in's interpreter and
# the test environment's dependencies (pure Python; the real flake uses nixpkgs' packages).
WRAPPER = r"""
args:
let
  base = import ./standin.nix args;
  cfg = builtins.fromJSON (builtins.readFile ./flake-standin.json);
  inherit (base) system;
  plain = name: script: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
  marker = name: plain "flake-standin-${name}" "echo ${name} > $out";
  python = base.python312;
  buildPythonApplication = a: plain "${a.pname}-${a.version}" ''
    mkdir -p $out/bin
    printf '#!/bin/sh\nPYTHONPATH=%s:%s exec %s -m bot.cli "$@"\n' \
      ${a.src} ${cfg.deps} ${python.interpreter} > $out/bin/${a.meta.mainProgram}
    chmod +x $out/bin/${a.meta.mainProgram}
  '';
  names = [ "setuptools" "click" "pyyaml" "packaging" "resolvelib" "rich" "pygithub"
            "gitpython" "tomli-w" "build" "pyproject-hooks" "pytest" "mypy" ];
  pyPkgs = builtins.listToAttrs (map (n: { name = n; value = marker n; }) names)
    // { inherit buildPythonApplication; };
in
base // {
  python312 = base.python312 // { withPackages = f: base.python312; };
  python3 = base.python312 // { pkgs = pyPkgs; };
  mkShell = a: plain "flake-standin-shell" "echo > $out";
} // builtins.listToAttrs (map (n: { name = n; value = marker n; })
  [ "ruff" "uv" "rsync" "openssh" "git" "nixpkgs-fmt" ])
"""


@dataclass
class Flake:
    """A copy of the repository's Nix side with one demo set, pinned to a stand-in."""

    root: Path
    standin: Standin

    @property
    def ref(self) -> str:
        return f"path:{self.root}"

    def nix(self, *args: str, check: bool = True) -> str:
        proc = run_nix(
            "nix",
            list(args),
            substituters=None,
            options={"experimental-features": "nix-command flakes"},
            env={**os.environ, **self.standin.env()},
            cwd=self.root,
            check=check,
            timeout=1800,
        )
        return proc.stdout if check else proc.stdout + proc.stderr


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


@pytest.fixture(scope="module")
def flake(
    tmp_path_factory: pytest.TempPathFactory,
    interpreters: dict[str, str],
    demo_index: IndexServer,
    demo_dists: dict[str, Path],
) -> Iterator[Flake]:
    if shutil.which("nix") is None:
        pytest.skip("nix is not installed")
    tmp = tmp_path_factory.mktemp("flake")
    standin = make_standin(tmp / "standin", {"3.12": interpreters["3.12"]})
    # the stand-in as a pinned tarball, wrapped with what the flake's other outputs need
    src = tmp / "pin"
    src.mkdir()
    shutil.copy(SOURCE, src / "standin.nix")
    shutil.copy(standin.path / "standin.json", src / "standin.json")
    (src / "default.nix").write_text(WRAPPER)
    site = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    (src / "flake-standin.json").write_text(json.dumps({"deps": str(site)}))
    _tarball(src, tmp / "nixpkgs.tar.gz")
    url = f"file://{tmp / 'nixpkgs.tar.gz'}"

    root = tmp / "repo"
    root.mkdir()
    for name in ("flake.nix", "flake.lock", "default.nix", "overlay.nix", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    for name in ("nix", "overrides", "bot"):
        shutil.copytree(
            ROOT / name, root / name, ignore=shutil.ignore_patterns("local.json", "__pycache__")
        )
    (root / "README.md").write_text("test copy\n")
    (root / "nix" / "nixpkgs.json").write_text(
        json.dumps(
            {
                "release": "26.05",
                "branch": "nixos-26.05",
                "rev": "0" * 40,
                "url": url,
                "sha256": _sri(url),
            }
        )
    )
    (root / "sets" / "demo").mkdir(parents=True)
    (root / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: [alpha, gamma]\n"
    )
    write_lock(
        root / "sets" / "demo" / "pylock.py312.toml",
        demo_entries(demo_dists),
        base_url=f"{demo_index.root_url}/files/",
        set_name="demo",
        roots=["alpha", "gamma"],
    )
    with serve(standin):
        yield Flake(root, standin)


def test_flake_check(flake: Flake) -> None:
    # evaluates every output for every system and builds this system's checks
    out = flake.nix("flake", "check", flake.ref, check=False)
    assert "running flake checks" in out
    assert "error:" not in out, out
    checks = json.loads(
        flake.nix(
            "eval", "--json", f"{flake.ref}#checks.x86_64-linux", "--apply", "builtins.attrNames"
        )
    )
    assert checks == ["demo", "demo-py312"]
    systems = json.loads(flake.nix("eval", "--json", f"{flake.ref}#lib.systems"))
    assert systems == ["aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"]
    names = json.loads(
        flake.nix(
            "eval", "--json", f"{flake.ref}#packages.x86_64-linux", "--apply", "builtins.attrNames"
        )
    )
    assert names == ["default", "demo", "demo-py312"]
    jobs = json.loads(
        flake.nix(
            "eval",
            "--json",
            f"{flake.ref}#hydraJobs",
            "--apply",
            "j: builtins.mapAttrs (_: builtins.attrNames) j",
        )
    )
    assert jobs == {"demo-py312": systems}


def test_nix_build_a_set_environment(flake: Flake) -> None:
    out = flake.nix("build", "--no-link", "--json", f"{flake.ref}#demo-py312")
    env = Path(json.loads(out)[0]["outputs"]["out"])
    assert (env / "bin" / "alpha").exists()
    closure = run_nix("nix-store", ["-qR", str(env)]).stdout.split()
    python = next(p for p in flake.standin.outputs if p.endswith("python3-3.12-standin"))
    assert python in closure  # the stand-in's interpreter, substituted from its cache
    proc = run_nix(str(env / "bin" / "alpha"), [], check=False)
    assert proc.stdout.strip() == "alpha says 42"


def test_the_flake_and_default_nix_give_the_same_set(flake: Flake) -> None:
    attr = "demo.py312.python"
    via_flake = flake.nix("eval", "--raw", f"{flake.ref}#legacyPackages.x86_64-linux.{attr}")
    expr = f'(import {flake.root}/default.nix {{ system = "x86_64-linux"; }}).{attr}'
    via_default = run_nix(
        "nix-instantiate",
        ["--eval", "--json", "-E", f"builtins.unsafeDiscardStringContext ({expr}).outPath"],
        substituters=None,
        env={**os.environ, **flake.standin.env()},
    ).stdout
    assert json.loads(via_default) == via_flake  # the same derivation: parity, not likeness
    pins = json.loads(
        flake.nix(
            "eval",
            "--json",
            f"{flake.ref}#legacyPackages.x86_64-linux.demo.py312.packages",
            "--apply",
            "ps: builtins.mapAttrs (_: p: p.version) ps",
        )
    )
    assert pins["alpha"] == "1.0"
    assert pins["gamma"] == "0.5"


def test_lib_builds_a_set_from_a_pylock(flake: Flake) -> None:
    lock = flake.root / "sets" / "demo" / "pylock.py312.toml"
    expr = (
        f'let f = builtins.getFlake "{flake.ref}"; '
        f'in (f.lib.mkSet {{ lockFile = {lock}; system = "x86_64-linux"; }}).python.drvPath'
    )
    mine = flake.nix("eval", "--impure", "--raw", "--expr", expr)
    theirs = flake.nix("eval", "--raw", f"{flake.ref}#demo-py312.drvPath")
    assert mine == theirs  # the same derivation as the flake's (and default.nix's) set


def test_nix_run_the_bot(flake: Flake) -> None:
    out = flake.nix("run", flake.ref, "--", "--repo", str(flake.root), "sets")
    assert "demo" in out


def test_nix_config_advertises_the_cache_key() -> None:
    text = (ROOT / "flake.nix").read_text()
    key = (ROOT / "nix" / "cache-key.pub").read_text().strip()
    assert f'extra-trusted-public-keys = [ "{key}" ]' in text


def test_the_overlay_gives_the_cached_sets(flake: Flake) -> None:
    expr = (
        f'let f = builtins.getFlake "{flake.ref}"; '
        'pkgs = f.lib.nixpkgsFor "x86_64-linux"; '
        "ext = f.overlays.default pkgs pkgs; "
        "in ext.pythonSets.demo.py312.python.drvPath"
    )
    via_overlay = flake.nix("eval", "--impure", "--raw", "--expr", expr)
    assert via_overlay == flake.nix("eval", "--raw", f"{flake.ref}#demo-py312.drvPath")
