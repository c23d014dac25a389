"""`nixpkgs-python generate` end to end: the loopback index, a local git repository standing in
for the published nixpkgs-python (its nix/ and overrides/ at a pinned commit), real nix-build,
and every kind of --overrides source."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.nix import eval_json, run_nix
from bot.model.interpreters import build_options
from tests.harness import git
from tests.plugins.pin import pin_fake_nixpkgs
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel

ROOT = Path(__file__).resolve().parent.parent
CUTOFF = "2025-06-01T00:00:00Z"

pytestmark = pytest.mark.nix

WITH_GEN_LIB = "{ dir }: (import dir { pkgs = null; }).withPackages (ps: [ ps.gen-lib ])"
PACKAGE_NAMES = "{ dir }: builtins.attrNames (import dir { pkgs = null; }).packages"
#: the generated default.nix with the fake nixpkgs as `pkgs` and an `overrides` argument
WITH_ARGS = """{ dir, fake }:
let
  generated = import dir {
    pkgs = import fake { interpretersFile = dir + "/nixpkgs-python.json"; };
    overrides = self: super: {
      gen-lib = super.gen-lib.overridePythonAttrs (old: { env = old.env // { FROM_ARG = "1"; }; });
    };
  };
in { source = generated.meta.interpreterSource; env = generated.packages.gen-lib.pythonAttrs.env; }
"""
PATCH = """\
--- a/gen_lib/__init__.py
+++ b/gen_lib/__init__.py
@@ -1 +1 @@
-VALUE = 1
+VALUE = {value}
"""
OVERRIDE = """\
[[override]]
reason = "tests: the pinned library patches gen-lib"
patches = ["patches/gen-lib.patch"]
env = {{ FROM_LIBRARY = "{value}" }}
"""


def commit_library(repo: Path, value: int) -> str:
    """Commit an override that patches gen-lib's VALUE to ``value``; the new commit id."""
    (repo / "overrides" / "packages" / "gen-lib.toml").write_text(OVERRIDE.format(value=value))
    (repo / "overrides" / "patches").mkdir(exist_ok=True)
    (repo / "overrides" / "patches" / "gen-lib.patch").write_text(PATCH.format(value=value))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"gen-lib: VALUE = {value}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def library(tmp_path: Path, interpreters: dict[str, str]) -> tuple[Path, str]:
    """A git repository with this project's nix/ and overrides/ plus a gen-lib override; its
    nix/nixpkgs.json pins a fetchable fake nixpkgs (tests/plugins/pin.py)."""
    if shutil.which("nix-build") is None:
        pytest.skip("nix is not installed (.ci/run installs nix-bin)")
    repo = tmp_path / "library"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copytree(
        ROOT / "nix", repo / "nix", ignore=shutil.ignore_patterns("local.json", "tests")
    )
    shutil.copytree(ROOT / "overrides", repo / "overrides")
    pin_fake_nixpkgs(repo / "nix", tmp_path / "pin", interpreters)
    return repo, commit_library(repo, 2)


@pytest.fixture
def gen_index(
    pypi_index_with_backend: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> IndexServer:
    index = pypi_index_with_backend
    for wheel in frontend_wheels.values():
        index.publish(wheel)
    dist = tmp_path / "dist"
    index.publish(
        make_wheel(
            dist,
            "gen-app",
            "1.0",
            requires_dist=["gen-lib"],
            modules={
                "gen_app/__init__.py": "import gen_lib\n\ndef main():\n"
                "    print('gen-app', gen_lib.VALUE)\n"
            },
            console_scripts={"gen-app": "gen_app:main"},
        )
    )
    index.publish(
        make_sdist(dist, "gen-lib", "1.0", modules={"gen_lib/__init__.py": "VALUE = 1\n"})
    )
    return index


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project (the current directory): requirements.txt, local overrides."""
    home = tmp_path / "project"
    (home / "my-overrides" / "packages").mkdir(parents=True)
    (home / "requirements.txt").write_text("# my app\ngen-app  # the app\n")
    (home / "my-overrides" / "packages" / "gen-app.toml").write_text(
        '[[override]]\nreason = "tests: a local directory"\nenv = { FROM_LOCAL = "1" }\n'
    )
    (home / "overlay.nix").write_text(
        "self: super: { gen-app = super.gen-app.overridePythonAttrs (old: {\n"
        '  env = old.env // { FROM_FILE = "1"; }; }); }\n'
    )
    monkeypatch.chdir(home)
    return home


def generate(
    index: IndexServer,
    library: tuple[Path, str] | Path,
    out: Path,
    *args: str,
    requirements: Path | None = None,
) -> int:
    lib_args = (
        ["--default-overrides-url", f"file://{library}"]
        if isinstance(library, Path)
        else [
            "--default-overrides-url",
            f"file://{library[0]}",
            "--default-overrides-rev",
            library[1],
        ]
    )
    argv = [
        "-q",
        "generate",
        "-r",
        str(requirements or out.parent / "requirements.txt"),
        "-o",
        str(out),
        "--python",
        "3.12",
        "--index-url",
        index.url,
        "--exclude-newer",
        CUTOFF,
        "--cache-dir",
        str(out.parent.parent / "metadata-cache"),
        *lib_args,
        *args,
    ]
    return main(argv)


def nix_build(out: Path, interpreters: dict[str, str], *args: str) -> Path:
    proc = run_nix(
        "nix-build",
        [str(out), "--no-out-link", "--arg", "pkgs", "null", *args],
        timeout=900,
        options=build_options(interpreters.values()),
    )
    return Path(proc.stdout.strip().splitlines()[-1])


def python_says(env: Path, code: str) -> str:
    return subprocess.run(
        [str(env / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_generate_builds_with_pinned_overrides(
    gen_index: IndexServer,
    library: tuple[Path, str],
    project: Path,
    interpreters: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, rev = library
    # a second repository holding an overlay file, and a .nix file served over loopback HTTP
    extra = tmp_path / "extra"
    (extra / "sub").mkdir(parents=True)
    git(extra, "init", "-q", "-b", "main")
    (extra / "sub" / "git.nix").write_text(
        "self: super: { gen-lib = super.gen-lib.overridePythonAttrs (old: {\n"
        '  env = old.env // { FROM_GIT = "1"; }; }); }\n'
    )
    git(extra, "add", "-A")
    git(extra, "commit", "-q", "-m", "overlay")
    extra_rev = git(extra, "rev-parse", "HEAD")
    (gen_index.files_dir / "http.nix").write_text(
        "self: super: { gen-lib = super.gen-lib.overridePythonAttrs (old: {\n"
        '  env = old.env // { FROM_HTTP = "1"; FROM_GIT = "overridden by http"; }; }); }\n'
    )
    with tarfile.open(gen_index.files_dir / "more-overrides.tar.gz", "w:gz") as tar:
        data = b'[[override]]\nreason = "tests: a tarball"\nenv = { FROM_TARBALL = "1" }\n'
        member = tarfile.TarInfo("more-overrides/packages/gen-lib.toml")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    out = project / "nix-python"
    assert (
        generate(
            gen_index,
            library,
            out,
            "--overrides",
            "my-overrides",
            "--overrides",
            str(project / "overlay.nix"),
            "--overrides",
            f"git+file://{extra}?rev={extra_rev}#path=sub/git.nix",
            "--overrides",
            f"{gen_index.root_url}/files/http.nix",
            "--overrides",
            f"{gen_index.root_url}/files/more-overrides.tar.gz",
        )
        == 0
    ), capsys.readouterr().err
    stdout = capsys.readouterr().out
    assert "build it with: nix-build" in stdout
    assert "or, without nixpkgs: nix-build" in stdout
    assert "--arg pkgs null" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "default.nix",
        "nixpkgs-python.json",
        "overrides",
        "pylock.toml",
    ]
    assert (out / "default.nix").read_text() == (ROOT / "nix" / "generated.nix").read_text()
    pins = json.loads((out / "nixpkgs-python.json").read_text())
    assert pins["library"] == {"url": f"file://{repo}", "rev": rev}
    assert pins["interpreters"] == {"3.12": interpreters["3.12"]}
    assert [(s["kind"], s["type"]) for s in pins["overrides"]] == [
        ("path", "directory"),
        ("path", "file"),
        ("git", "file"),
        ("url", "file"),
        ("url", "directory"),
    ]
    assert pins["overrides"][2]["rev"] == extra_rev
    assert len(pins["overrides"][3]["sha256"]) == 52
    assert not list(project.glob(".nix-python.*"))  # no staging directory left behind
    # the copies are inside the generated directory: it no longer needs the originals
    shutil.rmtree(project / "my-overrides")
    (project / "overlay.nix").unlink()

    # by default the directory builds with the library revision's pinned nixpkgs (here the
    # library's fake pin, which the checkout's own nix/ does not have), never standalone
    code = (
        f"let d = import {out} {{ }}; in {{ inherit (d) drvPath; "
        "source = d.meta.interpreterSource; fake = d.packages.gen-lib.fakeNixpkgs; "
        "interpreter = (builtins.fromJSON (builtins.unsafeDiscardStringContext "
        "d.nixpkgsPythonConfig)).interpreter; }"
    )
    pinned = json.loads(
        run_nix("nix-instantiate", ["--eval", "--strict", "--json", "-E", code]).stdout
    )
    assert pinned["drvPath"].endswith("-env.drv")
    assert pinned["source"] == "nixpkgs"
    assert pinned["fake"] == "1"
    assert pinned["interpreter"] == interpreters["3.12"]
    env = nix_build(out, interpreters)
    assert python_says(env, "import gen_app, gen_lib; print(gen_lib.VALUE)") == "2"
    assert (
        subprocess.run(
            [str(env / "bin" / "gen-app")], check=True, capture_output=True, text=True
        ).stdout.strip()
        == "gen-app 2"
    )
    lib_env = eval_json(
        out / "default.nix", attr="packages.gen-lib.pythonAttrs.env", args={"pkgs": "null"}
    )
    assert lib_env == {
        "FROM_LIBRARY": "2",
        "FROM_GIT": "overridden by http",
        "FROM_HTTP": "1",
        "FROM_TARBALL": "1",
    }
    app_env = eval_json(
        out / "default.nix", attr="packages.gen-app.pythonAttrs.env", args={"pkgs": "null"}
    )
    assert app_env == {"FROM_LOCAL": "1", "FROM_FILE": "1"}
    # withPackages: an environment with only some of the packages
    only_lib = run_nix(
        "nix-build",
        ["-E", WITH_GEN_LIB, "--arg", "dir", str(out), "--no-out-link"],
        options=build_options(interpreters.values()),
    )
    lib_only = Path(only_lib.stdout.strip().splitlines()[-1])
    assert python_says(lib_only, "import gen_lib; print(gen_lib.VALUE)") == "2"
    assert not (lib_only / "bin" / "gen-app").exists()
    # the pkgs and overrides arguments (a stand-in nixpkgs; the argument is applied last)
    with_args = run_nix(
        "nix-instantiate",
        [
            "--eval",
            "--strict",
            "--json",
            "-E",
            WITH_ARGS,
            "--argstr",
            "dir",
            str(out),
            "--argstr",
            "fake",
            str(ROOT / "tests" / "nix" / "fake-nixpkgs"),
        ],
    )
    assert json.loads(with_args.stdout) == {
        "source": "nixpkgs",
        "env": {**lib_env, "FROM_ARG": "1"},
    }

    # the library moves on: the old generation builds exactly what it built before
    new_rev = commit_library(repo, 3)
    assert nix_build(out, interpreters) == env
    # a new generation without --default-overrides-rev pins the repository's new HEAD
    out2 = project / "nix-python-2"
    assert generate(gen_index, repo, out2) == 0
    assert json.loads((out2 / "nixpkgs-python.json").read_text())["library"]["rev"] == new_rev
    env2 = nix_build(out2, interpreters)
    assert env2 != env
    assert python_says(env2, "import gen_lib; print(gen_lib.VALUE)") == "3"

    # --no-default-overrides: the same library revision, without its overrides
    out3 = project / "nix-python-3"
    assert generate(gen_index, library, out3, "--no-default-overrides") == 0
    applied = eval_json(
        out3 / "default.nix", attr="packages.gen-lib.pythonAttrs.patches", args={"pkgs": "null"}
    )
    assert applied == []


def test_regenerate_replaces_only_its_own_directory(
    gen_index: IndexServer,
    library: tuple[Path, str],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = project / "nix-python"
    assert generate(gen_index, library, out, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["library"]["rev"] == library[1]
    assert (summary["python"], summary["roots"]) == ("3.12", ["gen-app"])
    first = (out / "pylock.toml").read_bytes()
    assert "gen-lib" in first.decode()
    (project / "requirements.txt").write_text("gen-lib\n")
    assert generate(gen_index, library, out) == 0
    assert (out / "pylock.toml").read_bytes() != first
    assert json.loads((out / "nixpkgs-python.json").read_text())["overrides"] == []
    # a directory holding anything else is never replaced
    (out / "notes.txt").write_text("mine")
    assert generate(gen_index, library, out) == 1
    assert "holds files generate did not write: notes.txt" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def pin_release(repo: Path, release: str) -> str:
    """Commit a nixpkgs pin naming ``release`` in the library; the new commit id."""
    pin = json.loads((repo / "nix" / "nixpkgs.json").read_text())
    pin |= {"release": release, "branch": f"nixos-{release}"}
    (repo / "nix" / "nixpkgs.json").write_text(json.dumps(pin, indent=2) + "\n")
    git(repo, "commit", "-q", "-am", f"nixpkgs: {release}")
    return git(repo, "rev-parse", "HEAD")


def lock_provenance(out: Path) -> dict[str, object]:
    result: dict[str, object] = tomllib.loads((out / "pylock.toml").read_text())["tool"][
        "nixpkgs-python"
    ]
    return result


def test_generate_locks_for_the_release_the_library_pins(
    gen_index: IndexServer,
    library: tuple[Path, str],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The lock is for the nixpkgs the generated default.nix builds with: the pin of the
    library revision, not the release this bot's own checkout pins."""
    repo, _ = library
    assert json.loads((ROOT / "nix" / "nixpkgs.json").read_text())["release"] == "26.05"
    # 26.11 has no x86_64-darwin: every system of the pin means three systems
    out = project / "nix-python"
    assert generate(gen_index, (repo, pin_release(repo, "26.11")), out) == 0, (
        capsys.readouterr().err
    )
    prov = lock_provenance(out)
    assert prov["origin"] == "generate"
    assert prov["nixpkgs-release"] == "26.11"
    assert prov["systems"] == ["aarch64-darwin", "aarch64-linux", "x86_64-linux"]
    # and a system the pinned release does not have is refused by its flag
    (project / "refused").mkdir()
    code = generate(
        gen_index,
        (repo, git(repo, "rev-parse", "HEAD")),
        project / "refused" / "out",
        "--system",
        "x86_64-darwin",
        requirements=project / "requirements.txt",
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "--system: nixpkgs 26.11 (the Nix library's pin) does not support x86_64-darwin" in err
    assert "set.yaml" not in err
    assert not (project / "refused" / "out").exists()
    # 25.11's glibc is older: the wheel baselines follow the pin too
    out2 = project / "nix-python-2"
    assert generate(gen_index, (repo, pin_release(repo, "25.11")), out2) == 0
    prov2 = lock_provenance(out2)
    assert (prov2["nixpkgs-release"], prov2["glibc"], prov2["macos-min"]) == (
        "25.11",
        "2.40",
        "14.0",
    )
    assert len(prov2["systems"]) == 4  # type: ignore[arg-type]


def test_a_library_pinning_an_unknown_release_is_one_error(
    gen_index: IndexServer,
    library: tuple[Path, str],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, _ = library
    rev = pin_release(repo, "99.05")
    out = project / "nix-python"
    code = generate(gen_index, (repo, rev), out)
    err = capsys.readouterr().err
    assert code != 0
    assert f"at {rev[:12]}: nix/nixpkgs.json: the Nix library pins nixpkgs 99.05" in err, err
    assert "update nixpkgs-python" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_a_generated_lock_on_a_system_it_lacks_says_to_generate_again(
    gen_index: IndexServer,
    library: tuple[Path, str],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    here = json.loads(
        run_nix("nix-instantiate", ["--eval", "--json", "-E", "builtins.currentSystem"]).stdout
    )
    other = "aarch64-darwin" if here != "aarch64-darwin" else "x86_64-linux"
    out = project / "nix-python"
    assert generate(gen_index, library, out, "--system", other) == 0, capsys.readouterr().err
    assert lock_provenance(out)["systems"] == [other]
    proc = run_nix(
        "nix-instantiate",
        ["--eval", "--strict", "-E", PACKAGE_NAMES, "--arg", "dir", str(out)],
        check=False,
    )
    assert proc.returncode != 0
    assert (
        f"the generated lock 'requirements' (Python 3.12) is locked for {other} only, not {here}; "
        f"re-run `nixpkgs-python generate --system {other} --system {here} ...`"
    ) in proc.stderr, proc.stderr
    assert "set.yaml" not in proc.stderr


def bad_input_cases(
    library: tuple[Path, str], index: IndexServer
) -> dict[str, tuple[Sequence[str], str, list[str]]]:
    """name -> (extra arguments, requirements text, fragments of the error)."""
    repo, rev = library
    missing_rev = "0" * 40
    return {
        "unparsable requirement": (
            (),
            "gen-app\ngen-lib >=>= 1\n",
            ["requirements.txt:2", "invalid requirement"],
        ),
        "pip option": (
            (),
            "--index-url https://x.invalid/\n",
            ["requirements.txt:1", "--index-url"],
        ),
        "unknown package": (
            (),
            "gen-app\nno-such-package\n",
            ["no-such-package", "requirements.txt:2"],
        ),
        "short library rev": (
            ("--default-overrides-rev", rev[:12]),
            "gen-app\n",
            ["--default-overrides-rev", "not a full commit id"],
        ),
        "library rev not in the repository": (
            ("--default-overrides-rev", missing_rev),
            "gen-app\n",
            ["cannot fetch", missing_rev],
        ),
        "missing local overrides": (
            ("--overrides", "nope"),
            "gen-app\n",
            ["overrides source not found", "nope"],
        ),
        "git source without rev": (
            ("--overrides", f"git+file://{repo}#path=overrides"),
            "gen-app\n",
            ["needs exactly one ?rev="],
        ),
        "git source path missing at rev": (
            ("--overrides", f"git+file://{repo}?rev={rev}#path=not/there"),
            "gen-app\n",
            ["'not/there' does not exist at revision", rev],
        ),
        "git source rev missing": (
            ("--overrides", f"git+file://{repo}?rev={missing_rev}#path=overrides"),
            "gen-app\n",
            ["cannot fetch", missing_rev],
        ),
        "url that does not exist": (
            ("--overrides", f"{index.root_url}/files/missing.nix"),
            "gen-app\n",
            ["cannot fetch the overrides source", "missing.nix"],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unparsable requirement",
        "pip option",
        "unknown package",
        "short library rev",
        "library rev not in the repository",
        "missing local overrides",
        "git source without rev",
        "git source path missing at rev",
        "git source rev missing",
        "url that does not exist",
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(
    case: str,
    gen_index: IndexServer,
    library: tuple[Path, str],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, requirements, fragments = bad_input_cases(library, gen_index)[case]
    (project / "requirements.txt").write_text(requirements)
    before = sorted(p.name for p in project.iterdir())
    out = project / "nix-python"
    code = generate(gen_index, library, out, *args)
    err = capsys.readouterr().err
    assert code != 0
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in project.iterdir()) == before
