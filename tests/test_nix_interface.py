"""default.nix's arguments as README's "Using a set" documents them (`pkgs`, `nixpkgs`,
`system`, `overrides`, `setsDir`, ...), evaluated by real nix-instantiate with the fake
nixpkgs of tests/nix/fake-nixpkgs (no nixpkgs checkout, no network)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.core.nix import run_nix
from tests.plugins.pin import RECORDING_WRAPPER, fake_nixpkgs_dir, pin_fake_nixpkgs

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.nix


# --read-write-mode: builtins.path adds its path to the store (as nix-build would), which
# `--eval` alone does not, and the store path it gives would not be valid
EVAL = ["--eval", "--strict", "--json", "--read-write-mode", "--expr"]


def _eval(expr: str) -> Any:
    proc = run_nix("nix-instantiate", [*EVAL, expr])
    return json.loads(proc.stdout)


def _eval_error(expr: str) -> str:
    """The stderr of an evaluation that must fail."""
    proc = run_nix("nix-instantiate", [*EVAL, expr], check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


@pytest.fixture
def recorder(tmp_path: Path, interpreters: dict[str, str]) -> Path:
    """A nixpkgs (the fake one, called as nixpkgs is) recording the arguments it was called
    with: ``<set>.interpreter.drv.calledWith``."""
    return fake_nixpkgs_dir(tmp_path / "recorder", interpreters, wrapper=RECORDING_WRAPPER)


@pytest.fixture
def pinned_repo(tmp_path: Path, interpreters: dict[str, str]) -> Path:
    """A copy of the repository's Nix side whose pin (nix/nixpkgs.json) is a fetchable
    tarball of the recording fake nixpkgs."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("default.nix", "overlay.nix", "flake.nix"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "nix", repo / "nix", ignore=shutil.ignore_patterns("local.json"))
    for name in ("sets", "overrides"):
        (repo / name).symlink_to(ROOT / name)
    pin_fake_nixpkgs(repo / "nix", tmp_path / "pin", interpreters, wrapper=RECORDING_WRAPPER)
    return repo


def test_the_project_imports_nixpkgs_without_the_machines_config(
    pinned_repo: Path, recorder: Path
) -> None:
    """Wherever the project imports a nixpkgs itself (the pin, `nixpkgs`, the overlay's
    `pythonSets`, the flake's `lib.nixpkgsFor`), it passes `config = { }; overlays = [ ];`:
    nixpkgs then reads no ~/.config/nixpkgs/config.nix, overlays or NIXPKGS_* variables, so
    the sets are the same on every machine."""
    repo = pinned_repo
    expr = f"""
      let
        called = sets: sets.attrs.py312.interpreter.drv.calledWith;
        mine = import {recorder} {{ system = "aarch64-linux"; }};
        final = mine // (import {repo}/overlay.nix final mine);
        flake = (import {repo}/flake.nix).outputs {{ self = null; }};
      in {{
        pin = called (import {repo}/default.nix {{ system = "aarch64-linux"; }});
        nixpkgs = called (import {repo}/default.nix {{
          nixpkgs = {recorder}; system = "aarch64-linux";
        }});
        overlay = called final.pythonSets;
        flake = (flake.lib.nixpkgsFor "aarch64-linux").python312.calledWith;
      }}
    """
    data = _eval(expr)
    expected = {"system": "aarch64-linux", "config": {}, "overlays": []}
    assert data == {"pin": expected, "nixpkgs": expected, "overlay": expected, "flake": expected}


NIXPKGS_FORMS = {
    "path": "{d}",
    "string": '"{d}"',
    "store path": 'builtins.path {{ path = {d}; name = "nixpkgs-recorder"; }}',
    "flake input": '{{ outPath = builtins.path {{ path = {d}; name = "nixpkgs-recorder"; }}; }}',
}


