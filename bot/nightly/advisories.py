"""Security advisories in the night's report, from a local copy of the OSV database for PyPI.

The database is read from a directory of OSV records (``.json``, as in OSV's export, or
``.yaml``, as in a checkout of pypa/advisory-database's ``vulns/``) or from OSV's
``PyPI/all.zip`` itself; nothing is downloaded here (CI fetches the
zip in a workflow step, see README "Advisories").  Affected versions are evaluated as the OSV
schema describes: ``ECOSYSTEM`` ranges (``introduced`` / ``fixed`` / ``last_affected``
events, compared with :mod:`packaging.version`) and explicit ``versions`` lists.

A database that is missing or unreadable is one warning in the report, never a failed night.
"""

from __future__ import annotations

import functools
import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bot.lock.index.metadata import ARCHIVE_ERRORS
from bot.nightly import markdown as md

MAX_ENTRY = 4 * 1024 * 1024  #: bytes of one advisory file read
MAX_ENTRIES = 200_000  #: advisories read from one database
OSV_URL = "https://osv.dev/vulnerability/{id}"


class DatabaseError(Exception):
    """The advisory database cannot be read (turned into the report's warning)."""


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry of an advisory for a PyPI package."""

    package: str  #: normalized name
    ranges: tuple[tuple[tuple[str, str], ...], ...] = ()  #: ECOSYSTEM ranges' (kind, version)
    versions: frozenset[str] = frozenset()

    def matches(self, version: str) -> bool:
        """Whether ``version`` is affected (listed, or inside one of the ranges)."""
        try:
            parsed = Version(version)
        except InvalidVersion:
            return version in self.versions
        if version in self.versions or any(_same(parsed, v) for v in self.versions):
            return True
        return any(in_range(parsed, events) for events in self.ranges)


def _same(version: Version, text: str) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False


def _order(event: tuple[str, str]) -> tuple[int, Version]:
    kind, text = event
    if kind == "introduced" and text == "0":
        return (0, Version("0"))
    return (1, Version(text))


def in_range(version: Version, events: Sequence[tuple[str, str]]) -> bool:
    """The OSV schema's evaluation of one range: events in version order, the last one at or
    below ``version`` decides (``introduced`` opens, ``fixed`` and ``last_affected`` close)."""
    try:
        ordered = sorted(events, key=_order)
    except InvalidVersion:
        return False
    vulnerable = False
    for kind, text in ordered:
        if kind == "introduced":
            if text == "0" or version >= Version(text):
                vulnerable = True
        elif kind == "fixed":
            if version >= Version(text):
                vulnerable = False
        elif kind == "last_affected" and version > Version(text):
            vulnerable = False
    return vulnerable


@dataclass(frozen=True)
class Advisory:
    """One OSV advisory, reduced to what the report shows."""

    id: str
    summary: str
    aliases: tuple[str, ...]
    affected: tuple[Affected, ...]

    @property
    def url(self) -> str:
        """Its page on osv.dev."""
        return OSV_URL.format(id=self.id)


@dataclass
class Database:
    """Advisories by normalized package name, and how many entries were unreadable."""

    source: str
    by_package: dict[str, list[Advisory]] = field(default_factory=dict)
    skipped: int = 0

    def affecting(self, name: str, version: str) -> list[Advisory]:
        """Advisories that affect ``name`` at ``version``."""
        key = str(canonicalize_name(name))
        return [
            a
            for a in self.by_package.get(key, [])
            if any(x.package == key and x.matches(version) for x in a.affected)
        ]


def _text(value: Any) -> str:
    # YAML reads an unquoted 1.5 or 2 as a number (PyPA quotes versions; be lenient)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def parse_advisory(data: Any) -> Advisory | None:
    """An :class:`Advisory` from OSV JSON, or None when it concerns no PyPI package or is
    withdrawn; ValueError or TypeError when it is malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise TypeError("not an OSV record (no id)")
    if data.get("withdrawn"):
        return None
    affected = []
    for item in data.get("affected") or []:
        package = item.get("package") if isinstance(item, dict) else None
        if not isinstance(package, dict) or package.get("ecosystem") != "PyPI":
            continue
        name = package.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("an affected package without a name")
        ranges = []
        for rng in item.get("ranges") or []:
            if not isinstance(rng, dict) or rng.get("type") != "ECOSYSTEM":
                continue  # GIT ranges name commits, not releases
            events = []
            for event in rng.get("events") or []:
                if not isinstance(event, dict):
                    raise TypeError("a range event is not a table")
                for kind in ("introduced", "fixed", "last_affected"):
                    if _text(event.get(kind)):
                        events.append((kind, _text(event[kind])))
            ranges.append(tuple(events))
        versions = frozenset(_text(v) for v in item.get("versions") or [] if _text(v))
        affected.append(Affected(str(canonicalize_name(name)), tuple(ranges), versions))
    if not affected:
        return None
    aliases = tuple(a for a in data.get("aliases") or [] if isinstance(a, str))
    summary = data.get("summary") or data.get("details") or ""
    summary = summary.strip().splitlines()[0][:200] if isinstance(summary, str) and summary else ""
    return Advisory(data["id"], summary, aliases, tuple(affected))


