"""The report of a night: what each set did, as Markdown (PR body, step summary) and JSON.

The orchestrator fills the dataclasses; this module only renders.  Renderers are pure and
deterministic (no clock, no environment), so their output is tested against golden text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.model.locks import LockDiff, combine
from bot.nightly import markdown as md

SetStatus = Literal["ok", "failed", "unchanged", "held"]
STATUSES: tuple[SetStatus, ...] = ("ok", "failed", "unchanged", "held")
_STATUS_TEXT = {"ok": "✅ ok", "failed": "❌ failed", "unchanged": "⚪ unchanged", "held": "⏸️ held"}
LOG_TAIL_CHARS = 20_000  # per set, so a PR body stays under GitHub's 65536 characters

# Project-URL labels that point at release notes, best first (matched case-insensitively).
_CHANGELOG_LABELS = [
    re.compile(r"change\s*-?\s*log", re.IGNORECASE),
    re.compile(r"release\s*-?\s*notes", re.IGNORECASE),
    re.compile(r"changes", re.IGNORECASE),
    re.compile(r"history", re.IGNORECASE),
]


@dataclass(frozen=True)
class DiffRow:
    """One package's version change in a set; ``pythons`` is empty when it applies to all."""

    name: str
    old: str | None
    new: str | None
    pythons: tuple[str, ...] = ()
    changelog: str | None = None


@dataclass(frozen=True)
class HeldPackage:
    """A package kept at its previous version because the newer one did not build."""

    name: str
    kept: str | None
    wanted: str
    reason: str = ""


@dataclass(frozen=True)
class Freshness:
    """How close a set is to the newest versions its constraints allow."""

    current: int  #: members at the newest allowed version
    total: int
    #: the member furthest behind: (name, locked, newest, days between their uploads)
    oldest: tuple[str, str, str, float] | None = None
    behind: tuple[tuple[str, str, str], ...] = ()  #: (name, locked, newest), by name
    held: tuple[str, ...] = ()
    #: (name, locked, newest, reason) of members whose newest release a wheel baseline,
    #: Requires-Python or a missing artifact refuses, or whose newest allowed version other
    #: members' requirements exclude, by name
    refused: tuple[tuple[str, str, str, str], ...] = ()

    @property
    def share(self) -> float:
        """Fraction of members at the newest allowed version (1.0 for an empty set)."""
        return self.current / self.total if self.total else 1.0


def freshness_of(
    packages: Mapping[str, tuple[str, str | None, float | None]],
    held: Iterable[str] = (),
    refused: Iterable[tuple[str, str, str, str]] = (),
) -> Freshness:
    """Freshness from name -> (locked, newest allowed, days behind)."""
    from packaging.version import Version

    behind = sorted(
        (name, locked, newest)
        for name, (locked, newest, _) in packages.items()
        if newest is not None and Version(newest) > Version(locked)
    )
    lags = [
        (lag or 0.0, name)
        for name, (locked, newest, lag) in packages.items()
        if (name, locked, newest) in behind
    ]
    oldest = None
    if lags:
        lag, name = max(lags)
        locked, newest, _ = packages[name]
        oldest = (name, locked, newest or "", lag)
    return Freshness(
        current=len(packages) - len(behind),
        total=len(packages),
        oldest=oldest,
        behind=tuple(behind),
        held=tuple(sorted(held)),
        refused=tuple(sorted(set(refused))),
    )


def freshness_line(f: Freshness, escape: Callable[[str], str] = str) -> str:
    """One sentence for people; ``escape`` is applied to the names and versions (Markdown)."""
    text = f"{f.current} of {f.total} at the newest allowed version ({f.share:.0%})"
    if f.oldest is not None:
        name, locked, newest = map(escape, f.oldest[:3])
        lag = f.oldest[3]
        text += f"; oldest lag: {name} {locked} (newest {newest}, {lag:.0f} days newer)"
    if f.held:
        text += f"; held: {', '.join(map(escape, f.held))}"
    return text


def overall_freshness(report: NightReport) -> tuple[int, int]:
    """Repository-wide (members at newest, members) over the sets that report freshness."""
    sets = [s.freshness for s in report.sets if s.freshness is not None]
    return sum(f.current for f in sets), sum(f.total for f in sets)


@dataclass(frozen=True)
class SetReport:
    """What happened to one set tonight."""

    name: str
    pythons: tuple[str, ...]
    status: SetStatus
    diff: tuple[DiffRow, ...] = ()
    build_seconds: float | None = None
    closure_bytes: int | None = None
    failing_package: str | None = None
    log_tail: str | None = None
    held: tuple[HeldPackage, ...] = ()
    commit: str | None = None
    freshness: Freshness | None = None
    #: override entries suggested by the failing package's log (bot/build/suggest.py), one line each
    suggestions: tuple[str, ...] = ()
    #: NAR bytes of the store paths pushed to the cache tonight (None: nothing pushed)
    pushed_bytes: int | None = None
    #: one line per system CI built it for (``x86_64-linux: built and pushed``, what was held
    #: there, what failed), and for the systems it was not built for; empty outside CI
    systems: tuple[str, ...] = ()


