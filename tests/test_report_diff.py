"""bot.model.locks: version diffs between locks, commit subject and body (golden expectations)."""

from __future__ import annotations

import tomllib
from typing import Any

from bot.model.locks import VersionChange, combine, commit_body, commit_subject, diff_locks


def lock(
    python: str,
    packages: dict[str, str],
    *,
    roots: tuple[str, ...] = ("pytest",),
    exclude_newer: str = "2026-11-21T00:00:00Z",
) -> dict[str, Any]:
    """A parsed lock with just what diff reads, written as TOML to exercise the real shape."""
    lines = ['lock-version = "1.0"', 'created-by = "nixpkgs-python"', ""]
    for name, version in sorted(packages.items()):
        lines += [
            "[[packages]]",
            f'name = "{name}"',
            f'version = "{version}"',
            "[packages.tool.nixpkgs-python]",
            'artifacts = { x86_64-linux = "x.whl" }',
            "",
        ]
    lines += [
        "[tool.nixpkgs-python]",
        'set = "pytest"',
        f'python = "{python}"',
        "roots = [" + ", ".join(f'"{r}"' for r in roots) + "]",
        f'exclude-newer = "{exclude_newer}"',
    ]
    return tomllib.loads("\n".join(lines) + "\n")


OLD = {
    "pytest": "9.1.0",
    "pluggy": "1.6.0",
    "iniconfig": "2.0.0",
    "packaging": "25.0",
    "colorama": "0.4.6",
}
NEW = {
    "pytest": "9.2.0",
    "pluggy": "1.7.0",
    "iniconfig": "2.1.0",
    "packaging": "26.0",
    "pygments": "2.19.0",
}


def test_diff_locks_added_removed_changed() -> None:
    d = diff_locks(lock("3.12", OLD), lock("3.12", NEW))
    assert d.python == "3.12"
    assert d.label == "py312"
    assert d.roots == ("pytest",)
    assert d.exclude_newer == "2026-11-21T00:00:00Z"
    assert d.added == (VersionChange("pygments", None, "2.19.0"),)
    assert d.removed == (VersionChange("colorama", "0.4.6", None),)
    assert [c.name for c in d.changed] == ["iniconfig", "packaging", "pluggy", "pytest"]
    assert [c.kind for c in d.changes] == [
        "removed",
        "changed",
        "changed",
        "changed",
        "added",
        "changed",
    ]
    assert bool(d)


def test_diff_against_no_old_lock_and_no_change() -> None:
    d = diff_locks(None, lock("3.12", {"pytest": "9.2.0"}))
    assert d.added == (VersionChange("pytest", None, "9.2.0"),)
    same = diff_locks(lock("3.12", NEW), lock("3.12", NEW))
    assert not same
    assert commit_subject("pytest", [same]) == "pytest: refresh lock (no version changes)"


def test_names_are_normalized() -> None:
    old = lock("3.12", {"Typing_Extensions": "4.0"})
    new = lock("3.12", {"typing-extensions": "4.1"})
    assert diff_locks(old, new).changed == (VersionChange("typing-extensions", "4.0", "4.1"),)


def test_subject_roots_first_then_alphabetical() -> None:
    d = diff_locks(lock("3.12", OLD), lock("3.12", NEW))
    assert commit_subject("pytest", [d]) == ("pytest: pytest 9.1.0 → 9.2.0, -colorama (+4 more)")


def test_subject_names_three_when_three_and_shows_added() -> None:
    old = lock("3.12", {"pytest": "9.1.0", "pluggy": "1.6.0"})
    new = lock("3.12", {"pytest": "9.2.0", "pluggy": "1.7.0", "iniconfig": "2.1.0"})
    assert commit_subject("pytest", [diff_locks(old, new)]) == (
        "pytest: pytest 9.1.0 → 9.2.0, +iniconfig 2.1.0, pluggy 1.6.0 → 1.7.0"
    )


