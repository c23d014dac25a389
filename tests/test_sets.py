"""set.yaml validation: every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import SetError
from bot.model.sets import list_sets, load_set, load_sets, read_requirements_file

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "demo") -> Path:
    d = tmp_path / "sets" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "set.yaml").write_text(text)
    return d


GOOD = """\
description: demo
maintainers: [someone]
python: ["3.12", "3.13"]
requirements:
  - pytest>=8
  - requests[socks]
constraints:
  - urllib3<3
prefer: sdist
build-requirements:
  Some_Pkg: ["setuptools-scm"]
indexes:
  - url: https://example.invalid/simple
    packages: [Private-Pkg]
"""


def test_good_set(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    s = load_set(tmp_path, "demo")
    assert s.python == ("3.12", "3.13")
    assert s.roots == ("pytest", "requests")
    assert s.prefer == "sdist"
    assert [str(c.value) for c in s.constraints] == ["urllib3<3"]
    assert [str(r.value) for r in s.build_requirements["some-pkg"]] == ["setuptools-scm"]
    assert s.indexes[0].url == "https://example.invalid/simple/"
    assert s.indexes[0].packages == frozenset({"private-pkg"})
    assert s.requirements[1].where.endswith("set.yaml:6 (field 'requirements')")
    assert s.lock_path("3.13").name == "pylock.py313.toml"
    assert s.inputs_hash("3.12") == load_set(tmp_path, "demo").inputs_hash("3.12")
    assert s.inputs_hash("3.12") != s.inputs_hash("3.13")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (GOOD + "colour: blue\n", ["set.yaml:15", "unknown field 'colour'", "known fields"]),
        (GOOD.replace("pytest>=8", "pytest>>8"), ["set.yaml:5", "invalid requirement 'pytest>>8'"]),
        (GOOD.replace('"3.13"', '"2.7"'), ["set.yaml:3", "unsupported Python version '2.7'"]),
        (GOOD.replace('["3.12", "3.13"]', "[3.12]"), ["set.yaml:3", "quote it"]),
        (GOOD.replace("prefer: sdist", "prefer: eggs"), ["set.yaml:9", "'prefer'", "eggs"]),
        ("description: [unclosed\n", ["set.yaml", "not valid YAML"]),
        ("- a list\n", ["set.yaml:1", "expected a mapping"]),
        (GOOD.replace("python:", "pythons:"), ["unknown field 'pythons'"]),
        ("description: x\npython: ['3.12']\n", ["'requirements'", "requests no packages"]),
        (
            GOOD.replace("  - url: https://example.invalid/simple", "  - url: ftp://x"),
            ["set.yaml:13", "not an index URL"],
        ),
        (GOOD.replace("pytest>=8", "pkg @ https://x.invalid/p.whl"), ["direct URL"]),
        (
            GOOD.replace("https://example.invalid/simple", "file:///srv/index/simple"),
            ["set.yaml:13", "not an index URL", "speaks only HTTP", "python -m http.server"],
        ),
        (
            GOOD.replace("example.invalid", "pypi..org"),
            ["set.yaml:13", "'pypi..org' is not a valid host name"],
        ),
        (
            GOOD.replace("example.invalid/simple", "example.invalid/caf\u00e9"),
            ["set.yaml:13", "non-ASCII characters"],
        ),
    ],
)
def test_bad_set_yaml(tmp_path: Path, text: str, fragments: list[str]) -> None:
    write(tmp_path, text)
    with pytest.raises(SetError) as info:
        load_set(tmp_path, "demo")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_requirements_txt_beside_set_yaml(tmp_path: Path) -> None:
    d = write(tmp_path, "description: x\npython: ['3.12']\n")
    (d / "requirements.txt").write_text("# comment\nflask>=3  # web\n\nclick\n")
    s = load_set(tmp_path, "demo")
    assert [str(r.value) for r in s.requirements] == ["flask>=3", "click"]
    assert s.requirements[0].where.endswith("requirements.txt:2")
    (d / "requirements.txt").write_text("flask\n-e .\n")
    with pytest.raises(SetError, match=r"requirements.txt:2.*pip options"):
        load_set(tmp_path, "demo")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a comment after any whitespace, as pip strips it
        ("rich\t# a comment\n", [("rich", 1)]),
        ("rich # a comment\nclick  \t#x\n", [("rich", 1), ("click", 2)]),
        ("\ufeff# first line\nrich\n", [("rich", 2)]),
        # a backslash continues the line (as pip joins them); the first line names it
        ("flask \\\n    >=3\nclick\n", [("flask>=3", 1), ("click", 3)]),
        # a comment line ends a continuation
        ("flask \\\n# why\nclick\n", [("flask", 1), ("click", 3)]),
        ("# a comment line ending in a backslash \\\nrich\n", [("rich", 2)]),
    ],
)
def test_requirements_txt_comments_and_continuations(
    tmp_path: Path, text: str, expected: list[tuple[str, int]]
) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    got = [(str(r.value), r.where) for r in read_requirements_file(path)]
    assert got == [(req, f"{path}:{line}") for req, line in expected]


@pytest.mark.parametrize(
    ("text", "where", "fragments"),
    [
        # a '#' inside a word is not a comment (pip keeps it): the line is not a requirement
        ("rich#egg\n", 1, ["invalid requirement", "rich#egg"]),
        # pip options after a requirement, on its line or on continuation lines
        ("rich==13.0 --hash=sha256:00\n", 1, ["pip options are not supported", "--hash"]),
        (
            "click\nrich==13.0 \\\n    --hash=sha256:00 \\\n    --hash=sha256:11\n",
            2,
            ["pip options are not supported", "--hash=sha256:00", "--generate-hashes"],
        ),
        ("rich\t--config-settings=x=1\n", 1, ["pip options are not supported", "--config"]),
        ("-c constraints.txt\n", 1, ["pip options are not supported", "-c constraints.txt"]),
    ],
)
def test_requirements_txt_refusals(
    tmp_path: Path, text: str, where: int, fragments: list[str]
) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    with pytest.raises(SetError) as info:
        read_requirements_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{where}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_set_lists_known_ones(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "real")
    with pytest.raises(SetError, match="unknown set 'nope'") as info:
        load_set(tmp_path, "nope")
    assert "real" in str(info.value)


def test_shipped_sets_are_valid() -> None:
    names = list_sets(REPO)
    for expected in (
        "pytest",
        "flake8",
        "sphinx",
        "flask",
        "django",
        "httpie",
        "attrs",
        "pyramid",
        "pelican",
    ):
        assert expected in names
    for s in load_sets(REPO):
        assert s.python == ("3.12", "3.13")
        assert s.description


def test_lock_of_a_set_with_a_file_index_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    write(tmp_path, GOOD.replace("https://example.invalid/simple", f"file://{tmp_path}/simple"))
    code = main(["--repo", str(tmp_path), "-q", "lock", "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code != 0
    assert "set.yaml:13" in err
    assert "the index client speaks only HTTP" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "sets" / "demo").glob("pylock*"))
