"""Malformed HTTP from an index, each one clear error (or ignored where harmless), never a
traceback: header numbers with non-ASCII digits, redirects to unencodable URLs, host names no
look-up takes, and range reads whose Content-Range lies (real loopback HTTP servers)."""

from __future__ import annotations

import json
import random
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bot.core.errors import IndexError_, MetadataError
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.http import Http
from bot.lock.index.models import DistFile
from tests.plugins.pypi import IndexServer, _parse_range, make_wheel

#: a header's bytes as http.client decodes them (ISO-8859-1): 0xB2 is "²", a digit to
#: str.isdigit(), not to int()
SUPERSCRIPT_TWO = b"\xb2"


class RawServer:
    """A loopback server answering each path with the raw bytes of a whole response."""

    def __init__(self) -> None:
        self.answers: dict[str, list[bytes]] = {}
        self.default = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"  #: any other path
        self.hits: dict[str, int] = {}
        raw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                count = raw.hits.get(self.path, 0)
                raw.hits[self.path] = count + 1
                answers = raw.answers.get(self.path) or [raw.default]
                self.wfile.write(answers[min(count, len(answers) - 1)])
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def response(status: str, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}".encode(), *headers, b"Connection: close"]
    if not any(h.lower().startswith(b"content-length") for h in headers):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- header numbers --------------------------------------------------------------------------


def test_a_retry_after_of_non_ascii_digits_is_ignored(raw: RawServer) -> None:
    raw.answers["/busy"] = [
        response("503 Service Unavailable", b"Retry-After: " + SUPERSCRIPT_TWO),
        response("200 OK", body=b"ok"),
    ]
    http = Http(retries=1, backoff=0.001)
    try:
        assert http.get(raw.url + "/busy").content == b"ok"
    finally:
        http.close()
    assert raw.hits["/busy"] == 2  # retried, with the usual backoff


def test_a_content_length_of_non_ascii_digits_is_one_error(raw: RawServer) -> None:
    raw.answers["/page"] = [response("200 OK", b"Content-Length: 1" + SUPERSCRIPT_TWO)]
    http = Http(retries=3, backoff=0.001)
    try:
        with pytest.raises(IndexError_, match="malformed Content-Length '1²'") as info:
            http.get(raw.url + "/page", what="the page")
    finally:
        http.close()
    assert info.value.where == raw.url + "/page"
    assert raw.hits["/page"] == 1  # a protocol error: not retried


# --- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", [b"/caf\xe9", b"/a b", b"/tab\there"])
def test_a_redirect_to_an_unencodable_url_is_one_error(raw: RawServer, location: bytes) -> None:
    raw.answers["/moved"] = [response("302 Found", b"Location: " + location)]
    http = Http(retries=2, backoff=0.001)
    try:
        with pytest.raises(IndexError_, match="a redirect to an unusable URL") as info:
            http.get(raw.url + "/moved")
    finally:
        http.close()
    assert info.value.where == raw.url + "/moved"  # the URL that sent it
    assert "malformed Location" in str(info.value)
    assert raw.hits["/moved"] == 1
    assert len(raw.hits) == 1  # the target was never asked for


@pytest.mark.parametrize(
    "url", ["https://pypi..org/simple/", f"http://{'a' * 64}.example/simple/", "http://./x"]
)
def test_a_host_name_no_look_up_takes_is_one_error_not_retried(url: str) -> None:
    http = Http(retries=3, backoff=30)  # a retry would take minutes
    try:
        with pytest.raises(IndexError_, match="is not a usable host name") as info:
            http.get(url, what="the page")
    finally:
        http.close()
    assert info.value.where == url
    assert "attempts" not in info.value.message
    assert "check the host name" in str(info.value)


# --- range reads -------------------------------------------------------------------------------


