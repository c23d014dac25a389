"""bot/build/suggest.py: a failed build's log -> the override entry that fixes it.

The cases in tests/data/build-logs are real logs captured here (see cases.toml); the rest are
the exact lines the builder and common tools print."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.build.command import BuildResult, summary
from bot.build.suggest import NativeMap, SuggestError, load_map, render, repo_map, suggest
from bot.model.overrides import parse_entry
from bot.nightly.report import NightReport, SetReport, from_json, to_json, to_markdown

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "data" / "build-logs"
CASES = tomllib.loads((LOGS / "cases.toml").read_text())["case"]


@pytest.fixture(scope="module")
def native() -> NativeMap:
    return repo_map(ROOT)


def first_suggestion_right(case: dict[str, str], native: NativeMap) -> bool:
    found = suggest((LOGS / case["log"]).read_text(), native)
    return bool(found) and (found[0].key, found[0].value) == (case["key"], case["value"])


@pytest.mark.parametrize("case", CASES, ids=[c["log"] for c in CASES])
def test_real_failure_log_gets_the_right_first_suggestion(
    case: dict[str, str], native: NativeMap
) -> None:
    log = (LOGS / case["log"]).read_text()
    found = suggest(log, native)
    assert found, f"no suggestion for {case['log']}"
    assert (found[0].key, found[0].value) == (case["key"], case["value"])
    assert found[0].evidence in log  # the evidence is a line of the log


def test_every_captured_log_is_a_case() -> None:
    assert sorted(p.name for p in LOGS.glob("*.log")) == sorted(c["log"] for c in CASES)
    assert len(CASES) >= 6


def test_suggested_entries_are_valid_overrides(native: NativeMap, tmp_path: Path) -> None:
    for case in CASES:
        for s in suggest((LOGS / case["log"]).read_text(), native):
            [table] = tomllib.loads(s.entry())["override"]
            entry = parse_entry("x", table, "suggestion", tmp_path)  # type: ignore[arg-type]
            assert entry.reason


def test_native_map_attribute_paths_are_valid(native: NativeMap, tmp_path: Path) -> None:
    # every value of the shipped map would pass the overrides parser as an attribute path
    count = 0
    for section, table in native.sections.items():
        key = "build-requires" if section == "modules" else "build-inputs"
        for value in table.values():
            if value:
                parse_entry("x", {"reason": "r", key: [value]}, section, tmp_path)  # type: ignore[arg-type]
                count += 1
    assert count > 600


LINES = NativeMap(
    {
        "headers": {"zlib.h": "zlib.dev"},
        "pkg-config": {"libxml-2.0": "libxml2.dev", "cairo": "cairo.dev"},
        "libraries": {"libz.so.1": "zlib", "ssl": "openssl"},
        "commands": {"cargo": "cargo", "gfortran": "gfortran", "pkg-config": "pkg-config"},
        "modules": {"setuptools_scm": "setuptools-scm", "hatchling": "hatchling"},
        "external": {
            "virtual:compiler/c": "",
            "virtual:compiler/rust": "cargo",
            "pkg:generic/libxml2": "libxml2.dev",
        },
    }
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "Package libxml-2.0 was not found in the pkg-config search path.",
            ("native-build-inputs", "pkg-config"),
        ),
        ("No package 'cairo' found", ("native-build-inputs", "pkg-config")),
        (
            'meson.build:12:0: ERROR: Dependency "cairo" not found, tried pkgconfig',
            ("native-build-inputs", "pkg-config"),
        ),
        ("/usr/bin/ld: cannot find -lssl: No such file or directory", ("build-inputs", "openssl")),
        ("sh: 1: cargo: not found", ("native-build-inputs", "cargo")),
        ("/bin/sh: pkg-config: command not found", ("native-build-inputs", "pkg-config")),
        (
            "FileNotFoundError: [Errno 2] No such file or directory: 'gfortran'",
            ("native-build-inputs", "gfortran"),
        ),
        (
            "error: command 'gfortran' failed: No such file or directory",
            ("native-build-inputs", "gfortran"),
        ),
        (
            "Cargo, the Rust package manager, is not installed or is not on PATH.",
            ("native-build-inputs", "cargo"),
        ),
        (
            "ModuleNotFoundError: No module named 'setuptools_scm'",
            ("build-requires", "setuptools-scm"),
        ),
        ("ERROR Backend 'hatchling.build' is not available.", ("build-requires", "hatchling")),
        (
            "ImportError: libz.so.1: cannot open shared object file: No such file or directory",
            ("system-libraries", "zlib"),
        ),
        (
            "\x1b[01;31mfatal error: \x1b[mzlib.h: No such file or directory",
            ("build-inputs", "zlib.dev"),
        ),
    ],
)
def test_log_line_patterns(line: str, expected: tuple[str, str]) -> None:
    found = suggest(f"noise\n{line}\nmore noise\n", LINES)
    assert found, line
    assert (found[0].key, found[0].value) == expected


def test_pkg_config_module_suggests_the_library_too() -> None:
    found = suggest("Package libxml-2.0 was not found in the pkg-config search path.", LINES)
    assert [(s.key, s.value) for s in found] == [
        ("native-build-inputs", "pkg-config"),
        ("build-inputs", "libxml2.dev"),
    ]


def test_linkage_failure_is_build_inputs_for_an_sdist_system_libraries_for_a_wheel() -> None:
    line = "nixpkgs-python: linkage check: foo/_x.so needs libz.so.1, which nothing provides"
    wheel = suggest(f"nixpkgs-python: installing foo-1-cp312-cp312-manylinux.whl\n{line}", LINES)
    assert [(s.key, s.value) for s in wheel] == [("system-libraries", "zlib")]
    sdist = suggest(f"nixpkgs-python: building foo 1.0 from abc-foo-1.0.tar.gz\n{line}", LINES)
    assert [(s.key, s.value) for s in sdist] == [("build-inputs", "zlib")]


def test_pep725_external_table_maps_after_the_log_evidence() -> None:
    log = (
        "nixpkgs-python: building foo 1.0 from abc-foo-1.0.tar.gz\n"
        "nixpkgs-python: [external] build-requires: virtual:compiler/c, virtual:compiler/rust\n"
        "nixpkgs-python: [external] host-requires: pkg:generic/libxml2@>=2.9, pkg:generic/unknown\n"
        "fatal error: zlib.h: No such file or directory\n"
    )
    assert [(s.key, s.value) for s in suggest(log, LINES)] == [
        ("build-inputs", "zlib.dev"),
        ("native-build-inputs", "cargo"),
        ("build-inputs", "libxml2.dev"),
    ]


def test_a_module_missing_at_import_check_time_is_no_build_requirement() -> None:
    log = "nixpkgs-python: imports check: foo\nModuleNotFoundError: No module named 'hatchling'\n"
    assert suggest(log, LINES) == []


def test_unknown_names_and_clean_logs_suggest_nothing() -> None:
    assert suggest("fatal error: nowhere.h: No such file or directory\n", LINES) == []
    assert suggest("all good\n", LINES) == []
    assert suggest("", NativeMap()) == []


def test_map_errors_are_one_clear_error(tmp_path: Path) -> None:
    assert load_map(tmp_path / "absent.toml").sections == {}
    bad = tmp_path / "m.toml"
    bad.write_text("[headers\n")
    with pytest.raises(SuggestError, match="cannot read the native map"):
        load_map(bad)
    bad.write_text('[header]\n"a.h" = "a"\n')
    with pytest.raises(SuggestError, match="unknown sections: header"):
        load_map(bad)
    bad.write_text('[headers]\n"a.h" = 1\n')
    with pytest.raises(SuggestError, match=r"\[headers\] must map names to strings"):
        load_map(bad)


def test_build_summary_and_night_report_show_the_suggestion(native: NativeMap) -> None:
    found = suggest((LOGS / "pyyaml-no-libyaml.log").read_text(), native)
    result = BuildResult("native", "3.12", ok=False, failed_package="pyyaml", error="boom")
    result.suggestions = found
    text = summary([result])
    assert "suggested overrides (overrides/packages/pyyaml.toml):" in text
    assert 'build-inputs = ["libyaml"]' in text
    assert result.to_json()["suggestions"][0]["value"] == "libyaml"
    assert render("pyyaml", []) == []
    report = NightReport(
        "2026-12-01",
        sets=(
            SetReport(
                "native",
                ("3.12",),
                "failed",
                failing_package="pyyaml",
                suggestions=tuple(s.line() for s in found),
            ),
        ),
    )
    markdown = to_markdown(report)
    assert "Suggested override (from its build log):" in markdown
    assert 'build-inputs = ["libyaml"]' in markdown
    assert from_json(to_json(report)) == report
