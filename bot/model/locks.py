"""Version differences between two locks of a set, and the commit message that describes them.

Works on parsed lock files (``tomllib.load`` of ``sets/<name>/pylock.pyXY.toml``), so it needs
nothing but the PEP 751 fields ``packages[].name``/``version`` and the set's provenance table
``[tool.nixpkgs-python]`` (``python``, ``roots``, ``exclude-newer``).

A set has one lock per Python version.  :func:`combine` merges the per-Python diffs so that a
package bumped the same way in every lock appears once, and a package bumped differently is
shown once per Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.utils import canonicalize_name

# -- the layout: names and places (nix/sets.nix is the Nix-side twin of these rules) --------

TOOL = "nixpkgs-python"  #: the lock's ``[tool.<TOOL>]`` table: its provenance
SETS_DIR = "sets"  #: ``<repo>/sets/<set>/`` holds each set's locks
LOCK_GLOB = "pylock.py3*.toml"
_LOCK_NAME = re.compile(r"^pylock\.py3(\d+)\.toml$")
_LOCK_PATH = re.compile(r"sets/[^/]+/pylock\.py3\d+\.toml")


def python_tag(python: str) -> str:
    """``"3.12"`` -> ``"py312"``: a Python version as lock file names, ``default.nix``'s
    attributes (``<set>.py312``), out links and issue titles spell it."""
    return "py" + python.replace(".", "")


def lock_name(python: str) -> str:
    """``"3.12"`` -> ``"pylock.py312.toml"``."""
    return f"pylock.{python_tag(python)}.toml"


def python_of(path: Path | str) -> str | None:
    """The Python version a lock file is for (``pylock.py312.toml`` -> ``"3.12"``), or None
    when the name is not a set's lock."""
    match = _LOCK_NAME.match(Path(path).name)
    return f"3.{match.group(1)}" if match else None


def set_lock_path(repo: Path, set_name: str, python: str) -> Path:
    """Where the lock of ``set_name`` for ``python`` lives in the repository ``repo``."""
    return repo / SETS_DIR / set_name / lock_name(python)


def locks_in(directory: Path) -> list[Path]:
    """The set locks in ``directory`` (a set's directory, or a job's copy of its locks),
    oldest Python first."""
    found = [p for p in directory.glob(LOCK_GLOB) if python_of(p) is not None]
    return sorted(found, key=lambda p: int(p.name.removeprefix("pylock.py3").split(".")[0]))


def locked_pythons(set_dir: Path) -> list[str]:
    """The Python versions ``set_dir`` has a lock for, oldest first."""
    return [str(python_of(p)) for p in locks_in(set_dir)]


def repo_locks(repo: Path) -> list[Path]:
    """Every set's locks in the repository ``repo`` (sorted by path)."""
    sets_dir = repo / SETS_DIR
    if not sets_dir.is_dir():
        return []
    return sorted(p for p in sets_dir.glob(f"*/{LOCK_GLOB}") if python_of(p) is not None)


def is_lock_path(relative: str) -> bool:
    """Whether a repository-relative path (``sets/<set>/pylock.py3XY.toml``) is a set's lock."""
    return _LOCK_PATH.fullmatch(relative) is not None


# -- the contents read back: provenance, packages, holds ----------------------------------


def unusable(document: Mapping[str, Any]) -> str | None:
    """What in a parsed lock the readers here cannot use (a hand edit, a bad merge), or
    None: ``packages`` an array of tables each with a string ``name``, ``tool`` and its
    ``[tool.nixpkgs-python]`` tables, ``held`` an array of tables."""
    return _packages_problem(document.get("packages", [])) or _tool_problem(
        document.get("tool", {})
    )


def _packages_problem(packages: object) -> str | None:
    if not isinstance(packages, list):
        return f"packages is a {_kind(packages)}, not an array of tables ([[packages]])"
    for number, package in enumerate(packages, 1):
        if not isinstance(package, dict):
            return f"packages entry {number} is a {_kind(package)}, not a table"
        if not isinstance(package.get("name"), str):
            return f"packages entry {number} has no name"
        if not isinstance(package.get("version", ""), str):
            return f"the version of {package['name']!r} is not a string"
    return None


def _tool_problem(tool: object) -> str | None:
    if not isinstance(tool, dict):
        return f"tool is a {_kind(tool)}, not a table"
    table = tool.get(TOOL, {})
    if not isinstance(table, dict):
        return f"tool.{TOOL} is a {_kind(table)}, not a table"
    holds = table.get("held", [])
    if not isinstance(holds, list) or not all(isinstance(h, dict) for h in holds):
        return f"tool.{TOOL}.held is not an array of tables"
    return None