@pytest.mark.parametrize("form", sorted(NIXPKGS_FORMS))
def test_nixpkgs_may_be_a_path_a_string_or_a_flake_input(recorder: Path, form: str) -> None:
    """`nixpkgs` is imported as nixpkgs is (`import nixpkgs { ... }`): a path, an absolute
    string, a store path with its context (fetchTarball, builtins.path) or a flake input
    (an attribute set with `outPath`)."""
    nixpkgs = NIXPKGS_FORMS[form].format(d=recorder)
    expr = f"""
      let sets = import {ROOT}/default.nix {{ nixpkgs = {nixpkgs}; system = "aarch64-linux"; }};
      in {{
        source = sets.attrs.py312.meta.interpreterSource;
        system = sets.attrs.py312.python.system;
        called = sets.attrs.py312.interpreter.drv.calledWith.system;
        drv = sets.attrs.py312.python.drvPath;
      }}
    """
    data = _eval(expr)
    assert data["source"] == "nixpkgs"
    assert data["system"] == data["called"] == "aarch64-linux"
    assert data["drv"].endswith("-python3.12-attrs-env.drv")


def test_a_relative_nixpkgs_string_is_one_error() -> None:
    err = _eval_error(f'(import {ROOT}/default.nix {{ nixpkgs = "src/nixpkgs"; }}).attrs.meta')
    assert "nixpkgs-python: `nixpkgs` ('src/nixpkgs') is not an absolute path" in err


@pytest.mark.parametrize("form", ["store path", "flake input"])
def test_directories_may_be_store_paths(
    tmp_path: Path, interpreters: dict[str, str], form: str
) -> None:
    """setsDir, overridesDir and interpretersFile may be store paths (builtins.path, a flake
    input's outPath or the input itself), not only paths and plain strings."""
    sets = tmp_path / "sets"
    sets.mkdir()
    shutil.copytree(ROOT / "sets" / "attrs", sets / "attrs")
    file = tmp_path / "interpreters.json"
    file.write_text(json.dumps({"interpreters": interpreters}))

    def stored(path: Path, name: str) -> str:
        p = f'builtins.path {{ path = {path}; name = "{name}"; }}'
        return p if form == "store path" else f"{{ outPath = {p}; }}"

    expr = f"""
      let
        sets = import {ROOT}/default.nix {{
          pkgs = null;
          setsDir = {stored(sets, "sets")};
          overridesDir = {stored(ROOT / "overrides", "overrides")};
          interpretersFile = {stored(file, "interpreters.json")};
        }};
      in {{
        names = builtins.attrNames (builtins.removeAttrs sets [ "recurseForDerivations" ]);
        source = sets.attrs.py312.meta.interpreterSource;
        drv = sets.attrs.py312.python.drvPath;
      }}
    """
    data = _eval(expr)
    assert data["names"] == ["attrs", "bot"]
    assert data["source"] == "standalone"
    assert data["drv"].endswith("-python3.12-attrs-env.drv")


