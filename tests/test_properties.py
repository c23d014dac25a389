"""Property tests: a set.yaml, a requirement line and a requirements.txt either parse into
something every later step can use, or raise the project's error naming the file (and the
line) — never another exception.

The strategies are shared with ``benchmarks/fuzz.py``, which runs them with many more
examples and counts the outcomes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from bot import SUPPORTED_PYTHONS
from bot.core.errors import BotError, SetError
from bot.model.sets import Located, PackageSet, load_set, parse_requirement, read_requirements_file
from bot.model.targets import targets_for

#: bounded so the whole file runs in a few seconds; benchmarks/fuzz.py runs thousands
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- strategies -----------------------------------------------------------------------------

NAMES = st.sampled_from(
    ["demo", "Foo_Bar", "a.b-c", "x", "1e5", "-bad", "foo!", "ünï", "a" * 300, ""]
) | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,8}", fullmatch=True)
VERSIONS = st.sampled_from(
    [
        "1",
        "1.0",
        "1.*",
        "-1",
        "1e5",
        "1" * 5000,
        "9" * 40,
        "1.0a1",
        "0!1",
        "1.0+local",
        "",
        "v1",
        "1..0",
        "1.0.post1.dev2",
        "2!3.4",
        "1.0-legacy",
        "==",
        "*",
        "1.0 1",
    ]
) | st.from_regex(r"[0-9][0-9a-z.*+!-]{0,6}", fullmatch=True)
OPERATORS = st.sampled_from(["==", "===", "~=", ">=", "<=", "!=", "<", ">", "=", "~", ""])
MARKER_VARIABLES = st.sampled_from(
    [
        "python_version",
        "python_full_version",
        "sys_platform",
        "platform_machine",
        "os_name",
        "extra",
        "extras",
        "dependency_groups",
        "platform_release",
        "platform_version",
        "implementation_version",
        "implementation_name",
        "platform_python_implementation",
        "platform_system",
        "os.name",
        "bogus",
    ]
)
MARKER_OPERATORS = st.sampled_from(["==", "!=", "<", ">=", "~=", "===", "in", "not in", "=", "is"])
MARKER_VALUES = VERSIONS | st.sampled_from(["linux", "darwin", "x86_64", "cli", "", "a b", "3.12"])
PORTS = st.sampled_from(["", ":80", ":99999", ":-1", ":abc", ":0", ":65536"])
HOSTS = st.sampled_from(["h.example", "[::1]", "[::1", "::1]", "", "ü.example", "a b"])


@st.composite
def markers(draw: st.DrawFn, depth: int = 0) -> str:
    """A PEP 508 marker expression, often not a valid one."""
    var = draw(MARKER_VARIABLES)
    value = draw(MARKER_VALUES)
    quote = draw(st.sampled_from(["'", '"', ""]))
    atom = (
        f"{var} {draw(MARKER_OPERATORS)} {quote}{value}{quote}"
        if draw(st.booleans())
        else f"{quote}{value}{quote} {draw(MARKER_OPERATORS)} {var}"
    )
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        joiner = draw(st.sampled_from([" and ", " or ", " xor "]))
        atom = f"({atom}{joiner}{draw(markers(depth + 1))})"
    return atom


@st.composite
def requirement_lines(draw: st.DrawFn) -> str:
    """A requirement line: mostly PEP 508-shaped, with the awkward cases the fuzzer found."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=30))
    name = draw(NAMES)
    if kind == 1:
        scheme = draw(st.sampled_from(["http", "https", "file", "git+https"]))
        return f"{name} @ {scheme}://{draw(HOSTS)}{draw(PORTS)}/p.whl"
    line = name
    if draw(st.booleans()):
        extras = draw(st.lists(NAMES, max_size=2))
        line += "[" + ",".join(extras) + "]"
    specs = draw(st.lists(st.tuples(OPERATORS, VERSIONS), max_size=3))
    line += ",".join(op + version for op, version in specs)
    if draw(st.booleans()):
        line += "; " + draw(markers())
    return line


@st.composite
def requirements_txts(draw: st.DrawFn) -> bytes:
    """A requirements.txt as bytes: lines, comments, options, continuations, bad encodings."""
    lines = draw(
        st.lists(
            requirement_lines()
            | st.sampled_from(
                ["# comment", "", "  ", "-r other.txt", "--index-url x", "foo \\", "foo # c"]
            ),
            max_size=6,
        )
    )
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    data = sep.join(lines).encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        junk = draw(st.sampled_from([b"\xff\xfe", b"\xc3", b"\x00", b"\xef\xbb\xbf", b"\xed\xa0"]))
        at = draw(st.integers(0, len(data)))
        data = data[:at] + junk + data[at:]
    return data


