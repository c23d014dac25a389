"""The resolver's memoised paths answer exactly what the plain computations answer.

A big set asks the same marker, specifier and candidate questions hundreds of thousands of
times, so the provider and the targets keep their answers; these tests check the kept
answers against the computation they stand for (correctness, not speed).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, Resolver
from resolvelib.structs import RequirementInformation

from bot.core.errors import BotError, MetadataError
from bot.lock.index.models import DistFile
from bot.lock.provider import Candidate, Matches, Provider, Req, Request, _contains
from bot.lock.resolve import _Resolver, resolve
from bot.model.targets import Target, targets_for
from tests.frozen_index import FrozenIndex
from tests.test_resolve import FRONTEND

MARKERS = [
    "sys_platform == 'linux'",
    "platform_machine == 'arm64' and sys_platform == 'darwin'",
    "python_version >= '3.13'",
    "extra == 'test'",
    "extra == 'docs' and sys_platform == 'darwin'",
    "extra == 'test' or python_version < '3.10'",
]
EXTRAS = [frozenset(), frozenset({"test"}), frozenset({"docs", "test"})]


def _plain(target: Target, marker: Marker, extras: frozenset[str]) -> bool:
    return any(marker.evaluate(target.environment(e)) for e in ("", *sorted(extras)))


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_marker_memo_agrees_with_evaluation(python: str) -> None:
    markers = [Marker(m) for m in MARKERS]
    for target in targets_for(python):
        for _ in range(2):  # the second pass is answered from the memo
            for marker, extras in itertools.product(markers, EXTRAS):
                assert target.evaluate(marker, extras) is _plain(target, marker, extras), (
                    target,
                    marker,
                    extras,
                )


def test_marker_memo_is_per_marker_object_and_extras() -> None:
    target = Target("3.12", "x86_64-linux")
    # equal text, separate objects, each answered on its own; extras are part of the key
    a, b = Marker("extra == 'test'"), Marker("extra == 'test'")
    assert target.evaluate(a) is False
    assert target.evaluate(a, frozenset({"test"})) is True
    assert target.evaluate(b, frozenset({"test"})) is True
    assert target.evaluate(b) is False
    # an object whose id was reused after the first one died is not given the old answer
    for _ in range(50):
        fresh = Marker("sys_platform == 'darwin'")
        assert target.evaluate(fresh) is False
        other = Marker("sys_platform == 'linux'")
        assert target.evaluate(other) is True


def test_a_marker_that_cannot_be_evaluated_fails_every_time() -> None:
    target = Target("3.12", "aarch64-darwin")
    marker = Marker("'a' in dependency_groups")
    for _ in range(2):
        with pytest.raises(
            MetadataError, match=r"cannot be evaluated on Python 3\.12 aarch64-darwin"
        ):
            target.evaluate(marker)


def test_req_derived_fields() -> None:
    targets = frozenset(targets_for("3.12"))
    req = Req.of(Requirement("Foo[B,a]>=1,!=1.5"), targets, "x")
    assert req.identifier == "foo[a,b]"
    assert not req.pinned
    assert Req.of(Requirement("foo==2.*"), targets, "x").pinned
    assert Req.of(Requirement("foo===2.0"), targets, "x").pinned
    for text in ("0.9", "1.0", "1.5", "2.0rc1", "3"):
        v = Version(text)
        for _ in range(2):
            assert req.contains(v) is req.specifier.contains(v, prereleases=True)
    # derived fields stay out of equality and hashing: a requirement met again is the same
    again = Req.of(Requirement("foo[a,b]!=1.5,>=1"), targets, "x")
    again.contains(Version("1.0"))
    assert again == req
    assert hash(again) == hash(req)
    cand = Candidate(canonicalize_name("foo"), Version("1"), frozenset(), (), targets)
    assert cand.identifier == "foo"


def test_specifier_memo_survives_id_reuse() -> None:
    version = Version("1.0")
    for _ in range(50):
        assert _contains(SpecifierSet(">=2"), version) is False
        assert _contains(SpecifierSet("<2"), version) is True


def _info(req: Req, parent: Candidate | None) -> RequirementInformation[Req, Candidate]:
    return RequirementInformation(req, parent)


def test_narrowed_selection_is_the_preferred_identifier() -> None:
    targets = frozenset(targets_for("3.12"))
    parent = Candidate(canonicalize_name("p"), Version("1"), frozenset(), (), targets)
    reqs = {
        "a": [_info(Req.of(Requirement("a>=1"), targets, "x"), parent)],
        "b": [_info(Req.of(Requirement("b==1"), targets, "x"), parent)],
        "c": [_info(Req.of(Requirement("c"), targets, "x", "root"), None)],
        "d": [
            _info(Req.of(Requirement("d>1"), targets, "x"), parent),
            _info(Req.of(Requirement("d==2"), targets, "x"), None),
        ],
        "e": [_info(Req.of(Requirement("e"), targets, "x"), parent)],
    }
    request = Request(requirements=[], targets=tuple(sorted(targets)))
    with ThreadPoolExecutor(1) as pool:
        provider = Provider(FrozenIndex({}), request, pool)
        for names in itertools.chain.from_iterable(
            itertools.permutations(reqs, n) for n in range(2, 4)
        ):
            for causes in ([], [reqs["e"][0]], [reqs["a"][0], reqs["c"][0]]):
                information = {n: iter(reqs[n]) for n in names}
                narrowed = provider.narrow_requirement_selection(
                    names, {}, {}, {n: iter(reqs[n]) for n in names}, causes
                )
                expected = min(
                    names,
                    key=lambda n: provider.get_preference(n, {}, {}, {n: iter(reqs[n])}, causes),
                )
                assert list(narrowed) == [expected], (names, causes, information)


def test_dependencies_and_candidates_are_kept_per_candidate() -> None:
    index = FrozenIndex(
        {
            "app": {
                "1.0": {
                    "requires": [
                        "lin ; sys_platform == 'linux'",
                        "mac ; sys_platform == 'darwin'",
                        "extra-dep ; extra == 'x'",
                    ],
                    "extras": ["x"],
                }
            },
            "lin": {"1.0": {}},
            "mac": {"1.0": {}},
            "extra-dep": {"1.0": {}},
        }
    )
    targets = targets_for("3.12")
    request = Request(requirements=[], targets=targets)
    with ThreadPoolExecutor(2) as pool:
        provider = Provider(index, request, pool)
        req = Req.of(Requirement("app[x]"), frozenset(targets), "x", "root")
        matches = provider.find_matches(
            req.identifier, {req.identifier: iter([req])}, {req.identifier: iter([])}
        )
        assert callable(matches)
        (cand,) = list(matches())
        (again,) = list(matches())
        assert again is cand  # one object per candidate, so its answers are kept with it
        first = provider.get_dependencies(cand)
        second = provider.get_dependencies(cand)
        assert first == second
        assert first is not second  # resolvelib may keep what it is given; never shared
        by_name: dict[str, frozenset[Target]] = {}
        for d in first:  # the frozen index hands out one metadata object per target
            by_name[d.name] = by_name.get(d.name, frozenset()) | d.targets
        linux = frozenset(t for t in targets if t.kernel == "linux")
        assert by_name["lin"] == linux
        assert by_name["mac"] == frozenset(targets) - linux
        assert by_name["extra-dep"] == frozenset(targets)
        assert by_name["app"] == frozenset(targets)  # the extra's own project, pinned


class _CountingIndex(FrozenIndex):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def dynamic_build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        with self.lock:
            self.asked.append(file.filename)
        return super().dynamic_build_requires(file)


def test_build_requirements_are_found_once_per_sdist() -> None:
    """Found in the background as soon as a system would build the sdist (the crawl, then
    the pin) and again when the lock is assembled: one backend run per sdist all the same,
    and the lock's build requirements are the backend's."""
    index = _CountingIndex(
        {
            **FRONTEND,
            "app": {"1.0": {"files": ["sdist"], "dynamic-build-requires": ["helper>=2"]}},
            "helper": {"1.0": {}, "2.0": {}},
            "setuptools": {"75.0": {}},
        }
    )
    request = Request(requirements=[(Requirement("app"), "test")], targets=targets_for("3.12"))
    resolution = resolve(index, request)
    assert index.asked == ["app-1.0.tar.gz"]
    app = resolution.packages[canonicalize_name("app")]
    assert app.build_requires == {"helper", "setuptools"}
    assert str(resolution.packages[canonicalize_name("helper")].version) == "2.0"


class _BrokenBuildIndex(FrozenIndex):
    def dynamic_build_requires(self, file: DistFile) -> tuple[Requirement, ...]:
        raise MetadataError(f"{file.filename}: the backend failed", where=file.url)


def test_a_build_requirement_failure_reaches_the_lock_as_before() -> None:
    """An error found in the background is raised where the lock asks, not lost."""
    index = _BrokenBuildIndex({**FRONTEND, "app": {"1.0": {"files": ["sdist"]}}})
    request = Request(requirements=[(Requirement("app"), "test")], targets=targets_for("3.12"))
    with pytest.raises(MetadataError, match=r"app-1\.0\.tar\.gz: the backend failed"):
        resolve(index, request)


CASES = yaml.safe_load((Path(__file__).parent / "data" / "resolve_cases.yaml").read_text())
#: a backtracking case of its own: the newest of several versions conflict one by one
BACKTRACK = {
    "name": "backtracks through many versions",
    "index": {
        "app": {
            f"1.{i}": {"requires": [f"lib=={i}.0", "tool>=2" if i > 3 else "tool"]}
            for i in range(12)
        },
        "lib": {f"{i}.0": {"requires": ["base<2" if i > 2 else "base"]} for i in range(12)},
        "base": {"1.0": {}, "2.0": {}},
        "tool": {"1.0": {"requires": ["base>=2"]}, "2.0": {"requires": ["base<2"]}},
        "other": {"1.0": {"requires": ["base>=2"]}},
    },
    "requested": ["app", "other"],
}


def _mapping(resolver_class: type[Resolver[Req, Candidate, str]], case: dict[str, Any]) -> Any:
    index = FrozenIndex({**FRONTEND, **case["index"]})
    targets = targets_for(case.get("python", "3.12"))
    reqs = [
        Req.of(r, frozenset(t for t in targets if t.evaluate(r.marker)), "case", "root")
        for r in map(Requirement, case["requested"])
    ]
    request = Request(
        requirements=[(Requirement(r), "case") for r in case["requested"]],
        constraints=[(Requirement(c), "case") for c in case.get("constraints", [])],
        targets=targets,
        prefer=case.get("prefer", "wheel"),
    )
    with ThreadPoolExecutor(4) as pool:
        provider = Provider(index, request, pool)
        try:
            result = resolver_class(provider, BaseReporter()).resolve(reqs, max_rounds=2000)
        except ResolutionImpossible as exc:
            return ("impossible", sorted(str(c.requirement) for c in exc.causes))
        except BotError as exc:
            return ("error", str(exc))
    return {
        k: (str(c.version), sorted(t.system for t in c.targets)) for k, c in result.mapping.items()
    }


@pytest.mark.parametrize("case", [*CASES, BACKTRACK], ids=[c["name"] for c in [*CASES, BACKTRACK]])
def test_remembered_pin_answers_resolve_as_resolvelib_does(case: dict[str, Any]) -> None:
    """The resolution that remembers whether a pin satisfies a criterion ends exactly where
    resolvelib's own does, conflicts included."""
    assert _mapping(_Resolver, case) == _mapping(Resolver, case)


