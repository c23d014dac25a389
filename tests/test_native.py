"""Native code: the linkage check, overrides suggested from failures, nested nixpkgs inputs.

Real compiled code throughout: extension modules built here with gcc (manylinux-style wheels
published on the loopback index, sdists compiled by the cext-backend with the machine's cc),
real nix builds, standalone and against the stand-in nixpkgs (whose `nptest` library and
`nptool` command exist only there, in its loopback binary cache).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.build.command import BuildOptions, BuildResult, build_sets
from bot.lock.command import LockOptions, lock_sets
from bot.model.overrides import load_overrides
from tests.plugins.nixenv import NixRepo, entry, frontend_entries, write_lock
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel
from tests.plugins.pypi_backend import fixture_backend
from tests.plugins.standin import Standin

sys.path.insert(0, str(Path(__file__).parent.parent / "nix"))
import builder

pytestmark = pytest.mark.nix

BACKEND_DIR = Path(__file__).parent / "plugins" / "cext_backend"
NATIVE_MAP = """\
[headers]
"nptest.h" = "nptest.dev"
[libraries]
"libnptest.so.1" = "nptest"
nptest = "nptest"
"libz.so.1" = "zlib"
[commands]
nptool = "nptool"
[modules]
fixture_backend = "fixture-backend"
[external]
"virtual:compiler/c" = ""
"pkg:generic/nptest" = "nptest"
"""
C_SOURCE = """\
#include <Python.h>
#include <nptest.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(nptest_answer()); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {0}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "npext", 0, -1, methods};
PyMODINIT_FUNC PyInit_npext(void) { return PyModule_Create(&def); }
"""
ZLIB_SOURCE = """\
#include <Python.h>
#include <zlib.h>
static PyObject *v(PyObject *self, PyObject *args) { return PyUnicode_FromString(zlibVersion()); }
static PyMethodDef methods[] = {{"version", v, METH_NOARGS, ""}, {0}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "npzlib", 0, -1, methods};
PyMODINIT_FUNC PyInit_npzlib(void) { return PyModule_Create(&def); }
"""


def gcc(*argv: str | Path) -> None:
    subprocess.run(["gcc", *map(str, argv)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def natives(
    tmp_path_factory: pytest.TempPathFactory, interpreters: dict[str, str]
) -> dict[str, Path]:
    """Compiled artifacts: libnptest (in a directory no loader searches), manylinux-style
    wheels of `npext` (linking it, bundled or not) and `npzlib` (linking the system zlib),
    the cext-backend wheel and sdists built with it."""
    d = tmp_path_factory.mktemp("natives")
    include = subprocess.run(
        [interpreters["3.12"], "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (d / "lib").mkdir()
    (d / "nptest.h").write_text("int nptest_answer(void);\n")
    (d / "nptest.c").write_text("int nptest_answer(void) { return 42; }\n")
    lib = d / "lib" / "libnptest.so.1"
    gcc("-shared", "-fPIC", "-Wl,-soname,libnptest.so.1", "-o", lib, d / "nptest.c")
    (d / "lib" / "libnptest.so").symlink_to("libnptest.so.1")
    (d / "npext.c").write_text(C_SOURCE)
    (d / "npzlib.c").write_text(ZLIB_SOURCE)
    suffix = ".cpython-312-x86_64-linux-gnu.so"
    tag = "cp312-cp312-manylinux_2_17_x86_64"
    out: dict[str, Path] = {}
    # linking libnptest.so.1 without bundling it
    plain = d / f"npext{suffix}"
    gcc(
        "-shared",
        "-fPIC",
        f"-I{include}",
        f"-I{d}",
        d / "npext.c",
        "-o",
        plain,
        f"-L{d / 'lib'}",
        "-lnptest",
    )
    meta = fixture_backend.core_metadata("npext", "1.0")
    (d / "unbundled").mkdir()
    name = fixture_backend.write_wheel(
        d / "unbundled",
        "npext",
        "1.0",
        metadata=meta,
        files={plain.name: plain.read_bytes()},
        tag=tag,
    )
    out["unbundled"] = d / "unbundled" / name
    # the same, with the library bundled in npext.libs/ (as auditwheel repairs it)
    bundled = d / "bundled-build" / f"npext{suffix}"
    bundled.parent.mkdir()
    gcc(
        "-shared",
        "-fPIC",
        f"-I{include}",
        f"-I{d}",
        d / "npext.c",
        "-o",
        bundled,
        f"-L{d / 'lib'}",
        "-lnptest",
        "-Wl,-rpath,$ORIGIN/npext.libs",
    )
    (d / "bundled").mkdir()
    name = fixture_backend.write_wheel(
        d / "bundled",
        "npext",
        "1.0",
        metadata=meta,
        tag=tag,
        files={bundled.name: bundled.read_bytes(), "npext.libs/libnptest.so.1": lib.read_bytes()},
    )
    out["bundled"] = d / "bundled" / name
    zlib_so = d / f"npzlib{suffix}"
    gcc("-shared", "-fPIC", f"-I{include}", d / "npzlib.c", "-o", zlib_so, "-lz")
    name = fixture_backend.write_wheel(
        d,
        "npzlib",
        "1.0",
        metadata=fixture_backend.core_metadata("npzlib", "1.0"),
        # a fresh wheel each session, so the build (and its log) happens in the test
        files={zlib_so.name: zlib_so.read_bytes(), "npzlib_nonce.txt": uuid.uuid4().bytes},
        tag=tag,
    )
    out["npzlib"] = d / name
    out["lib"] = lib
    out["cext-backend"] = make_wheel(
        d / "backend",
        "cext-backend",
        "1.0",
        modules={
            "cext_backend.py": (BACKEND_DIR / "cext_backend.py").read_text(),
            "fixture_backend.py": Path(fixture_backend.__file__).read_text(),
        },
    )
    return out


def cext_sdist(dest: Path, name: str, cext: str, c_source: str) -> Path:
    """An sdist built by cext-backend (``cext``: the [tool.cext] table's body)."""
    path = make_sdist(
        dest,
        name,
        "1.0",
        build_requires=["cext-backend"],
        build_backend="cext_backend",
        modules={f"{name}.c": c_source},
    )
    # make_sdist writes the fixture backend's table; add the cext one
    return append_pyproject(path, f"[tool.cext]\n{cext}\n")


def append_pyproject(path: Path, text: str) -> Path:
    """Rewrite the sdist at ``path`` with ``text`` appended to its pyproject.toml."""
    members = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m)
            members[m.name] = f.read() if f else b""
    key = next(k for k in members if k.endswith("/pyproject.toml"))
    members[key] += f"\n{text}".encode()
    fixture_backend.write_tar_gz(path, members)
    return path


