"""bot.nightly.revalidate: which overrides still change the outcome
(real nix-builds of a loopback set).

The set ``demo`` (Python 3.12) locks two packages of the loopback index:

- ``mended``: 1.0's build script needed ``MENDED_LEGACY=1``, so the library sets it (no
  ``until``); the set is locked at 1.1, whose sdist builds without it -> ``unneeded``,
  until = "1.1" (an ``env`` setting read by the package's own build: the host cannot mask
  it, so a standalone build can judge it);
- ``broken`` 2.0 cannot be imported; its entry #2 turns the import check off -> ``needed``;
  its entry #1 only covers versions before 1.0 -> ``unmatched``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import NormalizedName

from bot.core.nix import sandboxed
from bot.model.overrides import Override, OverrideError, load_overrides
from bot.nightly import publish
from bot.nightly.overrides_edit import header_lines
from bot.nightly.report import NightReport
from bot.nightly.revalidate import (
    Finding,
    apply_findings,
    commit_message,
    host_maskable,
    revalidate,
    rotate,
    to_markdown,
    unmatched,
)
from tests.plugins.nixenv import NixRepo, entry, frontend_entries, write_lock
from tests.plugins.pypi import (
    IndexServer,
    make_backend_wheel,
    make_sdist,
    make_wheel,
    published_index,
)

BROKEN_TOML = """\
# broken: a test package whose import fails

[[override]]
until = "1.0"
reason = "broken before 1.0 needed X=1"
env = { X = "1" }

# the import of broken always fails
[[override]]
reason = "broken cannot be imported"
imports-check = false
"""

MENDED_TOML = """\
[[override]]
reason = "mended 1.0 needs MENDED_LEGACY=1 to build"  # fixed upstream in 1.1
env = { MENDED_LEGACY = "1" }
"""


SRCFIX = "raise ImportError('srcfix needs its patch')\n"
SRCFIX_PATCH = f"""\
--- a/srcfix/__init__.py
+++ b/srcfix/__init__.py
@@ -1 +1 @@
-{SRCFIX.strip()}
+OK = 1
"""
SRCFIX_TOML = """\
[[override]]
reason = "srcfix's sdist does not import without the patch"
patches = ["patches/srcfix.patch"]
"""


GITLIKE = """\
import subprocess
try:
    subprocess.run(["git", "version"], check=True, capture_output=True)
except (OSError, subprocess.CalledProcessError) as exc:
    raise ImportError(f"gitlike needs git on PATH: {exc}") from exc
"""

#: pyyaml's guard, and a guard whose range matches no locked version
LOUD_TOML = """\
[[override]]
reason = "without libloud the build silently falls back; force it so a missing libloud fails"
env = { LOUD_FORCE_EXTENSION = "1" }
guard = true

