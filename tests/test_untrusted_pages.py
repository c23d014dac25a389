"""Every field of a project page is untrusted: a malformed file entry is skipped with one
warning naming the package, the file and the field; a page that is unusable as a whole is one
:class:`PackageIndexError` naming its URL; nothing else escapes, and every file that comes out
is one the rest of the bot can use as it is.

The strategies are shared with ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from bot.core.errors import PackageIndexError
from bot.lock.index.models import DistFile, Releases
from bot.lock.index.simple import JSON_TYPE, parse_page
from bot.model.targets import targets_for
from tests.plugins.pypi import IndexServer, make_wheel
from tests.test_properties import SETTINGS, VALUES, VERSIONS

PAGE = "https://index.example/simple/demo/"
INDEX = "https://index.example/simple/"
SHA = "ab" * 32

# --- strategies -----------------------------------------------------------------------------

TAGS = st.sampled_from(
    [
        "py3",
        "",
        "cp312",
        "py3.",
        ".py3",
        "none",
        "abi3",
        "any",
        "manylinux_2_17_x86_64",
        "macosx_11_0_arm64",
        "win_amd64",
        "py2.py3",
        "cp39",
        "x" * 300,
    ]
)
PROJECTS = st.sampled_from(["demo", "Demo", "DEMO.", "other", "", "..", "de/mo", "demo\x00"])


@st.composite
def filenames(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 4))
    name, version = draw(PROJECTS), draw(VERSIONS)
    if kind == 0:
        return draw(st.text(max_size=20))
    if kind == 1:
        return f"{name}-{version}{draw(st.sampled_from(['.tar.gz', '.zip', '.egg', '.exe']))}"
    build = draw(st.sampled_from(["", "-1", "-x", "-1build", "--"]))
    tags = "-".join(draw(st.lists(TAGS, min_size=2, max_size=4)))
    return f"{name}-{version}{build}-{tags}.whl"


URLS = st.sampled_from(
    [
        "http://[::1/x.whl",
        "http://[::1]:8080/files/",
        "http://h.example:99999/files/",
        "http://h.example:abc/files/",
        "http://h.example:-1/files/",
        "https://:443/files/",
        "https://h.example/a b/",
        "https://h.example/a\r\nX-Injected: 1/",
        "file:///etc/",
        "javascript:alert(1)//",
        "//other.example/files/",
        "http://",
        "https://ü.example/files/",
        "https://user:pw@h.example/files/",
        "../../",
        "/files/",
        "",
    ]
)
SHA256S = st.sampled_from([SHA, SHA.upper(), "ab" * 31, "zz" * 32, "", "sha256=" + SHA, "x" * 5000])


@st.composite
def urls(draw: st.DrawFn, filename: str) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(VALUES)
    return draw(URLS) + filename + draw(st.sampled_from(["", "#sha256=" + SHA, "#md5=1", "?x=1"]))


JUNK = VALUES | st.sampled_from([3.5, [">=3.8"], {"a": 1}, True, -1, 10**30, "nan"])
REQUIRES_PYTHON = st.sampled_from([">=3.8", ">=3.8.*", ">=3", "", "~=3", "==3.*,<4", "x" * 3000])
TIMES = st.sampled_from(
    [
        "2025-01-01T00:00:00Z",
        "2025-01-01T00:00:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "",
        "2025-01-01",
    ]
)


@st.composite
def json_entries(draw: st.DrawFn) -> Any:
    """One file entry of a PEP 691 page: each field valid, malformed or absent."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JUNK)
    filename = draw(filenames())
    entry: dict[str, Any] = {}

    def maybe(key: str, good: st.SearchStrategy[Any]) -> None:
        choice = draw(st.integers(0, 5))
        if choice == 0:
            return
        entry[key] = draw(JUNK) if choice == 1 else draw(good)

    maybe("filename", st.just(filename))
    entry["url"] = draw(urls(filename))
    maybe("hashes", st.fixed_dictionaries({"sha256": SHA256S}))
    maybe("requires-python", REQUIRES_PYTHON)
    maybe("yanked", st.booleans() | st.text(max_size=8))
    maybe("upload-time", TIMES)
    maybe("size", st.integers(0, 10**6))
    maybe(
        "core-metadata",
        st.booleans() | st.fixed_dictionaries({"sha256": SHA256S}) | st.just("sha256=" + SHA),
    )
    return entry


