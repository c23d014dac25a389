"""bot.nightly.report: golden Markdown and JSON for a night's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.model.locks import diff_locks
from bot.nightly.report import (
    DiffRow,
    HeldPackage,
    NightReport,
    SetReport,
    changelog_url,
    format_duration,
    format_size,
    freshness_line,
    freshness_of,
    from_json,
    merge,
    rows_from_diffs,
    to_json,
    to_markdown,
)


def lock(python: str, packages: dict[str, str]) -> dict[str, object]:
    return {
        "packages": [{"name": n, "version": v} for n, v in packages.items()],
        "tool": {"nixpkgs-python": {"python": python, "roots": ["pytest"]}},
    }


def night() -> NightReport:
    return NightReport(
        date="2026-11-21",
        exclude_newer="2026-11-21T00:00:00Z",
        run_url="https://ci.invalid/run/7",
        sets=(
            SetReport(
                name="pytest",
                pythons=("3.12", "3.13"),
                status="ok",
                diff=(
                    DiffRow("pytest", "9.1.0", "9.2.0", (), "https://docs.pytest.org/changelog"),
                    DiffRow("numpy", "2.3.0", "2.4.0", ("py312",)),
                    DiffRow("pygments", None, "2.19.0"),
                    DiffRow("colorama", "0.4.6", None),
                ),
                build_seconds=62.4,
                closure_bytes=129_394_278,
                commit="0123456789abcdef0123456789abcdef01234567",
            ),
            SetReport(
                name="numpy",
                pythons=("3.12",),
                status="failed",
                build_seconds=300,
                failing_package="numpy",
                log_tail="error: builder for numpy failed\n``` not a fence\n",
            ),
            SetReport(name="requests", pythons=("3.12",), status="unchanged", build_seconds=3),
            SetReport(
                name="django",
                pythons=("3.12",),
                status="held",
                diff=(DiffRow("django", "5.2.0", "5.2.1"),),
                held=(HeldPackage("psycopg", "3.2.0", "3.3.0", "sdist needs libpq"),),
                closure_bytes=900,
            ),
        ),
    )


GOLDEN_MARKDOWN = """\
# nixpkgs-python nightly 2026-11-21

