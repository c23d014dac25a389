"""Text from an index, a lock or a build log, made inert in the Markdown the bot writes.

Pull-request bodies, issue bodies and the step summary quote package names, versions,
summaries, URLs and refusal reasons an index sent.  Rendered as they are, a name like
``x](https://evil.example) | **safe to merge**`` adds a link, a table cell or an image to the
report; every such value goes through one of these helpers instead.
"""

from __future__ import annotations

import re

# CommonMark/GFM punctuation that can start structure inline: links and images ([ ] !),
# autolinks and HTML (< >), code (`), emphasis and strikethrough (* _ ~), table cells (|),
# entities (&) and the escape itself (\).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# an http(s) URL that cannot end a Markdown link early or start another one
_SAFE_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f()|<>\[\]`\\\"']+", re.IGNORECASE)


def one_line(value: object) -> str:
    """``value`` as text on one line: newlines and other control characters become spaces."""
    return _CONTROL.sub(" ", str(value)).strip()


def text(value: object) -> str:
    """``value`` on one line, every character that could start Markdown structure escaped
    (it renders as itself, also inside a table cell)."""
    return _SPECIAL.sub(r"\\\1", one_line(value))


def code(value: object, *, in_table: bool = False) -> str:
    """``value`` as an inline code span: a backtick run longer than any inside it, on one
    line; ``in_table`` escapes ``|`` (GFM splits table cells even inside code)."""
    body = one_line(value)
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    ticks = "`" * (longest + 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    if in_table:
        body = body.replace("|", "\\|")
    return f"{ticks}{body}{ticks}"


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL with nothing that ends or starts Markdown structure
    (whitespace, control characters, parentheses, brackets, ``|``, ``<``, ``>``, backticks,
    quotes, backslashes); otherwise None."""
    if url is None or not _SAFE_URL.fullmatch(url):
        return None
    return url


def link(label: str, url: str | None) -> str:
    """``[label](url)`` when ``url`` is safe (:func:`safe_url`), else "" (the link dropped)."""
    safe = safe_url(url)
    if safe is None:
        return ""
    return f"[{text(label)}]({safe})"
