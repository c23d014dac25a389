"""Resolve a set for one Python minor version on every Nix system, with resolvelib.

One resolution covers all targets of a lock (the four Nix systems), so a package has one
version everywhere; each requirement carries the targets where its marker holds, and a
candidate is acceptable only if it has a usable file on each target that needs it.  After
the runtime resolution, the PEP 518 build requirements of every package that will be built
from source are added as requirements of the same resolution, until nothing new appears: a
set's locks then contain everything needed to build it without the network.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, Resolver
from resolvelib.resolvers import ResolutionTooDeep
from resolvelib.resolvers import resolution as _resolution
from resolvelib.resolvers.criterion import Criterion
from resolvelib.resolvers.exceptions import RequirementsConflicted
from resolvelib.structs import IteratorMapping, RequirementInformation, build_iter_view

from bot.core.errors import BotError, PackageIndexError, ResolutionError
from bot.core.proc import Children, stoppable
from bot.lock.artifacts import choose_artifact, no_artifact_reason, refused_wheels
from bot.lock.index.models import CoreMetadata, DistFile, PackageIndex
from bot.lock.provider import (
    PYTHON,
    Candidate,
    Matches,
    Provider,
    PythonMatches,
    Req,
    Request,
)
from bot.model.targets import Target

log = logging.getLogger(__name__)

#: the PEP 517 frontend and wheel installer the Nix library bootstraps from wheels
FRONTEND: tuple[Requirement, ...] = (Requirement("build>=1.2"), Requirement("installer>=0.7"))

__all__ = ["FRONTEND", "Request", "Resolution", "Resolved", "choose_artifact", "resolve"]


@dataclass(frozen=True)
class Resolved:
    """One package of a resolution, as the lock writer needs it."""

    name: NormalizedName
    version: Version
    metadata: CoreMetadata
    files: tuple[DistFile, ...]
    artifacts: dict[Target, DistFile]  #: the file used on each target that needs the package
    dependencies: frozenset[NormalizedName]
    build_requires: frozenset[NormalizedName]  #: set members needed to build it from source
    #: the newest version the set's own requirements and constraints allow (freshness)
    newest: Version | None = None
    #: days between the upload of the locked version and of the newest one
    lag_days: float | None = None
    #: (newest release, why it cannot be used) when the newest release at the snapshot is
    #: refused by a wheel baseline, Requires-Python or a missing artifact on some system, or
    #: the newest the set allows is excluded by other members' requirements (:func:`held_by`)
    refused: tuple[Version, str] | None = None


@dataclass
class Resolution:
    """The result of :func:`resolve`."""

    packages: dict[NormalizedName, Resolved]
    roots: tuple[NormalizedName, ...]
    frontend: tuple[NormalizedName, ...]
    indexes: tuple[str, ...] = ()
    rounds: int = 1


class _Reporter(BaseReporter[Req, Candidate, str]):
    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.progress = progress

    def pinning(self, candidate: Candidate) -> None:
        if self.progress:
            self.progress(str(candidate))


def resolve(
    index: PackageIndex,
    request: Request,
    *,
    progress: Callable[[str], None] | None = None,
    concurrency: int = 16,
) -> Resolution:
    """Resolve ``request`` against ``index``, including build-system requirements."""
    if not request.targets:
        raise ValueError("a request needs at least one target")
    all_targets = frozenset(request.targets)
    roots: list[Req] = []
    for req, where in request.requirements:
        active = frozenset(t for t in request.targets if t.evaluate(req.marker))
        if active:
            roots.append(Req.of(req, active, where, "root"))
    frontend = [Req.of(r, all_targets, "the Nix library", "frontend") for r in FRONTEND]
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="warm")
    with stoppable() as children:
        provider = Provider(index, request, pool)
        try:
            provider.warm(roots + frontend)
            provider.hint(request.hints)
            packages, rounds = _rounds(provider, roots, frontend, progress)
        except BaseException as exc:
            _wind_down(provider, pool, children, wait=isinstance(exc, Exception))
            raise
        _wind_down(provider, pool, children, wait=True)
    return Resolution(
        packages=packages,
        roots=tuple(sorted({r.name for r in roots})),
        frontend=tuple(sorted({r.name for r in frontend})),
        rounds=rounds,
    )


def _rounds(
    provider: Provider,
    roots: list[Req],
    frontend: list[Req],
    progress: Callable[[str], None] | None,
) -> tuple[dict[NormalizedName, Resolved], int]:
    """Resolve, add the build requirements found, resolve again, until none is new."""
    build_roots: list[Req] = []
    rounds = 0
    while True:
        rounds += 1
        mapping = _run(provider, [*roots, *frontend, *build_roots], progress)
        packages, needed = _assemble(provider, mapping, roots, frontend)
        if needed == build_roots:
            return packages, rounds
        if rounds >= provider.request.max_build_rounds:
            raise ResolutionError(
                f"build requirements did not settle after {rounds} rounds",
                hint="report this set; a build backend may require itself in a loop",
            )
        build_roots = needed


def _wind_down(
    provider: Provider, pool: ThreadPoolExecutor, children: Children, *, wait: bool
) -> None:
    """End the resolution's speculative work: what has not started never starts, hooks
    still running are stopped (whatever they find, nobody asks for it any more: every
    answer the resolution needed it has waited for), then, unless ``wait`` is off (an
    interrupt: the process is ending), the pool's last tasks are waited for: downloads
    already under way, which must not go on into the next resolution of the same client."""
    provider.stop()
    pool.shutdown(wait=False, cancel_futures=True)
    children.stop()
    if wait:
        pool.shutdown(wait=True)


class _Resolution(_resolution.Resolution[Req, Candidate, str]):
    """resolvelib's resolution, remembering whether the current pin satisfies a criterion.

    Every round asks this of every criterion, and the criterion of the interpreter holds a
    requirement from nearly every package: in a 225-package set that is half a million
    questions with the same answers.  A criterion is never changed in place (resolvelib
    makes a new one), and :meth:`Provider.is_satisfied_by` depends only on its arguments,
    so an answer stands while the criterion object and the pin are the same ones.
    """

    def __init__(self, provider: Provider, reporter: BaseReporter) -> None:  # type: ignore[type-arg]
        super().__init__(provider, reporter)
        self._provider = provider
        self._satisfying: dict[str, tuple[Criterion[Req, Candidate], Candidate, bool]] = {}

    def _add_to_criteria(
        self,
        criteria: dict[str, Criterion[Req, Candidate]],
        requirement: Req,
        parent: Candidate | None,
    ) -> None:
        """resolvelib's, but one more requirement on a criterion whose candidates the
        provider found goes on from them (:meth:`Provider.extend_matches`): the same
        candidates without walking again past the versions already refused."""
        self._r.adding_requirement(requirement=requirement, parent=parent)
        identifier = requirement.identifier
        criterion = criteria.get(identifier)
        matches: Matches | PythonMatches | list[Candidate] | None = None
        if criterion is not None:
            incompatibilities = list(criterion.incompatibilities)
            information = list(criterion.information)
            information.append(RequirementInformation(requirement, parent))
            found = _found(criterion)
            if found is not None:
                if isinstance(found, Matches):
                    matches = self._provider.extend_matches(found, requirement)
                else:
                    matches = self._provider.extend_python_matches(found, requirement)
        else:
            incompatibilities = []
            information = [RequirementInformation(requirement, parent)]
        if matches is None:
            matches = self._provider.find_matches(
                identifier=identifier,
                requirements=IteratorMapping(
                    criteria,
                    operator.methodcaller("iter_requirement"),
                    {identifier: [requirement]},
                ),
                incompatibilities=IteratorMapping(
                    criteria,
                    operator.attrgetter("incompatibilities"),
                    {identifier: incompatibilities},
                ),
            )
        if isinstance(matches, (Matches, PythonMatches)):
            matches.information = information
            matches.incompatibilities = incompatibilities
        criterion = Criterion(
            candidates=build_iter_view(matches),
            information=information,
            incompatibilities=incompatibilities,
        )
        if not criterion.candidates:
            raise RequirementsConflicted(criterion)
        criteria[identifier] = criterion

    def _is_current_pin_satisfying(self, name: str, criterion: Criterion[Req, Candidate]) -> bool:
        pin = self._states[-1].mapping.get(name)  # self.state, without the property's call
        if pin is None:
            return False
        hit = self._satisfying.get(name)
        if hit is not None and hit[0] is criterion and hit[1] is pin:
            return hit[2]
        satisfies = self._p.is_satisfied_by
        result = all(satisfies(requirement=r, candidate=pin) for r in criterion.iter_requirement())
        self._satisfying[name] = (criterion, pin, result)
        return result


def _found(criterion: Criterion[Req, Candidate]) -> Matches | PythonMatches | None:
    """The provider's matches behind ``criterion``'s candidates, when they were found for
    exactly its requirements and incompatibilities (resolvelib also makes criteria that
    keep candidates but drop requirements, or add incompatibilities)."""
    view = criterion.candidates
    found = getattr(view, "_factory", None) or getattr(view, "_sequence", None)
    if (
        isinstance(found, (Matches, PythonMatches))
        and found.information is criterion.information
        and found.incompatibilities is criterion.incompatibilities
    ):
        return found
    return None


class _Resolver(Resolver[Req, Candidate, str]):
    def resolve(  # type: ignore[override]
        self, requirements: Iterable[Req], max_rounds: int = 100
    ) -> Any:
        resolution = _Resolution(self.provider, self.reporter)  # type: ignore[arg-type]
        state = resolution.resolve(requirements, max_rounds=max_rounds)
        return _resolution._build_result(state)


def _run(
    provider: Provider,
    requirements: list[Req],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Candidate]:
    resolver: Resolver[Req, Candidate, str] = _Resolver(provider, _Reporter(progress))
    try:
        result = resolver.resolve(requirements, max_rounds=20000)
    except ResolutionImpossible as exc:
        raise explain(provider, list(exc.causes)) from None
    except ResolutionTooDeep:
        raise ResolutionError(
            "the resolver gave up after too many backtracking rounds",
            hint="add constraints to the set to narrow the search",
        ) from None
    except PackageIndexError as exc:
        raise ResolutionError(str(exc.message), where=exc.where, hint=exc.hint) from None
    return dict(result.mapping)


def explain(
    provider: Provider, causes: Sequence[RequirementInformation[Req, Candidate]]
) -> ResolutionError:
    """Turn resolvelib's causes into a readable explanation."""
    lines: list[str] = []
    names: dict[NormalizedName, None] = {}
    for info in causes:
        req = info.requirement
        if req.kind == "refused" and info.parent is not None:  # see Provider._unusable
            names[info.parent.name] = None
            continue
        names[req.name] = None
        if info.parent is not None:
            lines.append(f"{info.parent} requires {req}")
        else:
            lines.append(f"{req} is requested ({req.why})")
    for name in names:
        for spec, where in provider.constraints.get(name, []):
            lines.append(f"constraint {name}{spec} ({where})")
        if name != PYTHON:
            try:
                available = sorted(provider.usable(name))
            except BotError:
                available = []
            if available:
                lines.append(
                    f"{name} has {len(available)} usable release(s) at this snapshot, "
                    f"{available[0]} to {available[-1]}"
                )
        for why, versions in sorted(provider.rejections.get(name, {}).items()):
            shown = ", ".join(sorted(set(versions), key=Version, reverse=True)[:6])
            more = len(set(versions)) - 6
            lines.append(f"{name} {shown}{f' (+{more} more)' if more > 0 else ''}: {why}")
    subject = " and ".join(sorted(names)) or "the requirements"
    return ResolutionError(
        f"no versions of {subject} satisfy every requirement",
        causes=list(dict.fromkeys(lines)),
        hint="relax a version bound or add a constraint in set.yaml; "
        "check --exclude-newer if a needed release is recent",
    )


