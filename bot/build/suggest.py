"""Overrides suggested from build failures: a failed package's build log -> the entry that fixes it.

A native build fails in a handful of recognisable ways: a missing C header, a pkg-config
module, a library at link time or at load time (the builder's linkage check), a command run
at build time (cargo, pkg-config, gfortran, pg_config), or a Python module the build backend
imports.  Each maps, through ``overrides/native-map.toml``, to one ``[[override]]`` entry of
the overrides library (a nixpkgs attribute path for ``build-inputs``, ``native-build-inputs``
or ``system-libraries``; a project for ``build-requires``), with the log line as evidence.
The builder also logs an sdist's PEP 725 ``[external]`` table: its DepURLs map the same way.

Suggestions are hints for a maintainer, in the order the log shows the evidence; nothing is
written to the library.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.errors import BotError

SECTIONS = ("headers", "pkg-config", "libraries", "commands", "modules", "external")
MAX_LOG = 4 * 1024 * 1024

HEADER = re.compile(r"fatal error: ([^\s:'\"]+): No such file or directory")
PKG_CONFIG = [
    re.compile(r"Package '?([\w.+-]+?)'?,? was not found in the pkg-config search path"),
    re.compile(r"No package '([\w.+-]+)' found"),
    re.compile(r"Dependency \"?([\w.+-]+?)\"? not found"),
    re.compile(r"Run-time dependency ([\w.+-]+) found: NO"),
]
LINK = re.compile(r"cannot find -l([\w.+-]+)")
LINKAGE = re.compile(r"linkage check: (\S+) needs (\S+), which nothing provides")
LOAD = re.compile(r"ImportError: ([\w.+-]+\.so[\w.]*): cannot open shared object file")
COMMANDS = [
    re.compile(r"(?:^|[\s:])([\w.+-]+): (?:command )?not found\s*$"),
    re.compile(r"FileNotFoundError: \[Errno 2\] No such file or directory: '([^'/\s]+)'"),
    re.compile(r"error: command '([^']+)' failed: No such file or directory"),
    re.compile(r"\b([\w.+-]+) executable not found"),
    re.compile(r"Program '?([\w.+-]+)'? not found"),
]
#: messages that name what is missing in words
PHRASES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"Cargo, the Rust package manager, is not installed"), "commands", "cargo"),
    (re.compile(r"can't find Rust compiler"), "commands", "cargo"),
    (
        re.compile(r"make sure the libxml2 and libxslt development packages"),
        "headers",
        "libxml/xmlversion.h",
    ),
    (
        re.compile(r"make sure the libxml2 and libxslt development packages"),
        "headers",
        "libxslt/xslt.h",
    ),
    (
        re.compile(r"No Fortran compiler found|Unknown compiler\(s\): \[\['gfortran'"),
        "commands",
        "gfortran",
    ),
]
MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
BACKEND = re.compile(r"Backend '([\w.:]+)' is not available")
EXTERNAL = re.compile(r"nixpkgs-python: \[external\] ([\w-]+): (.+)$")
SDIST = re.compile(r"nixpkgs-python: building \S+ \S+ from \S+\.(?:tar\.gz|zip|tar\.bz2)")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RUNTIME_PHASE = re.compile(r"nixpkgs-python: (?:imports check|installing )")


class SuggestError(BotError):
    """The native map is invalid."""


@dataclass(frozen=True)
class NativeMap:
    """``overrides/native-map.toml``: what a build looks for -> nixpkgs attribute path."""

    sections: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def get(self, section: str, key: str) -> str | None:
        return self.sections.get(section, {}).get(key)


def load_map(path: Path) -> NativeMap:
    """Read a native map (an absent file is an empty map)."""
    if not path.exists():
        return NativeMap()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SuggestError(f"cannot read the native map: {exc}", where=str(path)) from exc
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise SuggestError(
            f"unknown sections: {', '.join(unknown)}",
            where=str(path),
            hint=f"sections: {', '.join(SECTIONS)}",
        )
    for name, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise SuggestError(f"[{name}] must map names to strings", where=str(path))
    return NativeMap({k: dict(v) for k, v in data.items()})


def repo_map(repo: Path) -> NativeMap:
    """The native map of the repository at ``repo``."""
    return load_map(repo / "overrides" / "native-map.toml")


@dataclass(frozen=True)
class Suggestion:
    """One override entry that would fix a failure: ``key = [value]``, with its evidence."""

    key: str
    value: str
    reason: str
    evidence: str

    def entry(self) -> str:
        """The ``[[override]]`` table, as TOML."""
        return (
            f'[[override]]\nreason = "{_toml_escape(self.reason)}"\n'
            f'{self.key} = ["{_toml_escape(self.value)}"]\n'
        )

    def to_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "value": self.value,
            "reason": self.reason,
            "evidence": self.evidence,
        }

    def line(self) -> str:
        """One line for people."""
        return f'{self.key} = ["{self.value}"]  # {self.reason} (log: {self.evidence})'


def _toml_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _strip_depurl(url: str) -> str:
    return re.split(r"[@?#]", url.strip(), maxsplit=1)[0]


def suggest(log: str, native: NativeMap) -> list[Suggestion]:
    """Suggested override entries for a failed build's ``log``, in the order of their evidence."""
    log = ANSI.sub("", log[-MAX_LOG:])  # compilers colour their messages
    sdist = SDIST.search(log) is not None
    found: list[Suggestion] = []
    seen: set[tuple[str, str]] = set()

    def add(key: str, value: str | None, reason: str, evidence: str) -> None:
        if value and (key, value) not in seen:
            seen.add((key, value))
            found.append(Suggestion(key, value, reason, evidence.strip()[:300]))

    external: list[tuple[str, str, str]] = []
    runtime = False
    for raw in log.splitlines():
        line = raw.strip()
        if RUNTIME_PHASE.search(line):
            runtime = True
        if m := EXTERNAL.search(line):
            table, urls = m.group(1), m.group(2)
            external += [(table, _strip_depurl(u), line) for u in urls.split(",") if u.strip()]
            continue
        if m := HEADER.search(line):
            header = m.group(1)
            add(
                "build-inputs",
                native.get("headers", header),
                f"the build includes <{header}>",
                line,
            )
            continue
        for pattern in PKG_CONFIG:
            if m := pattern.search(line):
                module = m.group(1)
                attr = native.get("pkg-config", module)
                if attr:
                    add("native-build-inputs", "pkg-config", "the build runs pkg-config", line)
                add("build-inputs", attr, f"the build asks pkg-config for {module}", line)
                break
        if m := LINK.search(line):
            add(
                "build-inputs",
                native.get("libraries", m.group(1)),
                f"the build links -l{m.group(1)}",
                line,
            )
        if m := LINKAGE.search(line) or LOAD.search(line):
            soname = m.group(m.lastindex or 1)
            add(
                "build-inputs" if sdist else "system-libraries",
                native.get("libraries", soname),
                f"its extension modules link {soname}",
                line,
            )
            continue
        for pattern, section, key in PHRASES:
            if pattern.search(line):
                key_attr = native.get(section, key)
                what = f"<{key}>" if section == "headers" else key
                add(
                    "build-inputs" if section == "headers" else "native-build-inputs",
                    key_attr,
                    f"the build needs {what}",
                    line,
                )
        for pattern in COMMANDS:
            if m := pattern.search(line):
                command = m.group(1).rsplit("/", 1)[-1]
                add(
                    "native-build-inputs",
                    native.get("commands", command),
                    f"the build runs {command}",
                    line,
                )
                break
        if not runtime and (m := MODULE.search(line) or BACKEND.search(line)):
            module = m.group(1).split(":")[0]
            top = module.split(".")[0]
            project = native.get("modules", module) or native.get("modules", top)
            add("build-requires", project, f"its build backend imports {module}", line)
    for table, url, line in external:
        attr = native.get("external", url)
        key = "native-build-inputs" if table == "build-requires" else "build-inputs"
        add(key, attr, f"its pyproject.toml [external] {table} lists {url}", line)
    return found


def render(package: str, suggestions: list[Suggestion]) -> list[str]:
    """Lines for people: each suggested entry of ``overrides/packages/<package>.toml``."""
    if not suggestions:
        return []
    lines = [f"suggested overrides (overrides/packages/{package}.toml):"]
    lines += [f"  {s.line()}" for s in suggestions]
    return lines