[[override]]
until = "0.5"
reason = "loud before 0.5 needed the same guard under another name"
env = { LOUD_FORCE = "1" }
guard = true
"""

#: as gitpython's entry (overrides/packages/gitpython.toml)
GITLIKE_TOML = """\
[[override]]
reason = "gitlike runs git when imported and raises ImportError without git on PATH"
imports-check = false
env = { GITLIKE_REFRESH = "quiet" }
"""


@pytest.fixture(scope="module")
def dists(
    tmp_path_factory: pytest.TempPathFactory, frontend_wheels: dict[str, Path]
) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("revalidate-dists")
    return {
        **frontend_wheels,
        "mended-1.0": make_wheel(
            d,
            "mended",
            "1.0",
            modules={"mended/__init__.py": "raise ImportError('mended 1.0 is broken')\n"},
        ),
        "mended": make_sdist(d, "mended", "1.1", modules={"mended/__init__.py": "OK = 1\n"}),
        "broken": make_wheel(
            d,
            "broken",
            "2.0",
            modules={"broken/__init__.py": "raise ImportError('broken is broken')\n"},
        ),
        # srcfix 1.0: its wheel imports; its sdist only with the library's patch
        "srcfix-wheel": make_wheel(d, "srcfix", "1.0", modules={"srcfix/__init__.py": "OK = 1\n"}),
        "srcfix-sdist": make_sdist(d, "srcfix", "1.0", modules={"srcfix/__init__.py": SRCFIX}),
        "fixture-backend": make_backend_wheel(d),
        # loud 1.0: its sdist builds with or without its guard's variable
        "loud": make_sdist(d, "loud", "1.0", modules={"loud/__init__.py": "OK = 1\n"}),
        # gitlike 1.0 runs git when imported, as GitPython does: it imports where git is
        "gitlike": make_wheel(d, "gitlike", "1.0", modules={"gitlike/__init__.py": GITLIKE}),
    }


@pytest.fixture(scope="module")
def index(
    tmp_path_factory: pytest.TempPathFactory, dists: dict[str, Path]
) -> Iterator[IndexServer]:
    with published_index(tmp_path_factory.mktemp("revalidate-index"), dists.values()) as server:
        yield server


@pytest.fixture
def repo(nix_repo: NixRepo, index: IndexServer, dists: dict[str, Path]) -> NixRepo:
    """The demo set locked at mended 1.1 and broken 2.0, with the library above."""
    write_lock(
        nix_repo.sets / "demo" / "pylock.py312.toml",
        [
            *frontend_entries(dists),
            entry(dists["fixture-backend"]),
            entry(dists["mended"], build_requires=["fixture-backend"]),
            entry(dists["broken"]),
        ],
        base_url=f"{index.root_url}/files/",
        set_name="demo",
        roots=["mended", "broken"],
    )
    (nix_repo.overrides / "packages" / "broken.toml").write_text(BROKEN_TOML)
    (nix_repo.overrides / "packages" / "mended.toml").write_text(MENDED_TOML)
    return nix_repo


@pytest.mark.nix
def test_rotating_builds_find_unneeded_needed_and_unmatched(repo: NixRepo, tmp_path: Path) -> None:
    state = tmp_path / "state" / "revalidate.json"
    first = revalidate(repo.root, budget=1, state_file=state, interpreters=repo.interpreters)
    second = revalidate(repo.root, budget=1, state_file=state, interpreters=repo.interpreters)

    # unmatched: every night, no build
    for night in (first, second):
        [gone] = [f for f in night if f.kind == "unmatched"]
        assert (gone.id, gone.file, gone.line, gone.versions) == (
            "broken#1",
            "overrides/packages/broken.toml",
            3,
            ("2.0",),
        )
        assert gone.edit == "remove"
        assert gone.suggestion.startswith(
            "remove the [[override]] entry at overrides/packages/broken.toml:3 "
            '(reason: "broken before 1.0 needed X=1")'
        )

    # one build a night, a different entry each night
    [needed] = [f for f in first if f.kind != "unmatched"]
    [unneeded] = [f for f in second if f.kind != "unmatched"]
    assert (needed.id, needed.kind, needed.line) == ("broken#2", "needed", 9)
    assert (needed.set, needed.python, needed.tested_version) == ("demo", "3.12", "2.0")
    assert needed.edit is None
    assert "imports check failed" in needed.log_tail
    assert (unneeded.id, unneeded.kind, unneeded.versions) == ("mended#1", "unneeded", ("1.1",))
    assert (unneeded.edit, unneeded.until) == ("until", "1.1")
    assert unneeded.suggestion.startswith(
        'set until = "1.1" in the [[override]] entry at overrides/packages/mended.toml:1 '
        '(reason: "mended 1.0 needs MENDED_LEGACY=1 to build")'
    )
    recorded = json.loads(state.read_text())["repos"][str(repo.root.resolve())]
    assert recorded["last"] == "mended#1"
    assert list(recorded["needed"]) == ["broken#2"]
    # the third night starts over, but does not repeat the failing build of an entry found
    # needed while neither it nor the versions it applies to changed
    third = revalidate(repo.root, budget=1, state_file=state, interpreters=repo.interpreters)
    assert [f.id for f in third if f.kind != "unmatched"] == ["mended#1"]

    # the pull request's edits
    findings = [*second, needed]
    changed = apply_findings(repo.root, findings)
    assert sorted(p.name for p in changed) == ["broken.toml", "mended.toml"]
    assert (repo.overrides / "packages" / "mended.toml").read_text() == (
        '[[override]]\nuntil = "1.1"\nreason = "mended 1.0 needs MENDED_LEGACY=1 to build"  '
        '# fixed upstream in 1.1\nenv = { MENDED_LEGACY = "1" }\n'
    )
    assert (repo.overrides / "packages" / "broken.toml").read_text() == (
        "# broken: a test package whose import fails\n\n"
        "# the import of broken always fails\n[[override]]\n"
        'reason = "broken cannot be imported"\nimports-check = false\n'
    )
    library = load_overrides(repo.root)
    assert [o.reason for o in library["broken"]] == ["broken cannot be imported"]
    assert str(library["mended"][0].until) == "1.1"
    # with the edits made, nothing is unmatched and mended's entry no longer applies
    assert [f.id for f in unmatched(repo.root)] == ["mended#1"]
    subject, body = commit_message(findings)
    assert subject == "overrides: drop or narrow entries no longer needed (broken, mended)"
    assert body.count("\n- ") == 1
    markdown = to_markdown(findings)
    assert "**no longer needed**" in markdown
    assert "**still needed**" in markdown


@pytest.mark.nix
def test_an_entry_for_building_from_source_is_judged_on_the_sdist(
    nix_repo: NixRepo, index: IndexServer, dists: dict[str, Path], tmp_path: Path
) -> None:
    """The month's replay: pyyaml's ``env = { PYYAML_FORCE_LIBYAML = "1" }`` (for its sdist,
    in the native set) was found "unneeded" by building the pyyaml *wheel* the sphinx set
    locks, and ``until`` was suggested.  Here srcfix 1.0 is locked as a wheel in the set
    ``wheels`` (tried first: the same Python, the later name) and from its sdist in
    ``source``, whose build needs the entry's patch: the verdict comes from the sdist."""
    url = f"{index.root_url}/files/"
    write_lock(nix_repo.sets / "wheels" / "pylock.py312.toml",
               [*frontend_entries(dists), entry(dists["srcfix-wheel"])],
               base_url=url, set_name="wheels", roots=["srcfix"])  # fmt: skip
    write_lock(nix_repo.sets / "source" / "pylock.py312.toml",
               [*frontend_entries(dists), entry(dists["fixture-backend"]),
                entry(dists["srcfix-sdist"], build_requires=["fixture-backend"])],
               base_url=url, set_name="source", roots=["srcfix"])  # fmt: skip
    (nix_repo.overrides / "patches").mkdir()
    (nix_repo.overrides / "patches" / "srcfix.patch").write_text(SRCFIX_PATCH)
    (nix_repo.overrides / "packages" / "srcfix.toml").write_text(SRCFIX_TOML)

    state = tmp_path / "revalidate.json"
    [found] = revalidate(nix_repo.root, state_file=state, interpreters=nix_repo.interpreters)
    assert (found.id, found.kind, found.set, found.edit) == ("srcfix#1", "needed", "source", None)
    assert "srcfix needs its patch" in found.log_tail

    # only wheels locked: nothing to tell, and no build is spent on it
    [wheels_only] = revalidate(nix_repo.root, sets=["wheels"], state_file=tmp_path / "s2.json",
                               interpreters=nix_repo.interpreters)  # fmt: skip
    assert (wheels_only.kind, wheels_only.edit) == ("inconclusive", None)
    assert wheels_only.detail.startswith(
        "every lock here installs srcfix from a wheel (set wheels), and the entry only "
        "changes a build from its sdist"
    )


