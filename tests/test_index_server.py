"""Tests of the loopback package index fixture itself (tests/plugins/pypi.py)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.plugins.pypi import (
    BACKEND_DIR,
    HTML_TYPE,
    JSON_TYPE,
    IndexServer,
    make_sdist,
    make_wheel,
    read_dist_metadata,
    sdist_members,
    wheel_members,
)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


def html_links(text: str) -> dict[str, dict[str, str | None]]:
    parser = _Links()
    parser.feed(text)
    return {str(a["href"]).split("/")[-1].split("#")[0]: a for a in parser.links}


@dataclass
class Got:
    """One raw response (redirects not followed, any status)."""

    status_code: int
    headers: http.client.HTTPMessage
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


def get(server: IndexServer, path: str, **headers: str) -> Got:
    url = urlsplit(server.root_url + path)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        conn.request("GET", url.path, headers=headers)
        resp = conn.getresponse()
        return Got(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


@pytest.fixture
def demo(pypi_index: IndexServer, tmp_path: Path) -> IndexServer:
    wheel = make_wheel(
        tmp_path,
        "Demo.Pkg",
        "1.0",
        requires_dist=["six>=1", "attrs; extra == 'x'"],
        requires_python=">=3.8",
    )
    sdist = make_sdist(tmp_path, "Demo.Pkg", "1.0")
    old = make_wheel(tmp_path, "demo-pkg", "0.9")
    pypi_index.publish(wheel, upload_time="2025-02-03T04:05:06Z")
    pypi_index.publish(sdist, with_hash=False)
    pypi_index.publish(old, yanked="broken")
    return pypi_index


def test_json_and_html_pages_agree(demo: IndexServer) -> None:
    resp = get(demo, "/simple/demo-pkg/", Accept=f"{JSON_TYPE}, text/html;q=0.1")
    assert resp.headers["content-type"] == JSON_TYPE
    page = resp.json()
    assert page["meta"]["api-version"] == "1.1"
    files = {f["filename"]: f for f in page["files"]}
    assert set(files) == {
        "demo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0.tar.gz",
        "demo_pkg-0.9-py3-none-any.whl",
    }
    wheel = files["demo_pkg-1.0-py3-none-any.whl"]
    data = (demo.files_dir / "demo_pkg-1.0-py3-none-any.whl").read_bytes()
    assert wheel["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert wheel["size"] == len(data)
    assert wheel["requires-python"] == ">=3.8"
    assert wheel["upload-time"] == "2025-02-03T04:05:06Z"
    assert wheel["yanked"] is False
    assert wheel["core-metadata"] == wheel["dist-info-metadata"]
    assert files["demo_pkg-1.0.tar.gz"]["hashes"] == {}
    assert files["demo_pkg-1.0.tar.gz"]["core-metadata"] is False
    assert files["demo_pkg-0.9-py3-none-any.whl"]["yanked"] == "broken"

    resp = get(demo, "/simple/demo-pkg/", Accept=f"{JSON_TYPE};q=0.2, {HTML_TYPE}")
    assert resp.headers["content-type"] == HTML_TYPE
    links = html_links(resp.text)
    assert set(links) == set(files)
    link = links["demo_pkg-1.0-py3-none-any.whl"]
    assert (
        link["href"] == f"/files/demo_pkg-1.0-py3-none-any.whl#sha256={wheel['hashes']['sha256']}"
    )
    assert link["data-requires-python"] == ">=3.8"
    assert link["data-upload-time"] == "2025-02-03T04:05:06Z"
    assert link["data-core-metadata"] == f"sha256={wheel['core-metadata']['sha256']}"
    assert "data-yanked" not in link
    assert "#" not in str(links["demo_pkg-1.0.tar.gz"]["href"])
    assert links["demo_pkg-0.9-py3-none-any.whl"]["data-yanked"] == "broken"


def test_negotiation_defaults_and_html_only(demo: IndexServer) -> None:
    assert get(demo, "/simple/demo-pkg/").headers["content-type"] == "text/html"
    assert get(demo, "/simple/demo-pkg/", Accept="application/json").status_code == 406
    assert get(demo, "/simple/", Accept=JSON_TYPE).json()["projects"] == [{"name": "demo-pkg"}]
    demo.json = False
    assert get(demo, "/simple/demo-pkg/", Accept=JSON_TYPE).headers["content-type"] == "text/html"


def test_unknown_project_and_redirect(demo: IndexServer) -> None:
    assert get(demo, "/simple/nope/").status_code == 404
    resp = get(demo, "/simple/Demo.Pkg/")
    assert resp.status_code == 301
    assert resp.headers["location"] == "/simple/demo-pkg/"


def test_metadata_file_matches_advertised_hash(demo: IndexServer) -> None:
    page = get(demo, "/simple/demo-pkg/", Accept=JSON_TYPE).json()
    wheel = next(f for f in page["files"] if f["filename"].endswith("1.0-py3-none-any.whl"))
    resp = get(demo, f"/files/{wheel['filename']}.metadata")
    assert hashlib.sha256(resp.content).hexdigest() == wheel["core-metadata"]["sha256"]
    assert "Requires-Dist: six>=1" in resp.text
    assert "Provides-Extra: x" in resp.text
    assert get(demo, "/files/demo_pkg-1.0.tar.gz.metadata").status_code == 404


def test_range_reads(demo: IndexServer) -> None:
    path = "/files/demo_pkg-1.0-py3-none-any.whl"
    data = (demo.files_dir / path.rsplit("/", maxsplit=1)[-1]).read_bytes()
    size = len(data)
    resp = get(demo, path, Range="bytes=0-9")
    assert resp.status_code == 206
    assert resp.content == data[:10]
    assert resp.headers["content-range"] == f"bytes 0-9/{size}"
    resp = get(demo, path, Range="bytes=-22")
    assert resp.status_code == 206
    assert resp.content == data[-22:]
    assert resp.headers["content-range"] == f"bytes {size - 22}-{size - 1}/{size}"
    assert get(demo, path, Range=f"bytes={size - 5}-").content == data[-5:]
    assert get(demo, path, Range=f"bytes=0-{size * 2}").content == data
    resp = get(demo, path, Range=f"bytes={size}-")
    assert resp.status_code == 416
    assert resp.headers["content-range"] == f"bytes */{size}"
    assert demo.requests[-1].headers["range"] == f"bytes={size}-"
    assert demo.requests[1].bytes_sent == 22

    demo.ranges = False
    resp = get(demo, path, Range="bytes=0-9")
    assert resp.status_code == 200
    assert resp.content == data


def test_fail_injects_status_then_recovers(demo: IndexServer) -> None:
    demo.fail("/simple/demo-pkg/", 503, times=2)
    demo.fail("/files/", 429, times=1, retry_after="0")
    assert get(demo, "/simple/demo-pkg/").status_code == 503
    assert get(demo, "/simple/other/").status_code == 404
    assert get(demo, "/simple/demo-pkg/").status_code == 503
    assert get(demo, "/simple/demo-pkg/").status_code == 200
    resp = get(demo, "/files/demo_pkg-1.0.tar.gz")
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "0"
    assert get(demo, "/files/demo_pkg-1.0.tar.gz").status_code == 200
    assert demo.paths("/simple/demo-pkg/") == ["/simple/demo-pkg/"] * 3


def test_yank_after_publish(demo: IndexServer) -> None:
    demo.yank("demo_pkg-1.0.tar.gz")
    page = get(demo, "/simple/demo-pkg/", Accept=JSON_TYPE).json()
    assert {f["filename"]: f["yanked"] for f in page["files"]}["demo_pkg-1.0.tar.gz"] is True
    assert (
        html_links(get(demo, "/simple/demo-pkg/").text)["demo_pkg-1.0.tar.gz"]["data-yanked"] == ""
    )


def test_wheels_are_reproducible_and_installable(tmp_path: Path) -> None:
    kwargs = {
        "console_scripts": {"demo-run": "demo_pkg.cli:main"},
        "modules": {
            "demo_pkg/__init__.py": "",
            "demo_pkg/cli.py": "def main():\n    print('hi')\n",
        },
        "project_urls": {"Changelog": "https://example.invalid/changes"},
    }
    one = make_wheel(tmp_path / "a", "demo-pkg", "2.0", **kwargs)  # type: ignore[arg-type]
    two = make_wheel(tmp_path / "b", "demo-pkg", "2.0", **kwargs)  # type: ignore[arg-type]
    assert one.read_bytes() == two.read_bytes()
    members = wheel_members(one)
    assert "demo_pkg-2.0.dist-info/entry_points.txt" in members
    assert (
        b"Project-URL: Changelog, https://example.invalid/changes"
        in members["demo_pkg-2.0.dist-info/METADATA"]
    )
    assert zipfile.ZipFile(one).testzip() is None
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--target",
            str(target),
            "--no-compile",
            "-q",
            str(one),
        ],
        check=True,
    )
    assert (target / "demo_pkg" / "cli.py").exists()
    assert (target / "bin" / "demo-run").exists()


def test_platform_wheel_tags(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, "native", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
    )
    text = wheel_members(wheel)["native-1.0.dist-info/WHEEL"].decode()
    assert "Root-Is-Purelib: false" in text
    assert "Tag: cp312-cp312-manylinux2014_x86_64" in text


def test_sdist_layout_and_pep517_build(tmp_path: Path, backend_wheel: Path) -> None:
    sdist = make_sdist(
        tmp_path,
        "Dyn-Pkg",
        "3.0",
        requires_dist=["six"],
        dynamic=("Requires-Dist",),
        console_scripts={"dyn": "dyn_pkg:main"},
        modules={"dyn_pkg/__init__.py": "def main():\n    pass\n"},
        extra_files={"tests/test_x.py": "", "fix.patch": ""},
    )
    members = sdist_members(sdist)
    assert set(members) == {
        "dyn_pkg-3.0/PKG-INFO",
        "dyn_pkg-3.0/pyproject.toml",
        "dyn_pkg-3.0/dyn_pkg/__init__.py",
        "dyn_pkg-3.0/tests/test_x.py",
        "dyn_pkg-3.0/fix.patch",
    }
    pkg_info = read_dist_metadata(sdist)
    assert "Dynamic: Requires-Dist" in pkg_info
    assert "Requires-Dist" not in pkg_info.replace("Dynamic: Requires-Dist", "")

    # like the Nix library: the backend wheel installed, then `build` without isolation
    site = tmp_path / "backend-site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(backend_wheel),
        ],
        check=True,
    )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(site)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--wheel",
            "--outdir",
            str(out),
            str(sdist),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    wheel = out / "dyn_pkg-3.0-py3-none-any.whl"
    members = wheel_members(wheel)
    assert "Requires-Dist: six" in members["dyn_pkg-3.0.dist-info/METADATA"].decode()
    assert "dyn_pkg/__init__.py" in members
    assert b"dyn = dyn_pkg:main" in members["dyn_pkg-3.0.dist-info/entry_points.txt"]


def test_sdist_builds_with_backend_dir_on_path(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "plain", "1.0", requires_dist=["six"])
    env = {**os.environ, "PYTHONPATH": str(BACKEND_DIR)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--skip-dependency-check",
            "--wheel",
            "--outdir",
            str(tmp_path / "out"),
            str(sdist),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    assert (tmp_path / "out" / "plain-1.0-py3-none-any.whl").exists()


def test_sdist_without_build_system(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "old", "1.0", build_requires=None)
    pyproject = sdist_members(sdist)["old-1.0/pyproject.toml"].decode()
    assert "[build-system]" not in pyproject
    assert "[project]" in pyproject


def test_project_list_json(pypi_index: IndexServer, tmp_path: Path, backend_wheel: Path) -> None:
    pypi_index.publish(backend_wheel)
    body = get(pypi_index, "/simple/", Accept=JSON_TYPE).content
    assert json.loads(body)["projects"] == [{"name": "fixture-backend"}]


def test_etags(demo: IndexServer) -> None:
    assert "etag" not in get(demo, "/simple/demo-pkg/").headers
    demo.etags = True
    etag = get(demo, "/simple/demo-pkg/").headers["etag"]
    assert get(demo, "/simple/demo-pkg/", **{"If-None-Match": etag}).status_code == 304
    assert get(demo, "/simple/demo-pkg/", **{"If-None-Match": '"other"'}).status_code == 200
