"""The resolvelib provider: requirements and candidates that carry their Nix systems.

A requirement is active on the targets where its marker holds; a candidate is a version with
a usable file (wheel or sdist) on every target that needs it.  The provider also walks ahead
of resolvelib, fetching the pages and metadata it will most likely ask for next, and starting
the build requirements' hooks of the sdists it will most likely pin: only ever for versions
the resolution could pin (the requirements that led there, the set's constraints, yanked,
exclude-newer, Requires-Python), since a hook runs the sdist's own code.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib.providers import AbstractProvider
from resolvelib.structs import RequirementInformation

from bot.core.errors import (
    BotError,
    MalformedMetadataError,
    MetadataError,
    PackageIndexError,
    ResolutionError,
)
from bot.lock.artifacts import choose_artifact, no_artifact_reason, refused_wheels
from bot.lock.index.models import CoreMetadata, DistFile, PackageIndex, Releases
from bot.model.targets import Target

log = logging.getLogger(__name__)

#: canonicalize_name, memoised (every requirement of every candidate's metadata names one)
_canonical = functools.lru_cache(maxsize=4096)(canonicalize_name)

#: versions whose metadata is fetched ahead when the resolver backtracks through a project
AHEAD = 8

#: the identifier of the interpreter itself (Requires-Python becomes a dependency on it)
PYTHON = NormalizedName("python")

#: "refused": a candidate's stand-in requirement that nothing satisfies (its metadata is
#: unusable, :meth:`Provider.get_dependencies`), so the resolution passes over it
Kind = Literal["root", "dependency", "build", "frontend", "refused"]


@dataclass(frozen=True)
class Req:
    """A requirement on one identifier, active on ``targets``."""

    name: NormalizedName
    extras: frozenset[NormalizedName]
    specifier: SpecifierSet
    targets: frozenset[Target]
    why: str  #: who asks, for explanations ("pytest 9.0.1", "sets/x/set.yaml:3")
    kind: Kind = "dependency"
    # derived once: resolvelib asks for these hundreds of thousands of times in a big set
    identifier: str = field(init=False, compare=False, repr=False)
    #: whether the specifier has an ``==`` or ``===`` clause (preference: pins first)
    pinned: bool = field(init=False, compare=False, repr=False)
    _contains: dict[Version, bool] = field(init=False, compare=False, repr=False)
    #: ``specifier.prereleases`` and the versions its ``==``/``===`` clauses name (computed
    #: on first use: :meth:`Provider.find_matches` asks for them on every call)
    _prereleases: bool | None = field(init=False, compare=False, repr=False)
    _pins: frozenset[Version] | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifier", _identifier(self.name, self.extras))
        object.__setattr__(self, "pinned", any(s.operator in ("==", "===") for s in self.specifier))
        object.__setattr__(self, "_contains", {})
        object.__setattr__(self, "_prereleases", None)
        object.__setattr__(self, "_pins", None)

    @property
    def prereleases(self) -> bool:
        """Whether the specifier asks for prereleases (``SpecifierSet.prereleases``)."""
        known = self._prereleases
        if known is None:
            known = bool(self.specifier.prereleases)
            object.__setattr__(self, "_prereleases", known)
        return known

    @property
    def pins(self) -> frozenset[Version]:
        """The versions the specifier's ``==``/``===`` clauses name (no wildcards)."""
        known = self._pins
        if known is None:
            known = exact_versions(self.specifier)
            object.__setattr__(self, "_pins", known)
        return known

    def contains(self, version: Version) -> bool:
        """Whether the specifier admits ``version`` (prereleases included; memoised)."""
        known = self._contains.get(version)
        if known is None:
            known = self._contains[version] = self.specifier.contains(version, prereleases=True)
        return known

    @classmethod
    def of(
        cls, req: Requirement, targets: frozenset[Target], why: str, kind: Kind = "dependency"
    ) -> Req:
        """The requirement ``req`` (its marker already applied) on ``targets``."""
        return cls(
            _canonical(req.name),
            frozenset(_canonical(e) for e in req.extras) if req.extras else frozenset(),
            req.specifier,
            targets,
            why,
            kind,
        )

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


@dataclass(frozen=True)
class Candidate:
    """A version of a project (with extras), acceptable on ``targets``."""

    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName]
    files: tuple[DistFile, ...]
    targets: frozenset[Target]
    identifier: str = field(init=False, compare=False, repr=False)
    #: :meth:`Provider.metadata_file`, once found (it depends only on the files and targets)
    metadata_file: DistFile | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifier", _identifier(self.name, self.extras))
        object.__setattr__(self, "metadata_file", None)

    def __str__(self) -> str:
        return f"{self.identifier} {self.version}"


