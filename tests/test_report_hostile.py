"""Index-supplied text in the night's Markdown (PR body, step summary, issues) stays text.

The Markdown is parsed with markdown-it (CommonMark plus GFM tables): the links, images,
HTML and table cells of the parse are exactly the bot's own, whatever the values say.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.nightly import markdown as md
from bot.nightly.advisories import Hit, NightAdvisories, SetAdvisories
from bot.nightly.advisories import to_markdown as advisories_markdown
from bot.nightly.github import failure_body
from bot.nightly.report import (
    DiffRow,
    Freshness,
    HeldPackage,
    NightReport,
    SetReport,
    to_markdown,
)

INJECT = (
    "https://x.example/) | **All checks passed, safe to merge** ![t](https://tracker.example/p.png"
)
HOSTILE = [
    INJECT,
    "x](https://evil.example) [y",
    "a | b | c",
    "<img src=https://tracker.example/p.png>",
    "<https://evil.example>",
    "`x` | ![i](https://tracker.example/i.png)",
    "line\n\n# heading\n| a | b |\n|---|---|",
    "&#91;x&#93;(https://evil.example)",
    "ok\u2028[x](https://evil.example)",
    "```\n[x](https://evil.example)\n```",
]


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        yield from _walk(token.children or [])


def parse(text: str) -> list[Token]:
    return list(_walk(MarkdownIt("commonmark").enable("table").parse(text)))


def links(text: str) -> list[str]:
    return [str(t.attrs.get("href")) for t in parse(text) if t.type == "link_open"]


def structure(text: str) -> dict[str, int]:
    tokens = parse(text)
    kinds = ("image", "html_inline", "html_block", "heading_open", "table_open")
    counts = {k: sum(1 for t in tokens if t.type == k) for k in kinds}
    counts["links"] = len(links(text))
    rows = [t for t in tokens if t.type == "tr_open"]
    counts["cells"] = sum(1 for t in tokens if t.type in ("td_open", "th_open"))
    counts["rows"] = len(rows)
    return counts


def night(value: str, changelog: str | None) -> NightReport:
    return NightReport(
        date="2026-11-21",
        exclude_newer=value,
        run_url="https://ci.invalid/run/7",
        notes=(f"a note about {value}",),
        sets=(
            SetReport(
                "web",
                ("3.12",),
                "failed",
                diff=(DiffRow(value, value, value, ("3.12",), changelog),),
                failing_package=value,
                log_tail=value,
                suggestions=(value,),
                systems=(f"x86_64-linux: {value}",),
                held=(HeldPackage(value, value, value, value),),
                freshness=Freshness(
                    1, 2, (value, value, value, 3.0), held=(value,),
                    refused=((value, value, value + "x", value),),
                ),
            ),
        ),
    )  # fmt: skip


BENIGN = night("nb-lib", "https://nb.example/changes")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_add_no_link_image_html_or_cell(value: str) -> None:
    text = to_markdown(night(value, "https://nb.example/changes"))
    assert structure(text) == structure(to_markdown(BENIGN))
    assert links(text) == ["https://ci.invalid/run/7", "https://nb.example/changes"]


@pytest.mark.parametrize(
    "url",
    [
        INJECT,
        "https://x.example/a b",
        "https://x.example/a\nb",
        "https://x.example/(a)",
        "https://x.example/<a>",
        "https://x.example/[a]",
        "https://x.example/`a`",
        "https://x.example/a|b",
        "javascript:alert(1)",
        "ftp://x.example/changes",
        "/relative/changes",
    ],
)
def test_an_unsafe_changelog_url_is_not_linked(url: str) -> None:
    text = to_markdown(night("nb-lib", url))
    assert structure(text) == {**structure(to_markdown(BENIGN)), "links": 1}
    assert links(text) == ["https://ci.invalid/run/7"]
    assert "tracker.example" not in text


def test_a_safe_changelog_url_is_linked_as_it_is() -> None:
    url = "https://nb.example/en/stable/changes.html#v1-2?x=1&y=%20"
    assert links(to_markdown(night("nb-lib", url)))[-1] == url
    assert md.safe_url(url) == url


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_text_renders_as_itself(value: str) -> None:
    tokens = parse(md.text(value))
    rendered = "".join(t.content for t in tokens if t.type == "text")
    assert rendered == md.one_line(value)
    spans = [t.content for t in parse(md.code(value)) if t.type == "code_inline"]
    assert spans == [md.one_line(value)]


@pytest.mark.parametrize("value", HOSTILE)
def test_advisory_fields_add_no_link(value: str) -> None:
    hit = Hit(value, value, value, value, INJECT, (value,))
    good = Hit("GHSA-1", "nb-lib", "1.0", "bad", "https://osv.dev/GHSA-1")
    night_ = NightAdvisories((SetAdvisories("web", (), (hit, good)),))
    text = advisories_markdown(night_)
    assert links(text) == ["https://osv.dev/GHSA-1"]
    assert structure(text)["image"] == structure(text)["html_inline"] == 0


@pytest.mark.parametrize("value", HOSTILE)
def test_failure_issue_body_adds_no_link(value: str) -> None:
    text = failure_body("web", "3.12", value, value, INJECT)
    assert links(text) == []
    counts = structure(text)
    assert counts["image"] == counts["heading_open"] == counts["table_open"] == 0