SUFFIXES = (".json", ".yaml", ".yml")  #: OSV records: OSV's export (JSON), PyPA's (YAML)


def _records(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.suffix in SUFFIXES and f.is_file())
        for file in files:
            if file.stat().st_size > MAX_ENTRY:
                yield file.name, b""
                continue
            yield file.name, file.read_bytes()
        return
    if not path.exists():
        raise DatabaseError("not found")
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(SUFFIXES):
                    continue
                if info.file_size > MAX_ENTRY:
                    yield info.filename, b""
                    continue
                with archive.open(info) as handle:
                    yield info.filename, handle.read(MAX_ENTRY + 1)
    except ARCHIVE_ERRORS as exc:  # also an unknown method, an encrypted or corrupt member
        raise DatabaseError(
            f"not a readable directory or zip of OSV records ({exc or type(exc).__name__})"
        ) from None


def _decode(name: str, raw: bytes) -> Any:
    if name.endswith(".json"):
        return json.loads(raw)
    return yaml.safe_load(raw.decode("utf-8"))


def load(path: Path) -> Database:
    """Read the database at ``path`` (a directory or a zip); DatabaseError if unreadable.

    A malformed record is skipped and counted; a database with no readable record at all is
    an error (a wrong path, or a zip of something else)."""
    db = Database(str(path))
    seen = 0
    try:
        for name, raw in _records(path):
            seen += 1
            if seen > MAX_ENTRIES:
                raise DatabaseError(f"more than {MAX_ENTRIES} records")
            try:
                advisory = parse_advisory(_decode(name, raw))
            except (ValueError, TypeError, AttributeError, UnicodeDecodeError, yaml.YAMLError):
                db.skipped += 1
                continue
            if advisory is None:
                continue
            for package in {a.package for a in advisory.affected}:
                db.by_package.setdefault(package, []).append(advisory)
    except OSError as exc:
        raise DatabaseError(str(exc)) from None
    if seen == 0:
        raise DatabaseError("no OSV records (*.json) in it")
    if seen == db.skipped:
        raise DatabaseError(f"none of its {seen} records is a readable OSV record")
    return db


# --- a night's view ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """An advisory affecting one locked package version."""

    id: str
    package: str
    version: str
    summary: str
    url: str
    aliases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "package": self.package,
            "version": self.version,
            "summary": self.summary,
            "url": self.url,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class SetAdvisories:
    """The advisories of one set before and after the night."""

    name: str
    old: tuple[Hit, ...]
    new: tuple[Hit, ...]

    @property
    def fixed(self) -> tuple[Hit, ...]:
        """Affecting the old lock, not the new one."""
        now = {h.id for h in self.new}
        return tuple(h for h in self.old if h.id not in now)

    @property
    def introduced(self) -> tuple[Hit, ...]:
        """Affecting the new lock, not the old one."""
        before = {h.id for h in self.old}
        return tuple(h for h in self.new if h.id not in before)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "old": [h.to_json() for h in self.old],
            "new": [h.to_json() for h in self.new],
            "fixed": [h.id for h in self.fixed],
            "introduced": [h.id for h in self.introduced],
        }