def _readme_examples(section: str) -> list[str]:
    """The ```nix blocks of README's ``section``."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n```", 1)[0] for block in body.split("```nix\n")[1:]]


@pytest.fixture
def with_fake(tmp_path: Path, interpreters: dict[str, str]) -> str:
    """``import ./. {`` as README's examples say it, with the fake nixpkgs."""
    file = tmp_path / "interpreters.json"
    file.write_text(json.dumps({"interpreters": interpreters}))
    return f"import {ROOT}/tests/nix/with-fake-nixpkgs.nix {{ interpretersFile = {file}; "


def _facts(sets: str) -> str:
    """What the overrides tests compare of two sets: pytest (which has pytest and pluggy) and
    attrs (pluggy, no pytest), both Pythons."""
    return f"""
      let
        sets = {sets};
        checks = set: {{
          pytest = set.packages.pytest.pythonAttrs.importsCheck or null;
          pluggy = set.packages.pluggy.pythonAttrs.importsCheck;
          drv = set.python.drvPath;
        }};
      in {{
        pytest312 = checks sets.pytest.py312;
        pytest313 = checks sets.pytest.py313;
        attrs312 = checks sets.attrs.py312;
        attrs313 = checks sets.attrs.py313;
      }}
    """


def test_the_readme_overrides_examples_work_for_every_set(with_fake: str) -> None:
    """README's `overrides` examples, evaluated as they are written: the one for every set
    changes pytest in the set that has it and leaves attrs (no pytest) as it is; the per-set
    one changes pluggy in pytest only, not attrs' pluggy."""
    every, per_set = _readme_examples("Overrides")
    # (the examples are evaluated with `import ./. {` pointed at the fake nixpkgs)
    assert every.startswith("import ./. {")
    assert per_set.startswith("import ./. {")
    plain = _eval(_facts(f"{with_fake} }}"))
    changed = _eval(_facts(every.replace("import ./. {", with_fake, 1)))
    for py in ("312", "313"):
        assert changed[f"pytest{py}"]["pytest"] == ["pytest", "_pytest"]
        assert changed[f"pytest{py}"]["drv"] != plain[f"pytest{py}"]["drv"]
        assert changed[f"attrs{py}"] == plain[f"attrs{py}"]
    one = _eval(_facts(per_set.replace("import ./. {", with_fake, 1)))
    for py in ("312", "313"):
        assert one[f"pytest{py}"]["pluggy"] == ["pluggy"]
        assert one[f"pytest{py}"]["pytest"] == plain[f"pytest{py}"]["pytest"]
        assert one[f"attrs{py}"] == plain[f"attrs{py}"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            "self: super: { pytset = super.pytset.overridePythonAttrs (old: { }); }",
            "nixpkgs-python: `overrides` overrides package 'pytset', which no lock of any set "
            "has; check the name",
        ),
        (
            "{ attrs = self: super: { pytest = super.pytest; }; }",
            "nixpkgs-python: `overrides.attrs` overrides package 'pytest', which no lock of "
            "set 'attrs' has",
        ),
        (
            "{ pytset = self: super: { }; }",
            "nixpkgs-python: `overrides` has 'pytset', which is not a set",
        ),
        ("{ attrs = { }; }", "nixpkgs-python: `overrides.attrs` is a set; give `self: super:"),
    ],
)
def test_an_override_of_nothing_is_one_error(with_fake: str, overrides: str, message: str) -> None:
    err = _eval_error(f"({with_fake} overrides = {overrides}; }}).attrs.py312.python.drvPath")
    assert message in err


def test_withpackages_refuses_a_package_of_another_python(with_fake: str) -> None:
    """A package built for Python 3.13 given to a 3.12 environment (withPackages, or an
    overlay putting it in the set) would stand in for the set's own 3.12 build of it, which
    the environment then leaves out: one error naming it and both Pythons."""
    given = f"""
      let sets = {with_fake} }}; in
      (sets.pytest.py312.withPackages (ps: [ ps.pytest sets.pytest.py313.packages.iniconfig ]))
        .drvPath
    """
    message = (
        "nixpkgs-python: package 'iniconfig' {version} is built for Python 3.13, not for the "
        "Python 3.12 of environment 'pytest'"
    )
    version = _eval(f"({with_fake} }}).pytest.py313.packages.iniconfig.version")
    assert message.format(version=version) in _eval_error(given)
    overlaid = f"""
      let
        sets = {with_fake} }};
        other = {with_fake} overrides = {{
          pytest = self: super: {{ iniconfig = sets.pytest.py313.packages.iniconfig; }};
        }}; }};
      in other.pytest.py312.python.drvPath
    """
    assert message.format(version=version) in _eval_error(overlaid)
    # the set's own packages, and packages of the same Python, are as before
    same = f"""
      let sets = {with_fake} }}; in
      (sets.pytest.py312.withPackages (ps: [ ps.pytest sets.pytest.py312.packages.iniconfig ]))
        .drvPath
    """
    assert _eval(same).endswith("-python3.12-pytest-env.drv")


def test_an_environment_has_nixpkgs_python_env_attributes(with_fake: str) -> None:
    """`interpreter`, `executable` and `sitePackages`, as nixpkgs' python.withPackages has
    them (a NixOS module's `${env.interpreter} -m ...`), for the set's environment and a
    withPackages one; the interpreter is the environment's own bin/python."""
    data = _eval(f"""
      let
        sets = {with_fake} }};
        envs = [ sets.pytest.py312.python (sets.pytest.py313.withPackages (ps: [ ps.pytest ])) ];
      in map (e: {{
        inherit (e) interpreter executable sitePackages;
        out = e.outPath;
      }}) envs
    """)
    for env, version in zip(data, ("3.12", "3.13"), strict=True):
        assert env["interpreter"] == env["out"] + "/bin/python"
        assert env["executable"] == f"python{version}"
        assert env["sitePackages"] == f"lib/python{version}/site-packages"