SCALARS: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | VERSIONS
    | st.sampled_from(list(SUPPORTED_PYTHONS))
    | requirement_lines()
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "description": st.text(max_size=12) | VALUES,
    "maintainers": st.lists(st.text(max_size=8)) | VALUES,
    "python": st.lists(st.sampled_from([*SUPPORTED_PYTHONS, "2.7", "3.1", 3.12])) | VALUES,
    "requirements": st.lists(requirement_lines(), max_size=4) | VALUES,
    "constraints": st.lists(requirement_lines(), max_size=3) | VALUES,
    "prefer": st.sampled_from(["wheel", "sdist", "egg"]) | VALUES,
    "build-requirements": st.dictionaries(NAMES, st.lists(requirement_lines(), max_size=2))
    | VALUES,
    "indexes": st.lists(
        st.fixed_dictionaries(
            {
                "url": st.builds(
                    lambda s, h, p: f"{s}://{h}{p}/simple",
                    st.sampled_from(["http", "https", "file", "ftp"]),
                    HOSTS,
                    PORTS,
                )
                | VALUES
            },
            optional={"packages": st.lists(NAMES, max_size=2) | VALUES, "extra": VALUES},
        ),
        max_size=2,
    )
    | VALUES,
}
#: YAML text no dict can be dumped as: complex keys, aliases, tags, deep nesting, tabs
YAML_SNIPPETS = st.sampled_from(
    [
        "? [a, b]\n: c\n",
        "{[1]: 2}\n",
        "requirements: &a [*a]\n",
        "x: !!python/object:os.system 'true'\n",
        "x: !!binary 'AAA'\n",
        "[" * 600 + "]" * 600 + "\n",
        "{a: " * 600 + "1" + "}" * 600 + "\n",
        "- " * 300 + "x\n",
        "\tpython: ['3.12']\n",
        "python: ['3.12'\n",
        "requirements:\n  - ? [x]\n    : y\n",
        "build-requirements:\n  ? [a]\n  : [b]\n",
        "indexes:\n  - {? [u] : v}\n",
        "%YAML 1.1\n---\n",
        "--- a\n--- b\n",
        "\x00",
        "\ufeff",
        "python: 1e5\n",
        "python: [1e5, 3.12]\n",
    ]
)


@st.composite
def set_yamls(draw: st.DrawFn) -> str:
    """A set.yaml text: the known fields with valid and invalid values, unknown fields, and
    YAML constructs a dumped dict never contains."""
    fields = draw(st.lists(st.sampled_from([*FIELD_VALUES, "colour"]), unique=True, max_size=8))
    data = {f: draw(FIELD_VALUES.get(f, VALUES)) for f in fields}
    text = yaml.safe_dump(data, allow_unicode=True) if data else ""
    if draw(st.integers(0, 2)) == 0:
        snippet = draw(YAML_SNIPPETS)
        lines = text.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines)))
        text = "".join([*lines[:at], snippet, *lines[at:]])
    return text


# --- the property ---------------------------------------------------------------------------


def use_requirement(req: Located, pythons: tuple[str, ...] = SUPPORTED_PYTHONS) -> None:
    """What the resolver does with a requirement: evaluate its marker on every target (with
    its extras) and read the version of every pin."""
    value = req.value
    for python in pythons:
        for target in targets_for(python):
            target.evaluate(value.marker, frozenset(value.extras))
    for spec in value.specifier:
        if spec.operator in ("==", "===") and "*" not in spec.version:
            Version(spec.version)


def use_set(pset: PackageSet) -> None:
    """Everything a lock does with a set before it asks an index anything."""
    for python in pset.python:
        pset.inputs_hash(python)
    for req in (*pset.requirements, *pset.constraints):
        use_requirement(req, pset.python)
    for reqs in pset.build_requirements.values():
        for req in reqs:
            use_requirement(req, pset.python)
    for index in pset.indexes:
        parts = urlsplit(index.url)
        assert parts.scheme == "file" or (parts.scheme in ("http", "https") and parts.hostname)
        assert parts.port is None or 0 < parts.port < 65536


def clean_error(exc: BotError, *where: str) -> None:
    """The error is one message saying where."""
    text = str(exc)
    assert text.strip(), "an empty error message"
    assert any(w in text for w in where), f"the message does not say where: {text!r}"


def load(directory: Path, text: str | None, txt: bytes | None = None) -> PackageSet:
    """Write ``directory/set.yaml`` (and requirements.txt) and load the set."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.iterdir():
        leftover.unlink()
    if text is not None:
        (directory / "set.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    if txt is not None:
        (directory / "requirements.txt").write_bytes(txt)
    return load_set(directory.parent.parent, directory.name)


def check_set(directory: Path, text: str | None, txt: bytes | None = None) -> PackageSet | None:
    """Load a set from these texts; the property, as an outcome."""
    try:
        pset = load(directory, text, txt)
    except SetError as exc:
        clean_error(exc, "set.yaml", "requirements.txt", str(directory.parent))
        return None
    use_set(pset)
    return pset


def check_line(line: str) -> Located | None:
    try:
        req = parse_requirement(line, "set.yaml:3")
    except SetError as exc:
        clean_error(exc, "set.yaml:3")
        return None
    use_requirement(req)
    return req


def check_txt(path: Path, data: bytes) -> list[Located] | None:
    path.write_bytes(data)
    try:
        reqs = read_requirements_file(path)
    except SetError as exc:
        clean_error(exc, str(path))
        return None
    for req in reqs:
        use_requirement(req)
        assert req.where.startswith(f"{path}:")
    return reqs


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every example (a temporary directory each costs more than a check)."""
    return tmp_path_factory.mktemp("properties")


