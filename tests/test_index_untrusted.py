"""The index as untrusted input: forged range reads, poisoned caches, unbounded answers,
credentials, and indexes that state no upload times (real loopback HTTP servers)."""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from packaging.utils import canonicalize_name

from bot.core.errors import IndexError_, MetadataError, register_secrets, without_credentials
from bot.lock.command import LockOptions, lock_sets
from bot.lock.index import IndexClient, IndexRoute
from bot.lock.index.cache import Cache
from bot.lock.index.limits import LimitExceeded, Limits
from bot.lock.index.models import DistFile
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel
from tests.plugins.static_http import serve_directory

MakeClient = Callable[..., IndexClient]
SMALL = Limits(page=64 * 1024, download=4 * 1024 * 1024, metadata=64 * 1024, deadline=2.0)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    clients: list[IndexClient] = []

    def make(url: str, **kwargs: object) -> IndexClient:
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        kwargs.setdefault("backoff", 0.001)
        kwargs.setdefault("retries", 2)
        client = IndexClient([IndexRoute(url)], **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def cache_files(root: Path, kind: str = "") -> list[Path]:
    base = root / "index-v1" / kind if kind else root
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


def only(client: IndexClient, name: str, filename: str) -> DistFile:
    return next(f for f in client.files(canonicalize_name(name)) if f.filename == filename)


# --- forged range reads ----------------------------------------------------------------------


@pytest.fixture
def forged(pypi_index: IndexServer, tmp_path: Path) -> tuple[IndexServer, Path]:
    """alpha 1.0 (Requires-Dist: beta), whose range reads see a wheel that also requires
    delta; whole downloads and the page are honest; no PEP 658 metadata."""
    honest = make_wheel(tmp_path / "honest", "alpha", "1.0", requires_dist=["beta"])
    lie = make_wheel(tmp_path / "lie", "alpha", "1.0", requires_dist=["beta", "delta"])
    assert honest.name == lie.name
    assert honest.read_bytes() != lie.read_bytes()
    pypi_index.publish(honest, with_metadata=False)
    pypi_index.range_forgeries[honest.name] = lie.read_bytes()
    return pypi_index, honest


def test_range_read_metadata_is_marked_unverified(
    forged: tuple[IndexServer, Path], make_client: MakeClient, tmp_path: Path
) -> None:
    index, wheel = forged
    client = make_client(index.url)
    meta = client.metadata(only(client, "alpha", wheel.name))
    assert any(r.headers.get("range") for r in index.requests)  # it did read ranges
    # the resolver sees the forged requirement, but never as verified: the lock records it
    assert [str(r) for r in meta.requires_dist] == ["beta", "delta"]
    assert meta.unverified is not None
    assert meta.unverified.file == wheel.name
    assert meta.unverified.requires_dist == ("beta", "delta")
    [record] = [p for p in cache_files(tmp_path / "cache", "metadata") if p.suffix == ".json"]
    assert json.loads(record.read_text())["verified"] == "unverified-range"


def test_range_read_checked_against_the_pep658_hash(
    forged: tuple[IndexServer, Path], make_client: MakeClient, tmp_path: Path
) -> None:
    """The index states the METADATA's hash but its .metadata file is missing: the range read
    must match that hash, and the forged one does not."""
    index, wheel = forged
    index.publish(wheel, with_metadata=True)
    (index.files_dir / f"{wheel.name}.metadata").unlink()
    client = make_client(index.url)
    with pytest.raises(MetadataError, match="does not match the sha256 the index states"):
        client.metadata(only(client, "alpha", wheel.name))
    assert cache_files(tmp_path / "cache", "metadata") == []


def test_poisoned_cache_is_rechecked_against_a_pep658_hash(
    forged: tuple[IndexServer, Path], make_client: MakeClient, tmp_path: Path
) -> None:
    index, wheel = forged
    first = make_client(index.url)
    poisoned = first.metadata(only(first, "alpha", wheel.name))
    assert [str(r) for r in poisoned.requires_dist] == ["beta", "delta"]
    # later the index states PEP 658 hashes (honestly): the cached copy fails the check and
    # is fetched again; the injected dependency is gone
    index.publish(wheel, with_metadata=True)
    second = make_client(index.url)
    meta = second.metadata(only(second, "alpha", wheel.name))
    assert [str(r) for r in meta.requires_dist] == ["beta"]
    assert meta.unverified is None
    assert index.paths(f"/files/{wheel.name}.metadata")
    records = [p for p in cache_files(tmp_path / "cache", "metadata") if p.suffix == ".json"]
    assert [json.loads(p.read_text())["verified"] for p in records] == ["pep658-hash"]


def test_an_older_cache_entry_without_its_record_is_not_trusted(
    forged: tuple[IndexServer, Path], make_client: MakeClient, tmp_path: Path
) -> None:
    index, wheel = forged
    file = only(make_client(index.url), "alpha", wheel.name)
    # an entry as the cache of an earlier version wrote it: bytes, no verification record
    cache = Cache(tmp_path / "cache")
    forged_meta = b"Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\nRequires-Dist: evil\n"
    cache.root.joinpath("metadata", file.sha256[:2]).mkdir(parents=True)
    cache.root.joinpath("metadata", file.sha256[:2], file.sha256).write_bytes(forged_meta)
    offline = make_client(index.url, offline=True)
    with pytest.raises(MetadataError, match="in the cache unverified \\(an older cache's entry"):
        offline.metadata(only(offline, "alpha", wheel.name))
    index.range_forgeries.clear()
    client = make_client(index.url)
    meta = client.metadata(only(client, "alpha", wheel.name))
    assert [str(r) for r in meta.requires_dist] == ["beta"]


def test_whole_downloads_verify_the_metadata(
    forged: tuple[IndexServer, Path], make_client: MakeClient
) -> None:
    index, wheel = forged
    index.ranges = False  # the server ignores Range: the whole (honest, hashed) file
    client = make_client(index.url)
    meta = client.metadata(only(client, "alpha", wheel.name))
    assert [str(r) for r in meta.requires_dist] == ["beta"]
    assert meta.unverified is None


def test_the_lock_records_unverified_metadata(
    forged: tuple[IndexServer, Path], frontend_wheels: dict[str, Path], tmp_path: Path
) -> None:
    index, _ = forged
    for wheel in frontend_wheels.values():
        index.publish(wheel)
    for name in ("beta", "delta"):
        index.publish(make_wheel(tmp_path / "d", name, "1.0"))
    repo = small_repo(tmp_path, ["alpha"])
    outcome = lock_with(repo, index.url, tmp_path / "cache")
    lock = tomllib.loads(outcome.read_text())
    alpha = next(p for p in lock["packages"] if p["name"] == "alpha")
    recorded = alpha["tool"]["nixpkgs-python"]["unverified-metadata"]
    assert recorded["file"] == "alpha-1.0-py3-none-any.whl"
    assert recorded["requires-dist"] == ["beta", "delta"]
    forged_meta = zipfile.ZipFile(io.BytesIO(index.range_forgeries[recorded["file"]]))
    data = forged_meta.read("alpha-1.0.dist-info/METADATA")
    assert recorded["sha256"] == hashlib.sha256(data).hexdigest()
    beta = next(p for p in lock["packages"] if p["name"] == "beta")
    assert "unverified-metadata" not in beta["tool"]["nixpkgs-python"]  # PEP 658: verified


def small_repo(tmp_path: Path, requirements: list[str]) -> Path:
    repo = tmp_path / "repo"
    (repo / "sets" / "demo").mkdir(parents=True)
    lines = "".join(f"  - {r!r}\n" for r in requirements)
    (repo / "sets" / "demo" / "set.yaml").write_text(
        f"description: demo\npython: ['3.12']\nrequirements:\n{lines}"
    )
    return repo


def lock_with(repo: Path, url: str, cache: Path) -> Path:
    """Lock the repo's demo set against ``url``; the lock file (the run must succeed)."""
    [outcome] = lock_sets(
        LockOptions(
            repo=repo,
            index_url=url,
            cache_dir=cache,
            exclude_newer=datetime(2026, 1, 1, tzinfo=UTC),
            retries=1,
        )
    )
    assert outcome.status in ("created", "unchanged"), outcome.error
    return outcome.path


# --- bounds ----------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client giving up on a hostile answer resets the connection: expected


class Hostile:
    """A loopback server answering each path as a handler function says."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.hits: dict[str, int] = {}
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                hostile.hits[path] = hostile.hits.get(path, 0) + 1
                route = hostile.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.close()


def send(
    handler: BaseHTTPRequestHandler, body: bytes, ctype: str = "text/html", **headers: str
) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def test_a_page_over_the_limit(hostile: Hostile, make_client: MakeClient, tmp_path: Path) -> None:
    page = b"<html><body>" + b"<a href='x'>x</a>\n" * 100_000 + b"</body></html>"
    hostile.routes["/simple/big/"] = partial(send, body=page)
    client = make_client(hostile.url, limits=SMALL)
    with pytest.raises(LimitExceeded, match="larger than the limit of 65536 bytes") as err:
        client.files(canonicalize_name("big"))
    assert "/simple/big/" in str(err.value)
    assert "NIXPKGS_PYTHON_MAX_PAGE_BYTES" in str(err.value)
    assert hostile.hits["/simple/big/"] == 1  # not retried
    assert cache_files(tmp_path / "cache") == []


def test_a_page_over_the_limit_without_content_length(
    hostile: Hostile, make_client: MakeClient, tmp_path: Path
) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for _ in range(64):
            handler.wfile.write(b"<a href='x'>x</a>\n" * 1000)

    hostile.routes["/simple/big/"] = chunked
    client = make_client(hostile.url, limits=SMALL)
    with pytest.raises(LimitExceeded, match="larger than the limit"):
        client.files(canonicalize_name("big"))
    assert cache_files(tmp_path / "cache") == []


def test_a_gzip_bomb_page(hostile: Hostile, make_client: MakeClient, tmp_path: Path) -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < SMALL.page  # small as sent, 64 MiB decoded
    hostile.routes["/simple/bomb/"] = partial(send, body=bomb, Content_Encoding="gzip")
    client = make_client(hostile.url, limits=SMALL)
    with pytest.raises(LimitExceeded, match=r"\(decompressed\) is larger than the limit"):
        client.files(canonicalize_name("bomb"))
    assert cache_files(tmp_path / "cache") == []


def test_a_drip_fed_page_meets_the_deadline(
    hostile: Hostile, make_client: MakeClient, tmp_path: Path
) -> None:
    """One byte every 0.2 s never trips a per-read timeout; the whole-response deadline
    (2 s here) ends it.  Were it not enforced, the page would arrive whole after 40 s."""
    page = b"<html><body>" + b" " * 188 + b"</body></html>"

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        for byte in page:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.2)

    hostile.routes["/simple/slow/"] = drip
    client = make_client(hostile.url, limits=SMALL, timeout=30)
    with pytest.raises(LimitExceeded, match="no complete answer within 2 s") as err:
        client.files(canonicalize_name("slow"))
    assert "NIXPKGS_PYTHON_RESPONSE_DEADLINE" in str(err.value)
    assert hostile.hits["/simple/slow/"] == 1  # not retried
    assert cache_files(tmp_path / "cache") == []


def test_drip_fed_headers_meet_the_deadline(hostile: Hostile, make_client: MakeClient) -> None:
    def drip(handler: BaseHTTPRequestHandler) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.2)

    hostile.routes["/simple/slow/"] = drip
    client = make_client(hostile.url, limits=SMALL)
    with pytest.raises(LimitExceeded, match="no complete answer within 2 s"):
        client.files(canonicalize_name("slow"))


def bomb_wheel(dest: Path, size: int) -> Path:
    """A wheel whose METADATA inflates to ``size`` bytes (a few KB as stored)."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "bomb-1.0-py3-none-any.whl"
    metadata = b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\n\n" + b"\0" * size
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("bomb/__init__.py", "")
        zf.writestr("bomb-1.0.dist-info/METADATA", metadata)
        zf.writestr("bomb-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        zf.writestr("bomb-1.0.dist-info/RECORD", "")
    return path


@pytest.mark.parametrize("ranges", [True, False])
def test_a_metadata_bomb_in_a_wheel(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path, ranges: bool
) -> None:
    wheel = bomb_wheel(tmp_path / "d", 256 * 1024 * 1024)
    assert wheel.stat().st_size < 1024 * 1024
    pypi_index.publish(wheel, with_metadata=False)
    pypi_index.ranges = ranges
    client = make_client(pypi_index.url, limits=SMALL)
    with pytest.raises(MetadataError, match=r"METADATA in bomb-1\.0-py3-none-any\.whl is larger"):
        client.metadata(only(client, "bomb", wheel.name))
    assert cache_files(tmp_path / "cache", "metadata") == []


def test_a_pkg_info_bomb_in_an_sdist(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "bomb-1.0.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=9) as tf:
        data = b"Metadata-Version: 2.2\nName: bomb\nVersion: 1.0\n\n" + b"\0" * (64 << 20)
        info = tarfile.TarInfo("bomb-1.0/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    pypi_index.publish(path)
    client = make_client(pypi_index.url, limits=SMALL)
    with pytest.raises(MetadataError, match=r"PKG-INFO in bomb-1\.0\.tar\.gz is larger"):
        client.metadata(only(client, "bomb", path.name))
    assert cache_files(tmp_path / "cache", "metadata") == []


def test_a_metadata_file_over_the_limit(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path / "d", "fat", "1.0")
    pypi_index.publish(wheel)
    big = "Metadata-Version: 2.1\nName: fat\nVersion: 1.0\n\n" + "x" * (128 * 1024)
    (pypi_index.files_dir / f"{wheel.name}.metadata").write_text(big)
    client = make_client(pypi_index.url, limits=SMALL)
    with pytest.raises(LimitExceeded, match="larger than the limit"):
        client.metadata(only(client, "fat", wheel.name))


def test_limits_from_the_environment() -> None:
    env = {
        "NIXPKGS_PYTHON_MAX_PAGE_BYTES": "1000",
        "NIXPKGS_PYTHON_MAX_DOWNLOAD_BYTES": "2000",
        "NIXPKGS_PYTHON_MAX_METADATA_BYTES": "300",
        "NIXPKGS_PYTHON_RESPONSE_DEADLINE": "4.5",
        "NIXPKGS_PYTHON_MAX_UNPACKED_BYTES": "5000",
        "NIXPKGS_PYTHON_MAX_ARCHIVE_MEMBERS": "7",
    }
    assert Limits.from_env(env) == Limits(
        page=1000, download=2000, metadata=300, deadline=4.5, unpacked=5000, members=7
    )
    assert Limits.from_env({}) == Limits()
    with pytest.raises(IndexError_, match="NIXPKGS_PYTHON_MAX_PAGE_BYTES must be a positive"):
        Limits.from_env({"NIXPKGS_PYTHON_MAX_PAGE_BYTES": "lots"})
    with pytest.raises(IndexError_, match="must be a positive"):
        Limits.from_env({"NIXPKGS_PYTHON_RESPONSE_DEADLINE": "-1"})
    with pytest.raises(IndexError_, match="ARCHIVE_MEMBERS must be a positive integer") as err:
        Limits.from_env({"NIXPKGS_PYTHON_MAX_ARCHIVE_MEMBERS": "0"})
    assert err.value.hint == "give a count"


# --- credentials -----------------------------------------------------------------------------

USER = "tokenuser42"
PASSWORD = "p@ss:w/rd%s3cr3t"


def secret_forms() -> list[bytes]:
    pair = f"{USER}:{PASSWORD}".encode()
    return [
        PASSWORD.encode(),
        quote(PASSWORD, safe="").encode(),
        base64.b64encode(pair),
        USER.encode(),
    ]


def test_credentials_never_reach_the_cache_or_the_lock(
    pypi_index: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> None:
    for wheel in frontend_wheels.values():
        pypi_index.publish(wheel)
    pypi_index.publish(make_wheel(tmp_path / "d", "alpha", "1.0", requires_dist=["beta"]))
    pypi_index.publish(make_wheel(tmp_path / "d", "beta", "1.0"), with_metadata=False)
    pypi_index.publish(make_sdist(tmp_path / "d", "gamma", "1.0"))
    pypi_index.publish(make_wheel(tmp_path / "d", "fixture-backend", "1.0"))
    netloc = f"{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{pypi_index.port}"
    url = f"http://{netloc}/simple/"
    repo = small_repo(tmp_path, ["alpha", "gamma"])
    cache = tmp_path / "cache"
    lock = lock_with(repo, url, cache)
    # the credentials were used (as Basic auth) ...
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert {r.headers.get("authorization") for r in pypi_index.requests} == {expected}
    # ... and no byte of them was written anywhere
    written = [*cache_files(cache), lock]
    assert any(p.name.endswith(".json") and "pages" in p.parts for p in written)
    for path in written:
        data = path.read_bytes()
        for form in secret_forms():
            assert form not in data, (path, form)
    # a second run from the cache works the same (the credentials come from the URL again)
    again = lock_with(repo, url, cache)
    assert again.read_bytes() == lock.read_bytes()


def test_cached_pages_keep_links_authenticated(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """The cache stores a page's URL without credentials; links read from the cached copy
    get the index URL's credentials back (a private index needs them for downloads)."""
    pypi_index.publish(make_wheel(tmp_path / "d", "alpha", "1.0"))
    url = f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{pypi_index.port}/simple/"
    fresh = [f.url for f in make_client(url).files(canonicalize_name("alpha"))]
    offline = make_client(url, offline=True)
    cached = [f.url for f in offline.files(canonicalize_name("alpha"))]
    assert cached == fresh
    assert all(u.startswith(url.removesuffix("simple/")) for u in cached)
    for path in cache_files(tmp_path / "cache"):
        assert quote(PASSWORD, safe="").encode() not in path.read_bytes()


@pytest.mark.parametrize(
    "password", ["p@ss", "p@ss@word", "pa:ss", "p%40ss%3A%2F", "a/b@c", "x:y@z/w%20v"]
)
def test_redaction_handles_any_character_in_a_password(password: str) -> None:
    url = f"https://me:{password}@index.example/simple/pkg/"
    register_secrets([url])
    text = without_credentials(f"GET {url} 200; again {url}")
    assert password not in text
    assert "me:" not in text
    for part in password.replace("/", "@").split("@"):
        if len(part) >= 4:
            assert part not in text
    if "/" not in password:  # a raw "/" ends the authority: the rest reads as a path
        assert (
            text
            == "GET https://index.example/simple/pkg/ 200; again https://index.example/simple/pkg/"
        )


def test_redaction_of_urls_nobody_registered() -> None:
    text = "fetching https://u:s3cr@t@host.example/simple/ and http://h.example/a@b/"
    assert without_credentials(text) == (
        "fetching https://host.example/simple/ and http://h.example/a@b/"
    )


def test_vv_output_keeps_a_password_with_an_at_sign_out(
    pypi_index: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> None:
    for wheel in frontend_wheels.values():
        pypi_index.publish(wheel)
    pypi_index.publish(make_wheel(tmp_path / "d", "alpha", "1.0"))
    repo = small_repo(tmp_path, ["alpha"])
    url = f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{pypi_index.port}/simple/"
    argv = ["--repo", str(repo), "-vv", "lock", "--index-url", url]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--exclude-newer", "2026-01-01"]
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", *argv],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert b"GET http://127.0.0.1:" in proc.stderr  # -vv does log the requests
    for form in [*secret_forms(), b"s3cr3t", b"rd%"]:
        assert form not in proc.stderr + proc.stdout, form


# --- indexes without upload times ------------------------------------------------------------


@pytest.fixture
def static_index(
    tmp_path: Path, frontend_wheels: dict[str, Path]
) -> Iterator[tuple[str, list[Path]]]:
    """A plain static PEP 503 index (a directory behind http.server: no upload times, no
    ranges, no PEP 658)."""
    root = tmp_path / "static"
    files = root / "files"
    files.mkdir(parents=True)
    dists = [
        *frontend_wheels.values(),
        make_wheel(tmp_path / "d", "alpha", "1.0", requires_dist=["beta"]),
        make_wheel(tmp_path / "d", "beta", "2.0"),
    ]
    by_project: dict[str, list[Path]] = {}
    for dist in dists:
        (files / dist.name).write_bytes(dist.read_bytes())
        project = canonicalize_name(dist.name.split("-", 1)[0])
        by_project.setdefault(project, []).append(dist)
    for project, paths in by_project.items():
        page = root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True)
        links = "".join(
            f'<a href="../../files/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">'
            f"{p.name}</a>\n"
            for p in paths
        )
        page.write_text(f"<html><body>\n{links}</body></html>\n")

    with serve_directory(root) as url:
        yield f"{url}/simple/", dists


def test_a_static_index_without_upload_times_locks(
    static_index: tuple[str, list[Path]], tmp_path: Path
) -> None:
    url, _ = static_index
    repo = small_repo(tmp_path, ["alpha"])
    lock = lock_with(repo, url, tmp_path / "cache")
    document = tomllib.loads(lock.read_text())
    versions = {p["name"]: p["version"] for p in document["packages"]}
    assert versions["alpha"] == "1.0"
    assert versions["beta"] == "2.0"
    provenance = document["tool"]["nixpkgs-python"]
    assert provenance["exclude-newer"] == "2026-01-01T00:00:00Z"
    assert provenance["snapshot-not-applied"] == [url]
    # whole downloads (no ranges): every metadata verified by the file's hash
    assert all(
        "unverified-metadata" not in p["tool"]["nixpkgs-python"] for p in document["packages"]
    )
    # deterministic: a second lock from scratch is byte-identical
    (tmp_path / "again").mkdir()
    again = lock_with(small_repo(tmp_path / "again", ["alpha"]), url, tmp_path / "cache2")
    assert again.read_bytes() == lock.read_bytes()


def test_an_index_with_upload_times_is_snapshotted_as_before(
    pypi_index: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> None:
    for wheel in frontend_wheels.values():
        pypi_index.publish(wheel)
    pypi_index.publish(make_wheel(tmp_path / "d", "alpha", "1.0"))
    pypi_index.publish(
        make_wheel(tmp_path / "d", "alpha", "2.0"), upload_time="2026-06-01T00:00:00Z"
    )
    lock = tomllib.loads(
        lock_with(small_repo(tmp_path, ["alpha"]), pypi_index.url, tmp_path / "c").read_text()
    )
    assert {p["name"]: p["version"] for p in lock["packages"]}["alpha"] == "1.0"
    assert "snapshot-not-applied" not in lock["tool"]["nixpkgs-python"]