Index snapshot (exclude-newer): 2026-11-21T00:00:00Z · [Run log](https://ci.invalid/run/7)

| set | python | status | changes | build | closure |
|---|---|---|---|---|---|
| pytest | 3.12, 3.13 | ✅ ok | 4 | 1m 02s | 123.4 MiB |
| numpy | 3.12 | ❌ failed (`numpy`) | 0 | 5m 00s | - |
| requests | 3.12 | ⚪ unchanged | 0 | 3s | - |
| django | 3.12 | ⏸️ held, 1 held | 1 | - | 900 B |

1 ok, 1 failed, 1 unchanged, 1 held

## pytest — ✅ ok

Python 3.12, 3.13 · build 1m 02s · closure 123.4 MiB · commit 0123456789ab

| package | old | new | python | changelog |
|---|---|---|---|---|
| pytest | 9.1.0 | 9.2.0 | all | [changelog](https://docs.pytest.org/changelog) |
| numpy | 2.3.0 | 2.4.0 | py312 |  |
| pygments | (added) | 2.19.0 | all |  |
| colorama | 0.4.6 | (removed) | all |  |

## numpy — ❌ failed

Python 3.12 · build 5m 00s

Failing package: `numpy`

<details><summary>Build log (last lines)</summary>

````
error: builder for numpy failed
``` not a fence
````

</details>

## requests — ⚪ unchanged

Python 3.12 · build 3s

No version changes.

## django — ⏸️ held

Python 3.12 · closure 900 B

| package | old | new | python | changelog |
|---|---|---|---|---|
| django | 5.2.0 | 5.2.1 | all |  |

Held back (the newer version did not build):

- `psycopg` kept at 3.2.0, not 3.3.0: sdist needs libpq
"""


def test_markdown_golden() -> None:
    assert to_markdown(night()) == GOLDEN_MARKDOWN


def test_json_golden_and_roundtrip() -> None:
    text = to_json(night())
    data = json.loads(text)
    assert list(data) == ["date", "exclude_newer", "run_url", "sets"]
    assert list(data["sets"][0]) == sorted(data["sets"][0])
    assert data["sets"][0]["diff"][1] == {
        "changelog": None,
        "name": "numpy",
        "new": "2.4.0",
        "old": "2.3.0",
        "pythons": ["py312"],
    }
    assert data["sets"][1] == {
        "build_seconds": 300,
        "closure_bytes": None,
        "commit": None,
        "diff": [],
        "failing_package": "numpy",
        "freshness": None,
        "held": [],
        "log_tail": "error: builder for numpy failed\n``` not a fence\n",
        "name": "numpy",
        "pythons": ["3.12"],
        "status": "failed",
    }
    assert text.endswith("}\n")
    assert from_json(text) == night()
    assert to_json(from_json(text)) == text


def test_empty_report() -> None:
    text = to_markdown(NightReport(date="2026-11-21"))
    assert text == (
        "# nixpkgs-python nightly 2026-11-21\n\n"
        "| set | python | status | changes | build | closure |\n"
        "|---|---|---|---|---|---|\n\nno sets\n"
    )


def test_merge_matrix_reports() -> None:
    full = night()
    parts = [NightReport(date=full.date, sets=(s,), run_url=full.run_url) for s in full.sets]
    merged = merge(parts)
    assert [s.name for s in merged.sets] == ["django", "numpy", "pytest", "requests"]
    assert merged.run_url == full.run_url
    with pytest.raises(ValueError, match="no reports"):
        merge([])


@pytest.mark.parametrize(
    ("urls", "expected"),
    [
        ({"Homepage": "h", "Changelog": "c"}, "c"),
        ({"Release Notes": "r", "Source": "s"}, "r"),
        ({"changes": "x", "History": "y"}, "x"),
        ({"Change Log": "cl", "Release notes": "rn"}, "cl"),
        ({"HISTORY": "y"}, "y"),
        ({"Homepage": "h", "Documentation": "d"}, None),
        (None, None),
    ],
)
def test_changelog_url(urls: dict[str, str] | None, expected: str | None) -> None:
    assert changelog_url(urls) == expected


def test_rows_from_diffs_with_changelog_links() -> None:
    d312 = diff_locks(
        lock("3.12", {"pytest": "9.1.0", "numpy": "2.3.0"}),
        lock("3.12", {"pytest": "9.2.0", "numpy": "2.4.0"}),
    )
    d313 = diff_locks(
        lock("3.13", {"pytest": "9.1.0", "numpy": "2.3.0"}),
        lock("3.13", {"pytest": "9.2.0", "numpy": "2.3.5"}),
    )
    rows = rows_from_diffs(
        [d312, d313], {"pytest": {"Changelog": "https://docs.pytest.org/changelog"}}
    )
    assert rows == (
        DiffRow("pytest", "9.1.0", "9.2.0", (), "https://docs.pytest.org/changelog"),
        DiffRow("numpy", "2.3.0", "2.4.0", ("py312",)),
        DiffRow("numpy", "2.3.0", "2.3.5", ("py313",)),
    )


def test_formatting_helpers() -> None:
    assert [format_duration(s) for s in (None, 0, 59.4, 60, 3599, 3600, 7500)] == [
        "-",
        "0s",
        "59s",
        "1m 00s",
        "59m 59s",
        "1h 00m",
        "2h 05m",
    ]
    assert [format_size(b) for b in (None, 0, 1023, 1536, 5 * 2**30, 3 * 2**40)] == [
        "-",
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 GiB",
        "3072.0 GiB",
    ]


def test_table_cells_escape_pipes() -> None:
    report = NightReport(
        date="d", sets=(SetReport("a|b", ("3.12",), "ok", diff=(DiffRow("x", "1|2", "3"),)),)
    )
    text = to_markdown(report)
    assert "| a\\|b | 3.12 |" in text
    assert "| x | 1\\|2 | 3 |" in text


def test_append_step_summary(tmp_path: Path) -> None:
    from bot.nightly.report import append_step_summary

    summary = tmp_path / "summary.md"
    assert not append_step_summary("x", {})
    assert append_step_summary("# a\n", {"GITHUB_STEP_SUMMARY": str(summary)})
    assert append_step_summary("# b\n", {"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text() == "# a\n# b\n"


def test_freshness_hand_count() -> None:
    fresh = freshness_of(
        {
            "pytest": ("9.0.0", "9.1.0", 40.0),
            "pluggy": ("1.5.0", "1.6.0", 90.5),
            "iniconfig": ("2.1.0", "2.1.0", 0.0),
            "packaging": ("25.0", None, None),  # nothing allowed is newer: counts as current
        },
        held=["pytest"],
    )
    assert (fresh.current, fresh.total) == (2, 4)
    assert fresh.share == 0.5
    assert fresh.oldest == ("pluggy", "1.5.0", "1.6.0", 90.5)
    assert fresh.behind == (("pluggy", "1.5.0", "1.6.0"), ("pytest", "9.0.0", "9.1.0"))
    assert freshness_line(fresh) == (
        "2 of 4 at the newest allowed version (50%); oldest lag: pluggy 1.5.0 "
        "(newest 1.6.0, 90 days newer); held: pytest"
    )
    report = NightReport(
        date="2026-11-21",
        sets=(
            SetReport("a", ("3.12",), "ok", freshness=fresh),
            SetReport("b", ("3.12",), "unchanged", freshness=freshness_of({"x": ("1", "1", 0.0)})),
        ),
    )
    assert "Freshness: 3 of 5 members at the newest allowed version (60%)." in to_markdown(report)
    data = json.loads(to_json(report))
    assert data["freshness"] == {"current": 3, "total": 5, "share": 0.6}
    assert from_json(to_json(report)) == report
