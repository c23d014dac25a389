"""Advisories in the night's report: OSV range evaluation, reading a local database (directory
or zip), one warning for a broken one, and the night end to end (report and pull request)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from bot.nightly.advisories import (
    Affected,
    for_sets,
    in_range,
    load,
    parse_advisory,
    to_markdown,
)
from bot.nightly.run import run_nightly
from tests.harness import git
from tests.plugins.fake_github import FakeGitHub
from tests.plugins.pypi import IndexServer, make_wheel
from tests.test_nightly import REPO, github, night_index, night_repo, options

__all__ = ["night_index", "night_repo"]  # fixtures used here

OSV = Path(__file__).parent / "data" / "osv"


@pytest.mark.parametrize(
    ("events", "affected", "safe"),
    [
        ([("introduced", "0"), ("fixed", "1.1")], ["0.1", "1.0", "1.1rc1"], ["1.1", "2.0"]),
        ([("introduced", "1.0"), ("fixed", "1.5")], ["1.0", "1.4.9"], ["0.9", "1.5", "1.5.1"]),
        (
            # two windows, given out of order: sorted before evaluation
            [("fixed", "2.5"), ("introduced", "2.0"), ("fixed", "1.5"), ("introduced", "1.0")],
            ["1.2", "2.0", "2.4"],
            ["0.5", "1.7", "2.5", "3.0"],
        ),
        ([("introduced", "0.5"), ("last_affected", "1.0")], ["0.5", "1.0"], ["0.4", "1.0.1"]),
        ([("introduced", "1.0")], ["1.0", "99"], ["0.9"]),
        ([("introduced", "0"), ("fixed", "1!1.0")], ["5.0"], ["1!1.0"]),
        ([("introduced", "not a version")], [], ["1.0"]),
    ],
)
def test_ecosystem_ranges(
    events: list[tuple[str, str]], affected: list[str], safe: list[str]
) -> None:
    assert [v for v in affected if not in_range(Version(v), events)] == []
    assert [v for v in safe if in_range(Version(v), events)] == []


def test_versions_lists_compare_as_versions() -> None:
    entry = Affected("nb-lib", versions=frozenset({"1.1", "2.0.0"}))
    assert entry.matches("1.1")
    assert entry.matches("2.0")  # 2.0 == 2.0.0
    assert not entry.matches("1.2")
    assert not entry.matches("weird-version")


def test_parse_keeps_pypi_ecosystem_ranges_only() -> None:
    record = json.loads((OSV / "PYSEC-0000-1.json").read_text())
    advisory = parse_advisory(record)
    assert advisory is not None
    assert advisory.url == "https://osv.dev/vulnerability/PYSEC-0000-1"
    [affected] = advisory.affected
    assert affected.package == "nb-lib"  # NB_Lib, normalized
    assert affected.ranges == ((("introduced", "0"), ("fixed", "1.1")),)
    assert parse_advisory(json.loads((OSV / "TEST-0004-withdrawn.json").read_text())) is None
    assert parse_advisory(json.loads((OSV / "TEST-0005-npm.json").read_text())) is None
    with pytest.raises(TypeError):
        parse_advisory(["not", "a", "record"])


def test_directory_and_zip_read_the_same(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(OSV.glob("*.json")):
            zf.write(path, path.name)
    for source in (OSV, archive):
        db = load(source)
        assert [a.id for a in db.affecting("nb-lib", "1.0")] == ["PYSEC-0000-1"]
        assert [a.id for a in db.affecting("NB.Lib", "1.1")] == ["GHSA-test-0002"]
        assert [a.id for a in db.affecting("nb-app", "1.0")] == ["TEST-0003"]
        assert db.affecting("nb-app", "1.1") == []
        assert db.skipped == 0


def test_fixed_and_new_between_two_locks() -> None:
    night = for_sets(
        OSV,
        {"demo": ([("nb-app", "1.0"), ("nb-lib", "1.0")], [("nb-app", "1.0"), ("nb-lib", "1.1")])},
    )
    assert night.warning is None
    [s] = night.sets
    assert [h.id for h in s.fixed] == ["PYSEC-0000-1"]
    assert [h.id for h in s.introduced] == ["GHSA-test-0002"]
    data = s.to_json()
    assert data["fixed"] == ["PYSEC-0000-1"]
    assert data["introduced"] == ["GHSA-test-0002"]
    assert sorted(h["id"] for h in data["new"]) == ["GHSA-test-0002", "TEST-0003"]
    text = to_markdown(night)
    assert "fixed tonight:\n- [PYSEC-0000-1](https://osv.dev/vulnerability/PYSEC-0000-1)" in text
    assert " (CVE-0000-0001) nb-lib 1.0: nb-lib before 1.1 trusts its input" in text
    assert "new tonight:\n- [GHSA-test-0002]" in text
    assert "nb-lib 1.1: nb-lib 1.1 regressed." in text
    assert "still affecting:\n- [TEST-0003]" in text
    quiet = for_sets(OSV, {"other": ([("nb-lib", "2.0")], [("nb-lib", "2.0")])})
    assert "- **other**: none known" in to_markdown(quiet)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d / "missing.zip", "not found"),
        (lambda d: (d / "bad.zip").write_bytes(b"PK\x03\x04 truncated") and d / "bad.zip", "zip"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no OSV records"),
        (
            lambda d: (
                ((d / "junk").mkdir(), (d / "junk" / "a.json").write_text("{nope")) and d / "junk"
            ),
            "none of its 1 records",
        ),
    ],
)
def test_a_broken_database_is_one_warning(tmp_path: Path, make: object, says: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    night = for_sets(path, {"demo": ([("nb-lib", "1.0")], [("nb-lib", "1.1")])})
    assert night.sets == ()
    assert night.warning is not None
    assert says in night.warning
    assert str(path) in night.warning
    assert to_markdown(night) == f"## Advisories\n\n⚠️ {night.warning}\n"


@pytest.mark.parametrize("damage", ["unknown-method", "encrypted", "corrupt-deflate"])
def test_a_database_zip_with_a_damaged_member_is_one_warning(tmp_path: Path, damage: str) -> None:
    from tests.test_index_archives import damaged_zip

    buffer = tmp_path / "good.zip"
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(OSV.glob("*.json")):
            zf.write(path, path.name, compress_type=zipfile.ZIP_DEFLATED)
    first = sorted(OSV.glob("*.json"))[0].name
    archive = tmp_path / "all.zip"
    archive.write_bytes(damaged_zip(buffer.read_bytes(), first, damage))
    night = for_sets(archive, {"demo": ([("nb-lib", "1.0")], [("nb-lib", "1.1")])})
    assert night.sets == ()
    assert night.warning is not None
    assert "not a readable directory or zip of OSV records" in night.warning
    assert str(archive) in night.warning


def test_unreadable_records_are_skipped_and_counted(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    for path in OSV.glob("*.json"):
        (db / path.name).write_bytes(path.read_bytes())
    (db / "broken.json").write_text('{"id": 5}')
    (db / "noise.json").write_text("[]")
    night = for_sets(db, {"demo": ([("nb-lib", "1.0")], [("nb-lib", "1.0")])})
    assert night.warning == f"advisory database {db}: 2 unreadable records skipped"
    assert [h.id for h in night.sets[0].new] == ["PYSEC-0000-1"]


@pytest.mark.nix
def test_the_night_reports_fixed_and_new_advisories(
    night_repo: tuple[Path, Path], night_index: IndexServer, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    work, _remote = night_repo
    first = run_nightly(options(work, night_index, tmp_path, 2))
    assert first.exit_code == 0, first.errors
    night_index.publish(
        make_wheel(tmp_path / "dist", "nb-lib", "1.1"), upload_time="2025-03-03T00:00:00Z"
    )
    extra = github(fake_github, pull_request=True)
    report_json, report_md = tmp_path / "night.json", tmp_path / "night.md"
    result = run_nightly(
        options(
            work,
            night_index,
            tmp_path,
            4,
            advisories=OSV,
            report_json=report_json,
            report_markdown=report_md,
            **extra,
        )
    )
    assert result.exit_code == 0, result.errors
    assert git(work, "log", "-1", "--format=%s") == "demo: nb-lib 1.0 → 1.1"
    data = json.loads(report_json.read_text())["advisories"]
    assert data["warning"] is None
    assert data["sets"]["demo"]["fixed"] == ["PYSEC-0000-1"]
    assert data["sets"]["demo"]["introduced"] == ["GHSA-test-0002"]
    markdown = report_md.read_text()
    assert "## Advisories" in markdown
    assert "fixed tonight:\n- [PYSEC-0000-1]" in markdown
    body = fake_github.pulls[REPO][0]["body"]
    assert "new tonight:\n- [GHSA-test-0002]" in body

    # a missing database: one warning, the night still succeeds
    night_index.publish(
        make_wheel(tmp_path / "dist", "nb-lib", "1.2"), upload_time="2025-03-05T00:00:00Z"
    )
    result = run_nightly(
        options(
            work,
            night_index,
            tmp_path,
            6,
            advisories=tmp_path / "nowhere.zip",
            report_markdown=report_md,
        )
    )
    assert result.exit_code == 0, result.errors
    assert f"⚠️ advisory database {tmp_path / 'nowhere.zip'}: not found" in report_md.read_text()


def test_pypa_yaml_records_read_like_osv_json() -> None:
    db = load(Path(__file__).parent / "data" / "osv-pypa")
    assert [a.id for a in db.affecting("nb-lib", "1.0")] == ["PYSEC-0000-1"]
    assert db.affecting("nb-lib", "1.1") == []
    [advisory] = db.by_package["nb-lib"]
    assert advisory.aliases == ("CVE-0000-0001",)
    assert advisory.affected[0].versions == frozenset({"0.9", "1.0"})  # an unquoted 1.0 too