def _assemble(
    provider: Provider,
    mapping: Mapping[str, Candidate],
    roots: list[Req],
    frontend: list[Req],
) -> tuple[dict[NormalizedName, Resolved], list[Req]]:
    """Walk the pinned graph per target; choose artifacts; collect build requirements."""
    request = provider.request
    pins: dict[NormalizedName, Candidate] = {c.name: c for c in mapping.values() if not c.extras}
    edges: dict[NormalizedName, set[NormalizedName]] = {n: set() for n in pins}
    build_edges: dict[NormalizedName, set[NormalizedName]] = {n: set() for n in pins}
    artifacts: dict[NormalizedName, dict[Target, DistFile]] = {n: {} for n in pins}
    needed: list[Req] = []
    wheel_only: set[NormalizedName] = set()
    #: name -> (who asks, specifier, to build it) of every requirement on it in the graph
    bounds: dict[NormalizedName, set[tuple[str, str, bool]]] = {}

    for target in request.targets:
        seen: dict[NormalizedName, set[NormalizedName]] = {}
        stack: list[tuple[NormalizedName, frozenset[NormalizedName], bool]] = [
            (r.name, r.extras, r.kind == "frontend")
            for r in roots + frontend
            if target in r.targets
        ]
        while stack:
            name, extras, is_frontend = stack.pop()
            if is_frontend:
                wheel_only.add(name)
            have = seen.get(name)
            if have is not None and extras <= have and (not is_frontend or name in wheel_only):
                continue
            seen.setdefault(name, set()).update(extras)
            cand = pins[name]
            who = f"{cand.name} {cand.version}"
            for dep_name, dep_extras, spec in provider.target_dependencies(
                cand, frozenset(seen[name]), target
            ):
                edges[name].add(dep_name)
                bounds.setdefault(dep_name, set()).add((who, spec, False))
                stack.append((dep_name, dep_extras, is_frontend))
            chosen = choose_artifact(
                cand.files, target, request.prefer, wheel_only=name in wheel_only
            )
            if chosen is None:
                raise ResolutionError(
                    f"{cand.name} {cand.version} has no wheel for {target.system}, "
                    "but the Nix library needs it as a wheel to bootstrap the build frontend",
                )
            artifacts[name][target] = chosen
            if chosen.kind == "sdist":
                why = f"building {cand.name} {cand.version}"
                for breq in _build_requirements(provider, cand, chosen):
                    if not target.evaluate(breq.marker):
                        continue
                    bname = canonicalize_name(breq.name)
                    build_edges[name].add(bname)
                    bounds.setdefault(bname, set()).add(
                        (f"{cand.name} {cand.version}", str(breq.specifier), True)
                    )
                    extras_b = frozenset(canonicalize_name(e) for e in breq.extras)
                    needed.append(
                        Req(bname, extras_b, breq.specifier, frozenset({target}), why, "build")
                    )
                    if bname in pins:
                        stack.append((bname, extras_b, False))
    # one requirement per (name, parent, specifier), its targets merged
    merged: dict[tuple[NormalizedName, str, str], Req] = {}
    for r in needed:
        key = (r.name, r.why, str(r))
        old = merged.get(key)
        merged[key] = (
            r
            if old is None
            else Req(r.name, r.extras, r.specifier, old.targets | r.targets, r.why, "build")
        )
    packages: dict[NormalizedName, Resolved] = {}
    for name, arts in artifacts.items():
        if not arts:
            continue  # pinned only on a path that no target reaches in the end
        cand = pins[name]
        fresh = _freshness(provider, cand)
        packages[name] = Resolved(
            name=name,
            version=cand.version,
            metadata=provider.metadata(cand),
            files=cand.files,
            artifacts=arts,
            dependencies=frozenset(d for d in edges[name] if d in pins and artifacts[d]),
            build_requires=frozenset(build_edges[name]),
            **fresh,
            refused=refusal(provider, cand, frozenset(arts))
            or built_instead(provider, cand, arts)
            or held_by(name, cand.version, fresh["newest"], bounds.get(name, set())),
        )
    return packages, sorted(merged.values(), key=lambda r: (r.why, str(r)))