def _kind(value: object) -> str:
    """A TOML value's kind, as the TOML spec names it."""
    names = {str: "string", int: "integer", float: "float", bool: "boolean", list: "array"}
    return names.get(type(value), "table" if isinstance(value, dict) else type(value).__name__)


def provenance(document: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[tool.nixpkgs-python]`` table of a lock."""
    return dict(document.get("tool", {}).get(TOOL, {}))


def lock_packages(document: Mapping[str, Any]) -> dict[str, str]:
    """name -> version of every package in a lock document."""
    return {p["name"]: p.get("version", "") for p in document.get("packages", [])}


def held(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The hold records (``held``) a lock's provenance keeps."""
    return list(provenance(document or {}).get("held", []))


# -- the diff of two locks ----------------------------------------------------------------

SUBJECT_MAX = 72
ARROW = "→"

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, order=True)
class VersionChange:
    """One package whose version differs between the old and the new lock."""

    name: str
    old: str | None  # None: the package is new in this lock
    new: str | None  # None: the package left this lock

    @property
    def kind(self) -> ChangeKind:
        """``added``, ``removed`` or ``changed``."""
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"

    def short(self) -> str:
        """``name 1.0 → 1.1``, ``+name 1.0`` or ``-name``."""
        if self.old is None:
            return f"+{self.name} {self.new}"
        if self.new is None:
            return f"-{self.name}"
        return f"{self.name} {self.old} {ARROW} {self.new}"


@dataclass(frozen=True)
class LockDiff:
    """The version changes of one lock (one Python version of one set)."""

    python: str | None
    roots: tuple[str, ...] = ()
    exclude_newer: str | None = None
    old_exclude_newer: str | None = None
    added: tuple[VersionChange, ...] = ()
    removed: tuple[VersionChange, ...] = ()
    changed: tuple[VersionChange, ...] = ()

    @property
    def changes(self) -> tuple[VersionChange, ...]:
        """Every change, sorted by package name."""
        return tuple(sorted((*self.added, *self.removed, *self.changed)))

    @property
    def label(self) -> str:
        """``py312`` for Python 3.12 (``py?`` when the lock does not say)."""
        return python_label(self.python)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class CombinedChange:
    """A package's change across a set's locks: one variant per distinct (old, new) pair.

    ``pythons`` of a variant is empty when that change happened identically in every lock.
    """

    name: str
    variants: tuple[tuple[VersionChange, tuple[str, ...]], ...] = field(default=())

    def short(self) -> str:
        """The subject-line form, e.g. ``numpy 2.3.0 → 2.4.0 (py312), 2.3.0 → 2.3.5 (py313)``."""
        parts: list[str] = []
        for i, (change, pythons) in enumerate(self.variants):
            text = change.short()
            if i > 0:  # the name is said once
                text = text.removeprefix(change.name).strip()
                if change.kind != "changed":
                    text = change.short()
            if pythons:
                text += f" ({', '.join(pythons)})"
            parts.append(text)
        return ", ".join(parts)


def python_label(python: str | None) -> str:
    """``"3.12"`` -> ``"py312"``."""
    return python_tag(python) if python else "py?"


def _tool(lock: Mapping[str, Any]) -> Mapping[str, Any]:
    tool = lock.get("tool", {})
    section = tool.get(TOOL, {}) if isinstance(tool, Mapping) else {}
    return section if isinstance(section, Mapping) else {}


def _versions(lock: Mapping[str, Any] | None) -> dict[str, str]:
    if lock is None:
        return {}
    result: dict[str, str] = {}
    for package in lock.get("packages", []):
        name = canonicalize_name(str(package["name"]))
        result[name] = str(package.get("version", ""))
    return result


def package_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> list[tuple[str, str | None, str | None]]:
    """(name, old version, new version) for every package that differs, by name: the same
    diff as :func:`diff_locks`, as one list."""
    diff = diff_locks(old, new)
    return sorted((c.name, c.old, c.new) for c in (*diff.added, *diff.removed, *diff.changed))