def metadata_first_wheel(dest: Path) -> Path:
    """alpha 1.0 (Requires-Dist: beta) with METADATA as its first member and 160 KiB of
    incompressible data after it: the first (suffix) range read sees the central directory
    but not METADATA, which a second range read fetches."""
    built = make_wheel(dest / "built", "alpha", "1.0", requires_dist=["beta"])
    with zipfile.ZipFile(built) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    members.sort(key=lambda m: not m[0].filename.endswith(".dist-info/METADATA"))
    blob = random.Random(0).randbytes(160 * 1024)  # noqa: S311 (test data)
    members.insert(1, (zipfile.ZipInfo("alpha/blob.bin", (2020, 1, 1, 0, 0, 0)), blob))
    path = dest / built.name
    with zipfile.ZipFile(path, "w") as out:
        for info, data in members:
            out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


Answer = Callable[[str, bytes], tuple[int, bytes, dict[str, str]] | None]


def honest(header: str, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    span = _parse_range(header, len(data))
    assert isinstance(span, tuple), header
    first, last = span
    return 206, data[first : last + 1], {"Content-Range": f"bytes {first}-{last}/{len(data)}"}


def after_the_first(lie: Answer) -> Answer:
    """Honest for the first (suffix) read, then ``lie``."""

    def answer(header: str, data: bytes) -> tuple[int, bytes, dict[str, str]] | None:
        return honest(header, data) if "=-" in header else lie(header, data)

    return answer


def shifted(header: str, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    """Other bytes than asked for, stated truthfully: stored at the asked-for offset they
    would read as the member's local header."""
    _, got, _ = honest(header, data)
    first = int(header.partition("=")[2].partition("-")[0]) + 100
    return 206, got, {"Content-Range": f"bytes {first}-{first + len(got) - 1}/{len(data)}"}


def grown(header: str, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    status, got, headers = honest(header, data)
    return status, got, {"Content-Range": headers["Content-Range"].replace("/", "/1")}


def superscript(header: str, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    status, got, headers = honest(header, data)
    return status, got, {"Content-Range": headers["Content-Range"] + "\u00b2"}


def whole(header: str, data: bytes) -> tuple[int, bytes, dict[str, str]]:
    return 200, data, {}


@pytest.fixture
def wheel_index(pypi_index: IndexServer, tmp_path: Path) -> tuple[IndexServer, Path]:
    wheel = metadata_first_wheel(tmp_path)
    pypi_index.publish(wheel, with_metadata=False)
    return pypi_index, wheel


def read_metadata(index: IndexServer, wheel: Path, cache: Path) -> tuple[list[str], str]:
    """alpha's Requires-Dist as the client reads it, and how the cache says it was verified."""
    client = IndexClient([IndexRoute(index.url)], cache_dir=cache, retries=0)
    try:
        file: DistFile = next(
            f for f in client.files(canonicalize_name("alpha")) if f.filename == wheel.name
        )
        meta = client.metadata(file)
    finally:
        client.close()
    [record] = (cache / "index-v1" / "metadata").rglob("*.json")
    return [str(r) for r in meta.requires_dist], json.loads(record.read_text())["verified"]


def test_an_honest_server_is_read_in_two_ranges(
    wheel_index: tuple[IndexServer, Path], tmp_path: Path
) -> None:
    index, wheel = wheel_index
    index.range_answers[wheel.name] = honest
    assert read_metadata(index, wheel, tmp_path / "cache") == (["beta"], "unverified-range")
    ranges = [r.headers["range"] for r in index.requests if "range" in r.headers]
    assert len(ranges) == 2, ranges  # the test reads what it means to: a second range
    assert ranges[1].startswith("bytes=0-")


@pytest.mark.parametrize(
    ("lie", "error"),
    [
        (shifted, r"\(bytes=0-\d+\) was answered with Content-Range 'bytes 100-.*not 0"),
        (superscript, "not of the form 'bytes FIRST-LAST/SIZE'"),
    ],
    ids=["another-offset", "non-ascii-digits"],
)
def test_a_content_range_other_than_asked_is_one_error(
    wheel_index: tuple[IndexServer, Path], tmp_path: Path, lie: Answer, error: str
) -> None:
    index, wheel = wheel_index
    index.range_answers[wheel.name] = after_the_first(lie)
    with pytest.raises(IndexError_, match=error) as info:
        read_metadata(index, wheel, tmp_path / "cache")
    assert info.value.where is not None
    assert info.value.where.endswith(f"/files/{wheel.name}")
    assert not (tmp_path / "cache" / "index-v1" / "metadata").exists()


def test_a_file_whose_size_changes_between_ranges_is_refused(
    wheel_index: tuple[IndexServer, Path], tmp_path: Path
) -> None:
    index, wheel = wheel_index
    index.range_answers[wheel.name] = after_the_first(grown)
    with pytest.raises(MetadataError, match="the file's size changed between range requests"):
        read_metadata(index, wheel, tmp_path / "cache")


def test_a_later_range_answered_whole_is_read_as_the_whole_file(
    wheel_index: tuple[IndexServer, Path], tmp_path: Path
) -> None:
    """A 200 to the second range read is the whole file (its hash checked): read from
    offset 0, not stored where the range was asked for, and verified by that hash."""
    index, wheel = wheel_index
    index.range_answers[wheel.name] = after_the_first(whole)
    assert read_metadata(index, wheel, tmp_path / "cache") == (["beta"], "whole-file-hash")
    answered = [(r.headers.get("range", "")[:8], r.status) for r in index.requests]
    assert answered[-2:] == [("bytes=-6", 206), ("bytes=0-", 200)]


def test_a_lie_in_the_first_range_falls_back_to_the_whole_file(
    wheel_index: tuple[IndexServer, Path], tmp_path: Path
) -> None:
    index, wheel = wheel_index

    def tail_said_to_start_the_file(header: str, data: bytes) -> tuple[int, bytes, dict[str, str]]:
        _, got, _ = honest(header, data)
        return 206, got, {"Content-Range": f"bytes 0-{len(got) - 1}/{len(data)}"}

    index.range_answers[wheel.name] = tail_said_to_start_the_file
    assert read_metadata(index, wheel, tmp_path / "cache") == (["beta"], "whole-file-hash")
    answered = [(r.headers.get("range"), r.status) for r in index.requests if "/files/" in r.path]
    assert answered == [("bytes=-65536", 206), (None, 200)]


# --- end to end ------------------------------------------------------------------------------


def lock_cli(tmp_path: Path, index_url: str) -> tuple[int, Path]:
    from bot.cli import main
    from tests.test_lock_cli import make_repo

    repo = make_repo(tmp_path, ["demo-app"])
    argv = ["--repo", str(repo), "-q", "lock", "--index-url", index_url, "--retries", "2"]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache")])
    return code, repo


@pytest.mark.parametrize(
    "answer",
    [
        response("302 Found", b"Location: /simple/caf\xe9/"),
        response("200 OK", b"Content-Length: \xb2"),
    ],
    ids=["non-ascii-redirect", "non-ascii-content-length"],
)
def test_a_lock_against_a_malformed_index_is_one_error(
    raw: RawServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: bytes
) -> None:
    raw.default = answer
    code, repo = lock_cli(tmp_path, raw.url + "/simple/")
    err = capsys.readouterr().err
    assert code != 0
    assert f"{raw.url}/simple/" in err, err
    assert "the index (or a proxy)" in err
    assert "Traceback" not in err
    assert not list((repo / "sets" / "demo").glob("pylock*"))
    assert max(raw.hits.values()) == 1  # nothing retried


def test_a_lock_against_an_unusable_host_name_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = lock_cli(tmp_path, "https://pypi..org/simple/")
    err = capsys.readouterr().err
    assert code != 0
    assert "https://pypi..org/simple/" in err
    assert "'pypi..org' is not a usable host name" in err
    assert "Traceback" not in err