def _freshness(provider: Provider, cand: Candidate) -> dict[str, Any]:
    """The newest version the set allows for ``cand``'s project, and how far behind it is."""
    request = provider.request
    specs = [
        req.specifier
        for req, _ in [*request.requirements, *request.constraints]
        if canonicalize_name(req.name) == cand.name
    ]
    newest = None
    for version in provider.releases(cand.name).versions():  # newest first
        if version.is_prerelease and not cand.version.is_prerelease:
            continue
        if not all(s.contains(version, prereleases=True) for s in specs):
            continue
        if any(f.yanked is None for f in provider.usable_files(cand.name, version)):
            newest = version
            break
    lag = None
    if newest is not None and newest > cand.version:
        new_files = provider.usable_files(cand.name, newest)
        old_files = provider.usable_files(cand.name, cand.version)
        times_new = [f.upload_time for f in new_files if f.upload_time]
        times_old = [f.upload_time for f in old_files if f.upload_time]
        if times_new and times_old:
            lag = max((min(times_new) - min(times_old)).total_seconds() / 86400, 0.0)
    elif newest is not None:
        lag = 0.0
    return {"newest": newest, "lag_days": lag}


def refusal(
    provider: Provider, cand: Candidate, targets: frozenset[Target]
) -> tuple[Version, str] | None:
    """Why the newest release of ``cand``'s project at the snapshot (not yanked; a
    prerelease only for a prerelease) is not the one locked, when a wheel baseline,
    Requires-Python or a missing artifact on one of ``targets`` refuses it.  None when the
    newest release is locked, or only the set's requirements keep it out."""
    request = provider.request
    cutoff = request.exclude_newer
    python = request.targets[0]
    releases = provider.releases(cand.name)
    for version in releases.versions():  # newest first
        if version <= cand.version:
            return None
        if version.is_prerelease and not cand.version.is_prerelease:
            continue
        files = [
            f
            for f in releases.files(version)
            if f.yanked is None
            and (cutoff is None or (f.upload_time is not None and f.upload_time <= cutoff))
        ]
        if not files:
            continue  # not released (or yanked) at the snapshot
        allowed = [f for f in files if python.allows_python(f.requires_python)]
        if not allowed:
            needs = sorted({str(f.requires_python) for f in files})
            return version, f"requires Python {' / '.join(needs)} (the lock is for {python.python})"
        missing = [
            t for t in sorted(targets) if choose_artifact(allowed, t, request.prefer) is None
        ]
        if missing:
            return version, "; ".join(no_artifact_reason(allowed, t) for t in missing)
        return None
    return None


