"""``nixpkgs-python lock``: resolve each set for each of its Python versions and write locks."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version

from bot.core import files
from bot.core.errors import BotError
from bot.core.files import default_cache_dir
from bot.lock import document as lockfile
from bot.lock import memo as lockcache
from bot.lock.index.cache import Cache
from bot.lock.index.models import IndexRoute
from bot.model import locks
from bot.model.nixpkgs import Release, release_of
from bot.model.overrides import Override, extra_build_requires, load_overrides
from bot.model.sets import DEFAULT_INDEX, PackageSet, load_sets
from bot.model.targets import Target, targets_for

if TYPE_CHECKING:
    from bot.lock.index.client import IndexClient
    from bot.lock.provider import Request
    from bot.lock.resolve import Resolution, Resolved


log = logging.getLogger(__name__)

Status = Literal["created", "updated", "unchanged", "would-change", "failed"]


@dataclass(frozen=True)
class Hold:
    """A package kept at its last good version because a newer one broke the set's build."""

    name: str
    version: str  #: the version kept
    first_failing: str  #: the first version that did not build
    reason: str
    since: str  #: date of the first night it was held (YYYY-MM-DD)
    #: the systems whose build needed it (CI's commit job records them; empty: not said)
    systems: tuple[str, ...] = ()

    def to_toml(self) -> dict[str, Any]:
        """The record in ``[tool.nixpkgs-python].held``."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "first-failing": self.first_failing,
            "reason": self.reason,
            "since": self.since,
        }
        if self.systems:
            out["systems"] = list(self.systems)
        return out

    @classmethod
    def from_toml(cls, data: Mapping[str, Any]) -> Hold:
        """Read a record back."""
        systems = data.get("systems", [])
        return cls(
            str(data["name"]),
            str(data["version"]),
            str(data.get("first-failing", "")),
            str(data.get("reason", "")),
            str(data.get("since", "")),
            tuple(str(s) for s in systems) if isinstance(systems, list) else (),
        )


def recorded_holds(document: Mapping[str, Any] | None) -> dict[str, Hold]:
    """The holds a lock records."""
    return {h.name: h for h in (Hold.from_toml(d) for d in locks.held(document))}


@dataclass
class LockOptions:
    """Parsed options of ``nixpkgs-python lock``."""

    repo: Path
    sets: Sequence[str] = ()
    python: str | None = None
    exclude_newer: datetime | None = None  #: None: the run's start (or the lock's, with check)
    index_url: str | None = None
    cache_dir: Path | None = None
    check: bool = False
    offline: bool = False
    concurrency: int = 16
    retries: int = 4
    #: ask the index for every page even when a cached copy fetched after the snapshot would
    #: do (an index or mirror that backdates upload times breaks that assumption)
    refresh: bool = False
    #: the nightly's memo (:func:`bot.lockcache.night_lookup`): when the index serves every
    #: page the last resolution of these inputs read unchanged, and the snapshot sees the same
    #: files, the lock on disk stands without resolving (it must be that resolution's lock)
    night_memo: bool = False


@dataclass
class LockOutcome:
    """What happened to one lock file."""

    set: str
    python: str
    path: Path
    status: Status
    packages: int = 0
    changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: the parsed old and new lock documents and the new file's text (for the nightly)
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    text: str = ""
    #: Project-URLs of the packages that changed (for changelog links)
    project_urls: dict[str, dict[str, str]] = field(default_factory=dict)
    #: name -> (locked version, newest allowed version, days behind) of every package
    freshness: dict[str, tuple[str, str | None, float | None]] = field(default_factory=dict)
    #: taken from an earlier identical resolution (bot.lock.memo), not resolved again
    reused: bool = False
    #: packages held below their newest release by a wheel baseline, Requires-Python or a
    #: missing artifact: {name, locked, newest, reason}, by name (empty when ``reused`` from
    #: :func:`bot.lockcache.lookup`; the night memo keeps them)
    refusals: list[dict[str, str]] = field(default_factory=list)

    def load(self) -> None:
        """Parse the documents a quiet night left unparsed (``old`` and ``new`` are then the
        lock on disk)."""
        if self.new is None and self.text and self.status == "unchanged":
            self.old = self.new = tomllib.loads(self.text)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "set": self.set,
            "python": self.python,
            "path": str(self.path),
            "status": self.status,
            "packages": self.packages,
            "changes": [{"name": n, "old": o, "new": v} for n, o, v in self.changes],
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "reused": self.reused,
            "refusals": self.refusals,
        }


def index_routes(pset: PackageSet, index_url: str | None) -> list[IndexRoute]:
    """The default index (``--index-url`` or PyPI) plus the set's extra indexes."""
    routes = [IndexRoute(index_url or DEFAULT_INDEX, None)]
    routes += [IndexRoute(i.url, i.packages) for i in pset.indexes]
    return routes