def test_sets_filter_and_zero_budget(repo: NixRepo, tmp_path: Path) -> None:
    state = tmp_path / "revalidate.json"
    assert [
        f.kind
        for f in revalidate(repo.root, budget=0, state_file=state, interpreters=repo.interpreters)
    ] == ["unmatched"]
    assert [
        f.kind
        for f in revalidate(
            repo.root, sets=["other"], state_file=state, interpreters=repo.interpreters
        )
    ] == ["unmatched"]
    assert not state.exists()


def test_rotate() -> None:
    ids = ["b#1", "a#2", "a#10", "c#1"]
    assert rotate(ids, None, 2) == ["a#2", "a#10"]
    assert rotate(ids, "a#10", 2) == ["b#1", "c#1"]
    assert rotate(ids, "c#1", 3) == ["a#2", "a#10", "b#1"]
    assert rotate(ids, "gone#1", 9) == ["a#2", "a#10", "b#1", "c#1"]  # after "gone": wraps
    assert rotate(ids, "b#5", 1) == ["c#1"]
    assert rotate(ids, None, 0) == []
    assert rotate([], "a#1", 3) == []


def _finding(index: int, edit: str, until: str | None = None, *, reason: str) -> Finding:
    return Finding(
        "foo",
        index,
        "overrides/packages/foo.toml",
        None,
        "unneeded",
        reason,
        (),
        suggestion="s",
        edit=edit,
        until=until,
    )  # type: ignore[arg-type]