@st.composite
def json_pages(draw: st.DrawFn) -> bytes:
    """A PEP 691 project page, sometimes malformed as a whole (not an object, no files list,
    invalid JSON, nested deeper than any parser should follow)."""
    kind = draw(st.integers(0, 11))
    if kind == 0:
        depth = draw(st.sampled_from([50, 200, 999, 1000, 100_000]))
        return ('{"files": [' + '{"a": [' * depth + "1" + "]}" * depth + "]}").encode()
    if kind == 1:
        return json.dumps(draw(JUNK)).encode()
    if kind == 2:
        return draw(st.binary(max_size=40))
    page = {"meta": {"api-version": "1.1"}, "files": draw(st.lists(json_entries(), max_size=6))}
    if kind == 3:
        page["files"] = draw(JUNK)
    body = json.dumps(page).encode()
    if kind == 4:
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"{", b'"', b"]", b"\\u12"])) + body[at:]
    return body


def _attr(name: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f' {name}="{html.escape(text)}"'


@st.composite
def html_pages(draw: st.DrawFn) -> bytes:
    """A PEP 503 project page with PEP 592/658/714 attributes, valid or not."""
    anchors = []
    for _ in range(draw(st.integers(0, 6))):
        filename = draw(filenames())
        href = draw(urls(filename))
        attrs = _attr("href", href if isinstance(href, str) else filename)
        for name, good in (
            ("data-requires-python", REQUIRES_PYTHON),
            ("data-yanked", st.text(max_size=8)),
            ("data-upload-time", TIMES),
            (
                "data-core-metadata",
                st.sampled_from(["true", "sha256=" + SHA, "sha256=zz", "md5=1"]),
            ),
        ):
            choice = draw(st.integers(0, 3))
            if choice == 1:
                attrs += _attr(name, draw(good))
            elif choice == 2:
                attrs += _attr(name, draw(JUNK))
        anchors.append(f"<a{attrs}>{html.escape(filename)}</a><br/>")
    base = draw(
        st.sampled_from(["", "https://files.example/b/", "http://[::1/", "http://h:99999/"])
    )
    head = f'<base href="{base}">' if base else ""
    text = f"<html><head>{head}</head><body>{''.join(anchors)}</body></html>"
    if draw(st.integers(0, 4)) == 0:
        text += draw(st.sampled_from(["<a href='x", "&#xffffffff;", '<a href="&#0;">x</a>']))
    return text.encode("utf-8", errors="surrogatepass")


# --- the property ---------------------------------------------------------------------------

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def usable(file: DistFile) -> None:
    """A file the lock, the download and the Nix build can take as it is."""
    assert file.name == "demo"
    assert _HEX64.match(file.sha256)
    parts = urlsplit(file.url)
    assert parts.scheme in ("http", "https")
    assert parts.hostname
    assert parts.port is None or 0 < parts.port < 65536
    assert file.url.isascii()
    assert file.url.isprintable()
    assert " " not in file.url
    assert "/" not in file.filename
    assert "\\" not in file.filename
    assert file.filename.isprintable()
    assert file.requires_python is None or isinstance(file.requires_python, SpecifierSet)
    assert file.yanked is None or isinstance(file.yanked, str)
    assert file.upload_time is None or (
        isinstance(file.upload_time, datetime) and file.upload_time.utcoffset() is not None
    )
    assert file.size is None or (type(file.size) is int and file.size >= 0)
    assert (
        file.core_metadata is None or file.core_metadata == "" or _HEX64.match(file.core_metadata)
    )
    assert file.kind == "sdist" or file.tags
    str(file.version)
    for target in targets_for("3.12"):
        target.allows_python(file.requires_python)
        any(tag in target.tag_priority for tag in file.tags)


def names_the_page(exc: PackageIndexError) -> None:
    assert PAGE in str(exc), f"the error does not name the page: {exc}"


def check_page(body: bytes, content_type: str) -> list[DistFile] | None:
    """Parse a page and build every file of every version; the property, as an outcome."""
    try:
        releases: Releases = parse_page(body, content_type, PAGE, INDEX, "demo")
    except PackageIndexError as exc:
        names_the_page(exc)
        return None
    files = releases.all_files()
    for file in files:
        usable(file)
    return files


@SETTINGS
@given(body=json_pages())
def test_any_json_page_parses_or_is_one_index_error(body: bytes) -> None:
    check_page(body, JSON_TYPE)


@SETTINGS
@given(body=html_pages())
def test_any_html_page_parses_or_is_one_index_error(body: bytes) -> None:
    check_page(body, "text/html")


# --- the fuzzer's findings, as data ---------------------------------------------------------


def _entry(filename: str = "demo-1.0-py3-none-any.whl", **extra: Any) -> dict[str, Any]:
    return {"filename": filename, "url": filename, "hashes": {"sha256": SHA}, **extra}


def _page(*entries: Any) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "files": [*entries, _entry()]}).encode()