def diff_locks(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], *, python: str | None = None
) -> LockDiff:
    """Compare two parsed locks; ``old`` is ``None`` for a lock that did not exist before.

    ``python`` defaults to ``[tool.nixpkgs-python].python`` of the new lock.
    """
    before, after = _versions(old), _versions(new)
    tool = _tool(new)
    added = tuple(VersionChange(n, None, after[n]) for n in sorted(after.keys() - before.keys()))
    removed = tuple(VersionChange(n, before[n], None) for n in sorted(before.keys() - after.keys()))
    changed = tuple(
        VersionChange(n, before[n], after[n])
        for n in sorted(after.keys() & before.keys())
        if before[n] != after[n]
    )
    roots = tuple(canonicalize_name(str(r)) for r in tool.get("roots", []))
    exclude_newer = tool.get("exclude-newer")
    old_exclude_newer = _tool(old).get("exclude-newer") if old is not None else None
    return LockDiff(
        python=python
        if python is not None
        else (str(tool["python"]) if "python" in tool else None),
        roots=roots,
        exclude_newer=str(exclude_newer) if exclude_newer is not None else None,
        old_exclude_newer=str(old_exclude_newer) if old_exclude_newer is not None else None,
        added=added,
        removed=removed,
        changed=changed,
    )


def _roots(diffs: Sequence[LockDiff]) -> set[str]:
    return {root for diff in diffs for root in diff.roots}


def combine(diffs: Iterable[LockDiff]) -> list[CombinedChange]:
    """Merge per-Python diffs; the set's roots come first, then the other packages by name."""
    diffs = list(diffs)
    labels = [d.label for d in diffs]
    by_name: dict[str, dict[VersionChange, list[str]]] = {}
    for diff in diffs:
        for change in diff.changes:
            by_name.setdefault(change.name, {}).setdefault(change, []).append(diff.label)
    roots = _roots(diffs)
    result: list[CombinedChange] = []
    for name in sorted(by_name, key=lambda n: (n not in roots, n)):
        variants = by_name[name]
        everywhere = len(variants) == 1 and len(next(iter(variants.values()))) == len(labels)
        result.append(
            CombinedChange(
                name,
                tuple(
                    (change, () if everywhere else tuple(pythons))
                    for change, pythons in sorted(variants.items(), key=lambda kv: kv[1])
                ),
            )
        )
    return result


def commit_subject(set_name: str, diffs: Iterable[LockDiff]) -> str:
    """One line naming the set and its most important changes.

    E.g. ``pytest: pytest 9.1.0 → 9.2.0, pluggy 1.6.0 → 1.7.0 (+2 more)``: roots first, at
    most three packages named, fewer when the line would exceed 72 characters.
    """
    changes = combine(diffs)
    if not changes:
        return f"{set_name}: refresh lock (no version changes)"
    named = len(changes) if len(changes) <= 3 else 2
    while True:
        text = f"{set_name}: " + ", ".join(c.short() for c in changes[:named])
        if named < len(changes):
            text += f" (+{len(changes) - named} more)"
        if len(text) <= SUBJECT_MAX or named == 1:
            return text
        named -= 1


def commit_body(set_name: str, diffs: Iterable[LockDiff]) -> str:
    """The full version-diff table and the index snapshot time, for the commit message body."""
    diffs = list(diffs)
    lines: list[str] = []
    locks = ", ".join(f"pylock.{d.label}.toml" for d in diffs)
    lines.append(f"Re-locked set {set_name} ({locks}).")
    snapshots = {d.exclude_newer for d in diffs}
    if len(snapshots) == 1:
        lines.append(f"Index snapshot (exclude-newer): {next(iter(snapshots)) or 'not recorded'}")
    else:
        for d in diffs:
            lines.append(f"Index snapshot (exclude-newer, {d.label}): {d.exclude_newer}")
    changes = combine(diffs)
    lines.append("")
    if not changes:
        lines.append("No version changes (hashes, artifacts or provenance only).")
        return "\n".join(lines) + "\n"
    rows = [("package", "old", "new", "python")]
    for combined in changes:
        for change, pythons in combined.variants:
            rows.append(
                (
                    combined.name,
                    change.old or "(added)",
                    change.new or "(removed)",
                    ", ".join(pythons) if pythons else "all",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    counts = {
        kind: sum(1 for d in diffs for c in d.changes if c.kind == kind)
        for kind in ("changed", "added", "removed")
    }
    lines.append("")
    lines.append(
        f"{counts['changed']} updated, {counts['added']} added, {counts['removed']} removed"
        " (counted per lock)."
    )
    return "\n".join(lines) + "\n"