FOO = """\
# preamble
[[override]]
from = "1.0"
reason = "one"
[override.env]
A = "1"

# about two
# (still about two)
[[override]]
reason = "two"
until = '3.0'   # keep
env = { B = "2" }
"""


def test_apply_edits_text_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "overrides" / "packages" / "foo.toml"
    path.parent.mkdir(parents=True)
    path.write_text(FOO)
    assert header_lines(FOO) == [1, 9]

    _finding(1, "until", "2.0", reason="one").apply(tmp_path)
    assert path.read_text() == FOO.replace('from = "1.0"\n', 'from = "1.0"\nuntil = "2.0"\n')
    _finding(2, "until", "2.5", reason="two").apply(tmp_path)
    assert 'until = "2.5"   # keep\n' in path.read_text()
    assert [str(o.until) for o in load_overrides(tmp_path)["foo"]] == ["2.0", "2.5"]

    with pytest.raises(OverrideError, match="no entry #2 with reason 'three'"):
        _finding(2, "remove", reason="three").apply(tmp_path)
    _finding(2, "remove", reason="two").apply(tmp_path)
    assert path.read_text() == (
        '# preamble\n[[override]]\nfrom = "1.0"\nuntil = "2.0"\nreason = "one"\n'
        '[override.env]\nA = "1"\n'
    )
    assert [o.reason for o in load_overrides(tmp_path)["foo"]] == ["one"]
    # the last entry takes the file with it
    assert _finding(1, "remove", reason="one").apply(tmp_path) == path
    assert not path.exists()
    assert load_overrides(tmp_path) == {}


def test_apply_first_of_two_and_nothing_to_apply(tmp_path: Path) -> None:
    path = tmp_path / "overrides" / "packages" / "foo.toml"
    path.parent.mkdir(parents=True)
    path.write_text(FOO)
    _finding(1, "remove", reason="one").apply(tmp_path)
    assert path.read_text() == (
        '# preamble\n\n# about two\n# (still about two)\n[[override]]\nreason = "two"\n'
        "until = '3.0'   # keep\nenv = { B = \"2\" }\n"
    )
    needed = Finding("foo", 1, "overrides/packages/foo.toml", 4, "needed", "two", ("1.0",))
    assert needed.apply(tmp_path) is None
    assert apply_findings(tmp_path, [needed]) == []


def test_unmatched_without_locks(tmp_path: Path) -> None:
    (tmp_path / "overrides" / "packages").mkdir(parents=True)
    (tmp_path / "overrides" / "packages" / "mended.toml").write_text(MENDED_TOML)
    [finding] = unmatched(tmp_path)
    assert (finding.kind, finding.line, finding.versions) == ("unmatched", 1, ())
    assert finding.suggestion.endswith(": mended is in no lock")


def test_a_needed_verdict_is_kept_only_while_its_inputs_stay() -> None:
    from bot.nightly.revalidate import Locked, _fingerprint

    entry = Override(name=NormalizedName("foo"), reason="r", where="overrides/packages/foo.toml")
    at_1 = [Locked("demo", "3.12", "1.0", frozenset({"x86_64-linux"}))]
    at_2 = [Locked("demo", "3.12", "2.0", frozenset({"x86_64-linux"}))]
    assert _fingerprint(entry, at_1) == _fingerprint(entry, list(at_1))
    assert _fingerprint(entry, at_1) != _fingerprint(entry, at_2)
    changed = Override(name=NormalizedName("foo"), reason="other", where=entry.where)
    assert _fingerprint(entry, at_1) != _fingerprint(changed, at_1)