@SETTINGS
@given(text=set_yamls())
def test_any_set_yaml_loads_or_is_one_set_error(workdir: Path, text: str) -> None:
    check_set(workdir / "sets" / "demo", text)


@SETTINGS
@given(text=set_yamls(), txt=requirements_txts())
def test_any_requirements_txt_beside_a_set(workdir: Path, text: str, txt: bytes) -> None:
    text = "\n".join(line for line in text.splitlines() if not line.startswith("requirements"))
    check_set(workdir / "sets" / "demo", text, txt)


@SETTINGS
@given(line=requirement_lines())
def test_any_requirement_line_parses_or_is_one_set_error(line: str) -> None:
    check_line(line)


@SETTINGS
@given(data=requirements_txts())
def test_any_requirements_txt_parses_or_is_one_set_error(workdir: Path, data: bytes) -> None:
    check_txt(workdir / "requirements.txt", data)


# --- the fuzzer's findings, as data ---------------------------------------------------------

GOOD = "description: demo\npython: ['3.12']\nrequirements:\n  - {req}\n"

SET_CASES = [
    # (set.yaml text, fragments of the one error)
    ("[" * 600 + "]" * 600, ["set.yaml", "nested"]),
    ("{a: " * 600 + "1" + "}" * 600, ["set.yaml", "nested"]),
    (GOOD + "? [a, b]\n: c\n", ["set.yaml:5", "field name"]),
    (GOOD + "indexes:\n  - {? [u] : v}\n", ["set.yaml:6", "indexes"]),
    (GOOD + "build-requirements:\n  ? [a]\n  : [b]\n", ["set.yaml:6", "build-requirements"]),
    (
        GOOD + "indexes:\n  - url: http://h.example:99999/simple\n",
        ["set.yaml:6", "Port out of range"],
    ),
    (GOOD + "indexes:\n  - url: 'http://[::1/simple'\n", ["set.yaml:6", "not an index URL"]),
    (GOOD + "indexes:\n  - url: 'https://:8080/simple'\n", ["set.yaml:6", "host"]),
    (
        GOOD + "indexes:\n  - url: https://h.example/simple\n    packages: ['a b']\n",
        ["set.yaml:7", "'a b' is not a package name"],
    ),
    (GOOD.format(req="\"foo; 'a' in dependency_groups\""), ["set.yaml:4", "dependency_groups"]),
    (GOOD.format(req="'foo; python_version ~= \"1\"'"), ["set.yaml:4", "marker"]),
    (GOOD.format(req="foo===-1"), ["set.yaml:4", "'===-1'"]),
    (GOOD.format(req="foo==" + "1" * 5000), ["set.yaml:4", "too long"]),
    (GOOD.format(req="foo==1e5"), ["set.yaml:4", "invalid requirement"]),
    (GOOD + "constraints: ['x==1e5']\n", ["set.yaml:5", "invalid requirement"]),
    ("description: demo\npython: [1e5]\nrequirements: [x]\n", ["set.yaml:2", "'1e5'"]),
    ("description: demo\npython: [1.0e+5]\nrequirements: [x]\n", ["set.yaml:2", "number"]),
    ("description: x\npython: ['3.12']\nrequirements: [x]\nprefer: [a]\n", ["set.yaml:4"]),
    ("\x00", ["set.yaml"]),
]


@pytest.mark.parametrize(("text", "fragments"), SET_CASES)
def test_found_set_yaml_cases_are_one_clear_error(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    text = text.replace("{req}", "x")
    directory = tmp_path / "sets" / "demo"
    with pytest.raises(SetError) as info:
        load(directory, text)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (b"pytest\nfoo\xff\xfebar\n", ["requirements.txt", "UTF-8", "line 2"]),
        (b"\xc3", ["requirements.txt", "UTF-8", "line 1"]),
        (b"foo===-1\n", ["requirements.txt:1", "'===-1'"]),
        (b"ok\nfoo; dependency_groups == 'dev'\n", ["requirements.txt:2", "dependency_groups"]),
        (b"foo @ http://h.example:99999/foo.whl\n", ["requirements.txt:1", "direct URL"]),
        (b"foo \\\n  --hash=sha256:00\n", ["requirements.txt:1", "pip options", "--hash"]),
        (b"-r other.txt\n", ["requirements.txt:1", "pip options"]),
    ],
)
def test_found_requirements_txt_cases_are_one_clear_error(
    tmp_path: Path, data: bytes, fragments: list[str]
) -> None:
    directory = tmp_path / "sets" / "demo"
    with pytest.raises(SetError) as info:
        load(directory, "description: demo\npython: ['3.12']\n", data)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    "line",
    [
        "foo; python_version >= '3.12' and sys_platform == 'linux'",
        "foo===1.0",
        "foo[cli]; extra == 'cli'",
        "foo==1.*",
    ],
)
def test_good_requirement_lines_still_parse(line: str) -> None:
    assert check_line(line) is not None