def test_subject_shortens_to_fit() -> None:
    old = lock("3.12", {"pytest": "9.1.0", "a-very-long-package-name-indeed": "1.0.0.post1"})
    new = lock("3.12", {"pytest": "9.2.0", "a-very-long-package-name-indeed": "1.0.0.post2"})
    subject = commit_subject("pytest", [diff_locks(old, new)])
    assert subject == "pytest: pytest 9.1.0 → 9.2.0 (+1 more)"


def test_combine_same_bump_once_different_bumps_per_python() -> None:
    d312 = diff_locks(
        lock("3.12", {"pytest": "9.1.0", "numpy": "2.3.0"}),
        lock("3.12", {"pytest": "9.2.0", "numpy": "2.4.0"}),
    )
    d313 = diff_locks(
        lock("3.13", {"pytest": "9.1.0", "numpy": "2.3.0"}),
        lock("3.13", {"pytest": "9.2.0", "numpy": "2.3.5"}),
    )
    combined = combine([d312, d313])
    assert [c.name for c in combined] == ["pytest", "numpy"]
    assert combined[0].short() == "pytest 9.1.0 → 9.2.0"
    assert combined[1].short() == "numpy 2.3.0 → 2.4.0 (py312), 2.3.0 → 2.3.5 (py313)"
    # both named would exceed 72 characters
    assert commit_subject("pytest", [d312, d313]) == "pytest: pytest 9.1.0 → 9.2.0 (+1 more)"


def test_change_in_one_python_only_is_labelled() -> None:
    d312 = diff_locks(
        lock("3.12", {"pytest": "9.1.0", "tomli": "2.0"}),
        lock("3.12", {"pytest": "9.1.0", "tomli": "2.1"}),
    )
    d313 = diff_locks(lock("3.13", {"pytest": "9.1.0"}), lock("3.13", {"pytest": "9.1.0"}))
    assert commit_subject("pytest", [d312, d313]) == "pytest: tomli 2.0 → 2.1 (py312)"


def test_body_golden() -> None:
    d312 = diff_locks(
        lock("3.12", {"pytest": "9.1.0", "numpy": "2.3.0", "colorama": "0.4.6"}),
        lock("3.12", {"pytest": "9.2.0", "numpy": "2.4.0", "pygments": "2.19.0"}),
    )
    d313 = diff_locks(
        lock("3.13", {"pytest": "9.1.0", "numpy": "2.3.0"}),
        lock("3.13", {"pytest": "9.2.0", "numpy": "2.3.5", "pygments": "2.19.0"}),
    )
    body = commit_body("pytest", [d312, d313])
    assert body == (
        "Re-locked set pytest (pylock.py312.toml, pylock.py313.toml).\n"
        "Index snapshot (exclude-newer): 2026-11-21T00:00:00Z\n"
        "\n"
        "| package  | old     | new       | python |\n"
        "|----------|---------|-----------|--------|\n"
        "| pytest   | 9.1.0   | 9.2.0     | all    |\n"
        "| colorama | 0.4.6   | (removed) | py312  |\n"
        "| numpy    | 2.3.0   | 2.4.0     | py312  |\n"
        "| numpy    | 2.3.0   | 2.3.5     | py313  |\n"
        "| pygments | (added) | 2.19.0    | all    |\n"
        "\n"
        "4 updated, 2 added, 1 removed (counted per lock).\n"
    )


def test_body_differing_snapshots_listed_per_python() -> None:
    d312 = diff_locks(lock("3.12", OLD), lock("3.12", NEW, exclude_newer="2026-11-21T00:00:00Z"))
    d313 = diff_locks(lock("3.13", OLD), lock("3.13", NEW, exclude_newer="2026-11-20T00:00:00Z"))
    body = commit_body("pytest", [d312, d313])
    assert "Index snapshot (exclude-newer, py312): 2026-11-21T00:00:00Z" in body
    assert "Index snapshot (exclude-newer, py313): 2026-11-20T00:00:00Z" in body