def test_looking_ahead_records_no_rejection() -> None:
    """Backtracking fetches the metadata of the next versions ahead of the resolver; those
    guesses leave no reasons behind for versions the resolver never looked at."""
    late = "2026-06-01T00:00:00Z"  # after the snapshot: 1.0 and 1.1 are not released yet
    needs_313 = {"metadata-requires-python": ">=3.13"}  # known only from the metadata
    index = FrozenIndex(
        {
            **FRONTEND,
            "app": {
                "1.0": {"uploaded": late},
                "1.1": {"uploaded": late},
                "1.2": {},
                "1.3": needs_313,
                "1.4": needs_313,
                "1.5": needs_313,
            },
        }
    )
    request = Request(
        requirements=[(Requirement("app"), "case")],
        targets=targets_for("3.12"),
        exclude_newer=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with ThreadPoolExecutor(4) as pool:
        provider = Provider(index, request, pool)
        root = Req.of(Requirement("app"), frozenset(request.targets), "case", "root")
        result = _Resolver(provider, BaseReporter()).resolve([root], max_rounds=200)
    assert str(result.mapping["app"].version) == "1.2"
    # 1.5 and 1.4 were refused one after the other: the metadata of 1.3 and 1.2 was asked
    # for ahead of the resolver, and 1.1 and 1.0 were passed over without a trace
    assert {f"app-1.{i}-py3-none-any.whl" for i in range(2, 6)} <= set(index.metadata_calls)
    assert not [n for n in index.metadata_calls if n.startswith(("app-1.0-", "app-1.1-"))]
    assert "uploaded after --exclude-newer" not in provider.rejections.get("app", {})


def test_scratch_directories_are_removed_by_the_time_the_process_ends(tmp_path: Path) -> None:
    """PEP 517 scratch directories (a build environment is thousands of files) are removed
    in the background, after the hook's answer; none is left once the process exits."""
    code = (
        "import os\n"
        "from bot.lock.index.pep517 import _scratch\n"
        "for n in range(3):\n"
        "    with _scratch('nixpkgs-python-pep517-') as d:\n"
        "        for i in range(200):\n"
        "            os.makedirs(f'{d}/env/lib/{i}')\n"
        "            open(f'{d}/env/lib/{i}/f.py', 'w').close()\n"
        "print('done')\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert list(tmp_path.iterdir()) == []


def test_extended_matches_are_those_found_afresh() -> None:
    """One more requirement on a criterion continues the walk from the candidates already
    found (Provider.extend_matches); whatever the requirements, their targets, ``==`` pins,
    prereleases and incompatibilities, the candidates are those find_matches gives for all
    of them at once, in the same order."""
    versions = {
        **{f"{i}.0": {} for i in range(1, 9)},
        "9.0rc1": {},
        "8.5": {"files": ["cp312-cp312-manylinux_2_17_x86_64"]},  # linux x86_64 only
        "7.5": {"yanked": "broken"},
    }
    index = FrozenIndex({"lib": versions})
    targets = targets_for("3.12")
    linux = frozenset(t for t in targets if t.system == "x86_64-linux")
    every = frozenset(targets)
    specs = ["", ">=2", "<8", "!=6.0", ">=3,<7.5", "==7.5", ">=9.0rc1", "<5", "==8.5"]
    with ThreadPoolExecutor(2) as pool:
        provider = Provider(index, Request(requirements=[], targets=targets), pool)

        def req(spec: str, where: frozenset[Target]) -> Req:
            return Req.of(Requirement(f"lib{spec}"), where, "case")

        def fresh(reqs: list[Req], bad: list[Candidate]) -> list[str]:
            found = provider.find_matches("lib", {"lib": iter(reqs)}, {"lib": iter(bad)})
            return [str(c.version) for c in (found() if callable(found) else found)]

        checked = 0
        for first, second in itertools.product(specs, repeat=2):
            for where_1, where_2 in [(every, every), (linux, every), (every, linux)]:
                base = [req(first, where_1)]
                for bad in ([], fresh(base, [])[:1]):
                    incompatible = [
                        c
                        for c in provider._candidates.values()
                        if str(c.version) in bad and c.targets == where_1
                    ]
                    start = provider.find_matches(
                        "lib", {"lib": iter(base)}, {"lib": iter(incompatible)}
                    )
                    assert not callable(start) or isinstance(start, Matches)
                    if not isinstance(start, Matches):
                        continue
                    walked = list(start())  # the walk records where it found its first
                    more = req(second, where_2)
                    extended = provider.extend_matches(start, more)
                    assert [str(c.version) for c in extended()] == fresh(
                        [*base, more], incompatible
                    ), (first, second, sorted(t.system for t in where_2), bad)
                    if walked and extended.start:
                        checked += 1
        assert checked  # some walks did continue past refused versions