def test_the_locked_versions_are_kept_for_the_locks_bytes(
    tmp_path: Path, dists: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.nightly import revalidate_state
    from bot.nightly.revalidate_state import locked_versions

    lock = write_lock(
        tmp_path / "sets" / "demo" / "pylock.py312.toml",
        [entry(dists["mended"]), entry(dists["broken"])],
        base_url="http://127.0.0.1:9/files/",
        set_name="demo",
    )
    memo = tmp_path / "cache" / "revalidate-locked.json"
    first = locked_versions(tmp_path, memo=memo)
    assert sorted(first) == ["broken", "mended"]
    assert [(lk.set, lk.python, lk.version) for lk in first["mended"]] == [("demo", "3.12", "1.1")]
    assert memo.is_file()

    def no_parse(text: str) -> object:
        raise AssertionError("a lock was parsed although its bytes did not change")

    with monkeypatch.context() as m:
        m.setattr(revalidate_state.tomllib, "loads", no_parse)
        assert locked_versions(tmp_path, memo=memo) == first
    # changed bytes are read again
    lock.write_text(lock.read_text().replace('version = "1.1"', 'version = "1.2"'))
    assert [lk.version for lk in locked_versions(tmp_path, memo=memo)["mended"]] == ["1.2"]
    # a damaged memo is no answer, only a miss
    memo.write_text("{not json")
    assert [lk.version for lk in locked_versions(tmp_path, memo=memo)["mended"]] == ["1.2"]
    # an unreadable lock is skipped with a warning every time: nothing is kept for it
    lock.write_text("not = [toml")
    memo.unlink()
    assert locked_versions(tmp_path, memo=memo) == {}
    assert not memo.exists()


@pytest.mark.nix
def test_a_verdict_built_with_the_same_inputs_is_not_built_again(
    repo: NixRepo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    state = tmp_path / "state" / "revalidate.json"

    def night() -> tuple[list[Finding], list[str]]:
        with caplog.at_level(logging.DEBUG, logger="bot"):
            caplog.clear()
            found = revalidate(
                repo.root, budget=5, state_file=state, interpreters=repo.interpreters
            )
        messages = [r.getMessage() for r in caplog.records]
        return found, [m for m in messages if m.startswith("$ nix-build ")]

    first, builds = night()
    assert {f.id: f.kind for f in first if f.kind != "unmatched"} == {
        "broken#2": "needed",
        "mended#1": "unneeded",
    }
    assert builds
    # nothing changed: broken#2 stays needed (as before), mended#1's verdict is the one built
    second, builds = night()
    assert builds == []
    [again] = [f for f in second if f.id == "mended#1"]
    assert again == next(f for f in first if f.id == "mended#1")
    # any input of the builds changed (here the set's lock, by a comment): built again
    lock = repo.sets / "demo" / "pylock.py312.toml"
    lock.write_text(lock.read_text() + "# touched\n")
    third, builds = night()
    assert len(builds) == 1
    assert "demo.py312.packages.mended.env" in builds[0]
    assert [f.kind for f in third if f.id == "mended#1"] == ["unneeded"]


def _nix_builds(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for m in (r.getMessage() for r in caplog.records) if m.startswith("$ nix-build ")]


@pytest.mark.nix
def test_a_guard_is_reported_as_one_and_never_edited_on_build_success(
    nix_repo: NixRepo,
    index: IndexServer,
    dists: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """loud's first entry only makes a failure loud: the sdist builds without it (shown by a
    real build with the entry left out, which without ``guard = true`` is judged unneeded),
    but a guard is not judged by build success; its second entry matches no locked version
    and is removed as any entry is."""
    import logging

    write_lock(nix_repo.sets / "demo" / "pylock.py312.toml",
               [*frontend_entries(dists), entry(dists["fixture-backend"]),
                entry(dists["loud"], build_requires=["fixture-backend"])],
               base_url=f"{index.root_url}/files/", set_name="demo", roots=["loud"])  # fmt: skip
    toml = nix_repo.overrides / "packages" / "loud.toml"
    # the same entry without its mark: the build without it succeeds, and until is suggested
    toml.write_text(LOUD_TOML.replace("guard = true\n\n", "\n", 1))
    unmarked = revalidate(nix_repo.root, state_file=tmp_path / "a.json",
                          interpreters=nix_repo.interpreters)  # fmt: skip
    assert {f.id: (f.kind, f.edit) for f in unmarked} == {
        "loud#1": ("unneeded", "until"),
        "loud#2": ("unmatched", "remove"),
    }

    toml.write_text(LOUD_TOML)
    [guard] = load_overrides(nix_repo.root)["loud"][:1]
    assert guard.guard is True
    with caplog.at_level(logging.DEBUG, logger="bot"):
        found = revalidate(nix_repo.root, state_file=tmp_path / "b.json",
                           interpreters=nix_repo.interpreters)  # fmt: skip
    assert _nix_builds(caplog) == []  # no build is spent on a guard
    by_id = {f.id: f for f in found}
    assert sorted(by_id) == ["loud#1", "loud#2"]
    loud = by_id["loud#1"]
    assert (loud.kind, loud.edit, loud.until, loud.suggestion) == ("guard", None, None, "")
    assert (loud.versions, loud.line) == (("1.0",), 1)
    assert "not judged by build success" in loud.detail
    assert (by_id["loud#2"].kind, by_id["loud#2"].edit) == ("unmatched", "remove")
    assert "**guards (not judged by build success)**" in to_markdown(found)
    # the night's report leaves guards out, as it does entries still needed
    night_md = publish.markdown(NightReport(date="2026-12-02"), found)
    assert "**match no locked version**" in night_md
    assert "loud before 0.5 needed the same guard" in night_md
    assert "guards" not in night_md
    assert "libloud" not in night_md
    # the pull request removes the unmatched guard and leaves the other as it is
    assert [p.name for p in apply_findings(nix_repo.root, found)] == ["loud.toml"]
    assert toml.read_text() == LOUD_TOML.split("\n\n[[override]]", maxsplit=1)[0] + "\n"
    assert commit_message(found)[1].count("- ") == 1


@pytest.mark.nix
def test_a_host_masked_entry_is_inconclusive_on_a_standalone_build(
    nix_repo: NixRepo, index: IndexServer, dists: dict[str, Path], tmp_path: Path
) -> None:
    """gitlike imports here because this machine has /usr/bin/git, which a standalone
    build's PATH has: without its entry it builds and passes its import check, but that
    says nothing about a sandboxed build, which has no git."""
    write_lock(nix_repo.sets / "demo" / "pylock.py312.toml",
               [*frontend_entries(dists), entry(dists["gitlike"])],
               base_url=f"{index.root_url}/files/", set_name="demo", roots=["gitlike"])  # fmt: skip
    (nix_repo.overrides / "packages" / "gitlike.toml").write_text(GITLIKE_TOML)
    [found] = revalidate(nix_repo.root, state_file=tmp_path / "s.json",
                         interpreters=nix_repo.interpreters)  # fmt: skip
    assert (found.id, found.kind, found.edit, found.until) == (
        "gitlike#1",
        "inconclusive",
        None,
        None,
    )
    assert found.detail.startswith(
        "impure build: the host may provide what this entry adds (imports-check); "
        "judge it on a sandboxed nixpkgs build (gitlike 1.0 builds and passes its import "
        "check without it (set demo, Python 3.12))"
    )
    assert (found.set, found.python, found.tested_version) == ("demo", "3.12", "1.0")
    assert apply_findings(nix_repo.root, [found]) == []


def test_which_fields_the_host_can_mask() -> None:
    """The rule (revalidate's docstring), on the shipped library and on single fields."""
    library = load_overrides(Path(__file__).resolve().parents[1])
    pyyaml, force = library[NormalizedName("pyyaml")]
    assert (pyyaml.guard, force.guard) == (False, True)
    assert host_maskable(pyyaml) == ("build-inputs",)
    [gitpython] = library[NormalizedName("gitpython")]
    assert not gitpython.guard
    assert host_maskable(gitpython) == ("imports-check", "check")

    def one(**kw: object) -> tuple[str, ...]:
        return host_maskable(Override(NormalizedName("x"), "r", "here", **kw))  # type: ignore[arg-type]

    assert one(env={"SETUPTOOLS_SCM_PRETEND_VERSION": "1.0", "X": "1"}) == ()
    assert one(env={"PG_CONFIG": "pg_config", "CC": "gcc", "X": "/usr/bin/x", "Y": "1"}) == (
        "env.CC",
        "env.PG_CONFIG",
        "env.X",
    )
    assert one(patches=("patches/x.patch",), build_requires=()) == ()
    assert one(system_libraries=("zlib",), imports_check=("x",)) == (
        "system-libraries",
        "imports-check",
    )
    assert one(check_requires=("pytest",)) == ("check",)


@pytest.mark.nix
def test_the_sandbox_setting_is_read_from_nix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nix's own reading of its configuration (NIX_CONFIG is read after nix.conf)."""
    for value, expected in (("true", True), ("relaxed", True), ("false", False)):
        monkeypatch.setenv("NIX_CONFIG", f"sandbox = {value}")
        assert sandboxed() is expected, value