@dataclass(frozen=True)
class NightReport:
    """The whole night: one :class:`SetReport` per set, in the order given."""

    date: str
    sets: tuple[SetReport, ...] = field(default=())
    exclude_newer: str | None = None
    run_url: str | None = None
    #: what the night did besides the sets: repairs of an interrupted run, unexpected errors
    notes: tuple[str, ...] = ()


def changelog_url(project_urls: Mapping[str, str] | None) -> str | None:
    """The URL whose Project-URL label names a changelog, release notes, changes or history."""
    if not project_urls:
        return None
    for pattern in _CHANGELOG_LABELS:
        for label in sorted(project_urls):
            if pattern.search(label):
                return project_urls[label]
    return None


def rows_from_diffs(
    diffs: Iterable[LockDiff], project_urls: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[DiffRow, ...]:
    """Diff rows for a set from its per-Python lock diffs (roots first, then by name).

    ``project_urls`` maps a package name to its metadata's Project-URLs (label -> URL).
    """
    urls = project_urls or {}
    rows: list[DiffRow] = []
    for combined in combine(diffs):
        link = changelog_url(urls.get(combined.name))
        for change, pythons in combined.variants:
            rows.append(DiffRow(combined.name, change.old, change.new, pythons, link))
    return tuple(rows)


def format_duration(seconds: float | None) -> str:
    """``42s``, ``1m 02s``, ``2h 05m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_size(size: int | None) -> str:
    """Binary units: ``512 B``, ``1.5 KiB``, ``123.4 MiB``; ``-`` when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _cell(text: str) -> str:
    """Index-supplied text in a table cell or list item: one line, nothing Markdown reads."""
    return md.text(text)


def _pythons(pythons: Iterable[str]) -> str:
    return ", ".join(map(_cell, pythons))


def _version_cell(row: DiffRow) -> tuple[str, str]:
    return (row.old or "(added)", row.new or "(removed)")


def _status_cell(s: SetReport) -> str:
    text = _STATUS_TEXT[s.status]
    if s.status == "failed" and s.failing_package:
        text += f" ({md.code(s.failing_package, in_table=True)})"
    if s.held:
        text += f", {len(s.held)} held"
    return text


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _summary(report: NightReport) -> list[str]:
    lines = [
        "| set | python | status | changes | build | closure |",
        "|---|---|---|---|---|---|",
    ]
    for s in report.sets:
        lines.append(
            f"| {_cell(s.name)} | {_pythons(s.pythons)} | {_status_cell(s)} | {len(s.diff)} "
            f"| {format_duration(s.build_seconds)} | {format_size(s.closure_bytes)} |"
        )
    counts = {status: sum(1 for s in report.sets if s.status == status) for status in STATUSES}
    lines += ["", ", ".join(f"{counts[k]} {k}" for k in STATUSES if counts[k]) or "no sets"]
    current, total = overall_freshness(report)
    if total:
        lines += [
            "",
            f"Freshness: {current} of {total} members at the newest allowed version "
            f"({current / total:.0%}).",
        ]
    return lines


def _set_section(s: SetReport) -> list[str]:
    lines = ["", f"## {_cell(s.name)} — {_STATUS_TEXT[s.status]}", ""]
    facts = [f"Python {_pythons(s.pythons)}"]
    if s.build_seconds is not None:
        facts.append(f"build {format_duration(s.build_seconds)}")
    if s.closure_bytes is not None:
        facts.append(f"closure {format_size(s.closure_bytes)}")
    if s.commit:
        facts.append(f"commit {_cell(s.commit[:12])}")
    lines.append(" · ".join(facts))
    if s.freshness is not None:
        lines += ["", f"Freshness: {freshness_line(s.freshness, _cell)}."]
        if s.freshness.refused:
            lines += [
                "",
                "Held below the newest by a wheel baseline, Requires-Python, a missing file or "
                "another member's requirement:",
                "",
            ]
            lines += [
                f"- {md.code(name)} {_cell(locked)}"
                f"{'' if newest == locked else f', not {_cell(newest)}'}: "
                f"{_cell(reason)}"
                for name, locked, newest, reason in s.freshness.refused
            ]
    if s.diff:
        lines += ["", "| package | old | new | python | changelog |", "|---|---|---|---|---|"]
        for row in s.diff:
            old, new = _version_cell(row)
            link = md.link("changelog", row.changelog)
            pythons = _pythons(row.pythons) or "all"
            lines.append(
                f"| {_cell(row.name)} | {_cell(old)} | {_cell(new)} | {pythons} | {link} |"
            )
    elif s.status != "failed":
        lines += ["", "No version changes."]
    if s.systems:
        lines += ["", "Systems:", ""]
        lines += [f"- {_cell(line)}" for line in s.systems]
    if s.held:
        lines += ["", "Held back (the newer version did not build):", ""]
        for h in s.held:
            reason = f": {_cell(h.reason)}" if h.reason else ""
            kept = _cell(h.kept) if h.kept else "(not in the set)"
            lines.append(f"- {md.code(h.name)} kept at {kept}, not {_cell(h.wanted)}{reason}")
    if s.status == "failed":
        lines += ["", f"Failing package: {md.code(s.failing_package or 'unknown')}"]
        if s.suggestions:
            # TOML to copy, in a fence longer than any backtick run in it: nothing in a
            # suggestion (it quotes the build log) can become Markdown
            text = "\n".join(line.replace("\r", " ") for line in s.suggestions)
            fence = _fence(text)
            lines += ["", "Suggested override (from its build log):", "", fence + "toml", text]
            lines += [fence]
        if s.log_tail:
            tail = s.log_tail[-LOG_TAIL_CHARS:].rstrip()
            fence = _fence(tail)
            lines += [
                "",
                "<details><summary>Build log (last lines)</summary>",
                "",
                fence,
                tail,
                fence,
                "",
                "</details>",
            ]
    return lines


def to_markdown(report: NightReport) -> str:
    """The report for a pull request body or ``$GITHUB_STEP_SUMMARY``.

    A summary table of every set, then one section per set with its version changes (and
    changelog links), held packages, and for a failed set the failing package and log tail.
    """
    lines = [f"# nixpkgs-python nightly {report.date}", ""]
    meta = []
    if report.exclude_newer:
        meta.append(f"Index snapshot (exclude-newer): {_cell(report.exclude_newer)}")
    if report.run_url:
        meta.append(md.link("Run log", report.run_url) or f"Run log: {_cell(report.run_url)}")
    if meta:
        lines += [" · ".join(meta), ""]
    lines += _summary(report)
    if report.notes:
        lines += ["", "## Notes", ""]
        for note in report.notes:
            first, _, rest = note.partition("\n")
            lines.append(f"- {_cell(first)}")
            if rest.strip():
                fence = _fence(rest)
                lines += ["", f"  {fence}", *(f"  {ln}" for ln in rest.splitlines()), f"  {fence}"]
    for s in report.sets:
        lines += _set_section(s)
    return "\n".join(lines) + "\n"


def _set_dict(s: SetReport) -> dict[str, Any]:
    return {
        "name": s.name,
        "pythons": list(s.pythons),
        "status": s.status,
        "diff": [
            {
                "name": r.name,
                "old": r.old,
                "new": r.new,
                "pythons": list(r.pythons),
                "changelog": r.changelog,
            }
            for r in s.diff
        ],
        "build_seconds": s.build_seconds,
        "closure_bytes": s.closure_bytes,
        "failing_package": s.failing_package,
        "log_tail": s.log_tail,
        # only with a failure that has them (reports without keep their shape)
        **({"suggestions": list(s.suggestions)} if s.suggestions else {}),
        **({"pushed_bytes": s.pushed_bytes} if s.pushed_bytes is not None else {}),
        **({"systems": list(s.systems)} if s.systems else {}),
        "held": [
            {"name": h.name, "kept": h.kept, "wanted": h.wanted, "reason": h.reason} for h in s.held
        ],
        "commit": s.commit,
        "freshness": None
        if s.freshness is None
        else {
            "current": s.freshness.current,
            "total": s.freshness.total,
            "share": round(s.freshness.share, 4),
            "oldest": None
            if s.freshness.oldest is None
            else dict(
                zip(("name", "locked", "newest", "lag_days"), s.freshness.oldest, strict=True)
            ),
            "behind": [
                dict(zip(("name", "locked", "newest"), b, strict=True)) for b in s.freshness.behind
            ],
            "held": list(s.freshness.held),
            "refused": [
                dict(zip(("name", "locked", "newest", "reason"), r, strict=True))
                for r in s.freshness.refused
            ],
        },
    }


def to_json(report: NightReport) -> str:
    """The report as JSON with sorted, stable keys (every field present, ``null`` if unknown)."""
    data: dict[str, Any] = {
        "date": report.date,
        "exclude_newer": report.exclude_newer,
        "run_url": report.run_url,
        "sets": [_set_dict(s) for s in report.sets],
    }
    if report.notes:
        data["notes"] = list(report.notes)
    current, total = overall_freshness(report)
    if total:
        data["freshness"] = {"current": current, "total": total, "share": round(current / total, 4)}
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def append_step_summary(markdown: str, env: Mapping[str, str]) -> bool:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` if the environment names one."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(markdown)
    return True