def _identifier(name: str, extras: frozenset[NormalizedName]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


@dataclass(frozen=True)
class Request:
    """What to resolve: requirements with where they were written."""

    requirements: Sequence[tuple[Requirement, str]]
    constraints: Sequence[tuple[Requirement, str]] = ()
    targets: tuple[Target, ...] = ()
    prefer: Literal["wheel", "sdist"] = "wheel"
    exclude_newer: datetime | None = None
    #: pins of held-back packages: constraints that do not count for freshness
    held: Sequence[tuple[Requirement, str]] = ()
    #: projects the resolution will likely need (the previous lock's): fetched up front, in
    #: parallel, instead of one dependency level at a time
    hints: Sequence[NormalizedName] = ()
    #: extra build requirements per package (set.yaml build-requirements, overrides library)
    extra_build_requires: Callable[[NormalizedName, Version], Sequence[Requirement]] | None = None
    max_build_rounds: int = 8


class Provider(AbstractProvider[Req, Candidate, str]):
    """resolvelib provider over a :class:`PackageIndex` for the targets of one request."""

    def __init__(self, index: PackageIndex, request: Request, pool: ThreadPoolExecutor) -> None:
        self.index = index
        self.request = request
        self.pool = pool
        self.constraints: dict[NormalizedName, list[tuple[SpecifierSet, str]]] = {}
        #: the versions the set's constraints pin with ``==``/``===``: like a requirement's
        #: exact pin, a maintainer's choice, so they may take a release whose every file is
        #: yanked (PEP 592).  A hold's pin does not: the bot makes it, and a release yanked
        #: since (a security or breakage yank) is not one to keep shipping unasked
        self.constraint_pins: dict[NormalizedName, frozenset[Version]] = {}
        for held, given in ((False, request.constraints), (True, request.held)):
            for req, where in given:
                if not any(t.evaluate(req.marker) for t in request.targets):
                    continue
                name = canonicalize_name(req.name)
                self.constraints.setdefault(name, []).append((req.specifier, where))
                if not held:
                    pins = self.constraint_pins.get(name, frozenset())
                    self.constraint_pins[name] = pins | exact_versions(req.specifier)
        #: projects walked ahead from a requirement (:meth:`warm`), from a hint (:meth:`hint`)
        self.warmed: set[NormalizedName] = set()
        self._hinted: set[NormalizedName] = set()
        #: set when the resolution ends: speculative work not yet started is not started
        self._stopping = threading.Event()
        self._python = Version(request.targets[0].python_full_version) if request.targets else None
        self._metadata_warmed: set[tuple[NormalizedName, Version, frozenset[Target]]] = set()
        self._releases: dict[NormalizedName, Releases] = {}
        self._usable_cache: dict[tuple[NormalizedName, Version], list[DistFile]] = {}
        #: per (project, version, targets): the files of the candidate, or None when the
        #: version is refused there (why is recorded in rejections when first seen)
        self._verdicts: dict[
            tuple[NormalizedName, Version, frozenset[Target]], tuple[DistFile, ...] | None
        ] = {}
        self._candidates: dict[
            tuple[NormalizedName, Version, frozenset[NormalizedName], frozenset[Target]],
            Candidate,
        ] = {}
        self._prerelease_only: dict[NormalizedName, bool] = {}
        #: per project's list of versions (by identity, kept alive here): _prerelease_flags
        self._prerelease_bytes: dict[int, tuple[list[Version], bytearray]] = {}
        #: get_dependencies per (project, version, extras, targets): resolvelib asks again
        #: each time it pins a candidate, and a backjump re-pins dozens
        self._dependencies: dict[
            tuple[NormalizedName, Version, frozenset[NormalizedName], frozenset[Target]],
            list[Req],
        ] = {}
        #: per (project, version, targets, extras, target): target_dependencies
        self._target_dependencies: dict[
            tuple[NormalizedName, Version, frozenset[Target], frozenset[NormalizedName], Target],
            tuple[tuple[NormalizedName, frozenset[NormalizedName], str], ...],
        ] = {}
        #: per sdist sha256: its (static, dynamic) build requirements, being found
        self._builds: dict[str, Future[tuple[tuple[Requirement, ...], ...]]] = {}
        self.lock = threading.Lock()
        #: per project: why versions were rejected (for conflict explanations)
        self.rejections: dict[NormalizedName, dict[str, list[str]]] = {}

    # -- resolvelib API -------------------------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> tuple[bool, bool, bool, str]:
        causes = {c.requirement.identifier for c in backtrack_causes}
        return _preference(identifier, information[identifier], causes)

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> Iterable[str]:
        """The one identifier :meth:`get_preference` ranks first (so resolvelib does not
        rank them again): the backtrack causes are gathered once per round, not once per
        unsatisfied identifier."""
        causes = {c.requirement.identifier for c in backtrack_causes}
        # min(identifiers, key=_preference), inlined: dozens of identifiers every round
        best: tuple[bool, bool, bool, str] | None = None
        for identifier in identifiers:
            is_root = pinned = False
            for info in information[identifier]:
                if info.parent is None:
                    is_root = True
                if info.requirement.pinned:
                    pinned = True
            key = (identifier not in causes, not pinned, not is_root, identifier)
            if best is None or key < best:
                best = key
        return [] if best is None else [best[3]]

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Matches | list[Candidate]:
        reqs = list(requirements[identifier])
        if not reqs:
            return []
        name, extras = reqs[0].name, reqs[0].extras
        if name == PYTHON:
            return self._python_matches(reqs)
        targets = frozenset().union(*(r.targets for r in reqs))
        bad = {c.version for c in incompatibilities[identifier]}
        pinned = frozenset().union(*(r.pins for r in reqs), self.constraint_pins.get(name, ()))
        try:
            versions = self.releases(name).versions()
        except PackageIndexError as exc:
            asked = "; ".join(sorted({r.why for r in reqs}))
            raise ResolutionError(
                f"cannot get {name!r} (needed by {asked}): {exc.message}",
                where=exc.where,
                hint=exc.hint or "check the package name, or the index with --index-url",
            ) from None
        constraints = [s for s, _ in self.constraints.get(name, [])]
        prerelease_ok = (
            any(r.prereleases for r in reqs)
            or any(s.prereleases for s in constraints)
            or self._prerelease_only_project(name, versions)
        )
        return Matches(self, name, extras, reqs, targets, bad, pinned, versions, prerelease_ok, 0)

    def extend_matches(self, matches: Matches, requirement: Req) -> Matches:
        """What :meth:`find_matches` would give for ``matches``' requirements and
        ``requirement`` (same identifier, same incompatibilities), without walking again
        past the versions ``matches`` already found refused: with the same targets, ``==``
        versions and prerelease rule, a version every requirement so far refused, one more
        refuses too."""
        targets = matches.targets | requirement.targets
        pins = requirement.pins
        pinned = matches.pinned | pins if pins else matches.pinned
        prerelease_ok = matches.prerelease_ok or requirement.prereleases
        same = (
            targets == matches.targets
            and pinned == matches.pinned
            and prerelease_ok == matches.prerelease_ok
        )
        start = 0
        if same:
            start = matches.start if matches.first is None else matches.first
        return Matches(
            self,
            matches.name,
            matches.extras,
            [requirement, *matches.reqs],  # first: it refuses what the walk meets first
            targets,
            matches.bad,
            pinned,
            matches.versions,
            prerelease_ok,
            start,
        )

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        if candidate.name == PYTHON:
            return requirement.contains(candidate.version)
        return requirement.targets <= candidate.targets and requirement.contains(candidate.version)

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        if candidate.name == PYTHON:
            return []
        key = (candidate.name, candidate.version, candidate.extras, candidate.targets)
        known = self._dependencies.get(key)
        if known is None:
            known = self._dependencies[key] = self._get_dependencies(candidate)
            if self._python_admits(known):  # else the resolution cannot pin it
                self._warm_builds(candidate)
        return list(known)

    def _get_dependencies(self, candidate: Candidate) -> list[Req]:
        deps: list[Req] = []
        if candidate.extras:
            deps.append(
                Req(
                    candidate.name,
                    frozenset(),
                    SpecifierSet(f"=={candidate.version}"),
                    candidate.targets,
                    str(candidate),
                )
            )
        try:
            groups = self.dependencies_on(candidate, candidate.targets)
        except MalformedMetadataError as exc:
            return [self._unusable(candidate, exc)]
        for meta, targets in groups:
            if meta.requires_python is not None:
                # Requires-Python from the metadata (the index may not state it): a dependency
                # on the interpreter, so a mismatch backtracks and shows up in explanations
                deps.append(Req(PYTHON, frozenset(), meta.requires_python, targets, str(candidate)))
            deps += dependency_reqs(meta, candidate.extras, targets, str(candidate))
        self.warm(deps)
        return deps

    def _unusable(self, candidate: Candidate, exc: MalformedMetadataError) -> Req:
        """A candidate whose metadata cannot be used is passed over as pip and uv pass over
        it: its one dependency is on an interpreter nothing is (the resolution backtracks to
        another version, and says why if none is left); the reason is a rejection."""
        why = f"its metadata is unusable ({exc.message})"
        with self.lock:
            said = why in self.rejections.get(candidate.name, {})
        if not said:
            log.warning("%s %s skipped: %s", candidate.name, candidate.version, exc.message)
        self._reject(candidate.name, candidate.version, why)
        return Req(PYTHON, frozenset(), SpecifierSet("<0"), candidate.targets, why, "refused")

    # -- helpers --------------------------------------------------------------------------
    def _python_matches(self, reqs: list[Req]) -> PythonMatches:
        python = self.request.targets[0]
        version = Version(python.python_full_version)
        if all(r.contains(version) for r in reqs):
            return PythonMatches(
                [Candidate(PYTHON, version, frozenset(), (), frozenset(self.request.targets))]
            )
        return PythonMatches()

    def extend_python_matches(self, matches: PythonMatches, requirement: Req) -> PythonMatches:
        """What :meth:`find_matches` would give for the interpreter with one requirement
        more than ``matches`` was found for: the same candidate while it admits it."""
        if matches and requirement.contains(matches[0].version):
            return PythonMatches(matches)
        return PythonMatches()

    def _guess_files(self, name: NormalizedName, version: Version) -> tuple[DistFile, ...] | None:
        """The files :meth:`usable_files` would keep, not yanked, without recording why
        others are left out (None when none is left)."""
        return self._guessed_files(name, version, pinned=False) or None

    def _guessed_files(
        self, name: NormalizedName, version: Version, *, pinned: bool
    ) -> tuple[DistFile, ...]:
        """The files :meth:`_verdict` would give a candidate of ``version`` (yanked ones
        dropped, unless every file is yanked and the version is ``pinned``), without
        recording why others are left out."""
        cutoff = self.request.exclude_newer
        python = self.request.targets[0]
        files = [
            f
            for f in self.releases(name).files(version)
            if (cutoff is None or f.upload_time is None or f.upload_time <= cutoff)
            and python.allows_python(f.requires_python)
        ]
        unyanked = tuple(f for f in files if f.yanked is None)
        return unyanked or (tuple(files) if pinned else ())

    def _python_admits(self, deps: Iterable[Req]) -> bool:
        """Whether the interpreter satisfies the Requires-Python among ``deps``."""
        python = self._python
        return python is None or all(d.contains(python) for d in deps if d.name == PYTHON)

    def _prerelease_flags(self, versions: list[Version]) -> bytearray:
        """Whether each of a project's ``versions`` is a prerelease (1) or not (0), found
        as the walk reaches it (2: not yet known)."""
        known = self._prerelease_bytes.get(id(versions))
        if known is None or known[0] is not versions:
            known = (versions, bytearray(b"\x02") * len(versions))
            self._prerelease_bytes[id(versions)] = known
        return known[1]

    def _prerelease_only_project(self, name: NormalizedName, versions: list[Version]) -> bool:
        """Whether no final release of the project has a usable file (pip's rule: then
        prereleases are candidates)."""
        known = self._prerelease_only.get(name)
        if known is None:
            known = self._prerelease_only[name] = not any(
                not v.is_prerelease and self.usable_files(name, v) for v in versions
            )
        return known

    def _verdict(
        self, name: NormalizedName, version: Version, targets: frozenset[Target], pinned: bool
    ) -> tuple[DistFile, ...] | None:
        """The files a candidate of ``version`` carries on ``targets`` (yanked ones dropped
        unless every file is yanked and the version is pinned), or None when it is refused;
        the reasons are recorded once, when first seen."""
        key = (name, version, targets)
        if not pinned and key in self._verdicts:
            return self._verdicts[key]
        files = self.usable_files(name, version)
        if not files:
            return None  # nothing usable: rejections recorded by usable_files
        if all(f.yanked is not None for f in files):
            if not pinned:
                self._reject(name, version, "yanked (pin it with == to use it)")
                self._verdicts[key] = None
                return None
        else:
            files = [f for f in files if f.yanked is None]
        missing = [
            t for t in sorted(targets) if choose_artifact(files, t, self.request.prefer) is None
        ]
        result: tuple[DistFile, ...] | None = None
        if missing:
            for t in missing:
                self._reject(name, version, no_artifact_reason(files, t))
        else:
            result = tuple(files)
        if not pinned:
            self._verdicts[key] = result
        return result

    def _reject(self, name: NormalizedName, version: Version, why: str) -> None:
        with self.lock:
            self.rejections.setdefault(name, {}).setdefault(why, []).append(str(version))

    def releases(self, name: NormalizedName) -> Releases:
        """A project's files by version, from the index (memoized)."""
        known = self._releases.get(name)
        if known is None:
            known = self._releases[name] = self.index.releases(name)
        return known

    def usable_files(self, name: NormalizedName, version: Version) -> list[DistFile]:
        """A version's files after exclude-newer and requires-python (memoized); why files
        were left out is recorded for explanations.  Files without an upload time (a static
        PEP 503 index states none) are kept."""
        key = (name, version)
        known = self._usable_cache.get(key)
        if known is not None:
            return known
        usable: list[DistFile] = []
        cutoff = self.request.exclude_newer
        python = self.request.targets[0]
        for f in self.releases(name).files(version):
            # a file the index states no upload time for is taken as it is: the snapshot cannot
            # apply to it (the lock says so: bot.lock.document, "snapshot-not-applied")
            if cutoff is not None and f.upload_time is not None and f.upload_time > cutoff:
                self._reject(name, version, "uploaded after --exclude-newer")
                continue
            if not python.allows_python(f.requires_python):
                self._reject(name, version, f"requires Python {f.requires_python}")
                continue
            usable.append(f)
        with self.lock:
            return self._usable_cache.setdefault(key, usable)

    def usable(self, name: NormalizedName) -> dict[Version, list[DistFile]]:
        """Every version with usable files (builds every file of the project: explanations)."""
        out = {v: self.usable_files(name, v) for v in self.releases(name).versions()}
        return {v: files for v, files in out.items() if files}

    def metadata_file(self, candidate: Candidate) -> DistFile:
        """The file whose metadata stands for the candidate: a wheel whenever the version has
        one (a pure wheel first, then the best wheel of the first target that has one); the
        sdist only when there is no wheel at all."""
        known = candidate.metadata_file
        if known is None:
            known = self._metadata_file(candidate)
            object.__setattr__(candidate, "metadata_file", known)
        return known

    def _metadata_file(self, candidate: Candidate) -> DistFile:
        wheels = sorted((f for f in candidate.files if f.kind == "wheel"), key=_by_name)
        for f in wheels:
            if any(t.platform == "any" for t in f.tags):
                return f
        for target in sorted(candidate.targets) or sorted(self.request.targets):
            chosen = choose_artifact(wheels, target, "wheel", wheel_only=True)
            if chosen is not None:
                return chosen
        if wheels:
            return wheels[0]
        return candidate.files[0]

    def metadata(self, candidate: Candidate) -> CoreMetadata:
        """The candidate's metadata (see :meth:`metadata_file`); when it must come from the
        sdist and cannot, the error says which systems needed it and why they have no wheel."""
        file = self.metadata_file(candidate)
        try:
            return self.index.metadata(file)
        except MetadataError as exc:
            if file.kind != "sdist" or candidate.name == PYTHON:
                raise
            targets = sorted(candidate.targets) or sorted(self.request.targets)
            every = self.releases(candidate.name).files(candidate.version)
            why = "; ".join(
                f"{t.system}: {'; '.join(refused_wheels(every, t)) or 'no wheel'}" for t in targets
            )
            raise type(exc)(  # a MalformedMetadataError stays one: the version is passed over
                f"{candidate} has no wheel, so its metadata must come from its sdist "
                f"for {', '.join(t.system for t in targets)} ({why}); {exc.message}",
                where=exc.where,
                hint=exc.hint,
            ) from None

    def metadata_for(self, candidate: Candidate, target: Target) -> CoreMetadata:
        """The metadata that holds on ``target``: the wheel's, unless ``target`` builds the
        sdist of a version that also has wheels and the sdist's metadata says otherwise."""
        main = self.metadata_file(candidate)
        meta = self.metadata(candidate)
        if main.kind == "sdist":
            return meta
        chosen = choose_artifact(candidate.files, target, self.request.prefer)
        if chosen is None or chosen.kind != "sdist":
            return meta
        try:
            built = self.index.metadata(chosen)
        except BotError as exc:
            # the wheels' metadata stands in; the build on that system meets the same error
            log.debug("%s: sdist metadata for %s unavailable: %s", candidate, target.system, exc)
            return meta
        if _same_requirements(built, meta):
            return meta
        return built

    def dependencies_on(
        self, candidate: Candidate, targets: frozenset[Target]
    ) -> list[tuple[CoreMetadata, frozenset[Target]]]:
        """The candidate's metadata grouped by the targets each one holds on."""
        groups: dict[int, tuple[CoreMetadata, set[Target]]] = {}
        for target in sorted(targets):
            meta = self.metadata_for(candidate, target)
            groups.setdefault(id(meta), (meta, set()))[1].add(target)
        if not groups:
            return [(self.metadata(candidate), frozenset())]
        return [(m, frozenset(ts)) for m, ts in groups.values()]

    def target_dependencies(
        self, candidate: Candidate, extras: frozenset[NormalizedName], target: Target
    ) -> tuple[tuple[NormalizedName, frozenset[NormalizedName], str], ...]:
        """(name, extras, specifier text) of each requirement of ``candidate`` with
        ``extras`` on ``target``, the interpreter's left out (memoised: each round of a
        resolution walks the same pinned graph again)."""
        key = (candidate.name, candidate.version, candidate.targets, extras, target)
        known = self._target_dependencies.get(key)
        if known is None:
            meta = self.metadata_for(candidate, target)
            known = tuple(
                (dep.name, dep.extras, str(dep.specifier))
                for dep in dependency_reqs(meta, extras, frozenset({target}), "")
                if dep.name != PYTHON
            )
            self._target_dependencies[key] = known
        return known

    # -- walking ahead ---------------------------------------------------------------------
    def warm(self, reqs: Iterable[Req]) -> None:
        """Walk ahead from these requirements, concurrently, once per project (see
        :meth:`_warm_one`): the versions looked at are those they all admit."""
        by_name: dict[NormalizedName, list[Req]] = {}
        for req in reqs:
            if req.name != PYTHON:
                by_name.setdefault(req.name, []).append(req)
        with self.lock:
            new = {n: rs for n, rs in by_name.items() if n not in self.warmed}
            self.warmed.update(new)
        if not new or self._stopping.is_set():
            return
        self.index.prefetch(list(new))
        for name, rs in new.items():
            targets = frozenset().union(*(r.targets for r in rs))
            self._submit(self._warm_one, name, tuple(rs), targets, False)

    def hint(self, names: Iterable[NormalizedName]) -> None:
        """Walk ahead from projects the resolution will likely need (the previous lock's),
        before any requirement on them is seen: no build hook is started from a hint (no
        requirement says yet which versions are wanted); one is, as for any project, once a
        requirement on it is walked or a version of it pinned."""
        with self.lock:
            new = [
                n
                for n in dict.fromkeys(names)
                if n not in self._hinted and n not in self.warmed and n != PYTHON
            ]
            self._hinted.update(new)
        if not new or self._stopping.is_set():
            return
        self.index.prefetch(new)
        every = frozenset(self.request.targets)
        for name in new:
            self._submit(self._warm_one, name, (), every, True)

    def stop(self) -> None:
        """Start no more speculative work (the resolution is over, or given up)."""
        self._stopping.set()

    def _submit(self, fn: Callable[..., None], *args: object) -> None:
        """Run ``fn(*args)`` on the pool, in this thread's context (a hook it starts is one
        of the resolution's children: :func:`bot.core.proc.stoppable`)."""
        if self._stopping.is_set():
            return
        try:
            self.pool.submit(contextvars.copy_context().run, fn, *args)
        except RuntimeError:  # the pool is shut down: the resolution is over
            return

    def _warm_one(
        self,
        name: NormalizedName,
        reqs: tuple[Req, ...],
        targets: frozenset[Target],
        hinted: bool,
    ) -> None:
        """Speculatively walk ahead: page, the metadata of the newest version the resolution
        could pin for ``reqs`` (:meth:`_walk`), the build requirements of the sdist a target
        builds of it (not for a ``hinted`` project), then its dependencies.

        The resolver is sequential; this crawl keeps the connection pool busy with what it
        will most likely ask next, so the dependency depth costs one round trip, not many.
        """
        try:
            for looked, cand in enumerate(self._walk(name, reqs, targets)):
                if self._stopping.is_set() or looked >= AHEAD:
                    return
                file = self.metadata_file(cand)
                meta = None
                if file.kind == "wheel":
                    # speculation never reads an sdist's metadata (it may need a build
                    # backend run for a package the resolution turns out not to need)
                    meta = self.index.metadata(file)
                    python = self._python
                    if (
                        python is not None
                        and meta.requires_python is not None
                        and not meta.requires_python.contains(python, prereleases=True)
                    ):
                        continue  # the resolution cannot pin it: nor does the walk
                if not hinted:
                    # the build requirements of an sdist some system would build: the
                    # longest wait after the resolution (a PEP 517 hook), so started as
                    # early as can be
                    self._warm_builds(cand)
                if meta is not None and not self._stopping.is_set():
                    self.warm(dependency_reqs(meta, frozenset(), cand.targets, ""))
                return
        except BotError:
            return  # the resolver meets the same error and reports it properly

    def _walk(
        self, name: NormalizedName, reqs: Sequence[Req], targets: frozenset[Target]
    ) -> Iterator[Candidate]:
        """The versions :meth:`find_matches` could offer for ``reqs`` together (none: any
        version) on ``targets``, newest first, as guesses (nothing recorded): admitted by
        every requirement and every constraint of the set, prereleases only where it takes
        them, a file left after yanked, exclude-newer and Requires-Python on every target."""
        constraints = [s for s, _ in self.constraints.get(name, [])]
        pinned = frozenset().union(*(r.pins for r in reqs), self.constraint_pins.get(name, ()))
        versions = self.releases(name).versions()
        prereleases = any(r.prereleases for r in reqs) or any(s.prereleases for s in constraints)
        prefer = self.request.prefer
        for version in versions:
            if (
                version.is_prerelease
                and not prereleases
                and not self._prerelease_only_project(name, versions)
            ):
                continue
            if not all(r.contains(version) for r in reqs):
                continue
            if not all(_contains(s, version) for s in constraints):
                continue
            files = self._guessed_files(name, version, pinned=version in pinned)
            if files and all(choose_artifact(files, t, prefer) is not None for t in targets):
                yield Candidate(name, version, frozenset(), files, targets)

    def build_requirements(self, sdist: DistFile) -> tuple[tuple[Requirement, ...], ...]:
        """(``[build-system] requires``, what the backend asks for while building) of an
        sdist, found once per file (a PEP 517 hook run takes seconds: it may already be
        under way since the candidate was pinned, see :meth:`_warm_builds`)."""
        return self._build_future(sdist).result()

    def _build_future(self, sdist: DistFile) -> Future[tuple[tuple[Requirement, ...], ...]]:
        with self.lock:
            known = self._builds.get(sdist.sha256)
            if known is None:
                known = self._builds[sdist.sha256] = Future()
                mine = True
            else:
                mine = False
        if mine:
            try:
                static = tuple(self.index.build_requires(sdist))
                known.set_result((static, tuple(self.index.dynamic_build_requires(sdist))))
            except Exception as exc:  # noqa: BLE001 - handed to whoever waits, as if they asked
                known.set_exception(exc)
            except BaseException as exc:  # an interrupt: nobody may wait for ever
                known.set_exception(exc)
                raise
        return known

    def _warm_builds(self, candidate: Candidate) -> None:
        """Start finding the build requirements of the sdist a target of ``candidate``
        builds, in the background: they are asked for after the resolution, and finding
        them (a download, a PEP 517 hook in a fresh environment) would otherwise wait
        until then.  A candidate dropped later has only cost the pool's time.  Only for a
        version the resolution could pin (a pinned one, or one :meth:`_walk` gives): the
        hook runs the sdist's code."""
        sdists = {
            f.sha256: f
            for t in sorted(candidate.targets)
            if (f := choose_artifact(candidate.files, t, self.request.prefer)) is not None
            and f.kind == "sdist"
        }
        for sdist in sdists.values():
            with self.lock:
                if sdist.sha256 in self._builds:
                    continue
            self._submit(self._quiet_builds, sdist)

    def _quiet_builds(self, sdist: DistFile) -> None:
        if self._stopping.is_set():
            return  # nobody will ask: no download, no hook
        try:
            self._build_future(sdist).result()
        except BotError:
            return  # whoever needs them meets the same error

    def _warm_metadata(self, candidate: Candidate) -> None:
        """Fetch the candidate's metadata in the background (once: the first candidate of
        a project is offered again each time its criterion changes)."""
        key = (candidate.name, candidate.version, candidate.targets)
        with self.lock:
            if key in self._metadata_warmed:
                return
            self._metadata_warmed.add(key)
        file = self.metadata_file(candidate)
        if file.kind == "wheel":
            self._submit(self._quiet_metadata, file)

    def _quiet_metadata(self, file: DistFile) -> None:
        if self._stopping.is_set():
            return
        try:
            self.index.metadata(file)
        except BotError:
            return


def _preference(
    identifier: str,
    information: Iterable[RequirementInformation[Req, Candidate]],
    causes: set[str],
) -> tuple[bool, bool, bool, str]:
    """Backtrack causes first, then pinned (``==``) requirements, then the set's roots,
    then by name."""
    is_root = pinned = False
    for info in information:
        if info.parent is None:
            is_root = True
        if info.requirement.pinned:
            pinned = True
    return (identifier not in causes, not pinned, not is_root, identifier)


_CONTAINS: dict[tuple[int, Version], tuple[SpecifierSet, bool]] = {}


def _contains(spec: SpecifierSet, version: Version) -> bool:
    """``spec.contains(version, prereleases=True)``, memoised by the specifier's identity
    (the entry keeps it alive, so ids stay unique; see bot.targets._allows)."""
    key = (id(spec), version)
    hit = _CONTAINS.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    result = spec.contains(version, prereleases=True)
    _CONTAINS[key] = (spec, result)
    return result


def exact_versions(specifier: SpecifierSet) -> frozenset[Version]:
    """The versions ``specifier``'s ``==``/``===`` clauses name (no wildcards)."""
    return frozenset(
        v
        for s in specifier
        if s.operator in ("==", "===")
        and "*" not in s.version
        and (v := _pinned_version(s.version)) is not None
    )


def _pinned_version(text: str) -> Version | None:
    """The version an ``==``/``===`` pin names; None when ``===`` names no PEP 440 version
    (a dependency's metadata may say anything; such a pin matches no candidate anyway)."""
    try:
        return Version(text)
    except ValueError:
        return None


def _by_name(f: DistFile) -> str:
    return f.filename


def _same_requirements(a: CoreMetadata, b: CoreMetadata) -> bool:
    """Whether two metadata agree on everything the resolution reads."""
    return (
        sorted(map(str, a.requires_dist)) == sorted(map(str, b.requires_dist))
        and str(a.requires_python or "") == str(b.requires_python or "")
        and sorted(a.provides_extra) == sorted(b.provides_extra)
    )


def dependency_reqs(
    meta: CoreMetadata,
    extras: frozenset[NormalizedName],
    targets: frozenset[Target],
    why: str,
) -> list[Req]:
    """The requirements of a distribution (with ``extras``) on each of ``targets``."""
    out = []
    for req in meta.requires_dist:
        marker = req.marker
        try:
            # _applies, inlined (an extras set is already a frozenset)
            active = (
                targets
                if marker is None
                else frozenset(t for t in targets if t.evaluate(marker, extras))
            )
        except MetadataError as exc:  # the metadata's own marker: name whose it is
            raise MetadataError(
                f"{meta.name} {meta.version} requires {str(req)!r}: {exc.message}", hint=exc.hint
            ) from None
        if active:
            if req.url:
                raise MetadataError(
                    f"{meta.name} {meta.version} requires {str(req)!r}: a direct URL "
                    "reference, which a lock cannot take (it locks files of the configured "
                    "indexes, each by the sha256 its index states)",
                    hint=f"constrain {meta.name} to a version that does not, or publish "
                    f"{req.name} on one of the set's indexes",
                )
            out.append(Req.of(req, active, why))
    return out


class PythonMatches(list[Candidate]):
    """The interpreter's candidates (none or one), with what they were found for: see
    :class:`Matches`."""

    information: object = None
    incompatibilities: object = None


class Matches:
    """The candidates of one identifier for some requirements (:meth:`Provider.find_matches`),
    lazily, newest first; the factory resolvelib calls.

    ``start`` is the first index of ``versions`` that may be acceptable (those before it are
    known refused); ``first`` the index of the first version accepted, once found.  The
    resolution records which criterion's ``information`` and ``incompatibilities`` lists the
    candidates were found for, so that one more requirement on that criterion can continue
    from ``first`` (:meth:`Provider.extend_matches`) instead of walking from the newest.
    """

    __slots__ = (
        "bad",
        "extras",
        "first",
        "incompatibilities",
        "information",
        "name",
        "pinned",
        "prerelease_ok",
        "provider",
        "reqs",
        "start",
        "targets",
        "versions",
    )

    def __init__(
        self,
        provider: Provider,
        name: NormalizedName,
        extras: frozenset[NormalizedName],
        reqs: list[Req],
        targets: frozenset[Target],
        bad: set[Version],
        pinned: frozenset[Version],
        versions: list[Version],
        prerelease_ok: bool,
        start: int,
    ) -> None:
        self.provider = provider
        self.name = name
        self.extras = extras
        self.reqs = reqs
        self.targets = targets
        self.bad = bad
        self.pinned = pinned
        self.versions = versions
        self.prerelease_ok = prerelease_ok
        self.start = start
        self.first: int | None = None
        self.information: object = None
        self.incompatibilities: object = None

    def accept(self, version: Version, *, ahead: bool = False) -> Candidate | None:
        if version in self.bad or (version.is_prerelease and not self.prerelease_ok):
            return None
        for r in self.reqs:  # Req.contains, inlined: the hottest loop of a big resolution
            admits = r._contains.get(version)
            if admits is None:
                admits = r.contains(version)
            if not admits:
                return None
        return self._candidate(version, ahead=ahead)

    def _candidate(self, version: Version, *, ahead: bool = False) -> Candidate | None:
        """The candidate of a version every requirement admits, unless the set's
        constraints or its files refuse it."""
        provider = self.provider
        name = self.name
        constraints = provider.constraints.get(name)
        if constraints and not all(_contains(s, version) for s, _ in constraints):
            return None
        targets = self.targets
        if ahead:  # a guess: nothing recorded (rejections are for versions looked at)
            files = provider._guess_files(name, version)
        else:
            files = provider._verdict(name, version, targets, version in self.pinned)
        if files is None:
            return None
        if ahead:
            return Candidate(name, version, self.extras, files, targets)
        key = (name, version, self.extras, targets)
        candidate = provider._candidates.get(key)
        if candidate is None:
            candidate = Candidate(name, version, self.extras, files, targets)
            provider._candidates[key] = candidate
        return candidate

    def __call__(self) -> Iterator[Candidate]:
        # lazy: resolvelib usually needs only the first few of hundreds of versions
        accept = self.accept
        versions = self.versions
        # what accept refuses first, inlined (the walk meets hundreds of refused versions):
        # prereleases by the page's flags, incompatibilities, then each requirement
        prereleases = None if self.prerelease_ok else self.provider._prerelease_flags(versions)
        bad = self.bad
        reqs = self.reqs
        given = 0
        for i in range(self.start, len(versions)):
            version = versions[i]
            if prereleases is not None:
                flag = prereleases[i]
                if flag == 2:
                    flag = prereleases[i] = version.is_prerelease
                if flag:
                    continue
            if bad and version in bad:
                continue
            for r in reqs:
                admits = r._contains.get(version)
                if admits is None:
                    admits = r.contains(version)
                if not admits:
                    break
            else:
                candidate = self._candidate(version)
                if candidate is None:
                    continue
                if given == 0:
                    if self.first is None:
                        self.first = i
                    self.provider._warm_metadata(candidate)
                elif given % AHEAD == 1:
                    # asked past the first: the resolver is backtracking through this
                    # project, one version after another; fetch the next ones' metadata
                    # together instead of one round trip at a time
                    ahead = (accept(v, ahead=True) for v in itertools.islice(versions, i + 1, None))
                    for later in itertools.islice((c for c in ahead if c), AHEAD):
                        self.provider._warm_metadata(later)
                given += 1
                yield candidate