def test_system_and_pkgs_that_disagree_are_one_error(with_fake: str) -> None:
    """`system` chooses the system the pinned nixpkgs (or `nixpkgs`) is imported for; with a
    `pkgs` for another system it was silently ignored (the sets were for pkgs' system)."""
    here = _eval("builtins.currentSystem")
    other = "aarch64-darwin" if here != "aarch64-darwin" else "x86_64-linux"
    message = (
        f'was given `pkgs` for {here} and `system = "{other}"`, which disagree; leave out '
        f"one of them, or give a `pkgs` for {other}"
    )
    # default.nix (its sets, and the bot built with the same pkgs)
    for attr in ("attrs.py312.python.system", "bot.system"):
        err = _eval_error(f'({with_fake} system = "{other}"; }}).{attr}')
        assert f"nixpkgs-python: default.nix {message}" in err
    assert _eval(f'({with_fake} system = "{here}"; }}).attrs.py312.python.system') == here
    # the flake's lib.mkSet and the library's mkSet
    lock = ROOT / "sets" / "attrs" / "pylock.py312.toml"
    fake = with_fake.replace("with-fake-nixpkgs.nix", "fake-nixpkgs").rstrip() + " }"
    flake = f"((import {ROOT}/flake.nix).outputs {{ self = null; }}).lib"
    for make in (f"{flake}.mkSet", f"(import {ROOT}/nix).mkSet"):
        expr = f'({make} {{ lockFile = {lock}; pkgs = {fake}; system = "{other}"; }}).python.system'
        assert f"nixpkgs-python: mkSet {message}" in _eval_error(expr)
        expr = f'({make} {{ lockFile = {lock}; pkgs = {fake}; system = "{here}"; }}).python.system'
        assert _eval(expr) == here


def test_the_environments_are_visible_to_nix_env_and_plain_nix_build(
    tmp_path: Path, interpreters: dict[str, str]
) -> None:
    """`nix-env -qaP -f .` lists, and `nix-build` (no -A) builds, every set's environment
    for each of its Pythons and the bot: the sets and their py3XY are recurseForDerivations.
    Not each set's `packages` (every environment builds all of them anyway; listed, they
    would bury the environments).  The overlay's sets stay unlisted in the nixpkgs they are
    added to (evaluating them there imports a second nixpkgs, the pin)."""
    sets = tmp_path / "sets"
    sets.mkdir()
    for name in ("attrs", "pytest"):
        shutil.copytree(ROOT / "sets" / name, sets / name)
    file = tmp_path / "interpreters.json"
    file.write_text(json.dumps({"interpreters": interpreters}))
    args = [str(ROOT / "default.nix"), "--arg", "pkgs", "null"]
    args += ["--argstr", "interpretersFile", str(file), "--argstr", "setsDir", str(sets)]
    listed = run_nix("nix-env", ["-qaP", "-f", *args]).stdout.splitlines()
    # attribute path and name; nix-env lists a derivation once (attrs.python, the newest, is
    # attrs.py313.python)
    entries = [line.split() for line in listed if line.strip()]
    assert all(re.fullmatch(r"bot|(attrs|pytest)(\.py31[23])?\.python", p) for p, _ in entries)
    assert sorted(name for _, name in entries) == [
        "python3.12-attrs-env",
        "python3.12-pytest-env",
        "python3.13-attrs-env",
        "python3.13-nixpkgs-python-0.1.0-env",
        "python3.13-pytest-env",
    ]
    drvs = run_nix("nix-instantiate", args).stdout.split()
    assert sorted(d.split("-", 1)[1] for d in drvs) == [
        "python3.12-attrs-env.drv",
        "python3.12-pytest-env.drv",
        "python3.13-attrs-env.drv",
        "python3.13-nixpkgs-python-0.1.0-env.drv",
        "python3.13-pytest-env.drv",
    ]
    overlay = f"""
      let
        mine = import {ROOT}/tests/nix/fake-nixpkgs {{ interpretersFile = {file}; }};
        final = mine // (import {ROOT}/overlay.nix final mine);
      in final.pythonSetsFromThisNixpkgs ? recurseForDerivations
    """
    assert _eval(overlay) is False
