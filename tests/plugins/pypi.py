"""A loopback package index serving distributions the tests build.

- :func:`make_wheel`, :func:`make_sdist`, :func:`make_backend_wheel` build real, reproducible
  distributions (same arguments, same bytes).
- :class:`IndexServer` is a real HTTP server on 127.0.0.1 speaking the simple repository API
  in PEP 691 JSON (api-version 1.1) and PEP 503 HTML, chosen by the Accept header, with PEP
  658/714 ``.metadata`` files, yanking, requires-python, upload times, HTTP Range reads,
  injectable failures and held answers.  ``server.requests`` records every request for assertions.
- Fixtures: ``pypi_index`` (a fresh empty server), ``backend_wheel`` (the fixture-backend
  wheel), ``pypi_index_with_backend`` (a server that already serves fixture-backend).

"fixture-backend" (module ``fixture_backend``, in tests/plugins/pypi_backend/) is a minimal
PEP 517 backend; sdists from :func:`make_sdist` build with it, e.g.
``PYTHONPATH=BACKEND_DIR python -m build --no-isolation --wheel``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import HeaderParser
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from tests.plugins.pypi_backend import fixture_backend

#: directory holding fixture_backend.py: put it on PYTHONPATH to build sdists without isolation
BACKEND_DIR = Path(fixture_backend.__file__).parent
BACKEND_NAME = "fixture-backend"

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


def _import_name(name: str) -> str:
    return fixture_backend.dist_name(name)


def _default_modules(name: str, version: str) -> dict[str, str]:
    return {f"{_import_name(name)}/__init__.py": f"__version__ = {version!r}\n"}


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    modules: Mapping[str, str] | None = None,
    console_scripts: Mapping[str, str] | None = None,
    project_urls: Mapping[str, str] | None = None,
    metadata_version: str = "2.1",
) -> Path:
    """Build a wheel in ``dest``; ``modules`` maps paths in the wheel to source text."""
    dest.mkdir(parents=True, exist_ok=True)
    metadata = fixture_backend.core_metadata(
        name,
        version,
        requires_dist=list(requires_dist),
        requires_python=requires_python,
        project_urls=dict(project_urls or {}),
        metadata_version=metadata_version,
    )
    mods = _default_modules(name, version) if modules is None else modules
    filename = fixture_backend.write_wheel(
        dest,
        name,
        version,
        metadata=metadata,
        files={p: s.encode() for p, s in mods.items()},
        scripts=dict(console_scripts or {}),
        tag=tag,
    )
    return dest / filename


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(value)


def _toml_table(header: str, values: Mapping[str, object]) -> str:
    body = "".join(f"{key} = {_toml_value(v)}\n" for key, v in values.items() if v is not None)
    return f"[{header}]\n{body}\n"


def make_sdist(
    dest: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    build_requires: Sequence[str] | None = (BACKEND_NAME,),
    build_backend: str | None = "fixture_backend",
    metadata_version: str = "2.2",
    dynamic: Sequence[str] = (),
    modules: Mapping[str, str] | None = None,
    console_scripts: Mapping[str, str] | None = None,
    project_urls: Mapping[str, str] | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Build an sdist (PKG-INFO, pyproject.toml, sources) in ``dest``.

    ``dynamic`` lists core metadata fields (e.g. ``"Requires-Dist"``) that PKG-INFO declares
    Dynamic; a dynamic Requires-Dist is left out of PKG-INFO (so only the PEP 517 backend
    knows it).  ``build_requires=None`` writes no ``[build-system]`` table at all.
    """
    dest.mkdir(parents=True, exist_ok=True)
    mods = _default_modules(name, version) if modules is None else dict(modules)
    dynamic_deps = "Requires-Dist" in dynamic
    pkg_info = fixture_backend.core_metadata(
        name,
        version,
        requires_dist=[] if dynamic_deps else list(requires_dist),
        requires_python=requires_python,
        project_urls=dict(project_urls or {}),
        metadata_version=metadata_version,
        dynamic=list(dynamic),
    )
    pyproject = ""
    if build_requires is not None:
        pyproject += _toml_table(
            "build-system", {"requires": list(build_requires), "build-backend": build_backend}
        )
    to_pyproject = {v: k for k, v in fixture_backend.DYNAMIC_FIELDS.items()}
    pyproject += _toml_table(
        "project",
        {
            "name": name,
            "version": version,
            "dynamic": [to_pyproject[d] for d in dynamic if d in to_pyproject] or None,
            "requires-python": requires_python,
            "dependencies": None if dynamic_deps else list(requires_dist),
        },
    )
    if project_urls:
        pyproject += _toml_table("project.urls", dict(project_urls))
    if console_scripts:
        pyproject += _toml_table("project.scripts", dict(console_scripts))
    include = sorted({p.split("/", 1)[0] for p in mods})
    pyproject += _toml_table(
        "tool.fixture-backend",
        {"include": include, "dependencies": list(requires_dist) if dynamic_deps else None},
    )
    base = f"{fixture_backend.dist_name(name)}-{version}"
    members = {f"{base}/{p}": s.encode() for p, s in {**mods, **(extra_files or {})}.items()}
    members[f"{base}/PKG-INFO"] = pkg_info.encode()
    members[f"{base}/pyproject.toml"] = pyproject.encode()
    path = dest / f"{base}.tar.gz"
    fixture_backend.write_tar_gz(path, members)
    return path