def build_request(
    pset: PackageSet,
    python: str,
    exclude_newer: datetime | None,
    extra: Callable[[NormalizedName, Version], Sequence[Requirement]] | None = None,
    holds: Mapping[str, Hold] | None = None,
    release: Release | None = None,
) -> Request:
    """The resolver request for one set and Python version (held packages pinned), for the
    systems and wheel baselines of ``release`` (default:
    :data:`bot.model.nixpkgs.DEFAULT_RELEASE`)."""

    def extra_build(name: NormalizedName, version: Version) -> list[Requirement]:
        out = [loc.value for loc in pset.build_requirements.get(name, ())]
        if extra is not None:
            out += extra(name, version)
        return out

    from bot.lock.provider import Request  # the resolver's modules load only when resolving

    return Request(
        requirements=[(r.value, r.where) for r in pset.requirements],
        constraints=[(c.value, c.where) for c in pset.constraints],
        held=[
            (Requirement(f"{h.name}=={h.version}"), f"held back: {h.reason}")
            for h in (holds or {}).values()
        ],
        targets=set_targets(pset, python, release),
        prefer="sdist" if pset.prefer == "sdist" else "wheel",
        exclude_newer=exclude_newer,
        extra_build_requires=extra_build,
    )


@functools.cache
def _detected(python: str) -> tuple[str, str]:
    from bot.model.interpreters import detect

    found = detect([python]).get(python, "")
    if not found and f"{sys.version_info[0]}.{sys.version_info[1]}" == python:
        found = sys.executable
    return python, found


def hook_python(repo: Path, python: str) -> tuple[str, str] | Callable[[], tuple[str, str]]:
    """(``python``, executable) that sdist metadata hooks run with: the interpreter recorded
    for that version in ``nix/local.json``, else one :func:`bot.model.interpreters.detect` finds,
    else this one if it is that version ("" when there is none).  The search is returned
    as a function, for the index client to call when a hook first runs (it probes
    interpreters); ``nix/local.json`` is read now, so a malformed one fails the lock here."""
    from bot.model.interpreters import load_local

    given = load_local(repo).get(python)
    if given:
        return python, given
    return functools.partial(_detected, python)


def set_targets(
    pset: PackageSet, python: str, release: Release | None = None
) -> tuple[Target, ...]:
    """The targets of one lock: ``python`` on the set's ``systems`` (default: every system of
    ``release``); a system the release does not support is an error naming it."""
    every = targets_for(python) if release is None else targets_for(python, release)
    if not pset.systems:
        return every
    have = {t.system for t in every}
    unsupported = [s for s in pset.systems if s not in have]
    if unsupported:
        name = every[0].release.name
        raise BotError(
            f"set {pset.name!r} lists {', '.join(unsupported)}, which nixpkgs {name} does not "
            "support",
            where=str(pset.path / "set.yaml"),
            hint=f"nixpkgs {name} has {', '.join(sorted(have))}",
        )
    return tuple(t for t in every if t.system in pset.systems)


def overrides_inputs(library: Mapping[NormalizedName, list[Override]]) -> dict[str, list[str]]:
    """The part of the overrides library that can change a lock: its build requirements."""
    out: dict[str, list[str]] = {}
    for name, entries in sorted(library.items()):
        reqs = [f"{o.from_ or ''}..{o.until or ''}:{r}" for o in entries for r in o.build_requires]
        if reqs:
            out[name] = sorted(reqs)
    return out


