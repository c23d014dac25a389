"""Text-level edits of an overrides file (``overrides/packages/<package>.toml``).

Re-validation (:mod:`bot.nightly.revalidate`) suggests two edits of an ``[[override]]`` entry:
remove it, or set its ``until``.  They are made on the text, so comments and layout stay as
people wrote them, and each result is checked by parsing it: the edit must give exactly the
intended TOML, else nothing is written.

An entry is named by its 1-based position among the file's ``[[override]]`` tables (as in
:mod:`bot.model.overrides`' ``(override #n)``), together with its reason, so an entry edited
meanwhile is not mistaken for another.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from bot.core.files import write_atomic
from bot.model.overrides import OverrideError

_HEADER = re.compile(r"^\s*\[\[\s*override\s*\]\]\s*(#.*)?$")
_SUBTABLE = re.compile(r"^\s*\[")
_UNTIL = re.compile(r"""^(\s*until\s*=\s*)("[^"]*"|'[^']*')""")
_FROM = re.compile(r"^\s*from\s*=")


class Edit(Protocol):
    """A suggested edit of one entry (:class:`bot.nightly.revalidate.Finding` is one)."""

    @property
    def id(self) -> str:
        """``"<package>#<n>"``: one edit per entry."""
        ...

    @property
    def file(self) -> str:
        """Repository-relative path of the TOML file."""
        ...

    @property
    def index(self) -> int:
        """1-based position of the entry in its file."""
        ...

    @property
    def reason(self) -> str:
        """The entry's own reason (to recognise it)."""
        ...

    @property
    def edit(self) -> Literal["remove", "until"] | None:
        """What to do; ``None``: nothing."""
        ...

    @property
    def until(self) -> str | None:
        """The new ``until`` when ``edit == "until"``."""
        ...

    @property
    def suggestion(self) -> str:
        """The edit, for people (used in the error when it cannot be made as text)."""
        ...


def header_lines(text: str) -> list[int]:
    """0-based line numbers of the ``[[override]]`` headers of ``text``, in order."""
    return [i for i, line in enumerate(text.splitlines()) if _HEADER.match(line)]


def _is_trivia(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def _block(lines: Sequence[str], headers: Sequence[int], index: int) -> tuple[int, int]:
    """[start, end) of entry ``index`` (1-based): its header up to the next header, without
    the comments and blank lines just above the next header (they belong to it), with the
    comment lines right above its own header (except before the first entry: the preamble)."""
    start = headers[index - 1]
    end = headers[index] if index < len(headers) else len(lines)
    while end > start + 1 and _is_trivia(lines[end - 1]):
        end -= 1
    if index > 1:
        while start > headers[index - 2] + 1 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
    return start, end


def _remove_entry(text: str, index: int) -> str | None:
    lines = text.splitlines(keepends=True)
    headers = header_lines(text)
    if len(headers) < index:
        return None
    start, end = _block(lines, headers, index)
    del lines[start:end]
    # one blank line between what was before and after, none at the very start or end
    while (
        start < len(lines)
        and not lines[start].strip()
        and (start == 0 or not lines[start - 1].strip())
    ):
        del lines[start]
    while lines and not lines[-1].strip():
        lines.pop()
    out = "".join(lines)
    return out if out.endswith("\n") or not out else out + "\n"


def _set_until(text: str, index: int, until: str) -> str | None:
    lines = text.splitlines(keepends=True)
    headers = header_lines(text)
    if len(headers) < index:
        return None
    _, end = _block(lines, headers, index)
    head = headers[index - 1]
    # keys of the entry's own table come before any [override.sub] table
    own = next((i for i in range(head + 1, end) if _SUBTABLE.match(lines[i])), end)
    value = json.dumps(until)
    for i in range(head + 1, own):
        if _UNTIL.match(lines[i]):
            lines[i] = _UNTIL.sub(lambda m: m.group(1) + value, lines[i], count=1)
            return "".join(lines)
    after = next((i for i in range(head + 1, own) if _FROM.match(lines[i])), head)
    lines.insert(after + 1, f"until = {value}\n")
    return "".join(lines)


def apply_edit(repo: Path, edit: Edit) -> Path | None:
    """Make ``edit`` in ``repo`` (text-level, comments kept); the file changed or removed,
    ``None`` when there is nothing to edit.

    Removing the last entry of a file removes the file.  Raises :class:`OverrideError` when
    the file no longer has this entry at this position (it was edited meanwhile) or the text
    edit would not give the intended TOML.
    """
    if edit.edit is None:
        return None
    path = repo / edit.file
    try:
        text = path.read_text(encoding="utf-8")
        entries = tomllib.loads(text).get("override", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OverrideError(f"cannot read: {exc}", where=str(path)) from exc
    if (
        not (0 < edit.index <= len(entries))
        or str(entries[edit.index - 1].get("reason", "")).strip() != edit.reason
    ):
        raise OverrideError(
            f"has no entry #{edit.index} with reason {edit.reason!r} any more",
            where=str(path),
            hint="re-run the re-validation",
        )
    expected = [dict(e) for e in entries]
    if edit.edit == "remove":
        del expected[edit.index - 1]
        new = _remove_entry(text, edit.index)
    else:
        until = edit.until or ""
        expected[edit.index - 1]["until"] = until
        new = _set_until(text, edit.index, until)
    if not expected:
        path.unlink()
        return path
    if new is None or tomllib.loads(new).get("override", []) != expected:
        raise OverrideError(
            f"cannot make the edit as text: {edit.suggestion}",
            where=str(path),
            hint="make it by hand",
        )
    write_atomic(path, new)
    return path


def apply_edits(repo: Path, edits: Iterable[Edit]) -> list[Path]:
    """Make every edit (later entries of a file first, so positions hold; one per entry);
    the files changed or removed, for a commit."""
    todo = sorted((e for e in edits if e.edit is not None), key=lambda e: (e.file, -e.index))
    changed: list[Path] = []
    done: set[str] = set()
    for edit in todo:
        if edit.id in done:
            continue
        done.add(edit.id)
        path = apply_edit(repo, edit)
        if path is not None and path not in changed:
            changed.append(path)
    return changed