def make_backend_wheel(dest: Path, version: str = "1.0") -> Path:
    """The wheel of the fixture-backend PEP 517 backend (module ``fixture_backend``)."""
    source = Path(fixture_backend.__file__).read_text(encoding="utf-8")
    return make_wheel(dest, BACKEND_NAME, version, modules={"fixture_backend.py": source})


def read_dist_metadata(path: Path) -> str:
    """The core metadata text (METADATA or PKG-INFO) inside a wheel or sdist."""
    if path.name.endswith((".whl", ".zip")):
        wanted = ".dist-info/METADATA" if path.name.endswith(".whl") else "/PKG-INFO"
        with zipfile.ZipFile(path) as zf:
            member = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(wanted))
            return zf.read(member).decode()
    with tarfile.open(path) as tf:
        info = next(
            m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
        )
        data = tf.extractfile(info)
        assert data is not None
        return data.read().decode()


# --- the server ------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One request the server answered."""

    method: str
    path: str
    headers: dict[str, str]  #: lower-cased names
    status: int = 0
    bytes_sent: int = 0  #: body bytes


@dataclass
class PublishedFile:
    filename: str
    project: str
    version: str
    sha256: str
    size: int
    upload_time: str
    yanked: str | bool | None
    requires_python: str | None
    with_hash: bool
    metadata_sha256: str | None  #: None = no .metadata advertised


def _iso(value: str | datetime) -> str:
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _negotiate(accept: str | None) -> str | None:
    """PEP 691 content negotiation: the served type, or None for 406."""
    if not accept:
        return "text/html"
    offers = [JSON_TYPE, HTML_TYPE, "text/html"]
    aliases = {
        "application/vnd.pypi.simple.latest+json": JSON_TYPE,
        "application/vnd.pypi.simple.latest+html": HTML_TYPE,
    }
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        media = aliases.get(media, media)
        chosen = "text/html" if media in ("*/*", "text/*") else media
        if chosen in offers and q > 0 and (best is None or (q, -i) > best[:2]):
            best = (q, -i, chosen)
    return best[2] if best else None