def hits(db: Database, packages: Iterable[tuple[str, str]]) -> tuple[Hit, ...]:
    """Every advisory affecting one of ``packages`` ((name, version) pairs), sorted."""
    found = {
        (a.id, str(canonicalize_name(name)), version): a
        for name, version in packages
        for a in db.affecting(name, version)
    }
    return tuple(
        Hit(i, n, v, a.summary, a.url, a.aliases) for (i, n, v), a in sorted(found.items())
    )


@dataclass(frozen=True)
class NightAdvisories:
    """What the report shows: per set, or the one warning."""

    sets: tuple[SetAdvisories, ...] = ()
    warning: str | None = None
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "database": self.source,
            "warning": self.warning,
            "sets": {s.name: s.to_json() for s in self.sets},
        }


@functools.lru_cache(maxsize=2)
def _load_cached(path: Path, _stamp: tuple[int, int]) -> Database:
    return load(path)


def load_once(path: Path) -> Database:
    """:func:`load`, remembered while the file (or directory) is unchanged: the report, the
    JSON and the pull request body of one night read the database once."""
    try:
        st = path.stat()
    except OSError:
        return load(path)
    return _load_cached(path, (st.st_mtime_ns, st.st_size))


def for_sets(
    path: Path,
    locks: Mapping[str, tuple[Iterable[tuple[str, str]], Iterable[tuple[str, str]]]],
) -> NightAdvisories:
    """The advisories of each set's old and new packages (``{set: (old, new)}``)."""
    try:
        db = load_once(path)
    except DatabaseError as exc:
        return NightAdvisories(warning=f"advisory database {path}: {exc}", source=str(path))
    warning = None
    if db.skipped:
        warning = f"advisory database {path}: {db.skipped} unreadable records skipped"
    rows = tuple(
        SetAdvisories(name, hits(db, old), hits(db, new)) for name, (old, new) in locks.items()
    )
    return NightAdvisories(rows, warning, str(path))


def _hit_line(h: Hit) -> str:
    # every field comes from the advisory database: escaped, the URL linked only when safe
    alias = f" ({', '.join(map(md.text, h.aliases[:2]))})" if h.aliases else ""
    summary = f": {md.text(h.summary)}" if h.summary else ""
    ref = md.link(h.id, h.url) or md.text(h.id)
    return f"- {ref}{alias} {md.text(h.package)} {md.text(h.version)}{summary}"


def to_markdown(night: NightAdvisories) -> str:
    """The report's "Advisories" section."""
    lines = ["## Advisories", ""]
    if night.warning:
        lines += [f"⚠️ {night.warning}", ""]
    if not night.sets:
        return "\n".join(lines)
    for s in night.sets:
        still = [h for h in s.new if h not in s.introduced]
        if not (s.fixed or s.introduced or still):
            lines.append(f"- **{s.name}**: none known")
            continue
        lines += ["", f"### {s.name}", ""]
        for title, group in (("fixed tonight", s.fixed), ("new tonight", s.introduced)):
            if group:
                lines += [f"{title}:", *(_hit_line(h) for h in group), ""]
        if still:
            lines += ["still affecting:", *(_hit_line(h) for h in still), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def night_locks(
    repo: Path, sets: Iterable[tuple[str, str | None]]
) -> dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """``{set: (old, new)}`` packages of a night's sets (``(name, commit)``): new from the
    working tree, old from the commit's parent (the same as new when nothing was committed)."""
    import tomllib

    from bot.core.proc import run
    from bot.model import locks

    out: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {}
    for name, commit in sets:
        old: list[tuple[str, str]] = []
        new: list[tuple[str, str]] = []
        for path in locks.locks_in(repo / "sets" / name):
            text = path.read_text(encoding="utf-8")
            before = text
            if commit:
                rel = path.relative_to(repo).as_posix()
                proc = run(["git", "-C", str(repo), "show", f"{commit}^:{rel}"], check=False)
                before = proc.stdout if proc.returncode == 0 else ""
            for doc, into in ((text, new), (before, old)):
                try:
                    packages = tomllib.loads(doc).get("packages", []) if doc else []
                except tomllib.TOMLDecodeError:
                    packages = []
                into += [
                    (str(p["name"]), str(p.get("version", "")))
                    for p in packages
                    if isinstance(p, dict) and isinstance(p.get("name"), str)
                ]
        out[name] = (sorted(set(old)), sorted(set(new)))
    return out
