"""benchmarks/replay.py's own figures (the per-night table, the Upkeep figures, the holds) on
small synthetic nights; the replay itself runs the real nightly (see BENCHMARKS.md)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def replay() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay", ROOT / "benchmarks" / "replay.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["replay"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def night(day: int) -> dict[str, Any]:
    return {"day": f"2026-11-0{day}", "snapshot": f"2026-11-0{day}T02:00:00Z", "wall_seconds": 60}


def row(name: str, old: str, new: str) -> dict[str, Any]:
    return {"name": name, "old": old, "new": new, "pythons": [], "changelog": None}


def held(name: str, kept: str, wanted: str) -> dict[str, Any]:
    return {"name": name, "kept": kept, "wanted": wanted, "reason": "(x failed to build)"}


def fresh(*behind: tuple[str, str, str], total: int = 10) -> dict[str, Any]:
    rows = [{"name": n, "locked": old, "newest": new} for n, old, new in behind]  # report.py's
    return {"behind": rows, "current": total - len(behind), "total": total}


def st(name: str, status: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": name, "status": status, "diff": [], "held": []}
    base["commit"] = "c0ffee" if status in ("ok", "held") and kw.get("diff") else None
    return {**base, **kw}


# Night 1: the baseline.  Night 2: a bumps x 1.1 (uploaded after night 1), y 2.1 does not
# build and is held; b fails wanting z 3.1.  Night 3: a releases y at 2.2 (the fix), b locks z.
NIGHTS = [
    (night(1), {"sets": [st("a", "ok", diff=[row("x", "0.9", "1.0")], build_seconds=120,
                             pushed_bytes=2**20, freshness=fresh()),
                         st("b", "unchanged", freshness=fresh())]}),
    (night(2), {"sets": [st("a", "held", diff=[row("x", "1.0", "1.1")], build_seconds=60,
                             held=[held("y", "2.0", "2.1")],
                             freshness=fresh(("y", "2.0", "2.1"))),
                         st("b", "failed", diff=[row("z", "3.0", "3.1")], build_seconds=30)]}),
    (night(3), {"sets": [st("a", "ok", diff=[row("y", "2.0", "2.2")], build_seconds=60,
                             freshness=fresh()),
                         st("b", "ok", diff=[row("z", "3.0", "3.1")], build_seconds=30,
                             freshness=fresh())]}),
]  # fmt: skip

START = datetime(2026, 11, 1, 2, tzinfo=UTC)
UPLOADS = {
    ("x", "1.0"): START - timedelta(days=3),  # before the baseline: not counted
    ("x", "1.1"): START + timedelta(hours=20),  # locked the next night: 4 h
    ("y", "2.1"): START + timedelta(hours=10),  # held, superseded by 2.2, locked night 3: 38 h
    ("y", "2.2"): START + timedelta(hours=40),  # locked night 3: 8 h
    ("z", "3.1"): START + timedelta(hours=23),  # failed night 2, locked night 3: 25 h
}


def uploaded(name: str, version: str) -> datetime | None:
    return UPLOADS.get((name, version))


def test_night_rows(replay: ModuleType) -> None:
    rows = replay.night_rows(NIGHTS)
    assert [(r.sets_bumped, r.packages_bumped, r.builds, r.failures) for r in rows] == [
        (1, 1, 1, 0),
        (1, 1, 2, 1),
        (2, 2, 2, 0),
    ]
    assert [(r.holds_placed, r.holds_released) for r in rows] == [(0, 0), (1, 0), (0, 1)]
    assert rows[1].failed_sets == ["b"]
    assert rows[1].held == ["a/y 2.0 (2.1)"]
    assert rows[0].build_minutes == 2.0
    assert rows[0].pushed_bytes == 2**20
    table = replay.table(rows)
    assert "| 2026-11-02 | 2 | 1 | 1 | 2 | 1 | 0 | 1 (b) | 1.5 | 0.0 | 1.0 |" in table


def test_upkeep(replay: ModuleType) -> None:
    up = replay.upkeep(NIGHTS, uploaded)
    assert (up["releases"], up["on_time"]) == (4, 2)
    assert up["share"] == 0.5
    late = {(r["name"], r["version"]): r for r in up["late"]}
    assert set(late) == {("y", "2.1"), ("z", "3.1")}
    assert late[("y", "2.1")]["lag_hours"] == 38.0
    assert late[("y", "2.1")]["why"] == "held"
    assert late[("z", "3.1")]["lag_hours"] == 25.0
    assert late[("z", "3.1")]["why"] == "failed"
    assert up["longest"]["name"] == "y"
    assert [(r["name"], r["version"], r["lag_hours"]) for r in up["judged"]] == [
        ("x", "1.1", 4.0), ("y", "2.1", 38.0), ("y", "2.2", 8.0), ("z", "3.1", 25.0)
    ]  # fmt: skip
    assert up["longest"]["locked"] == "2026-11-03"
    assert up["failing_streak"] == {"b": 1}
    assert up["unknown_upload"] == []
    assert up["nightly_share"] is None  # these reports carry no overall figure
    with_share = [(n, {**r, "freshness": {"current": c, "total": 10}})
                  for (n, r), c in zip(NIGHTS, (10, 9, 10), strict=True)]  # fmt: skip
    assert replay.upkeep(with_share, uploaded)["nightly_share"] == pytest.approx(29 / 30, abs=1e-4)


def test_upkeep_unlocked_release_is_late_only_after_its_grace(replay: ModuleType) -> None:
    nights = [
        NIGHTS[0],
        (night(2), {"sets": [st("a", "ok", freshness=fresh(("y", "2.0", "2.1")))]}),
        (night(3), {"sets": [st("a", "ok", freshness=fresh(("y", "2.0", "2.1"),
                                                            ("w", "1", "2"), ("v", "8", "9")))]}),
    ]  # fmt: skip
    uploads = {**UPLOADS, ("w", "2"): START + timedelta(hours=47)}
    up = replay.upkeep(nights, lambda n, v: uploads.get((n, v)))
    assert [(r["name"], r["locked"], r["why"]) for r in up["late"]] == [("y", None, "constrained")]
    assert [r["name"] for r in up["pending"]] == ["w"]  # 1 h old at the last night
    assert up["unknown_upload"] == ["a/v 9"]  # no upload time: left out, and listed
    assert up["longest"]["name"] == "y"
    assert up["share"] == 0.0


def test_holds(replay: ModuleType) -> None:
    found = replay.holds(NIGHTS)
    assert found == [
        {
            "set": "a",
            "package": "y",
            "kept": "2.0",
            "release": "2.1",
            "reason": "(x failed to build)",
            "placed": "2026-11-02",
            "nights": 1,
            "released": "2026-11-03",
        }
    ]


def test_upkeep_of_nothing(replay: ModuleType) -> None:
    assert replay.upkeep([], uploaded)["share"] is None


def test_reads_the_reports_own_shape(replay: ModuleType) -> None:
    """The figures read what bot.nightly.report writes, not a shape of their own."""
    import json

    from bot.nightly.report import Freshness, NightReport, SetReport, to_json

    fr = Freshness(current=9, total=10, behind=(("y", "2.0", "2.1"),))
    text = to_json(NightReport("2026-11-02", (SetReport("a", ("3.12",), "ok", freshness=fr),)))
    committed, wanted = replay._night_versions(json.loads(text)["sets"][0])
    assert (committed, wanted) == ({}, {"y": "2.1"})


# Two replays of the same nights, each its own sets: "a" ran nights 1-3, "b" (slower) only
# nights 1-2.  b's z 3.2, uploaded 1 h before b's last night, is too recent to judge there,
# although the merged month goes on a night longer (a's).
B_NIGHTS = [
    (night(1), {"sets": [st("b", "ok", diff=[row("z", "2.0", "3.0")], build_seconds=600,
                             freshness=fresh(total=5))],
                "freshness": {"current": 5, "total": 5}}),
    (night(2), {"sets": [st("b", "unchanged", freshness=fresh(("z", "3.0", "3.2"), total=5))],
                "freshness": {"current": 4, "total": 5}}),
]  # fmt: skip
A_NIGHTS = [
    (n, {**r, "sets": [s for s in r["sets"] if s["name"] == "a"],
         "freshness": {"current": 10 - len(s["freshness"]["behind"]), "total": 10}})
    for n, r in NIGHTS for s in r["sets"] if s["name"] == "a"
]  # fmt: skip


def test_merge_sums_each_night_over_the_replays(replay: ModuleType) -> None:
    merged = replay.merge([("a", A_NIGHTS), ("b", B_NIGHTS)])
    assert [n["day"] for n, _ in merged] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [n["replays"] for n, _ in merged] == [["a", "b"], ["a", "b"], ["a"]]
    assert [n["wall_seconds"] for n, _ in merged] == [120, 120, 60]
    assert [[s["name"] for s in r["sets"]] for _, r in merged] == [["a", "b"], ["a", "b"], ["a"]]
    assert merged[1][1]["freshness"] == {"current": 9 + 4, "total": 15, "share": 0.8667}
    rows = replay.night_rows(merged)
    assert [(r.sets, r.builds, r.sets_bumped) for r in rows] == [(2, 2, 2), (2, 1, 1), (1, 1, 1)]
    assert rows[0].build_minutes == 2.0 + 10.0
    table = replay.table(rows, ["a", "b"])
    assert "| 2026-11-02 | 2 | 1 | 1 | 1 | 1 | 0 | 0 | 1.0 | 0.0 | 2.0 |" in table
    assert "| 2026-11-03 (a only) | 1 |" in table
    assert table.endswith("| **3 nights** | | 4 | 4 | 4 | 1 | 1 | 0 | 14.0 | 1.0 | 5.0 |\n")


def test_merged_upkeep_judges_each_set_by_its_own_nights(replay: ModuleType) -> None:
    uploads = {**UPLOADS, ("z", "3.2"): START + timedelta(hours=23)}
    merged = replay.merge([("a", A_NIGHTS), ("b", B_NIGHTS)])
    up = replay.upkeep(merged, lambda n, v: uploads.get((n, v)))
    # a's releases as in a's month alone; b's z 3.2 is 1 h old at b's last night: pending,
    # not late (the month's last night, a's, is 25 h after its upload)
    alone = replay.upkeep(A_NIGHTS, lambda n, v: uploads.get((n, v)))
    assert (up["releases"], up["on_time"]) == (alone["releases"], alone["on_time"]) == (3, 2)
    assert [(r["set"], r["name"], r["version"], r["lag_hours"]) for r in up["pending"]] == [
        ("b", "z", "3.2", 1.0)
    ]
    assert [(r["name"], r["version"]) for r in up["late"]] == [("y", "2.1")]
    assert up["nightly_share"] == pytest.approx((1 + 13 / 15 + 1) / 3, abs=1e-4)


def test_merge_refuses_what_is_not_one_month(replay: ModuleType) -> None:
    other = [({**n, "snapshot": n["snapshot"].replace("T02", "T03")}, r) for n, r in B_NIGHTS]
    with pytest.raises(SystemExit, match=r"2026-11-01 has different snapshots in a .*, b "):
        replay.merge([("a", A_NIGHTS), ("b", other)])
    with pytest.raises(SystemExit, match=r"set a was replayed on the night of 2026-11-01 in both"):
        replay.merge([("a", A_NIGHTS), ("c", A_NIGHTS)])


def write_replay(workdir: Path, nights: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    import json

    for n, r in nights:
        d = workdir / "nights" / n["day"]
        d.mkdir(parents=True)
        (d / "night.json").write_text(json.dumps({**n, "started_at": n["snapshot"]}))
        (d / "report.json").write_text(json.dumps(r))


def test_summarize_several_workdirs(
    replay: ModuleType, tmp_path: Path, pypi_index: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command end to end: two replays' directories, the upload times from a (loopback)
    index, one month written where --out says."""
    import json

    from tests.plugins.pypi import make_wheel

    for (name, version), when in UPLOADS.items():
        pypi_index.publish(make_wheel(tmp_path / "dists", name, version), upload_time=when)
    write_replay(tmp_path / "a", A_NIGHTS)
    write_replay(tmp_path / "b", B_NIGHTS)
    argv = ["summarize", "--workdir", str(tmp_path / "a"), "--workdir", str(tmp_path / "b"),
            "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--index-url", pypi_index.url]  # fmt: skip
    assert replay.main(argv) == 0
    data = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert [n["sets"] for n in data["nights"]] == [2, 2, 1]
    assert [(r["name"], r["nights"], r["first"], r["last"]) for r in data["replays"]] == [
        ("a", 3, "2026-11-01", "2026-11-03"),
        ("b", 2, "2026-11-01", "2026-11-02"),
    ]
    # started_at + wall: a from night 1 02:00 to night 3 02:01; b ends night 2 02:01
    assert data["elapsed_seconds"] == 2 * 86400 + 60
    assert (data["upkeep"]["releases"], data["upkeep"]["on_time"]) == (3, 2)
    assert [h["package"] for h in data["holds"]] == ["y"]
    assert "| 2026-11-03 (a only) |" in (tmp_path / "out" / "replay.md").read_text()
    assert not (tmp_path / "a" / "replay.json").exists()
    assert "b: 2 night(s) 2026-11-01 .. 2026-11-02" in capsys.readouterr().out


def test_summarize_without_nights_is_one_clear_error(replay: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"has no nights/ \(not a replay's --workdir\)"):
        replay.main(["summarize", "--workdir", str(tmp_path)])
