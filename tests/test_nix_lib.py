"""Expression tests of the Nix library (nix/tests/*.nix), evaluated by real nix-instantiate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.core.nix import eval_json, run_nix
from bot.model.overrides import load_overrides

TESTS = Path(__file__).resolve().parents[1] / "nix" / "tests"
CASE = re.compile(r"^  ([a-z][A-Za-z0-9-]*) = \{", re.MULTILINE)

pytestmark = pytest.mark.nix


def _names(file: str) -> list[str]:
    return CASE.findall((TESTS / file).read_text())


@pytest.fixture(scope="module")
def cases() -> dict[str, Any]:
    result: dict[str, Any] = eval_json(TESTS / "default.nix")
    return result


@pytest.fixture(scope="module")
def messages() -> dict[str, str]:
    result: dict[str, str] = eval_json(TESTS / "error-messages.nix")
    return result


def test_every_case_is_collected(cases: dict[str, Any], messages: dict[str, str]) -> None:
    assert sorted(cases) == sorted(_names("default.nix"))
    assert sorted(messages) == sorted(_names("errors.nix"))


@pytest.mark.parametrize("name", _names("default.nix"))
def test_expression(cases: dict[str, Any], name: str) -> None:
    case = cases[name]
    assert case["expr"] == case["expected"]


@pytest.mark.parametrize("name", _names("errors.nix"))
def test_error_names_the_package(messages: dict[str, str], name: str) -> None:
    proc = run_nix(
        "nix-instantiate",
        ["--eval", "--strict", TESTS / "errors.nix", "-A", f"{name}.expr"],
        check=False,
    )
    assert proc.returncode != 0
    assert messages[name] in proc.stderr


def test_every_exported_function_has_a_case() -> None:
    """Each top-level function of each library file is named in some case."""
    source = (TESTS / "default.nix").read_text()
    exported = eval_json(TESTS / "exports.nix")
    missing = [
        f"{file}.{fn}"
        for file, fns in exported.items()
        for fn in fns
        if not re.search(rf"\b{re.escape(file)}\.{re.escape(fn)}\b|{file}-{fn}\b", source)
    ]
    assert missing == []


def test_nix_and_bot_read_the_same_overrides_library() -> None:
    by_nix = eval_json(TESTS / "shipped-overrides.nix")
    by_bot = {
        name: [o.reason for o in entries]
        for name, entries in load_overrides(TESTS.parents[1]).items()
    }
    assert by_nix == by_bot