#: (malformed entry, the field its warning names)
ENTRY_CASES = [
    (_entry(**{"requires-python": 3.5}), "requires-python"),
    (_entry(**{"requires-python": [">=3.8"]}), "requires-python"),
    (_entry(**{"requires-python": ">=3.8.*"}), "requires-python"),
    (_entry("demo-1.0.tar.gz", url="http://[::1/demo-1.0.tar.gz"), "url"),
    (_entry("demo-1.0.tar.gz", url="http://h.example:99999/demo-1.0.tar.gz"), "url"),
    (_entry("demo-1.0.tar.gz", url="http://h.example:x/demo-1.0.tar.gz"), "url"),
    (_entry("demo-1.0.tar.gz", url="https://h.example/a\r\nX: 1/demo-1.0.tar.gz"), "url"),
    (_entry("demo-1.0.tar.gz", url="file:///etc/demo-1.0.tar.gz"), "url"),
    (_entry("demo-" + "1" * 5000 + "-py3-none-any.whl"), "version"),
    (_entry("demo-1.0-py3--any.whl"), "tags"),
    (_entry("demo-1.0-py3-none-.whl"), "tags"),
    (_entry("demo-1.0.tar.gz", hashes={"sha256": "zz" * 32}), "hashes"),
    (_entry("demo-1.0.tar.gz", hashes=["sha256"]), "hashes"),
    (_entry("demo-1.0.tar.gz", yanked={"reason": "x"}), "yanked"),
    (_entry("demo-1.0.tar.gz", yanked=1), "yanked"),
    (_entry("demo-1.0.tar.gz", **{"upload-time": "0001-01-01T00:00:00+01:00"}), "upload-time"),
    (_entry("demo-1.0.tar.gz", **{"upload-time": "yesterday"}), "upload-time"),
    (_entry("demo-1.0.tar.gz", **{"upload-time": 1700000000}), "upload-time"),
    (_entry("demo-1.0.tar.gz", size=-1), "size"),
    (_entry("demo-1.0.tar.gz", size="12"), "size"),
    (_entry("demo-1.0.tar.gz", size=True), "size"),
    (_entry("../demo-1.0.tar.gz", url="x/demo-1.0.tar.gz"), "filename"),
    ({**_entry("demo-1.0.tar.gz"), "filename": 7}, "filename"),
]


