"""The nightly's memo: a night whose index pages are all unchanged resolves nothing.

Real locks against the loopback index, with the options the nightly uses (``refresh`` and
``night_memo``); whether a resolution ran is read from the locker's debug log.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.lock.command import LockOptions, LockOutcome, lock_one
from bot.lock.index.client import IndexClient
from bot.lock.index.models import IndexRoute
from bot.lock.memo import lock_digest
from bot.model.sets import load_sets
from tests.plugins.pypi import IndexServer, make_wheel

RESOLVING = "demo (Python 3.12): resolving"
QUIET = "demo (Python 3.12): every page unchanged: not resolving"


def when(day: int) -> datetime:
    return datetime(2025, 3, day, tzinfo=UTC)


@pytest.fixture
def index(
    pypi_index_with_backend: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> IndexServer:
    index = pypi_index_with_backend
    for wheel in frontend_wheels.values():
        index.publish(wheel, upload_time="2025-01-01T00:00:00Z")
    dist = tmp_path / "dist"
    index.publish(
        make_wheel(dist, "nb-app", "1.0", requires_dist=["nb-lib"]),
        upload_time="2025-01-01T00:00:00Z",
    )
    index.publish(make_wheel(dist, "nb-lib", "1.0"), upload_time="2025-01-01T00:00:00Z")
    return index


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "sets" / "demo").mkdir(parents=True)
    (repo / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements: ['nb-app']\n"
    )
    return repo


class Night:
    """One lock of the demo set the way the nightly locks it, on a fresh client each time
    (a night is one process)."""

    def __init__(self, repo: Path, index: IndexServer, caplog: pytest.LogCaptureFixture):
        self.repo, self.index, self.caplog = repo, index, caplog
        self.path = repo / "sets" / "demo" / "pylock.py312.toml"

    def __call__(self, day: int) -> tuple[LockOutcome, list[str]]:
        [pset] = load_sets(self.repo, ["demo"])
        opts = LockOptions(
            repo=self.repo,
            exclude_newer=when(day),
            index_url=self.index.url,
            cache_dir=self.repo.parent / "metadata-cache",
            refresh=True,
            night_memo=True,
        )
        self.caplog.clear()
        with (
            self.caplog.at_level(logging.DEBUG, logger="bot"),
            IndexClient([IndexRoute(self.index.url)], cache_dir=opts.cache_dir) as client,
        ):
            outcome = lock_one(pset, "3.12", client, opts, when(day))
        messages = [r.getMessage() for r in self.caplog.records if r.name == "bot.lock.command"]
        return outcome, messages

    def memo_files(self) -> list[Path]:
        return sorted((self.repo.parent / "metadata-cache").rglob("night-results/*/*.json"))


@pytest.fixture
def night(repo: Path, index: IndexServer, caplog: pytest.LogCaptureFixture) -> Night:
    return Night(repo, index, caplog)


def resolved(messages: list[str]) -> bool:
    return RESOLVING in messages


def test_a_quiet_night_resolves_nothing(night: Night, index: IndexServer) -> None:
    first, messages = night(2)
    assert first.status == "created"
    assert resolved(messages)
    assert "demo (Python 3.12): night memo stored" in messages
    lock = night.path.read_bytes()
    stamp = night.path.stat().st_mtime_ns

    seen = len(index.requests)
    outcome, messages = night(3)  # a later snapshot, the same pages
    assert not resolved(messages), messages
    assert QUIET in messages
    assert outcome.status == "unchanged"
    assert outcome.reused
    assert outcome.packages == first.packages
    assert outcome.freshness == first.freshness  # the report's figures survive
    assert night.path.read_bytes() == lock
    assert night.path.stat().st_mtime_ns == stamp  # not even rewritten
    asked = [r.path for r in index.requests[seen:]]
    assert asked
    assert all(p.startswith("/simple/") for p in asked)
    assert len(asked) == len(set(asked))

    # the lock is read again when the build needs it
    outcome.load()
    assert outcome.new is not None
    assert outcome.new["packages"]


def test_a_new_upload_resolves_again(night: Night, index: IndexServer, tmp_path: Path) -> None:
    night(2)
    index.publish(
        make_wheel(tmp_path / "dist", "nb-lib", "1.1"), upload_time="2025-03-02T12:00:00Z"
    )
    outcome, messages = night(3)
    assert resolved(messages)
    assert outcome.status == "updated"
    assert ("nb-lib", "1.0", "1.1") in outcome.changes
    # and the night after, quiet again, at the new lock
    outcome, messages = night(4)
    assert not resolved(messages)
    assert outcome.status == "unchanged"


def test_a_changed_page_body_resolves_again(
    night: Night, index: IndexServer, tmp_path: Path
) -> None:
    night(2)
    lock = night.path.read_bytes()
    # an older release appears: the page body changes, the lock does not
    index.publish(
        make_wheel(tmp_path / "dist", "nb-lib", "0.9"), upload_time="2024-01-01T00:00:00Z"
    )
    outcome, messages = night(3)
    assert resolved(messages)
    assert outcome.status == "unchanged"
    assert not outcome.reused
    assert night.path.read_bytes() == lock
    index.yank("nb_lib-1.0-py3-none-any.whl", "oops")  # and again: a yank
    outcome, messages = night(4)
    assert resolved(messages)
    assert ("nb-lib", "1.0", "0.9") in outcome.changes


@pytest.mark.parametrize("pages", ["json", "html"])
def test_an_upload_hidden_by_the_snapshot_counts_when_the_snapshot_passes_it(
    night: Night, index: IndexServer, tmp_path: Path, pages: str
) -> None:
    """The page already lists 1.1 on the first night, uploaded after its snapshot: the next
    night's page is the same, but its snapshot sees 1.1 (the memo's window ends there)."""
    index.json = pages == "json"
    index.publish(
        make_wheel(tmp_path / "dist", "nb-lib", "1.1"), upload_time="2025-03-05T00:00:00Z"
    )
    first, _ = night(2)
    assert {n: v for n, _, v in first.changes}["nb-lib"] == "1.0"
    outcome, messages = night(4)  # still before the upload: quiet
    assert not resolved(messages)
    assert outcome.status == "unchanged"
    outcome, messages = night(6)  # after it: resolved, bumped
    assert resolved(messages)
    assert ("nb-lib", "1.0", "1.1") in outcome.changes


def test_changed_inputs_resolve_again(night: Night, repo: Path) -> None:
    night(2)
    set_yaml = repo / "sets" / "demo" / "set.yaml"
    set_yaml.write_text(set_yaml.read_text() + "constraints: ['nb-lib<2']\n")
    outcome, messages = night(3)
    assert resolved(messages)
    assert outcome.status == "updated"  # the inputs hash is recorded in the lock

    (repo / "overrides" / "packages").mkdir(parents=True)
    (repo / "overrides" / "packages" / "nb-lib.toml").write_text(
        '[[override]]\nreason = "its build needs nb-app"\nbuild-requires = ["nb-app"]\n'
    )
    _, messages = night(4)
    assert resolved(messages)

    set_yaml.write_text(set_yaml.read_text().replace("description: demo", "description: x"))
    outcome, messages = night(5)
    assert resolved(messages)
    assert outcome.status == "updated"
    _, messages = night(6)
    assert not resolved(messages)


def test_a_lock_edited_by_hand_is_resolved_again(night: Night) -> None:
    night(2)
    lock = night.path.read_bytes()
    night.path.write_bytes(lock.replace(b'version = "1.0"', b'version = "0.9"', 1))
    outcome, messages = night(3)
    assert resolved(messages)
    assert outcome.status == "updated"
    assert lock_digest(night.path.read_bytes()) == lock_digest(lock)  # but the snapshot time


def test_a_corrupt_memo_warns_once_and_heals(night: Night) -> None:
    night(2)
    [memo] = night.memo_files()
    lock = night.path.read_bytes()
    for garbage in (b"{not json", b'{"format": 1, "pages": {}}', b"[]"):
        memo.write_bytes(garbage)
        outcome, messages = night(3)
        warnings = [
            r for r in night.caplog.records if r.levelno == logging.WARNING and "memo" in r.message
        ]
        assert len(warnings) == 1, garbage
        assert "corrupt" in warnings[0].getMessage()
        assert resolved(messages)
        assert outcome.status == "unchanged"
        assert night.path.read_bytes() == lock
    _, messages = night(4)  # written again by that resolution
    assert not resolved(messages)
    assert not [r for r in night.caplog.records if r.levelno >= logging.WARNING]


def test_pages_without_upload_times_are_quiet_too(night: Night, index: IndexServer) -> None:
    """A static PEP 503 index states no upload times: every file is seen whatever the
    snapshot, so the same pages are the same resolution."""
    index.json = False
    index.upload_times = False
    night(2)
    outcome, messages = night(20)
    assert not resolved(messages)
    assert outcome.reused
