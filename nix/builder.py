"""The one build recipe of the Nix library, run by the target interpreter with ``-S``.

Both interpreter sources (nixpkgs and standalone) run this same file:

    python -S builder.py package   # one package: install a wheel, or build an sdist then install
    python -S builder.py env       # an interpreter environment: a venv-like symlink tree

Everything comes from the environment: ``out`` (the output path), ``TMPDIR`` and
``nixpkgsPythonConfig`` (JSON written by nix/package.nix or nix/env.nix).  Only the standard
library is used, plus ``installer`` from the path the config names (for the ``installer``
package itself: its own wheel, which is importable as a zip).
"""

from __future__ import annotations

import configparser
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

CONFIG = json.loads(os.environ.get("nixpkgsPythonConfig", "{}"))
TAG = "nixpkgs-python"


def log(msg: str) -> None:
    print(f"{TAG}: {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"{TAG}: package '{CONFIG.get('pname', '?')}' {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def site_packages(prefix: str | Path) -> Path:
    return Path(prefix) / "lib" / f"python{CONFIG['pythonVersion']}" / "site-packages"


# --- scripts ---------------------------------------------------------------------------------

SCRIPT = """\
#!{shebang}
# -*- coding: utf-8 -*-
{preamble}import re
import sys
from {module} import {import_name}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({func}())
"""


def script_text(shebang: str, module: str, attr: str, paths: list[str]) -> str:
    """A console script; ``paths`` are site directories added (with their .pth files) first.

    A package's own scripts (``paths`` given) run their interpreter with ``-S``, so the
    ``sitecustomize`` of nixpkgs' Python does not run: they read its ``NIX_PYTHONPATH`` (the
    site directories nixpkgs' ``python.withPackages``/``buildEnv`` wrappers set) themselves,
    after their own, and take it out of the environment as that ``sitecustomize`` does."""
    preamble = ""
    if paths:
        listed = "".join(f"    {p!r},\n" for p in paths)
        preamble = (
            "import os\nimport site\n"
            f"for _p in [\n{listed}] + os.environ.pop('NIX_PYTHONPATH', '').split(os.pathsep):\n"
            "    if _p:\n        site.addsitedir(_p)\n"
        )
    import_name = attr.split(".", maxsplit=1)[0]
    return SCRIPT.format(
        shebang=shebang, preamble=preamble, module=module, import_name=import_name, func=attr
    )


def entry_points(dist_info: Path) -> list[tuple[str, str, str]]:
    """(name, module, attr) of the console and gui scripts of one installed distribution."""
    path = dist_info / "entry_points.txt"
    if not path.exists():
        return []
    parser = configparser.ConfigParser(delimiters="=", interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    out = []
    for section in ("console_scripts", "gui_scripts"):
        if parser.has_section(section):
            for name, value in parser.items(section):
                module, _, attr = value.partition(":")
                attr = attr.split("[")[0].strip()
                out.append((name, module.strip(), attr or "main"))
    return out


# --- install a wheel -----------------------------------------------------------------------


def install_wheel(wheel: Path, out: Path, runtime_paths: list[str]) -> None:
    """Install ``wheel`` into ``out`` with ``installer``; scripts find ``runtime_paths``."""
    for entry in reversed(CONFIG["installerPath"]):
        sys.path.insert(0, entry)
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import RecordEntry
    from installer.sources import WheelFile
    from installer.utils import Scheme

    site = site_packages(out)
    shebang = f"{CONFIG['interpreter']} -S"
    paths = [str(site), *(str(site_packages(p)) for p in runtime_paths)]

    class Destination(SchemeDictionaryDestination):
        def write_script(self, name: str, module: str, attr: str, section: str) -> RecordEntry:
            data = script_text(shebang, module, attr, paths).encode()
            with io.BytesIO(data) as stream:
                entry = self.write_to_fs(Scheme("scripts"), name, stream, is_executable=True)
            target = Path(self.scheme_dict["scripts"]) / name
            target.chmod(0o755)
            return entry

    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(out / "include" / f"python{CONFIG['pythonVersion']}" / CONFIG["pname"]),
        "scripts": str(out / "bin"),
        "data": str(out),
    }
    destination = Destination(
        scheme, interpreter=shebang, script_kind="posix", bytecode_optimization_levels=(0,)
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, additional_metadata={"INSTALLER": b"nixpkgs-python\n"})


# --- environments (venv-like symlink trees) ----------------------------------------------------


def merge_tree(src: Path, dest: Path, conflicts: list[str]) -> None:
    """Symlink ``src``'s entries into ``dest``, descending where directories overlap."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dest / entry.name
        if not target.exists() and not target.is_symlink():
            target.symlink_to(entry)
        elif target.is_symlink() and target.resolve().is_dir() and entry.is_dir():
            first = target.resolve()
            target.unlink()
            merge_tree(first, target, conflicts)
            merge_tree(entry, target, conflicts)
        elif target.is_dir() and not target.is_symlink() and entry.is_dir():
            merge_tree(entry, target, conflicts)
        else:
            conflicts.append(str(target))


def make_env(out: Path, packages: list[str], interpreter: str) -> None:
    """A venv-like layout: pyvenv.cfg, bin/python*, merged site-packages, rewritten scripts."""
    site = site_packages(out)
    site.mkdir(parents=True)
    bindir = out / "bin"
    bindir.mkdir()
    home = os.path.dirname(interpreter)
    (out / "pyvenv.cfg").write_text(
        f"home = {home}\ninclude-system-site-packages = false\n"
        f"version = {CONFIG['pythonVersion']}\nexecutable = {interpreter}\n"
    )
    major = CONFIG["pythonVersion"].split(".")[0]
    for name in ("python", f"python{major}", f"python{CONFIG['pythonVersion']}"):
        (bindir / name).symlink_to(interpreter)
    python = str(bindir / "python")
    conflicts: list[str] = []
    for pkg in packages:
        psite = site_packages(pkg)
        if psite.is_dir():
            merge_tree(psite, site, conflicts)
    for pkg in packages:
        written: set[str] = set()
        psite = site_packages(pkg)
        for dist_info in sorted(psite.glob("*.dist-info")) if psite.is_dir() else []:
            for name, module, attr in entry_points(dist_info):
                target = bindir / name
                if target.exists():
                    conflicts.append(str(target))
                    continue
                target.write_text(script_text(python, module, attr, []))
                target.chmod(0o755)
                written.add(name)
        pbin = Path(pkg) / "bin"
        for entry in sorted(pbin.iterdir()) if pbin.is_dir() else []:
            target = bindir / entry.name
            if entry.name in written or target.exists():
                continue
            head = entry.read_bytes()[:256] if entry.is_file() else b""
            if head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0]:
                body = entry.read_bytes().split(b"\n", 1)[1]
                target.write_bytes(f"#!{python}\n".encode() + body)
                target.chmod(0o755)
            else:
                target.symlink_to(entry)
    for path in conflicts:
        log(f"warning: {path} is provided by more than one package; the first one wins")


# --- sdists ---------------------------------------------------------------------------------


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack an sdist; return its single top-level directory."""
    dest.mkdir(parents=True)
    name = archive.name
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)  # noqa: S202 - our own locked, hash-checked input
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def run(argv: list[str], *, cwd: Path | None = None, what: str) -> None:
    log("$ " + " ".join(argv))
    proc = subprocess.run(argv, cwd=cwd, check=False)
    if proc.returncode != 0:
        fail(f"{what} failed (exit code {proc.returncode})")


def log_external(source: Path) -> None:
    """Log the sdist's PEP 725 ``[external]`` table (the DepURLs of what it needs from outside
    PyPI): a failed build's suggestions (bot/build/suggest.py) map them to nixpkgs attributes."""
    import tomllib

    try:
        external = tomllib.loads((source / "pyproject.toml").read_text()).get("external", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    for table in ("build-requires", "host-requires", "dependencies"):
        urls = external.get(table, []) if isinstance(external, dict) else []
        if isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls):
            log(f"[external] {table}: {', '.join(urls)}")


def build_sdist(sdist: Path, tmp: Path) -> Path:
    """Build a wheel from ``sdist`` with ``build --no-isolation`` in a venv of the build closure."""
    source = unpack(sdist, tmp / "source")
    log_external(source)
    for patch in CONFIG.get("patches", []):
        run(
            ["patch", "-p1", "--batch", "--forward", "-i", patch],
            cwd=source,
            what=f"applying patch {os.path.basename(patch)}",
        )
    env_dir = tmp / "build-env"
    make_env(env_dir, CONFIG["buildPaths"], CONFIG["interpreter"])
    dist = tmp / "dist"
    run(
        [
            str(env_dir / "bin" / "python"),
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "--outdir",
            str(dist),
            str(source),
        ],
        what="building the wheel (python -m build --no-isolation)",
    )
    wheels = sorted(dist.glob("*.whl"))
    if len(wheels) != 1:
        fail(f"the sdist build produced {len(wheels)} wheels, expected 1")
    return wheels[0]


# --- checks ---------------------------------------------------------------------------------

SKIP_MODULES = {"test", "tests", "testing", "conftest", "setup", "docs", "examples"}
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def top_level_modules(site: Path) -> list[str]:
    """Top-level importable names of the installed distribution(s) in ``site``."""
    names: set[str] = set()
    for dist_info in site.glob("*.dist-info"):
        top = dist_info / "top_level.txt"
        if top.exists():
            names.update(line.strip() for line in top.read_text().splitlines() if line.strip())
            continue
        record = dist_info / "RECORD"
        for line in record.read_text().splitlines() if record.exists() else []:
            path = line.rsplit(",", 2)[0]
            if path.startswith("../") or ".dist-info/" in path or ".data/" in path:
                continue
            parts = path.split("/")
            if len(parts) > 1:
                if parts[-1].endswith(".py") or ".so" in parts[-1]:
                    names.add(parts[0])
            elif parts[0].endswith(".py"):
                names.add(parts[0][:-3])
            elif ".so" in parts[0] or parts[0].endswith(".pyd"):
                names.add(parts[0].split(".")[0])
    found = sorted(
        n for n in names if MODULE.match(n) and n not in SKIP_MODULES and not n.startswith("__")
    )
    # private top-level modules are often plugins importing optional dependencies
    # (hypothesis' _hypothesis_pytestplugin needs pytest): check them only when alone
    public = [n for n in found if not n.startswith("_")]
    return public or found


def build_cores() -> int:
    """How many checks to run at once: nix's ``--cores`` (``NIX_BUILD_CORES``; 0 is all)."""
    try:
        cores = int(os.environ.get("NIX_BUILD_CORES", "1"))
    except ValueError:
        cores = 1
    return cores if cores > 0 else os.cpu_count() or 1


def check_failed(pname: str, what: str, detail: str) -> str:
    """The line bot/build/command.py reads to name the package whose check failed an environment."""
    return f"{TAG}: package '{pname}' {what} check failed: {detail}"


def modules_of(check: dict[str, Any]) -> list[str]:
    """The modules one package's imports check imports (none: nothing to check)."""
    setting = check.get("importsCheck", True)
    if setting is False:
        return []
    if isinstance(setting, list):
        return [str(m) for m in setting]
    return top_level_modules(site_packages(str(check["path"])))


#: one interpreter importing every package's modules in turn; writes the packages whose
#: imports raised to the file named by argv[1] (JSON), and only then
IMPORT_ALL = """\
import importlib, json, sys, traceback
groups = json.loads(sys.argv[2])
failed = {}
for pname, modules in groups:
    for m in modules:
        try:
            importlib.import_module(m)
        except BaseException:
            failed[pname] = traceback.format_exc()
            break
with open(sys.argv[1], "w") as f:
    json.dump(failed, f)
"""


def shared_pass(python: Path, groups: list[tuple[str, list[str]]], tmp: Path) -> list[str]:
    """Import every package's modules in one interpreter; the packages that failed there (all
    of them when the interpreter itself did not finish, e.g. an extension crashed it)."""
    cwd = tmp / "imports-all"
    cwd.mkdir()
    result = tmp / "imports-all.json"
    proc = subprocess.run(
        [str(python), "-I", "-c", IMPORT_ALL, str(result), json.dumps(groups)],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not result.exists():
        log(
            f"imports checks: the shared interpreter exited with {proc.returncode}; "
            "checking every package on its own"
        )
        return [pname for pname, _ in groups]
    return list(json.loads(result.read_text()))


def import_one(python: Path, pname: str, modules: list[str], tmp: Path) -> tuple[str, str] | None:
    """Import one package's modules in a fresh interpreter of the environment; (message,
    output) when that fails, None when it works."""
    code = "import importlib\n" + f"for m in {modules!r}:\n    importlib.import_module(m)\n"
    cwd = tmp / f"imports-{pname}"
    cwd.mkdir()
    proc = subprocess.run(
        [str(python), "-I", "-c", code],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return None
    message = check_failed(
        pname,
        "imports",
        f"could not import {', '.join(modules)} in this environment (disable or "
        "narrow it with `imports-check` in the package's overrides)",
    )
    return message, (proc.stdout + proc.stderr).strip()


def tests_one(env: Path, check: dict[str, Any], packages: list[str], tmp: Path) -> str | None:
    """Opt-in: run one package's tests in the environment plus its check inputs (from its
    patched source for an sdist); the failure line, or None."""
    pname = str(check["pname"])
    command = check.get("checkCommand")
    if not command:
        return None
    work = tmp / f"tests-{pname}"
    source = None
    if check.get("kind") == "sdist":
        source = unpack(Path(str(check["src"])), work / "source")
        for patch in check.get("patches") or []:
            run(
                ["patch", "-p1", "--batch", "--forward", "-i", str(patch)],
                cwd=source,
                what=f"applying patch {os.path.basename(str(patch))} for {pname}'s tests",
            )
    check_env = work / "check-env"
    make_env(check_env, [*packages, *check.get("checkPaths", [])], CONFIG["interpreter"])
    environ = dict(os.environ)
    environ.update({str(k): str(v) for k, v in (check.get("env") or {}).items()})
    environ["PATH"] = f"{check_env / 'bin'}:{os.environ.get('PATH', '')}"
    argv = [str(a) for a in command]
    log(f"tests check of {pname}: $ " + " ".join(argv))
    proc = subprocess.run(argv, cwd=source or work, env=environ, check=False)
    if proc.returncode != 0:
        return check_failed(pname, "tests", f"{' '.join(argv)} exited with {proc.returncode}")
    return None


def env_checks(env: Path, checks: list[dict[str, Any]], packages: list[str]) -> None:
    """Every package's checks against the whole environment ``env``, in one pass.

    The imports checks: one interpreter imports every package's modules in turn (the modules
    they share are imported once: 7-9x faster than one interpreter per package, see
    BENCHMARKS.md); a package that fails there is checked again on its own, in a fresh
    interpreter (as many at once as the build has cores), and fails the environment only if
    it fails alone too, so a failure is always the package's own.  Then the opt-in tests
    checks.  Each failure names its package; any failure fails the environment."""
    if not checks:
        return
    from concurrent.futures import ThreadPoolExecutor

    tmp = Path(tempfile.mkdtemp(prefix="nixpkgs-python-checks-"))
    python = env / "bin" / "python"
    groups = [(str(c["pname"]), m) for c in checks if (m := modules_of(c))]
    log(f"imports checks: {len(groups)} packages in one interpreter")
    suspects = set(shared_pass(python, groups, tmp)) if groups else set()
    again = [(p, m) for p, m in groups if p in suspects]
    cores = build_cores()
    if again:
        log(f"imports checks: {len(again)} again on their own, {cores} at a time")
    with ThreadPoolExecutor(max_workers=cores) as pool:
        results = list(pool.map(lambda g: import_one(python, g[0], g[1], tmp), again))
    failures: list[str] = []
    for (pname, _), result in zip(again, results, strict=True):
        if result is None:
            log(
                f"warning: package '{pname}' imports only on its own, not after the other "
                "packages of this environment"
            )
            continue
        message, output = result
        if output:
            print(output, file=sys.stderr, flush=True)
        print(message, file=sys.stderr, flush=True)
        failures.append(message)
    for check in checks:
        if check.get("doCheck"):
            failure = tests_one(env, check, packages, tmp)
            if failure is not None:
                print(failure, file=sys.stderr, flush=True)
                failures.append(failure)
    if failures:
        print(f"{TAG}: {len(failures)} check(s) failed in {env.name}", file=sys.stderr, flush=True)
        sys.exit(1)


# --- the metadata the lock was resolved from ----------------------------------------------
# A lock made from metadata no hash bound to its file (HTTP range reads of a wheel on an index
# without PEP 658 hashes) records it (`unverified-metadata`: the file read, the sha256 of its
# METADATA as read, its Requires-Dist).  Before installing, the wheel's own METADATA must say
# the same: else the index served metadata that is not the file's, and the lock's dependencies
# came from it.  The file that was read must match byte for byte; any other artifact (another
# wheel, a wheel built from the sdist) must declare the same set of requirements, compared
# after a normalisation that only undoes formatting (spaces, quotes, name case, the order of
# specifiers).  Markers are compared as written, not evaluated: a difference fails closed.

_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?(.*)$", re.S)


def metadata_headers(data: bytes) -> dict[str, list[str]]:
    """The header fields of METADATA, exactly as bot.lock.index.metadata.headers reads them."""
    end = len(data)
    for blank in (b"\n\n", b"\r\n\r\n"):
        at = data.find(blank)
        if at != -1:
            end = min(end, at)
    text = data[:end].decode("utf-8", errors="surrogateescape")
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            if last is not None:
                last[-1] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        last = fields.setdefault(name.strip().lower(), [])
        last.append(value.strip())
    return fields


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_key(text: str) -> str:
    """A requirement string with its formatting undone (for comparing two builds' metadata)."""
    req, _, marker = text.partition(";")
    match = _NAME.match(req.strip())
    if match is None:
        return re.sub(r"\s+", "", text)
    extras = sorted(_canonical(e.strip()) for e in (match.group(2) or "[]")[1:-1].split(","))
    rest = re.sub(r"\s+", "", match.group(3))
    if not rest.startswith("@"):  # a version specifier, maybe in the old "(>=1)" form
        rest = ",".join(sorted(p for p in rest.removeprefix("(").removesuffix(")").split(",") if p))
    mark = re.sub(r"\s+", "", marker).replace("'", '"')
    return f"{_canonical(match.group(1))}[{','.join(e for e in extras if e)}]{rest};{mark}"


def wheel_metadata(wheel: Path) -> bytes:
    """The METADATA of a wheel (its top-level *.dist-info, the package's own if several)."""
    with zipfile.ZipFile(wheel) as zf:
        names = [
            n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
        own = [n for n in names if _canonical(n.split("-", 1)[0]) == _canonical(CONFIG["pname"])]
        if not (own or names):
            fail(f"{wheel.name} has no .dist-info/METADATA")
        return zf.read((own or names)[0])


def metadata_differences(data: bytes, locked: dict[str, object], exact: bool) -> list[str]:
    """How ``data`` (a wheel's METADATA) differs from the lock's record of the metadata it was
    resolved from; ``exact``: the wheel is the file that record was read from."""
    ours = metadata_headers(data).get("requires-dist", [])
    theirs = [str(r) for r in locked.get("requires-dist", [])]  # type: ignore[attr-defined]
    key = (lambda r: r) if exact else requirement_key
    mine = {key(r): r for r in ours}
    recorded = {key(r): r for r in theirs}
    out = []
    extra = sorted(recorded[k] for k in recorded.keys() - mine.keys())
    missing = sorted(mine[k] for k in mine.keys() - recorded.keys())
    if extra:
        out.append("Requires-Dist in the lock but not in the file: " + ", ".join(map(repr, extra)))
    if missing:
        out.append(
            "Requires-Dist in the file but not in the lock: " + ", ".join(map(repr, missing))
        )
    if exact and not out and hashlib.sha256(data).hexdigest() != locked.get("sha256"):
        out.append("its other fields (Requires-Python, Provides-Extra, ...) differ")
    return out


def check_locked_metadata(wheel: Path) -> None:
    """Fail unless ``wheel`` declares the metadata the lock was resolved from (when the lock
    recorded it as unverified)."""
    locked = CONFIG.get("lockedMetadata")
    if not locked:
        return
    read = str(locked.get("file", ""))
    exact = CONFIG["kind"] == "wheel" and CONFIG["file"] == read
    differences = metadata_differences(wheel_metadata(wheel), locked, exact)
    built = (
        CONFIG["file"]
        if CONFIG["kind"] == "wheel"
        else f"{wheel.name} (built from {CONFIG['file']})"
    )
    if differences:
        fail(
            f"{CONFIG['version']}: the METADATA of {built} is not the metadata its lock was "
            f"resolved from (read from {read} with HTTP range requests, no hash to check it):\n"
            + "".join(f"  - {d}\n" for d in differences)
            + "  The index served metadata that is not the file's, so the lock's dependencies "
            "may be wrong: re-lock against an index you trust (one stating PEP 658 metadata "
            "hashes), or report it to the index."
        )
    log(f"metadata check: {built} declares the metadata the lock was resolved from")


# --- the linkage check ------------------------------------------------------------------------
# Every ELF file an installed package ships (extension modules, bundled libraries) names the
# libraries it needs (DT_NEEDED).  Each must be bundled with the package (`foo.libs/`), be the
# interpreter's or the C runtime's, or come from a declared input (an override's build-inputs
# or system-libraries, whose lib directories the config lists): else the package would fail
# at import time on a machine that is not this one.  Standalone builds also accept what this
# machine's loader finds, but warn that nixpkgs would miss it.

ELF_MAGIC = b"\x7fELF"
#: what glibc and the compiler runtime (stdenv) provide to every build
RUNTIME_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libmvec.so.1",
    "libanl.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "ld-linux.so.2",
    "libgcc_s.so.1",
    "libstdc++.so.6",
}


def elf_dynamic(path: Path) -> tuple[list[str], list[str]] | None:  # noqa: PLR0911
    """(DT_NEEDED names, DT_RPATH/DT_RUNPATH entries) of an ELF file; None if it is not one
    (or has no dynamic section).  A small reader: the ELF header, the program headers, the
    PT_DYNAMIC segment and the string table it points to."""
    with open(path, "rb") as f:
        head = f.read(64)
        if (
            len(head) < 52
            or head[:4] != ELF_MAGIC
            or head[4] not in (1, 2)
            or head[5] not in (1, 2)
        ):
            return None
        wide, order = head[4] == 2, "<" if head[5] == 1 else ">"

        if wide:
            phoff, phentsize, phnum = (
                struct.unpack_from(order + "Q", head, 32)[0],
                *struct.unpack_from(order + "HH", head, 54),
            )
        else:
            phoff, phentsize, phnum = (
                struct.unpack_from(order + "I", head, 28)[0],
                *struct.unpack_from(order + "HH", head, 42),
            )
        if phnum > 4096 or phentsize < (56 if wide else 32):
            return None
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        loads: list[tuple[int, int, int]] = []
        dynamic: tuple[int, int] | None = None
        for i in range(phnum):
            raw = table[i * phentsize : (i + 1) * phentsize]
            if len(raw) < phentsize:
                return None
            if wide:
                ptype, _, offset, vaddr, _, filesz = struct.unpack_from(order + "IIQQQQ", raw)
            else:
                ptype, offset, vaddr, _, filesz = struct.unpack_from(order + "IIIII", raw)
            if ptype == 1:  # PT_LOAD
                loads.append((vaddr, offset, filesz))
            elif ptype == 2:  # PT_DYNAMIC
                dynamic = (offset, filesz)
        if dynamic is None:
            return None
        f.seek(dynamic[0])
        data = f.read(min(dynamic[1], 1 << 20))
        size = 16 if wide else 8
        fmt = order + ("qQ" if wide else "iI")
        entries = [struct.unpack_from(fmt, data, i) for i in range(0, len(data) - size + 1, size)]
        strtab = next((v for t, v in entries if t == 5), None)  # DT_STRTAB (an address)
        if strtab is None:
            return None
        base = next((o + strtab - va for va, o, sz in loads if va <= strtab < va + sz), None)
        if base is None:
            return None

        def string(at: int) -> str:
            f.seek(base + at)
            return f.read(4096).split(b"\0", 1)[0].decode("utf-8", "replace")

        needed = [string(v) for t, v in entries if t == 1]  # DT_NEEDED
        paths = [p for t, v in entries if t in (15, 29) for p in string(v).split(":") if p]
        return needed, paths


def elf_files(root: Path) -> list[Path]:
    """The ELF files under ``root`` (symlinks not followed)."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                if f.read(4) == ELF_MAGIC:
                    out.append(path)
    return out


def machine_libraries() -> dict[str, str]:
    """soname -> path of what this machine's dynamic loader finds (``ldconfig -p``)."""
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "/usr/bin/ldconfig"):
        if os.path.exists(ldconfig):
            proc = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False)
            found: dict[str, str] = {}
            for line in proc.stdout.splitlines()[1:]:
                name, sep, path = line.strip().partition(" => ")
                if sep:
                    found.setdefault(name.split(" (")[0], path)
            return found
    return {}


def linkage_check(out: Path) -> None:
    """Fail when an installed ELF file needs a library nothing here provides (see above)."""
    import sysconfig

    files = elf_files(out)
    if not files:
        return
    linkage = CONFIG.get("linkage")
    standalone = linkage is None
    # bundled: any file of the package (its runtime closure is not an input of its build:
    # a library only another wheel of the closure bundles is not seen here)
    provided: dict[str, str] = {}
    for root in [out, *map(Path, CONFIG.get("runtimePaths", []))]:
        for path in root.rglob("*.so*"):
            provided.setdefault(path.name, "bundled")
    search = [
        Path(p) / d for p in (linkage or {}).get("libraryPaths", []) for d in ("lib", "lib64")
    ]
    search.append(Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent"))
    machine = machine_libraries() if standalone else {}
    missing: dict[str, list[str]] = {}
    machine_only: dict[str, str] = {}
    for path in files:
        dyn = elf_dynamic(path)
        if dyn is None:
            continue
        needed, rpaths = dyn
        for name in needed:
            if name in provided or name in RUNTIME_LIBRARIES or name.startswith("libpython"):
                continue
            dirs = [*search, *(Path(p.replace("$ORIGIN", str(path.parent))) for p in rpaths)]
            if any((d / name).exists() for d in dirs):
                continue
            site = site_packages(out)
            rel = str(path.relative_to(site if path.is_relative_to(site) else out))
            if name in machine:
                machine_only.setdefault(name, rel)
            else:
                missing.setdefault(name, []).append(rel)
    declared = CONFIG.get("declaredInputs", [])
    for name, rel in sorted(machine_only.items()):
        log(
            f"linkage check: warning: {rel} needs {name}, found only on this machine "
            f"({machine[name]}): nixpkgs would miss it unless a declared input provides it"
            + (f" (declared: {' '.join(declared)})" if declared else "")
        )
    if missing:
        for name, rels in sorted(missing.items()):
            log(f"linkage check: {rels[0]} needs {name}, which nothing provides")
        fail(
            "linkage check failed: "
            + ", ".join(sorted(missing))
            + " not bundled, not the interpreter's or libc's, and no declared input provides "
            "it (add the nixpkgs attribute providing it to the package's overrides: "
            "`build-inputs` for an sdist, `system-libraries` for a wheel)"
        )
    log(f"linkage check: {len(files)} ELF file(s), every needed library found")


# --- main -----------------------------------------------------------------------------------


def package() -> None:
    out = Path(os.environ["out"])
    tmp = Path(tempfile.mkdtemp(prefix="nixpkgs-python-"))
    src = Path(CONFIG["src"])
    if CONFIG["kind"] == "sdist":
        log(f"building {CONFIG['pname']} {CONFIG['version']} from {src.name}")
        wheel = build_sdist(src, tmp)
    else:
        # installer wants a *.whl filename: the store path carries a hash prefix
        wheel = tmp / CONFIG["file"]
        shutil.copyfile(src, wheel)
    check_locked_metadata(wheel)
    log(f"installing {wheel.name}")
    # the runtime dependencies are not inputs of a package: its scripts see only itself
    # (an environment rewrites them), its checks run in the environments (env_checks)
    install_wheel(wheel, out, [])
    linkage_check(out)


def main() -> None:
    os.environ.setdefault("SOURCE_DATE_EPOCH", "315532800")
    tmpdir = os.environ.get("TMPDIR") or os.environ.get("NIX_BUILD_TOP") or "/tmp"  # noqa: S108
    os.environ["HOME"] = tmpdir
    os.environ["NO_COLOR"] = "1"
    tempfile.tempdir = tmpdir
    mode = sys.argv[1] if len(sys.argv) > 1 else "package"
    if mode == "env":
        make_env(Path(os.environ["out"]), CONFIG["packages"], CONFIG["interpreter"])
        env_checks(Path(os.environ["out"]), CONFIG.get("checks", []), CONFIG["packages"])
    elif mode == "package":
        package()
    else:
        fail(f"unknown builder mode {mode!r}")


if __name__ == "__main__":
    main()
