"""Real nix-build of sets from locks, with both interpreter sources (loopback index only)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bot.core.errors import NixError
from bot.core.nix import eval_json, run_nix
from bot.model.interpreters import build_options
from tests.plugins.nixenv import NixRepo, demo_entries, lock_demo, nix_build_cmd
from tests.plugins.pypi import IndexServer
from tests.plugins.standin import Standin

pytestmark = pytest.mark.nix

GAMMA_PATCH = """\
--- a/gamma/__init__.py
+++ b/gamma/__init__.py
@@ -1 +1,2 @@
 Y = 1
+PATCHED = True
"""


def build(repo: NixRepo, attr: str, *, fake_nixpkgs: bool = False) -> Path:
    proc = nix_build_cmd(repo, attr, fake_nixpkgs=fake_nixpkgs)
    return Path(proc.stdout.strip().splitlines()[-1])


def run(*argv: str | Path) -> str:
    return subprocess.run(
        [str(a) for a in argv], check=True, capture_output=True, text=True, timeout=60
    ).stdout


@pytest.mark.parametrize("source", ["standalone", "nixpkgs"])
def test_set_builds_and_its_python_imports_everything(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path], source: str
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    fake = source == "nixpkgs"
    env = build(nix_repo, "demo.python", fake_nixpkgs=fake)
    # every package, the sdist one included, imports in the environment's python
    out = run(
        env / "bin" / "python",
        "-c",
        "import alpha, beta, delta, gamma, build, installer, sys; print(sys.prefix)",
    )
    assert out.strip() == str(env)
    assert run(env / "bin" / "alpha").strip() == "alpha says 42"
    assert run(env / "bin" / "gamma").strip() == "gamma 1"
    site = env / "lib" / "python3.12" / "site-packages"
    assert (site / "gamma-0.5.dist-info").exists()
    # a package is only itself (its runtime dependencies are not its inputs) ...
    alpha = build(nix_repo, "demo.packages.alpha", fake_nixpkgs=fake)
    assert (alpha / "lib" / "python3.12" / "site-packages" / "alpha" / "__init__.py").exists()
    assert not (alpha / "lib" / "python3.12" / "site-packages" / "beta.py").exists()
    # ... and `packages.<name>.env` is it with its runtime closure: its scripts run
    alpha_env = build(nix_repo, "demo.packages.alpha.env", fake_nixpkgs=fake)
    assert alpha_env.name.endswith("-python3.12-alpha-1.0-env")
    assert run(alpha_env / "bin" / "alpha").strip() == "alpha says 42"
    env_site = alpha_env / "lib" / "python3.12" / "site-packages"
    site_names = sorted(p.name for p in env_site.iterdir())
    assert "beta.py" in site_names
    assert "gamma" not in site_names


def test_nixpkgs_source_uses_stdenv(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    assert nix_repo.eval("demo.packages.gamma.fakeNixpkgs", fake_nixpkgs=True) == "1"
    assert nix_repo.eval("demo.meta.interpreterSource", fake_nixpkgs=True) == "nixpkgs"
    assert nix_repo.eval("demo.meta.interpreterSource") == "standalone"


def test_default_python_is_the_newest_locked(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    if "3.13" not in nix_repo.interpreters:
        pytest.skip("no standalone Python 3.13")
    lock_demo(nix_repo, demo_index, demo_dists, "3.12")
    lock_demo(nix_repo, demo_index, demo_dists, "3.13")
    newest = build(nix_repo, "demo.python")
    assert (
        run(
            newest / "bin" / "python",
            "-c",
            "import sys, alpha; print('%d.%d' % sys.version_info[:2])",
        ).strip()
        == "3.13"
    )
    older = build(nix_repo, "demo.py312.python")
    assert (
        run(
            older / "bin" / "python",
            "-c",
            "import sys, gamma; print('%d.%d' % sys.version_info[:2])",
        ).strip()
        == "3.12"
    )


def test_wrong_hash_fails_naming_the_file(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    entries = demo_entries(demo_dists)
    for e in entries:
        if e.name == "delta":
            e.sha256 = "0" * 64
    lock_demo(nix_repo, demo_index, demo_dists, entries=entries)
    with pytest.raises(NixError) as info:
        build(nix_repo, "demo.python")
    message = str(info.value)
    assert "hash mismatch" in message
    assert "delta-0.1-py3-none-any.whl" in message


def test_overrides_apply_by_version_range(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    (nix_repo.overrides / "patches").mkdir()
    (nix_repo.overrides / "patches" / "gamma-patched.patch").write_text(GAMMA_PATCH)
    (nix_repo.overrides / "patches" / "broken.patch").write_text("this is not a patch\n")
    check = (
        "import os, gamma; assert os.environ['GAMMA_FLAG'] == 'on', os.environ['GAMMA_FLAG']; "
        "assert gamma.PATCHED"
    )
    (nix_repo.overrides / "packages" / "gamma.toml").write_text(f'''\
[[override]]
until = "0.5"
reason = "old gammas: must not apply to 0.5"
env = {{ GAMMA_FLAG = "off" }}
patches = ["patches/broken.patch"]

[[override]]
from = "0.5rc1"
until = "1.0"
reason = "gamma 0.x: flag and patch"
env = {{ GAMMA_FLAG = "on" }}
patches = ["patches/gamma-patched.patch"]
check = {{ command = ["python", "-I", "-c", "{check}"] }}
''')
    package = build(nix_repo, "demo.packages.gamma")
    init = package / "lib" / "python3.12" / "site-packages" / "gamma" / "__init__.py"
    assert "PATCHED = True" in init.read_text()
    applied = nix_repo.eval("demo.packages.gamma.pythonAttrs.appliedOverrides")
    assert applied == ["gamma 0.x: flag and patch"]
    # the tests check runs in the environments (with the entry's env, in the patched source)
    build(nix_repo, "demo.packages.gamma.env")
    toml = nix_repo.overrides / "packages" / "gamma.toml"
    toml.write_text(toml.read_text().replace("assert gamma.PATCHED", "assert not gamma.PATCHED"))
    with pytest.raises(NixError) as info:
        build(nix_repo, "demo.packages.gamma.env")
    assert "package 'gamma' tests check failed" in str(info.value)
    # the package itself does not run it: it builds (from the cache) whatever the check says
    assert build(nix_repo, "demo.packages.gamma") == package


def test_with_packages_selects_a_subset(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    proc = nix_build_cmd(
        nix_repo,
        None,
        file=Path(__file__).parent / "nix" / "with-packages.nix",
        argstrs={"set": "demo", "names": "alpha"},
    )
    env = Path(proc.stdout.strip().splitlines()[-1])
    site = env / "lib" / "python3.12" / "site-packages"
    assert sorted(p.name for p in site.iterdir() if p.suffix == ".dist-info") == [
        "alpha-1.0.dist-info",
        "beta-2.0.dist-info",
    ]
    assert run(env / "bin" / "alpha").strip() == "alpha says 42"
    failed = subprocess.run(
        [env / "bin" / "python", "-c", "import gamma"], check=False, capture_output=True
    )
    assert failed.returncode != 0


def test_set_overrides_naming_a_missing_package_are_refused(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    overlay = nix_repo.sets / "demo" / "overrides.nix"
    overlay.write_text("self: super: { ghost = super.alpha; }\n")
    with pytest.raises(NixError) as info:
        nix_repo.eval("demo.python.drvPath")
    text = str(info.value)
    assert "set 'demo' (Python 3.12)" in text
    assert "sets/demo/overrides.nix overrides package 'ghost', which the set does not have" in text
    # overriding a package the set has is fine
    overlay.write_text("self: super: { alpha = super.alpha; }\n")
    assert nix_repo.eval("demo.python.drvPath").endswith(".drv")


WITH_OVERRIDDEN = Path(__file__).parent / "nix" / "with-overridden.nix"


@pytest.mark.parametrize("source", ["standalone", "nixpkgs"])
def test_an_override_attrs_package_keeps_its_closure_and_checks(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path], source: str
) -> None:
    """`withPackages (ps: [ (ps.alpha.overrideAttrs f) ])`: the environment holds the overridden
    alpha, its runtime dependency beta, and runs alpha's imports check (which fails once
    alpha's python attributes no longer name beta)."""
    lock_demo(nix_repo, demo_index, demo_dists)
    fake = source == "nixpkgs"
    argstrs = {"set": "demo", "name": "alpha", "fake": "1" if fake else ""}

    def evaluate(attr: str, **extra: str) -> object:
        base = dict(nix_repo.argstrs, **argstrs, **extra)
        return eval_json(
            WITH_OVERRIDDEN, attr=attr, argstrs=base, args=None if fake else {"pkgs": "null"}
        )

    overridden = evaluate("package.outPath")
    assert evaluate("package.MARK") == "overridden"
    assert overridden != nix_repo.eval("demo.packages.alpha.outPath", fake_nixpkgs=fake)
    proc = nix_build_cmd(nix_repo, None, fake_nixpkgs=fake, file=WITH_OVERRIDDEN, argstrs=argstrs)
    env = Path(proc.stdout.strip().splitlines()[-1])
    site = env / "lib" / "python3.12" / "site-packages"
    assert sorted(p.name for p in site.iterdir() if p.suffix == ".dist-info") == [
        "alpha-1.0.dist-info",
        "beta-2.0.dist-info",
    ]
    assert str((site / "alpha").resolve()).startswith(f"{overridden}/")
    assert run(env / "bin" / "python", "-c", "import beta; print(beta.X)").strip() == "42"
    assert run(env / "bin" / "alpha").strip() == "alpha says 42"
    # the check ran for it: without beta among its dependencies (overridePythonAttrs after
    # overrideAttrs, which keeps the overrideAttrs change), alpha's import fails the environment
    assert evaluate("package.MARK", dependencies="") == "overridden"
    assert evaluate("package.pythonAttrs.dependencies", dependencies="") == []
    with pytest.raises(NixError) as info:
        nix_build_cmd(
            nix_repo,
            None,
            fake_nixpkgs=fake,
            file=WITH_OVERRIDDEN,
            argstrs={**argstrs, "dependencies": ""},
        )
    assert "package 'alpha' imports check failed" in str(info.value)