def held_by(
    name: NormalizedName,
    locked: Version,
    newest: Version | None,
    bounds: Iterable[tuple[str, str, bool]],
) -> tuple[Version, str] | None:
    """(newest, why) when the newest version the set's own requirements allow is newer than
    the one locked and other members' requirements exclude it: which member asks for what
    (``lxml 6.1.3 requires cython<3.3,>=3.2.9 to build it``).  None when none of them does
    alone (a combination of choices the resolver made keeps it out)."""
    if newest is None or newest <= locked:
        return None
    holders = sorted(
        f"{who} requires {name}{spec}{' to build it' if build else ''}"
        for who, spec, build in bounds
        if spec and not SpecifierSet(spec).contains(newest, prereleases=True)
    )
    return (newest, "; ".join(holders)) if holders else None


def built_instead(
    provider: Provider, cand: Candidate, artifacts: Mapping[Target, DistFile]
) -> tuple[Version, str] | None:
    """(locked version, why) when a system builds the sdist although the version has wheels
    for it that a baseline or the Python refuses (with ``prefer: wheel``): said like a
    refusal, since building from source is the slow and fragile path."""
    if provider.request.prefer != "wheel":
        return None
    notes = []
    for target in sorted(artifacts):
        if artifacts[target].kind != "sdist":
            continue
        refused = refused_wheels(provider.releases(cand.name).files(cand.version), target)
        if refused:
            notes.append(f"{target.system} builds the sdist ({'; '.join(refused)})")
    return (cand.version, "; ".join(notes)) if notes else None


def _build_requirements(provider: Provider, cand: Candidate, sdist: DistFile) -> list[Requirement]:
    static, dynamic = provider.build_requirements(sdist)
    reqs = list(static)
    # what the backend asks for while building (get_requires_for_build_wheel), locked with
    # the static requirements
    known = {str(r) for r in reqs}
    reqs += [r for r in dynamic if str(r) not in known]
    if provider.index.in_tree_backend(sdist):
        # a backend that builds itself imports its own dependencies while building (and
        # hatchling's asks for them only through get_requires_for_build_wheel)
        reqs += [
            r
            for r in provider.metadata(cand).requires_dist
            if canonicalize_name(r.name) != cand.name
        ]
    if provider.request.extra_build_requires is not None:
        reqs += provider.request.extra_build_requires(cand.name, cand.version)
    return reqs