class IndexServer:
    """A simple-API index on 127.0.0.1 (free port), served from a thread."""

    def __init__(self, root: Path) -> None:
        self.files_dir = root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.requests: list[RequestRecord] = []
        self.projects: dict[str, dict[str, PublishedFile]] = {}
        #: False: answer every file request whole with 200, ignoring Range (like some mirrors)
        self.ranges = True
        #: False: only HTML, whatever the Accept header says (like the live proxy here)
        self.json = True
        #: False: refuse suffix ranges (``bytes=-N``) with 416, as some servers do
        self.suffix_ranges = True
        #: True: project pages carry an ETag and answer If-None-Match with 304 (like PyPI)
        self.etags = False
        #: False: pages state no upload times (like a plain static PEP 503 index)
        self.upload_times = True
        #: filename -> other bytes served for Range requests of it (whole GETs stay honest):
        #: a misbehaving index or proxy forging what range reads see
        self.range_forgeries: dict[str, bytes] = {}
        #: filename -> answer(Range header, the file's bytes): (status, body, headers) to
        #: send for a Range request of it instead, or None for the usual answer (a server
        #: or proxy whose Content-Range lies)
        self.range_answers: dict[
            str, Callable[[str, bytes], tuple[int, bytes, dict[str, str]] | None]
        ] = {}
        self.lock = threading.Lock()
        self._failures: list[list[object]] = []
        self._holds: list[tuple[str, Callable[[], bool], float]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root_url}/simple/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def publish(
        self,
        path: Path,
        *,
        upload_time: str | datetime = "2025-01-01T00:00:00Z",
        yanked: str | bool | None = None,
        requires_python: str | None = None,
        with_hash: bool = True,
        with_metadata: bool | None = None,
    ) -> None:
        """Serve ``path``.  ``requires_python`` defaults to the dist's Requires-Python;
        ``with_metadata`` (PEP 658 ``.metadata``) defaults to True for wheels, False for sdists,
        as on PyPI."""
        if path.name.endswith(".whl"):
            project, version, _, _ = parse_wheel_filename(path.name)
            wheel = True
        else:
            project, version = parse_sdist_filename(path.name)
            wheel = False
        metadata = read_dist_metadata(path)
        if requires_python is None:
            requires_python = HeaderParser().parsestr(metadata).get("Requires-Python")
        target = self.files_dir / path.name
        if path.resolve() != target.resolve():
            shutil.copyfile(path, target)
        data = target.read_bytes()
        metadata_sha = None
        if wheel if with_metadata is None else with_metadata:
            (self.files_dir / f"{path.name}.metadata").write_text(metadata, encoding="utf-8")
            metadata_sha = hashlib.sha256(metadata.encode()).hexdigest()
        entry = PublishedFile(
            filename=path.name,
            project=str(project),
            version=str(version),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            upload_time=_iso(upload_time),
            yanked=yanked,
            requires_python=requires_python,
            with_hash=with_hash,
            metadata_sha256=metadata_sha,
        )
        with self.lock:
            self.projects.setdefault(str(project), {})[path.name] = entry

    def yank(self, filename: str, reason: str = "") -> None:
        """Mark a published file yanked (``reason`` may be empty)."""
        with self.lock:
            for files in self.projects.values():
                if filename in files:
                    files[filename].yanked = reason or True
                    return
        raise KeyError(filename)

    def fail(
        self, path_prefix: str, status: int, times: int, retry_after: str | None = None
    ) -> None:
        """The next ``times`` requests whose path starts with ``path_prefix`` get ``status``."""
        with self.lock:
            self._failures.append([path_prefix, status, times, retry_after])

    def take_failure(self, path: str) -> tuple[int, str | None] | None:
        with self.lock:
            for failure in self._failures:
                prefix, status, times, retry_after = failure
                if path.startswith(str(prefix)) and int(times) > 0:  # type: ignore[call-overload]
                    failure[2] = int(times) - 1  # type: ignore[call-overload]
                    return int(status), retry_after  # type: ignore[call-overload,return-value]
        return None

    def hold(self, path_prefix: str, until: Callable[[], bool], timeout: float = 20.0) -> None:
        """Requests whose path starts with ``path_prefix`` are answered only once ``until()``
        is true (or after ``timeout`` seconds): an index that is slow exactly when a test
        needs it to be."""
        with self.lock:
            self._holds.append((path_prefix, until, timeout))

    def wait_for_holds(self, path: str) -> None:
        with self.lock:
            holds = [
                (until, timeout)
                for prefix, until, timeout in self._holds
                if path.startswith(prefix)
            ]
        for until, timeout in holds:
            deadline = time.monotonic() + timeout
            while not until() and time.monotonic() < deadline:
                time.sleep(0.02)

    def paths(self, prefix: str = "") -> list[str]:
        """Paths of the recorded requests (optionally only those under ``prefix``)."""
        return [r.path for r in self.requests if r.path.startswith(prefix)]

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> IndexServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- page rendering ---

    def project_list(self, content_type: str) -> bytes:
        with self.lock:
            names = sorted(self.projects)
        if content_type == JSON_TYPE:
            return json.dumps(
                {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
            ).encode()
        links = "".join(f'<a href="/simple/{n}/">{n}</a><br/>\n' for n in names)
        return _html("Simple index", links)

    def project_page(self, project: str, content_type: str) -> bytes | None:
        with self.lock:
            files = sorted(self.projects.get(project, {}).values(), key=lambda f: f.filename)
        if not files:
            return None
        if not self.upload_times:
            files = [dataclasses.replace(f, upload_time="") for f in files]
        if content_type == JSON_TYPE:
            return json.dumps(
                {
                    "meta": {"api-version": "1.1"},
                    "name": project,
                    "versions": sorted({f.version for f in files}),
                    "files": [_json_file(f) for f in files],
                }
            ).encode()
        return _html(f"Links for {project}", "".join(_html_file(f) for f in files))


def _json_file(f: PublishedFile) -> dict[str, object]:
    meta: object = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    out: dict[str, object] = {
        "filename": f.filename,
        "url": f"/files/{f.filename}",
        "hashes": {"sha256": f.sha256} if f.with_hash else {},
        "requires-python": f.requires_python,
        "size": f.size,
        **({"upload-time": f.upload_time} if f.upload_time else {}),
        "yanked": _json_yanked(f.yanked),
        "core-metadata": meta,
        "dist-info-metadata": meta,
    }
    return out


def _json_yanked(yanked: str | bool | None) -> str | bool:
    if yanked is None or yanked is False:
        return False
    return True if yanked in (True, "") else str(yanked)


def _html_file(f: PublishedFile) -> str:
    href = f"/files/{f.filename}" + (f"#sha256={f.sha256}" if f.with_hash else "")
    attrs = f' href="{escape(href)}"'
    if f.upload_time:
        attrs += f' data-upload-time="{escape(f.upload_time)}"'
    if f.requires_python:
        attrs += f' data-requires-python="{escape(f.requires_python)}"'
    if f.yanked is not None and f.yanked is not False:
        reason = "" if f.yanked is True else str(f.yanked)
        attrs += f' data-yanked="{escape(reason)}"'
    if f.metadata_sha256:
        value = escape(f"sha256={f.metadata_sha256}")
        attrs += f' data-core-metadata="{value}" data-dist-info-metadata="{value}"'
    return f"<a{attrs}>{escape(f.filename)}</a><br/>\n"


def _html(title: str, body: str) -> bytes:
    return (
        f'<!DOCTYPE html>\n<html>\n<head><meta name="pypi:repository-version" '
        f'content="1.1"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n'
        f"{body}</body>\n</html>\n"
    ).encode()


def _parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(first, last) for one satisfiable range; None = ignore header; False = unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first_s, _, last_s = spec.strip().partition("-")
    try:
        if not first_s:
            n = int(last_s)
            return (max(size - n, 0), size - 1) if n > 0 and size > 0 else False
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
    except ValueError:
        return None
    if first >= size or last < first:
        return False
    return first, min(last, size - 1)


def _make_handler(server: IndexServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def _serve(self, *, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            record = RequestRecord(
                self.command, path, {k.lower(): v for k, v in self.headers.items()}
            )
            with server.lock:
                server.requests.append(record)
            server.wait_for_holds(path)
            failure = server.take_failure(path)
            if failure is not None:
                status, retry_after = failure
                headers = {"Retry-After": retry_after} if retry_after else {}
                self._send(record, status, b"injected failure\n", "text/plain", body, headers)
                return
            if path == "/simple/" or path.startswith("/simple/"):
                self._simple(record, path, body)
            elif path.startswith("/files/"):
                self._file(record, path[len("/files/") :], body)
            else:
                self._send(record, 404, b"not found\n", "text/plain", body)

        def _simple(self, record: RequestRecord, path: str, body: bool) -> None:
            content_type = _negotiate(self.headers.get("Accept"))
            if not server.json and content_type == JSON_TYPE:
                content_type = "text/html"
            if content_type is None:
                self._send(record, 406, b"not acceptable\n", "text/plain", body)
                return
            name = path[len("/simple/") :].strip("/")
            if not name:
                self._send(record, 200, server.project_list(content_type), content_type, body)
                return
            if canonicalize_name(name) != name:
                self._send(
                    record,
                    301,
                    b"",
                    "text/plain",
                    body,
                    {"Location": f"/simple/{canonicalize_name(name)}/"},
                )
                return
            page = server.project_page(name, content_type)
            if page is None:
                self._send(record, 404, b"no such project\n", "text/plain", body)
                return
            etag = f'"{hashlib.sha256(page).hexdigest()[:32]}"'
            if server.etags and self.headers.get("If-None-Match") == etag:
                self._send(record, 304, b"", content_type, body, {"ETag": etag})
                return
            extra = {"ETag": etag} if server.etags else {}
            self._send(record, 200, page, content_type, body, extra)

        def _file(self, record: RequestRecord, filename: str, body: bool) -> None:
            target = server.files_dir / filename
            if "/" in filename or not target.is_file():
                self._send(record, 404, b"no such file\n", "text/plain", body)
                return
            data = target.read_bytes()
            ctype = "application/octet-stream"
            range_header = self.headers.get("Range")
            if range_header and filename in server.range_forgeries:
                data = server.range_forgeries[filename]
            answer = server.range_answers.get(filename)
            forged = answer(range_header, data) if answer and range_header else None
            if forged is not None:
                self._send(record, forged[0], forged[1], ctype, body, forged[2])
                return
            if range_header and server.ranges:
                span = _parse_range(range_header, len(data))
                if not server.suffix_ranges and "=-" in range_header.replace(" ", ""):
                    span = False
                if span is False:
                    self._send(
                        record, 416, b"", ctype, body, {"Content-Range": f"bytes */{len(data)}"}
                    )
                    return
                if isinstance(span, tuple):
                    first, last = span
                    self._send(
                        record,
                        206,
                        data[first : last + 1],
                        ctype,
                        body,
                        {
                            "Content-Range": f"bytes {first}-{last}/{len(data)}",
                            "Accept-Ranges": "bytes",
                        },
                    )
                    return
            extra = {"Accept-Ranges": "bytes"} if server.ranges else {}
            self._send(record, 200, data, ctype, body, extra)

        def _send(
            self,
            record: RequestRecord,
            status: int,
            payload: bytes,
            ctype: str,
            body: bool,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            record.status = status
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Vary", "Accept")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if body and payload:
                self.wfile.write(payload)
                record.bytes_sent = len(payload)

    return Handler


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def backend_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture-backend wheel (built once per session)."""
    return make_backend_wheel(tmp_path_factory.mktemp("fixture-backend"))


@contextlib.contextmanager
def published_index(root: Path, dists: Iterable[Path]) -> Iterator[IndexServer]:
    """A loopback index in ``root`` serving ``dists``, closed when the block ends."""
    server = IndexServer(root)
    try:
        for path in dists:
            server.publish(path)
        yield server
    finally:
        server.close()


@pytest.fixture
def pypi_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """A fresh, empty loopback index; closed after the test."""
    server = IndexServer(tmp_path_factory.mktemp("pypi-index"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pypi_index_with_backend(pypi_index: IndexServer, backend_wheel: Path) -> IndexServer:
    """``pypi_index`` already serving the fixture-backend wheel."""
    pypi_index.publish(backend_wheel)
    return pypi_index


def sdist_members(path: Path) -> dict[str, bytes]:
    """Every member of an sdist, for assertions."""
    out: dict[str, bytes] = {}
    with tarfile.open(path) as tf:
        for member in tf.getmembers():
            data = tf.extractfile(member)
            if data is not None:
                out[member.name] = data.read()
    return out


def wheel_members(path: Path) -> dict[str, bytes]:
    """Every member of a wheel, for assertions."""
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
        return {n: zf.read(n) for n in zf.namelist()}
