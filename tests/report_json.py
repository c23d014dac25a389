"""Reading back a night report's JSON (:func:`bot.nightly.report.to_json`): the tests' check
that the JSON keeps everything.  Nothing in the bot reads a report back, so the reader lives
here, with its only users."""

from __future__ import annotations

import json
from typing import Any, cast

from bot.nightly.report import (
    STATUSES,
    DiffRow,
    Freshness,
    HeldPackage,
    NightReport,
    SetReport,
    SetStatus,
)


def from_json(text: str) -> NightReport:
    """The report :func:`~bot.nightly.report.to_json` wrote ``text`` for."""
    data = json.loads(text)
    sets = []
    for s in data["sets"]:
        if s["status"] not in STATUSES:
            raise ValueError(f"set {s['name']}: unknown status {s['status']!r}")
        sets.append(
            SetReport(
                name=s["name"],
                pythons=tuple(s["pythons"]),
                status=cast(SetStatus, s["status"]),
                diff=tuple(
                    DiffRow(r["name"], r["old"], r["new"], tuple(r["pythons"]), r["changelog"])
                    for r in s["diff"]
                ),
                build_seconds=s["build_seconds"],
                closure_bytes=s["closure_bytes"],
                failing_package=s["failing_package"],
                log_tail=s["log_tail"],
                held=tuple(
                    HeldPackage(h["name"], h["kept"], h["wanted"], h["reason"]) for h in s["held"]
                ),
                commit=s["commit"],
                freshness=_freshness_from(s.get("freshness")),
                suggestions=tuple(str(x) for x in s.get("suggestions", [])),
                pushed_bytes=s.get("pushed_bytes"),
                systems=tuple(str(x) for x in s.get("systems", [])),
            )
        )
    return NightReport(
        date=data["date"],
        sets=tuple(sets),
        exclude_newer=data["exclude_newer"],
        run_url=data["run_url"],
        notes=tuple(str(n) for n in data.get("notes", [])),
    )


def _freshness_from(data: Any) -> Freshness | None:
    if not data:
        return None
    oldest = data.get("oldest")
    return Freshness(
        current=data["current"],
        total=data["total"],
        oldest=None
        if oldest is None
        else (oldest["name"], oldest["locked"], oldest["newest"], float(oldest["lag_days"])),
        behind=tuple((b["name"], b["locked"], b["newest"]) for b in data.get("behind", [])),
        held=tuple(data.get("held", [])),
        refused=tuple(
            (r["name"], r["locked"], r["newest"], r["reason"]) for r in data.get("refused", [])
        ),
    )