@pytest.mark.parametrize(("entry", "field"), ENTRY_CASES)
def test_a_malformed_entry_is_skipped_with_one_warning(
    entry: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot"):
        files = check_page(_page(entry), JSON_TYPE)
    assert files is not None
    assert [f.filename for f in files] == ["demo-1.0-py3-none-any.whl"]  # the good one stays
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("demo: ")
    assert f"invalid {field!r}" in warnings[0]


def test_a_file_without_a_hash_is_refused_quietly_whatever_else_it_says(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = {"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "requires-python": 3}
    with caplog.at_level(logging.WARNING, logger="bot"):
        files = check_page(_page(entry), JSON_TYPE)
    assert [f.filename for f in files or []] == ["demo-1.0-py3-none-any.whl"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_malformed_metadata_hash_is_not_trusted(caplog: pytest.LogCaptureFixture) -> None:
    body = _page(_entry("demo-1.0.tar.gz", **{"core-metadata": {"sha256": "nothex"}}))
    with caplog.at_level(logging.WARNING, logger="bot"):
        files = check_page(body, JSON_TYPE)
    assert files is not None
    sdist = next(f for f in files if f.kind == "sdist")
    assert sdist.core_metadata == ""  # advertised, but its hash cannot be checked
    assert any("'core-metadata'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"files": [' + b'{"a": [' * 100_000 + b"1" + b"]}" * 100_000 + b"]}", "nested"),
        (b'{"files": [' + b"[" * 5000 + b"]" * 5000 + b"]}", "nested"),
        (b"[1, 2]", "not valid PEP 691 JSON"),
        (b'{"files": {"a": 1}}', "not valid PEP 691 JSON"),
        (b"\xff\xfe{}", "not valid PEP 691 JSON"),
    ],
)
def test_an_unusable_json_page_is_one_index_error(body: bytes, fragment: str) -> None:
    with pytest.raises(PackageIndexError) as info:
        parse_page(body, JSON_TYPE, PAGE, INDEX, "demo")
    assert fragment in str(info.value)
    assert PAGE in str(info.value)