@pytest.fixture
def index(pypi_index: IndexServer) -> IndexServer:
    return pypi_index


def lock(repo: NixRepo, index: IndexServer, entries: list, roots: list[str]) -> None:  # type: ignore[type-arg]
    for e in entries:
        index.publish(e.file)
    write_lock(
        repo.sets / "nat" / "pylock.py312.toml",
        entries,
        base_url=f"{index.root_url}/files/",
        set_name="nat",
        roots=roots,
    )
    (repo.overrides / "native-map.toml").write_text(NATIVE_MAP)


def build(repo: NixRepo, standin: Standin | None = None) -> BuildResult:
    [result] = build_sets(
        BuildOptions(
            sets=["nat"],
            python="3.12",
            out_link=None,
            keep_going=False,
            repo=repo.root,
            nixpkgs=standin is not None,
            nixpkgs_path=standin.path if standin else None,
            interpreters=repo.interpreters,
        )
    )
    return result


def add_override(repo: NixRepo, package: str, text: str) -> None:
    path = repo.overrides / "packages" / f"{package}.toml"
    path.write_text((path.read_text() if path.exists() else "") + text)
    load_overrides(repo.root)  # the bot's parser accepts what was suggested


# --- the ELF reader ----------------------------------------------------------------------------


def test_elf_reader_reads_needed_and_rpath(natives: dict[str, Path], tmp_path: Path) -> None:
    so = tmp_path / "x.so"
    (tmp_path / "x.c").write_text("int f(void) { return 1; }\n")
    gcc(
        "-shared",
        "-fPIC",
        tmp_path / "x.c",
        "-o",
        so,
        "-Wl,--no-as-needed",
        "-lz",
        "-lm",
        "-Wl,-rpath,$ORIGIN/../x.libs:/opt/y",
    )
    needed, paths = builder.elf_dynamic(so) or ([], [])
    assert "libz.so.1" in needed
    assert "libm.so.6" in needed
    assert paths == ["$ORIGIN/../x.libs", "/opt/y"]
    assert builder.elf_dynamic(natives["lib"]) == ([], [])  # it needs nothing, not even libc
    text = tmp_path / "t.txt"
    text.write_bytes(b"\x7fELF" + b"\0" * 10)  # truncated: not an ELF file we can read
    assert builder.elf_dynamic(text) is None
    static = tmp_path / "s.o"
    gcc("-c", tmp_path / "x.c", "-o", static)  # relocatable: no dynamic section
    assert builder.elf_dynamic(static) is None