def test_a_set_member_without_python_attributes_is_refused(
    nix_repo: NixRepo, demo_index: IndexServer, demo_dists: dict[str, Path]
) -> None:
    """An overlay replacing beta with a derivation that is not a package of the set: the
    environments holding it refuse, naming it, instead of leaving out its closure and checks;
    a plain derivation given to withPackages is linked in as it is."""
    lock_demo(nix_repo, demo_index, demo_dists)
    (nix_repo.sets / "demo" / "overrides.nix").write_text(
        'self: super: { beta = derivation { name = "beta-2.0"; system = builtins.currentSystem;'
        ' builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }; }\n'
    )
    with pytest.raises(NixError) as info:
        nix_repo.eval("demo.python.drvPath")
    assert "package 'beta' (of the set) has no python attributes (pythonAttrs)" in str(info.value)
    with pytest.raises(NixError) as info:
        nix_repo.eval("demo.packages.alpha.env.drvPath")
    assert "package 'beta' (a dependency of 'alpha') has no python attributes" in str(info.value)


def test_nixpkgs_withpackages_takes_a_set_package_with_its_dependencies(
    nix_repo: NixRepo,
    demo_index: IndexServer,
    demo_dists: dict[str, Path],
    standin_nixpkgs: Standin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nixpkgs' own ``python312.withPackages`` keeps only what has ``pythonModule`` = its
    interpreter, with each one's ``requiredPythonModules``: a set package built against that
    nixpkgs carries both, so it and its runtime closure end up in the environment (the
    stand-in's withPackages filters and closes as nixpkgs' does)."""
    monkeypatch.setenv("NIX_CONFIG", standin_nixpkgs.nix_config)
    lock_demo(nix_repo, demo_index, demo_dists)
    expr = f"""
      let
        pkgs = import {standin_nixpkgs.path} {{ }};
        set = (import {nix_repo.root}/default.nix {{
          inherit pkgs;
          setsDir = {nix_repo.sets};
          overridesDir = {nix_repo.overrides};
        }}).demo.py312;
        python = pkgs.python312;
      in {{
        env = python.withPackages (_: [ set.packages.alpha pkgs.hello ]);
        kept = map (p: p.name) (python.requiredPythonModules [ set.packages.alpha pkgs.hello ]);
        module = set.packages.alpha.pythonModule == python;
        required = map (p: p.pythonAttrs.pname) set.packages.alpha.requiredPythonModules;
      }}
    """
    (nix_repo.root / "env.nix").write_text(expr)
    facts = json.loads(
        run_nix(
            "nix-instantiate",
            [
                "--eval",
                "--strict",
                "--json",
                "-E",
                f'removeAttrs (import {nix_repo.root}/env.nix) [ "env" ]',
            ],
            substituters=None,
        ).stdout
    )
    assert facts["module"] is True
    assert facts["required"] == ["beta"]
    # the interpreter, alpha, and its closure; the plain derivation (no pythonModule) is not
    assert facts["kept"] == [
        "python3-3.12-standin",
        "python3.12-alpha-1.0",
        "python3.12-beta-2.0",
    ]
    out = run_nix(
        "nix-build",
        [nix_repo.root / "env.nix", "-A", "env", "--no-out-link"],
        substituters=None,
        options=build_options(nix_repo.interpreters.values()),
        timeout=900,
    )
    env = Path(out.stdout.strip().splitlines()[-1])
    site = env / "lib" / "python3.12" / "site-packages"
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info")) == [
        "alpha",
        "beta.py",
    ]
    said = run(env / "bin" / "python", "-c", "import alpha, beta; print(beta.X)")
    assert said.strip() == "42"


#: what Nix 2.8 printed in a CI run of this project when two nix processes raced on the
#: narinfo disk cache (NixOS/nix#3898)
RACE = (
    "error: executing SQLite statement 'insert or replace into NARs(cache, hashPart, timestamp, "
    "present) values (1, 'qjs92v9b8gaj5rqghfbnddryilq8kxk8', 1796285487, 0)': constraint failed "
    "(in '/home/runner/.cache/nix/binary-cache-v6.sqlite')"
)


def _flaky_nix(bin_dir: Path, failures: int, message: str) -> Path:
    """A ``nix-store`` first on PATH that fails ``failures`` times with ``message``, then
    succeeds: a scripted stand-in, as the race itself cannot be brought about on demand."""
    bin_dir.mkdir()
    count = bin_dir / "count"
    count.write_text("0")
    script = bin_dir / "nix-store"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{count}"); echo $((n + 1)) > "{count}"\n'
        f'if [ "$n" -lt {failures} ]; then echo "{message}" >&2; exit 1; fi\n'
        "echo ok\n"
    )
    script.chmod(0o755)
    return count


@pytest.mark.parametrize("check", [True, False], ids=["check", "no check"])
def test_a_narinfo_cache_race_is_run_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool
) -> None:
    count = _flaky_nix(tmp_path / "bin", 1, RACE)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    proc = run_nix("nix-store", ["--version"], check=check)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok")
    assert count.read_text().strip() == "2"


def test_a_narinfo_cache_race_twice_or_another_failure_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = _flaky_nix(tmp_path / "bin", 2, RACE)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    with pytest.raises(NixError, match="constraint failed"):
        run_nix("nix-store", ["--version"])
    assert count.read_text().strip() == "2"  # once more, not for ever
    count.write_text("0")
    proc = run_nix("nix-store", ["--version"], check=False)
    assert proc.returncode == 1
    assert count.read_text().strip() == "2"
    # any other failure is the command's own: not run again
    other = _flaky_nix(tmp_path / "other", 1, "error: build of '/nix/store/x.drv' failed")
    monkeypatch.setenv("PATH", f"{tmp_path / 'other'}:{os.environ['PATH']}")
    assert run_nix("nix-store", ["--version"], check=False).returncode == 1
    assert other.read_text().strip() == "1"