def test_nesting_the_parser_follows_is_never_walked(caplog: pytest.LogCaptureFixture) -> None:
    """Below the parser's own bound (Python's recursion limit) nested junk is harmless: only
    the known fields of an entry are read, each checked for its type."""
    junk: Any = 1
    for _ in range(200):
        junk = [junk]
    body = _page(junk, _entry("demo-1.0.tar.gz", yanked=junk), {"url": junk})
    with caplog.at_level(logging.WARNING, logger="bot"):
        files = check_page(body, JSON_TYPE)
    assert [f.filename for f in files or []] == ["demo-1.0-py3-none-any.whl"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "skipping 2 entries" in warnings[0]
    assert "invalid 'yanked'" in warnings[1]


def test_an_html_page_with_an_unusable_base_is_one_index_error() -> None:
    body = b'<html><head><base href="http://[::1/"></head><a href="demo-1.0.tar.gz">x</a></html>'
    with pytest.raises(PackageIndexError, match="<base href>") as info:
        parse_page(body, "text/html", PAGE, INDEX, "demo")
    assert PAGE in str(info.value)


def test_html_entries_are_checked_like_json_ones(caplog: pytest.LogCaptureFixture) -> None:
    good = f'<a href="demo-2.0.tar.gz#sha256={SHA}">x</a>'
    bad = [
        f'<a href="http://h.example:99999/demo-1.0.tar.gz#sha256={SHA}">x</a>',
        f'<a href="demo-1.1.tar.gz#sha256={SHA}" data-requires-python="&gt;=3.8.*">x</a>',
        f'<a href="demo-1.2.tar.gz#sha256={SHA}" data-upload-time="soon">x</a>',
        f'<a href="demo-1.3-py3--any.whl#sha256={SHA}">x</a>',
        '<a href="demo-1.4.tar.gz#sha256=zz">x</a>',
    ]
    body = f"<html><body>{good}{''.join(bad)}</body></html>".encode()
    with caplog.at_level(logging.WARNING, logger="bot"):
        files = check_page(body, "text/html")
    assert [f.filename for f in files or []] == ["demo-2.0.tar.gz"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(bad), warnings
    fields = ["url", "requires-python", "upload-time", "tags", "hashes"]
    for number, field in enumerate(fields):
        (warning,) = [w for w in warnings if f"skipping demo-1.{number}" in w]
        assert f"invalid {field!r}" in warning


def test_html_attributes_are_read_as_html_reads_them() -> None:
    """A quoted value may hold ``>`` (PEP 503 asks for ``&gt;``, not every index escapes);
    the first of a repeated attribute counts; ``data-yanked`` yanks only as an attribute."""
    anchors = [
        # unescaped ">" inside the quoted value: the tag does not end there
        f'<a href="demo-1.0.tar.gz#sha256={SHA}" data-requires-python=">=3.13">x</a>',
        # "data-yanked" inside another attribute's value is not the attribute
        f'<a title="data-yanked" href="demo-1.1.tar.gz#sha256={SHA}">x</a>',
        f'<a href="demo-1.2.tar.gz#sha256={SHA}" data-yanked>x</a>',
        # the first href wins; an unquoted value; no closing </a>
        f"<a href=demo-1.3.tar.gz#sha256={SHA} href=demo-9.tar.gz#sha256={SHA}>",
        # a tag that never ends is nothing (and swallows nothing after it)
        f'<a href="demo-1.4.tar.gz#sha256={SHA}',
    ]
    files = check_page(f"<html><body>{''.join(anchors)}</body></html>".encode(), "text/html")
    by_name = {f.filename: f for f in files or []}
    assert sorted(by_name) == [f"demo-1.{n}.tar.gz" for n in range(4)]
    assert str(by_name["demo-1.0.tar.gz"].requires_python) == ">=3.13"
    assert by_name["demo-1.1.tar.gz"].yanked is None
    assert by_name["demo-1.2.tar.gz"].yanked == ""
    assert by_name["demo-1.3.tar.gz"].url.startswith(PAGE)


#: pages built to make a backtracking or rescanning tag reader quadratic: each took seconds
#: per 100 KB with the reader before (``<base `` x 20000: 9.4 s), so hours at this size
_HOSTILE_HTML = {
    "base": "b'<base ' * 400_000",
    "anchor": "b'<a ' * 400_000",
    "unclosed quote": "b'<a \"' + b'<a ' * 400_000",
    "attribute name": "b'<a ' + b'x' * 2_000_000 + b'>'",
    "attribute": "b'<a href=\"demo-1.0.tar.gz\" ' + b'data-x ' * 300_000 + b'>'",
}


@pytest.mark.parametrize("shape", sorted(_HOSTILE_HTML))
def test_hostile_html_is_read_in_one_pass(shape: str) -> None:
    """An index can send up to the page limit; reading it must stay linear in its size.  Run
    in a child with a deadline 100 times what a linear reader needs, so a quadratic one fails
    the test instead of hanging the suite."""
    code = (
        "from bot.lock.index.simple import parse_page\n"
        f"body = {_HOSTILE_HTML[shape]}\n"
        f"r = parse_page(body, 'text/html', {PAGE!r}, {INDEX!r}, 'demo')\n"
        "print(len(body), [f.filename for f in r.all_files()])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    size, files = done.stdout.split(" ", 1)
    assert int(size) > 1_000_000
    assert files.strip() == "[]"  # nothing with a sha256 in any of them


def test_a_json_yanked_field_yanks_when_truthy() -> None:
    """PEP 691: ``yanked`` is a boolean or a reason; a truthy value means yanked, so an empty
    reason does not yank (an HTML page's bare ``data-yanked`` does: PEP 592)."""
    body = _page(
        _entry("demo-1.0.tar.gz", yanked=""),
        _entry("demo-1.1.tar.gz", yanked=True),
        _entry("demo-1.2.tar.gz", yanked="broken"),
        _entry("demo-1.3.tar.gz", yanked=False),
    )
    files = {f.filename: f.yanked for f in check_page(body, JSON_TYPE) or []}
    assert files["demo-1.0.tar.gz"] is None
    assert files["demo-1.1.tar.gz"] == ""
    assert files["demo-1.2.tar.gz"] == "broken"
    assert files["demo-1.3.tar.gz"] is None


def test_well_formed_pages_are_unchanged() -> None:
    body = _page(
        _entry("demo-2.0.tar.gz", **{"requires-python": ">=3.9", "upload-time": "2025-01-01"}),
        _entry("demo-1.0.zip", yanked="bad", size=10, **{"core-metadata": {"sha256": SHA}}),
    )
    files = check_page(body, JSON_TYPE)
    assert files is not None
    by_name = {f.filename: f for f in files}
    assert str(by_name["demo-2.0.tar.gz"].requires_python) == ">=3.9"
    assert by_name["demo-1.0.zip"].yanked == "bad"
    assert by_name["demo-1.0.zip"].size == 10
    assert by_name["demo-1.0.zip"].core_metadata == SHA


# --- through the CLI ------------------------------------------------------------------------


class TamperedIndex(IndexServer):
    """The loopback index, with chosen fields of chosen files' JSON entries replaced."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.tamper: dict[str, dict[str, Any]] = {}
        self.raw_pages: dict[str, bytes] = {}

    def project_page(self, project: str, content_type: str) -> bytes | None:
        if project in self.raw_pages:
            return self.raw_pages[project]
        page = super().project_page(project, content_type)
        if page is None or content_type != JSON_TYPE:
            return page
        data = json.loads(page)
        for entry in data["files"]:
            entry.update(self.tamper.get(entry["filename"], {}))
        return json.dumps(data).encode()


@pytest.fixture
def tampered(
    tmp_path: Path, frontend_wheels: dict[str, Path], backend_wheel: Path
) -> Iterator[TamperedIndex]:
    with TamperedIndex(tmp_path / "index") as index:
        for wheel in [*frontend_wheels.values(), backend_wheel]:
            index.publish(wheel)
        yield index


def _repo(tmp_path: Path, *requirements: str) -> Path:
    repo = tmp_path / "repo"
    (repo / "sets" / "demo").mkdir(parents=True)
    (repo / "nix").mkdir()
    lines = "".join(f"  - {r}\n" for r in requirements)
    (repo / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements:\n" + lines
    )
    return repo


def _lock(repo: Path, index: IndexServer) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process: its own logging setup and error boundary."""
    argv = ["--repo", str(repo), "-q", "lock", "--index-url", index.url]
    argv += ["--cache-dir", str(repo / ".cache"), "--retries", "0"]
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv], capture_output=True, text=True, check=False
    )


def test_lock_skips_a_malformed_entry_with_a_warning(
    tampered: TamperedIndex, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    tampered.publish(make_wheel(dist, "demo-lib", "1.0"))
    tampered.publish(make_wheel(dist, "demo-lib", "2.0"))
    tampered.tamper["demo_lib-2.0-py3-none-any.whl"] = {"requires-python": 3.5}
    repo = _repo(tmp_path, "demo-lib")
    done = _lock(repo, tampered)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "demo-lib: skipping demo_lib-2.0-py3-none-any.whl" in done.stderr
    assert "invalid 'requires-python'" in done.stderr
    lock = (repo / "sets" / "demo" / "pylock.py312.toml").read_text()
    assert 'version = "1.0"' in lock


def test_lock_refuses_an_unusable_page_with_one_error(
    tampered: TamperedIndex, tmp_path: Path
) -> None:
    tampered.publish(make_wheel(tmp_path / "dist", "demo-lib", "1.0"))
    tampered.raw_pages["demo-lib"] = b'{"files": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    repo = _repo(tmp_path, "demo-lib")
    done = _lock(repo, tampered)
    assert done.returncode == 2, done.stderr  # a set failed
    assert "Traceback" not in done.stderr
    assert "demo (Python 3.12): failed" in done.stderr
    assert "/simple/demo-lib/" in done.stderr
    assert "nested" in done.stderr
    assert not (repo / "sets" / "demo" / "pylock.py312.toml").exists()


def test_lock_reports_a_dependency_marker_it_cannot_evaluate(
    tampered: TamperedIndex, tmp_path: Path
) -> None:
    """Core metadata is index input too: a Requires-Dist marker no target can evaluate is one
    error, and a '===' pin naming no PEP 440 version just matches nothing."""
    dist = tmp_path / "dist"
    tampered.publish(
        make_wheel(dist, "demo-app", "1.0", requires_dist=["demo-lib; 'a' in dependency_groups"])
    )
    tampered.publish(make_wheel(dist, "demo-pin", "1.0", requires_dist=["demo-lib===1.0-legacy"]))
    tampered.publish(make_wheel(dist, "demo-lib", "1.0"))
    done = _lock(_repo(tmp_path, "demo-app"), tampered)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert """demo-app 1.0 requires 'demo-lib; "a" in dependency_groups'""" in done.stderr
    done = _lock(_repo(tmp_path / "pin", "demo-pin"), tampered)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, done.stderr
    assert "demo-lib" in done.stderr