# --- the linkage check on manylinux-style wheels (standalone) ----------------------------------


def test_wheel_linking_a_library_nothing_provides_fails_with_the_entry(
    nix_repo: NixRepo,
    index: IndexServer,
    natives: dict[str, Path],
    frontend_wheels: dict[str, Path],
) -> None:
    lock(
        nix_repo,
        index,
        [*frontend_entries(frontend_wheels), entry(natives["unbundled"])],
        ["npext"],
    )
    result = build(nix_repo)
    assert not result.ok
    assert result.failed_package == "npext"
    assert (
        "linkage check: npext.cpython-312-x86_64-linux-gnu.so needs libnptest.so.1"
        in result.log_tail
    )
    [s] = result.suggestions
    assert (s.key, s.value) == ("system-libraries", "nptest")
    assert "libnptest.so.1" in s.evidence
    assert 'system-libraries = ["nptest"]' in s.entry()
    # the suggested entry is a valid override (and the build names it under nixpkgs only)
    add_override(nix_repo, "npext", s.entry())


def test_wheel_bundling_its_library_builds_and_imports(
    nix_repo: NixRepo,
    index: IndexServer,
    natives: dict[str, Path],
    frontend_wheels: dict[str, Path],
) -> None:
    lock(
        nix_repo, index, [*frontend_entries(frontend_wheels), entry(natives["bundled"])], ["npext"]
    )
    result = build(nix_repo)
    assert result.ok, result.log_tail
    python = Path(result.out_path or "") / "bin" / "python"
    out = subprocess.run(
        [python, "-c", "import npext; print(npext.answer())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "42"


def test_wheel_linking_a_machine_library_warns_what_nixpkgs_would_miss(
    nix_repo: NixRepo,
    index: IndexServer,
    natives: dict[str, Path],
    frontend_wheels: dict[str, Path],
) -> None:
    lock(
        nix_repo, index, [*frontend_entries(frontend_wheels), entry(natives["npzlib"])], ["npzlib"]
    )
    result = build(nix_repo)
    assert result.ok, result.log_tail
    [drv] = [p for p in result.store_paths if p.endswith("-npzlib-1.0")]
    log = subprocess.run(
        ["nix-store", "--read-log", drv], capture_output=True, text=True, check=False
    ).stdout
    assert "needs libz.so.1, found only on this machine" in log
    assert "nixpkgs would miss it" in log
    # and the build says so too (on the run that built it)
    [note] = [n for n in result.notes if "linkage check" in n]
    assert "npzlib.cpython-312-x86_64-linux-gnu.so needs libz.so.1" in note


# --- sdists: a missing header, command, backend -> the suggestion -> it builds ------------------


@pytest.fixture
def served_standin(standin_nixpkgs: Standin, monkeypatch: pytest.MonkeyPatch) -> Iterator[Standin]:
    monkeypatch.setenv("NIX_CONFIG", standin_nixpkgs.nix_config)
    return standin_nixpkgs


def test_sdist_with_header_and_library_from_a_declared_input(
    nix_repo: NixRepo,
    index: IndexServer,
    natives: dict[str, Path],
    frontend_wheels: dict[str, Path],
    served_standin: Standin,
    tmp_path: Path,
) -> None:
    sdist = cext_sdist(
        tmp_path / "sd",
        "npext",
        'module = "npext"\nsource = "npext.c"\nlibraries = ["nptest"]',
        C_SOURCE,
    )
    entries = [
        *frontend_entries(frontend_wheels),
        entry(natives["cext-backend"]),
        entry(sdist, build_requires=["cext-backend"]),
    ]
    lock(nix_repo, index, entries, ["npext"])
    # standalone: this machine has no nptest.h; the failure names the entry nixpkgs needs
    alone = build(nix_repo)
    assert not alone.ok
    assert [(s.key, s.value) for s in alone.suggestions][:1] == [("build-inputs", "nptest.dev")]
    failed = build(nix_repo, served_standin)
    assert not failed.ok
    assert failed.failed_package == "npext"
    assert failed.suggestions, failed.log_tail
    first = failed.suggestions[0]
    assert (first.key, first.value) == ("build-inputs", "nptest.dev")
    assert "fatal error: nptest.h: No such file or directory" in first.evidence
    add_override(nix_repo, "npext", first.entry())
    # standalone cannot honour it: still failing, and saying which entry it did not honour
    alone = build(nix_repo)
    assert not alone.ok
    assert any("[nptest.dev]" in n for n in alone.notes)
    result = build(nix_repo, served_standin)
    assert result.ok, result.log_tail
    python = Path(result.out_path or "") / "bin" / "python"
    out = subprocess.run(
        [python, "-c", "import npext; print(npext.answer())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "42"
    # the library came only through the declared input: its lib directory is in the package's
    [drv] = [p for p in result.store_paths if p.endswith("-npext-1.0")]
    log = subprocess.run(
        ["nix-store", "--read-log", drv], capture_output=True, text=True, check=False
    ).stdout
    assert "every needed library found" in log


def test_sdist_running_a_command_needs_it_as_a_native_input(
    nix_repo: NixRepo,
    index: IndexServer,
    natives: dict[str, Path],
    frontend_wheels: dict[str, Path],
    served_standin: Standin,
    tmp_path: Path,
) -> None:
    source = (
        "#include <Python.h>\n"
        'static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "nptooled", 0, -1, 0};\n'
        "PyMODINIT_FUNC PyInit_nptooled(void) { return PyModule_Create(&d); }\n"
    )
    sdist = cext_sdist(
        tmp_path / "sd",
        "nptooled",
        'module = "nptooled"\nsource = "nptooled.c"\nrun = [["nptool", "gen"]]',
        source,
    )
    entries = [
        *frontend_entries(frontend_wheels),
        entry(natives["cext-backend"]),
        entry(sdist, build_requires=["cext-backend"]),
    ]
    lock(nix_repo, index, entries, ["nptooled"])
    failed = build(nix_repo, served_standin)
    assert not failed.ok
    assert failed.suggestions, failed.log_tail
    first = failed.suggestions[0]
    assert (first.key, first.value) == ("native-build-inputs", "nptool")
    assert "nptool" in first.evidence
    add_override(nix_repo, "nptooled", first.entry())
    result = build(nix_repo, served_standin)
    assert result.ok, result.log_tail


def test_sdist_missing_its_build_backend_gets_a_build_requirement(
    nix_repo: NixRepo,
    index: IndexServer,
    backend_wheel: Path,
    frontend_wheels: dict[str, Path],
    tmp_path: Path,
) -> None:
    # the sdist's [build-system] forgets its backend (as setup.py files forget Cython)
    sdist = make_sdist(
        tmp_path / "sd", "forgetful", "1.0", build_requires=[], build_backend="fixture_backend"
    )
    # ... and declares what it needs from outside PyPI (PEP 725)
    append_pyproject(
        sdist,
        '[external]\nbuild-requires = ["virtual:compiler/c"]\n'
        'host-requires = ["pkg:generic/nptest@>=1"]\n',
    )
    for path in [*frontend_wheels.values(), backend_wheel, sdist]:
        index.publish(path)
    (nix_repo.sets / "nat").mkdir()
    (nix_repo.sets / "nat" / "set.yaml").write_text(
        'description: d\nmaintainers: ["@t"]\npython: ["3.12"]\nprefer: sdist\n'
        "requirements:\n  - forgetful\n"
    )
    (nix_repo.overrides / "native-map.toml").write_text(NATIVE_MAP)
    opts = LockOptions(repo=nix_repo.root, index_url=index.url, cache_dir=tmp_path / "cache")
    assert [o.status for o in lock_sets(opts)] == ["created"]
    failed = build(nix_repo)
    assert not failed.ok
    assert failed.failed_package == "forgetful"
    assert failed.suggestions, failed.log_tail
    first = failed.suggestions[0]
    assert (first.key, first.value) == ("build-requires", "fixture-backend")
    assert "fixture_backend" in first.evidence
    # the [external] DepURLs map too (the C compiler is stdenv's: nothing to declare)
    assert [(x.key, x.value) for x in failed.suggestions[1:]] == [("build-inputs", "nptest")]
    add_override(nix_repo, "forgetful", first.entry())
    assert [o.status for o in lock_sets(opts)] == ["updated"]
    result = build(nix_repo)
    assert result.ok, result.log_tail


# --- nested attribute paths and outputs, by evaluation against the stand-in --------------------


def test_nested_attribute_paths_resolve_in_the_standin(
    nix_repo: NixRepo,
    index: IndexServer,
    natives: dict[str, Path],
    frontend_wheels: dict[str, Path],
    served_standin: Standin,
) -> None:
    lock(
        nix_repo,
        index,
        [*frontend_entries(frontend_wheels), entry(natives["unbundled"])],
        ["npext"],
    )
    add_override(
        nix_repo,
        "npext",
        '[[override]]\nreason = "r"\nnative-build-inputs = ["postgresql.pg_config"]\n'
        'build-inputs = ["nptest.dev"]\nsystem-libraries = ["nptest"]\n',
    )
    expr = (
        f'let s = import {nix_repo.root}/default.nix {{ setsDir = "{nix_repo.sets}"; '
        f'overridesDir = "{nix_repo.overrides}"; nixpkgs = "{served_standin.path}"; }}; '
        "p = s.nat.py312.packages.npext; in "
        "{ n = map (d: d.name) p.nativeBuildInputs; "
        'b = map (d: d.outputName or "out") p.buildInputs; '
        "l = (builtins.fromJSON (builtins.unsafeDiscardStringContext p.nixpkgsPythonConfig))"
        ".linkage.libraryPaths; }"
    )
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert "standin-pg-config" in got["n"]
    assert got["b"].count("dev") == 1
    assert len(got["b"]) >= 3
    assert any(p.endswith("-nptest-1.0") for p in got["l"])
    add_override(
        nix_repo, "npext", '[[override]]\nreason = "r"\nbuild-inputs = ["postgresql.nope"]\n'
    )
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "needs nixpkgs attribute 'postgresql.nope'" in proc.stderr


def test_standalone_build_names_each_entry_it_cannot_honour(
    nix_repo: NixRepo,
    index: IndexServer,
    natives: dict[str, Path],
    frontend_wheels: dict[str, Path],
) -> None:
    lock(
        nix_repo, index, [*frontend_entries(frontend_wheels), entry(natives["bundled"])], ["npext"]
    )
    add_override(
        nix_repo, "npext", '[[override]]\nreason = "links nptest"\nsystem-libraries = ["nptest"]\n'
    )
    add_override(
        nix_repo,
        "npext",
        '[[override]]\nreason = "runs pg_config"\nnative-build-inputs = ["postgresql.pg_config"]\n',
    )
    result = build(nix_repo)
    assert result.ok, result.log_tail
    assert len(result.notes) == 2
    assert "links nptest [nptest]" in result.notes[0]
    assert "runs pg_config [postgresql.pg_config]" in result.notes[1]


# --- the nightly re-validation cannot judge native inputs without nixpkgs --------------------


def test_standalone_revalidation_leaves_native_entries_inconclusive(tmp_path: Path) -> None:
    from bot.model.overrides import parse_entry
    from bot.nightly.revalidate import Locked, _check, current_system, native_only

    def override(**data: object) -> object:
        return parse_entry("psycopg2", {"reason": "r", **data}, "t", tmp_path)  # type: ignore[arg-type]

    native = override(**{"native-build-inputs": ["postgresql.pg_config"]})
    assert native_only(native)  # type: ignore[arg-type]
    assert not native_only(override(**{"build-inputs": ["libyaml"], "env": {"A": "1"}}))  # type: ignore[arg-type]
    assert not native_only(override(env={"A": "1"}))  # type: ignore[arg-type]
    opts = BuildOptions(
        sets=[], python=None, out_link=None, keep_going=False, repo=tmp_path, nixpkgs=False
    )
    here = frozenset({current_system()})
    where = [Locked("native", "3.13", "2.9.13", here, sdists=here)]  # built from its sdist
    finding = _check(opts, native, 1, where, {}, {"3.13": sys.executable}, None)  # type: ignore[arg-type]
    assert finding.kind == "inconclusive"
    assert "only a build with nixpkgs can tell" in (finding.detail or "")