def _read_existing(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None


def lock_one(
    pset: PackageSet,
    python: str,
    client: IndexClient | Callable[[], IndexClient],
    opts: LockOptions,
    started: datetime,
    *,
    progress: Callable[[str], None] | None = None,
    write: bool = True,
    holds: Mapping[str, Hold] | None = None,
    library: Mapping[NormalizedName, list[Override]] | None = None,
) -> LockOutcome:
    """Resolve and (unless checking, or ``write=False``) write one lock atomically.

    ``library`` is the overrides library (read from ``opts.repo`` when not given: callers
    locking many sets read it once).  A lock at a past snapshot whose every input is
    unchanged is taken from :mod:`bot.lock.memo` instead of being resolved again (not with
    ``opts.refresh``).
    """
    path = pset.lock_path(python)
    t0 = time.monotonic()
    old_text = _read_text(path)
    if library is None:
        library = load_overrides(opts.repo)
    routes = index_routes(pset, opts.index_url)
    inputs_hash = pset.inputs_hash(python, overrides_inputs(library))
    held = [h.to_toml() for _, h in sorted((holds or {}).items())]
    release = release_of(opts.repo)  # the pin's systems and wheel baselines
    cache = Cache(opts.cache_dir if opts.cache_dir is not None else default_cache_dir())
    night_key = None
    if opts.night_memo and not opts.check:
        night_key = _night_key(pset, python, inputs_hash, held, release, routes)
        if old_text is not None:
            snapshot = opts.exclude_newer or started
            quiet = _quiet_night(pset, python, path, client, cache, night_key, old_text,
                                 snapshot, t0)  # fmt: skip
            if quiet is not None:
                return quiet
    old = _parse_lock(old_text)
    problem = locks.unusable(old) if old is not None else None
    if problem is not None:  # valid TOML, but not a lock the diff and the hints can read
        raise lockfile.damaged(path, f"the existing lock is not usable: {problem}")
    exclude_newer: datetime | None = opts.exclude_newer
    if exclude_newer is None:
        recorded = locks.provenance(old or {}).get("exclude-newer")
        exclude_newer = lockfile.parse_time(recorded) if opts.check and recorded else started
    key = lockcache.result_key(
        _result_inputs(pset, python, inputs_hash, held, release), python, exclude_newer, routes
    )
    text = None if opts.refresh else lockcache.lookup(cache, key, exclude_newer)
    resolution = None
    if text is None:
        # first the client (an online one starts loading certificates in the background)
        index = client() if callable(client) else client
        from bot.lock.resolve import resolve  # the resolver is only needed on a miss

        request = build_request(
            pset,
            python,
            exclude_newer,
            lambda n, v: extra_build_requires(library, n, v),
            holds,
            release,
        )
        request = dataclasses.replace(
            request, hints=[NormalizedName(n) for n in locks.lock_packages(old or {})]
        )
        _configure_for(index, opts, python, exclude_newer)
        log.debug("%s (Python %s): resolving", pset.name, python)
        resolution = resolve(index, request, progress=progress, concurrency=opts.concurrency)
        info = lockfile.LockInfo(
            set_name=pset.name,
            python=python,
            exclude_newer=exclude_newer,
            indexes=[r.url for r in routes],
            inputs_hash=inputs_hash,
            description=pset.description,
            maintainers=pset.maintainers,
            held=held,
        )
        text = lockfile.dumps(lockfile.build_lock(resolution, info, request.targets))
        new = tomllib.loads(text)
        lockfile.validate(new, str(path))
        if not opts.refresh and index.recorded is not None:
            lockcache.store(index.cache, key, exclude_newer, index.recorded, text)
    else:
        new = tomllib.loads(text)
    outcome = _outcome(pset, python, path, old, new, text, resolution, opts, write, t0)
    if night_key is not None and resolution is not None and index.recorded is not None:
        stored = lockcache.night_store(
            index.cache,
            night_key,
            exclude_newer,
            index.recorded,
            text,
            outcome.packages,
            outcome.freshness,
            outcome.refusals,
        )
        log.debug("%s (Python %s): night memo %s", pset.name, python,
                  "stored" if stored else "not stored")  # fmt: skip
    return outcome


def _night_key(
    pset: PackageSet,
    python: str,
    inputs_hash: str,
    held: Sequence[Mapping[str, str]],
    release: Release,
    routes: Sequence[IndexRoute],
) -> str:
    """The night memo's key of one lock (:func:`bot.lockcache.night_key`)."""
    return lockcache.night_key(
        {
            "inputs": inputs_hash,
            "set": [pset.description, list(pset.maintainers), _definition_digest(pset)],
            "held": list(held),
            "python": python,
            "release": repr(release),
            "targets": [t.system for t in set_targets(pset, python, release)],
            "indexes": [repr(r) for r in routes],
        }
    )


def night_pages(
    pset: PackageSet,
    python: str,
    opts: LockOptions,
    started: datetime,
    library: Mapping[NormalizedName, list[Override]],
    holds: Mapping[str, Hold] | None = None,
) -> list[str]:
    """The pages a quiet night of this lock would ask the index for (those its night memo
    records; none without one), so that a caller can start fetching them early."""
    inputs_hash = pset.inputs_hash(python, overrides_inputs(library))
    held = [h.to_toml() for _, h in sorted((holds or {}).items())]
    release = release_of(opts.repo)
    key = _night_key(pset, python, inputs_hash, held, release, index_routes(pset, opts.index_url))
    cache = Cache(opts.cache_dir if opts.cache_dir is not None else default_cache_dir())
    entry = lockcache.night_lookup(cache, key, opts.exclude_newer or started, warn=False)
    return list(entry.pages) if entry is not None else []


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""  # unreadable: as if absent, and never the memo's lock


def _parse_lock(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _result_inputs(
    pset: PackageSet,
    python: str,
    inputs_hash: str,
    held: Sequence[Mapping[str, str]],
    release: Release,
) -> str:
    """What a lock's text depends on besides the index pages and the snapshot, for the memo
    of past results: the resolution's inputs and what the document names (the set's name,
    description and maintainers: a reused text must be this set's, as it is defined now)."""
    return json.dumps(
        {
            "inputs": inputs_hash,
            "set": [pset.name, pset.description, list(pset.maintainers), _definition_digest(pset)],
            "held": list(held),
            "release": repr(release),
            "targets": [t.system for t in set_targets(pset, python, release)],
        },
        sort_keys=True,
    )


def _definition_digest(pset: PackageSet) -> str:
    """sha256 over the set directory's files other than its locks (set.yaml and what it
    names), so any edit of the definition is a new night memo key."""
    digest = hashlib.sha256()
    try:
        files = sorted(p for p in pset.path.iterdir() if p.is_file())
        for p in files:
            if not (p.name.startswith("pylock.") and p.suffix == ".toml"):
                digest.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    except OSError:
        return ""
    return digest.hexdigest()


def _quiet_night(
    pset: PackageSet,
    python: str,
    path: Path,
    client: IndexClient | Callable[[], IndexClient],
    cache: Cache,
    key: str,
    old_text: str,
    exclude_newer: datetime,
    t0: float,
) -> LockOutcome | None:
    """The lock on disk, unchanged, when the night memo says resolving would make it again:
    an entry for these inputs whose window holds the snapshot, made for this lock's content,
    and every page it read served with the same body now.  None: resolve."""
    entry = lockcache.night_lookup(cache, key, exclude_newer)
    if entry is None:
        log.debug("%s (Python %s): no night memo", pset.name, python)
        return None
    if entry.lock != lockcache.lock_digest(old_text.encode()):
        log.debug("%s (Python %s): the lock on disk is not the memo's", pset.name, python)
        return None
    index = client() if callable(client) else client
    now = index.page_digests(entry.pages)
    moved = sorted(url for url, digest in entry.pages.items() if now.get(url) != digest)
    if moved:
        log.debug("%s (Python %s): %d page(s) changed, e.g. %s", pset.name, python, len(moved),
                  moved[0])  # fmt: skip
        return None
    log.debug("%s (Python %s): every page unchanged: not resolving", pset.name, python)
    return LockOutcome(
        pset.name,
        python,
        path,
        "unchanged",
        entry.packages,
        seconds=time.monotonic() - t0,
        text=old_text,
        freshness={
            k: (str(v[0]), _opt_str(v[1]), _opt_float(v[2])) for k, v in entry.freshness.items()
        },
        reused=True,
        refusals=entry.refusals,
    )


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _outcome(
    pset: PackageSet,
    python: str,
    path: Path,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    text: str,
    resolution: Resolution | None,
    opts: LockOptions,
    write: bool,
    t0: float,
) -> LockOutcome:
    diff = locks.package_changes(old, new)
    if old is not None and lockfile.same_content(old, new, tolerate_absent=opts.check):
        status: Status = "unchanged"
    elif opts.check:
        status = "would-change"
    else:
        if write:
            files.write_atomic(path, text)
        status = "created" if old is None else "updated"
    packages = resolution.packages if resolution is not None else {}
    project_urls, freshness, refusals = _resolved_details(diff, packages)
    return LockOutcome(
        pset.name,
        python,
        path,
        status,
        len(new.get("packages", [])),
        diff,
        seconds=time.monotonic() - t0,
        old=old,
        new=new,
        text=text,
        project_urls=project_urls,
        freshness=freshness,
        reused=resolution is None,
        refusals=refusals,
    )


def _configure_for(
    index: IndexClient, opts: LockOptions, python: str, exclude_newer: datetime
) -> None:
    """Set the client up for one lock.  One client serves every lock of a run (its pages and
    metadata are shared), so each lock sets its own snapshot (which its build backends are
    also installed as of), sdist-hook interpreter and refresh, and starts recording what it
    fetches (for the memo)."""
    index.snapshot = None if opts.refresh else exclude_newer
    index.build_cutoff = exclude_newer
    index.build_python = hook_python(opts.repo, python)
    index.refresh = opts.refresh
    index.record()


def _resolved_details(
    diff: Sequence[tuple[str, str | None, str | None]],
    packages: Mapping[NormalizedName, Resolved],
) -> tuple[
    dict[str, dict[str, str]], dict[str, tuple[str, str | None, float | None]], list[dict[str, str]]
]:
    """What a fresh resolution tells beyond the lock (nothing for a memoized one): the
    project URLs of the packages that moved, each package's freshness, and the refused newer
    versions (:class:`LockOutcome`'s ``project_urls``, ``freshness`` and ``refusals``)."""
    return (
        {
            name: dict(pkg.metadata.project_urls)
            for name, _, new_version in diff
            if new_version is not None and (pkg := packages.get(NormalizedName(name)))
        },
        {
            name: (
                str(pkg.version),
                str(pkg.newest) if pkg.newest is not None else None,
                pkg.lag_days,
            )
            for name, pkg in packages.items()
        },
        [
            {
                "name": name,
                "locked": str(pkg.version),
                "newest": str(pkg.refused[0]),
                "reason": pkg.refused[1],
            }
            for name, pkg in sorted(packages.items())
            if pkg.refused is not None
        ],
    )


def lock_sets(
    opts: LockOptions, *, progress: Callable[[str], None] | None = None
) -> list[LockOutcome]:
    """Lock every requested set and Python version; one failure never stops the others.

    Bad set names or definitions raise before anything is resolved, so nothing is written.
    """
    if opts.check:  # reads only
        return _lock_sets(opts, progress)
    from bot.core.repolock import repository_lock

    with repository_lock(opts.repo, "lock"):
        return _lock_sets(opts, progress)


def _lock_sets(opts: LockOptions, progress: Callable[[str], None] | None) -> list[LockOutcome]:
    started = datetime.now(UTC).replace(microsecond=0)
    psets = load_sets(opts.repo, list(opts.sets))
    library = load_overrides(opts.repo)
    outcomes: list[LockOutcome] = []
    clients: dict[tuple[IndexRoute, ...], IndexClient] = {}

    def client_for(key: tuple[IndexRoute, ...]) -> IndexClient:
        if key not in clients:
            from bot.lock.index.client import IndexClient  # slow to import: only when resolving

            clients[key] = IndexClient(
                key,
                cache_dir=opts.cache_dir,
                offline=opts.offline,
                concurrency=opts.concurrency,
                retries=opts.retries,
            )
        return clients[key]

    try:
        for pset in psets:
            pythons = [opts.python] if opts.python else list(pset.python)
            for python in pythons:
                if python not in pset.python:
                    raise BotError(
                        f"set {pset.name!r} is not defined for Python {python}",
                        where=str(pset.path / "set.yaml"),
                        hint=f"it lists {', '.join(pset.python)}",
                    )
            key = tuple(index_routes(pset, opts.index_url))
            for python in pythons:
                if progress:
                    progress(f"{pset.name} (Python {python})")
                # --check resolves with the holds the lock records (they are its inputs too)
                holds = (
                    recorded_holds(_read_existing(pset.lock_path(python))) if opts.check else None
                )
                try:
                    outcomes.append(
                        lock_one(
                            pset,
                            python,
                            functools.partial(client_for, key),
                            opts,
                            started,
                            progress=progress,
                            holds=holds,
                            library=library,
                        )
                    )
                except BotError as exc:
                    outcomes.append(
                        LockOutcome(
                            pset.name, python, pset.lock_path(python), "failed", error=str(exc)
                        )
                    )
    finally:
        for client in clients.values():
            client.close()
    return outcomes
