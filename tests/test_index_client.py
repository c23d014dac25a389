"""IndexClient against the loopback index: pages, metadata sources, cache, retries, routing."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bot.core.errors import IndexError_, MetadataError
from bot.lock.index import IndexClient, IndexRoute, ProjectNotFound
from bot.lock.index.models import DistFile
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel

MakeClient = Callable[..., IndexClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    """IndexClient factory with fast retries; every client is closed after the test."""
    clients: list[IndexClient] = []

    def make(*servers: IndexServer | IndexRoute, **kwargs: object) -> IndexClient:
        routes = [s if isinstance(s, IndexRoute) else IndexRoute(s.url) for s in servers]
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        kwargs.setdefault("backoff", 0.001)
        kwargs.setdefault("retries", 2)
        client = IndexClient(routes, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def by_name(files: list[DistFile]) -> dict[str, DistFile]:
    return {f.filename: f for f in files}


@pytest.fixture
def demo(pypi_index: IndexServer, tmp_path: Path) -> IndexServer:
    dists = tmp_path / "dists"
    pypi_index.publish(
        make_wheel(
            dists,
            "demo",
            "1.0",
            requires_dist=["dep>=1", "extra-dep; extra == 'fast'"],
            requires_python=">=3.9",
            project_urls={"Changelog": "https://x.invalid/c"},
        ),
        upload_time="2025-03-01T10:00:00Z",
    )
    pypi_index.publish(
        make_sdist(dists, "demo", "1.0", requires_dist=["dep>=1"]),
        upload_time="2025-03-01T10:00:01Z",
    )
    pypi_index.publish(make_wheel(dists, "demo", "0.9"), yanked="broken release")
    pypi_index.publish(make_wheel(dists, "demo", "0.8"), yanked=True)
    pypi_index.publish(make_wheel(dists, "demo", "0.7"), with_hash=False)
    pypi_index.publish(
        make_wheel(
            dists, "demo", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
        )
    )
    return pypi_index


# --- pages ---


def test_json_and_html_pages_parse_the_same(
    demo: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    from_json = make_client(demo, cache_dir=tmp_path / "c1").files(canonicalize_name("demo"))
    assert demo.requests[-1].headers["accept"].startswith("application/vnd.pypi.simple.v1+json")
    demo.json = False
    from_html = make_client(demo, cache_dir=tmp_path / "c2").files(canonicalize_name("demo"))
    assert [dataclasses.replace(f, size=None) for f in from_json] == from_html
    assert all(f.size for f in from_json)

    files = by_name(from_json)
    wheel = files["demo-1.0-py3-none-any.whl"]
    assert wheel.kind == "wheel"
    assert str(wheel.version) == "1.0"
    assert wheel.url == f"{demo.root_url}/files/demo-1.0-py3-none-any.whl"
    assert wheel.index == demo.url
    assert str(wheel.requires_python) == ">=3.9"
    assert wheel.upload_time is not None
    assert wheel.upload_time.isoformat() == "2025-03-01T10:00:00+00:00"
    assert wheel.core_metadata
    assert len(wheel.core_metadata) == 64
    assert len(wheel.sha256) == 64
    assert {
        str(t)
        for t in files["demo-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"].tags
    } == {"cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux2014_x86_64"}
    sdist = files["demo-1.0.tar.gz"]
    assert sdist.kind == "sdist"
    assert sdist.tags == frozenset()
    assert sdist.core_metadata is None


def test_file_without_hash_is_refused(demo: IndexServer, make_client: MakeClient) -> None:
    files = by_name(make_client(demo).files(canonicalize_name("demo")))
    assert "demo-0.7-py3-none-any.whl" not in files
    assert len(files) == 5


def test_yanked_files_are_kept_with_reason(demo: IndexServer, make_client: MakeClient) -> None:
    demo.yank("demo-1.0.tar.gz")
    files = by_name(make_client(demo).files(canonicalize_name("demo")))
    assert files["demo-0.9-py3-none-any.whl"].yanked == "broken release"
    assert files["demo-0.8-py3-none-any.whl"].yanked == ""
    assert files["demo-1.0.tar.gz"].yanked == ""
    assert files["demo-1.0-py3-none-any.whl"].yanked is None


def test_unknown_project(demo: IndexServer, make_client: MakeClient) -> None:
    with pytest.raises(ProjectNotFound, match=r"no project named nope on http://127\.0\.0\.1"):
        make_client(demo).files(canonicalize_name("nope"))


def test_prefetch_fetches_each_page_once(
    demo: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    demo.publish(make_wheel(tmp_path / "d", "other", "1.0"))
    client = make_client(demo)
    client.prefetch(
        [canonicalize_name("demo"), canonicalize_name("other"), canonicalize_name("nope")]
    )
    assert len(client.files(canonicalize_name("other"))) == 1
    assert len(client.files(canonicalize_name("Demo"))) == 5
    with pytest.raises(ProjectNotFound):  # a prefetch error surfaces only when asked for
        client.files(canonicalize_name("nope"))
    assert sorted(demo.paths("/simple/")) == ["/simple/demo/", "/simple/nope/", "/simple/other/"]


# --- metadata ---


def test_pep658_metadata_is_used_when_advertised(
    demo: IndexServer, make_client: MakeClient
) -> None:
    client = make_client(demo)
    wheel = by_name(client.files(canonicalize_name("demo")))["demo-1.0-py3-none-any.whl"]
    meta = client.metadata(wheel)
    assert meta.name == "demo"
    assert str(meta.version) == "1.0"
    assert [str(r) for r in meta.requires_dist] == ["dep>=1", 'extra-dep; extra == "fast"']
    assert meta.provides_extra == ("fast",)
    assert str(meta.requires_python) == ">=3.9"
    assert meta.project_urls == (("Changelog", "https://x.invalid/c"),)
    assert demo.paths("/files/") == ["/files/demo-1.0-py3-none-any.whl.metadata"]
    assert client.metadata(wheel) == meta  # memoised: no second request
    assert len(demo.paths("/files/")) == 1


def test_pep658_hash_mismatch_is_an_error(demo: IndexServer, make_client: MakeClient) -> None:
    (demo.files_dir / "demo-1.0-py3-none-any.whl.metadata").write_text(
        "Metadata-Version: 2.1\nName: demo\nVersion: 6.6.6\n"
    )
    client = make_client(demo)
    wheel = by_name(client.files(canonicalize_name("demo")))["demo-1.0-py3-none-any.whl"]
    with pytest.raises(MetadataError, match="does not match its advertised sha256"):
        client.metadata(wheel)


def _big_wheel(dest: Path, *, files: int = 1, size: int = 400_000) -> Path:
    rng = random.Random(42)  # noqa: S311 - reproducible filler, not cryptography
    modules = {
        f"big/m{i}.py": "".join(rng.choice("0123456789abcdef") for _ in range(size))
        for i in range(files)
    }
    modules["big/__init__.py"] = ""
    return make_wheel(dest, "big", "1.0", requires_dist=["dep"], modules=modules)


def test_range_reads_when_no_pep658(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    wheel_path = _big_wheel(tmp_path)
    pypi_index.publish(wheel_path, with_metadata=False)
    client = make_client(pypi_index)
    (wheel,) = client.files(canonicalize_name("big"))
    assert wheel.core_metadata is None
    assert [str(r) for r in client.metadata(wheel).requires_dist] == ["dep"]
    file_requests = [r for r in pypi_index.requests if r.path.startswith("/files/")]
    assert all("range" in r.headers and r.status == 206 for r in file_requests)
    assert file_requests[0].headers["range"].startswith("bytes=-")
    transferred = sum(r.bytes_sent for r in file_requests)
    assert transferred < wheel_path.stat().st_size / 2
    assert len(file_requests) <= 2


def test_range_reads_with_a_large_central_directory(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    # ~3000 members: the central directory alone is larger than the first tail read
    wheel_path = _big_wheel(tmp_path, files=3000, size=200)
    pypi_index.publish(wheel_path, with_metadata=False)
    client = make_client(pypi_index)
    (wheel,) = client.files(canonicalize_name("big"))
    assert [str(r) for r in client.metadata(wheel).requires_dist] == ["dep"]
    file_requests = [r for r in pypi_index.requests if r.path.startswith("/files/")]
    assert len(file_requests) >= 2
    assert all(r.status == 206 for r in file_requests)


def test_whole_file_fallback_when_range_is_ignored(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    pypi_index.publish(_big_wheel(tmp_path, size=1000), with_metadata=False)
    pypi_index.ranges = False
    client = make_client(pypi_index)
    (wheel,) = client.files(canonicalize_name("big"))
    assert [str(r) for r in client.metadata(wheel).requires_dist] == ["dep"]
    assert [r.status for r in pypi_index.requests if r.path.startswith("/files/")] == [200]


def test_whole_file_fallback_when_suffix_ranges_are_refused(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    pypi_index.publish(_big_wheel(tmp_path, size=1000), with_metadata=False)
    pypi_index.suffix_ranges = False
    client = make_client(pypi_index)
    (wheel,) = client.files(canonicalize_name("big"))
    assert [str(r) for r in client.metadata(wheel).requires_dist] == ["dep"]
    assert [r.status for r in pypi_index.requests if r.path.startswith("/files/")] == [416, 200]


def test_advertised_but_missing_metadata_falls_back(
    demo: IndexServer, make_client: MakeClient
) -> None:
    (demo.files_dir / "demo-1.0-py3-none-any.whl.metadata").unlink()
    client = make_client(demo)
    wheel = by_name(client.files(canonicalize_name("demo")))["demo-1.0-py3-none-any.whl"]
    assert str(client.metadata(wheel).version) == "1.0"
    assert demo.paths("/files/")[-1] == "/files/demo-1.0-py3-none-any.whl"


def test_garbage_metadata_names_the_file(
    pypi_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    pypi_index.publish(make_wheel(tmp_path, "bad", "1.0", requires_dist=["oops (((("]))
    client = make_client(pypi_index)
    (wheel,) = client.files(canonicalize_name("bad"))
    with pytest.raises(MetadataError) as info:
        client.metadata(wheel)
    assert info.value.where == wheel.url
    assert "bad-1.0-py3-none-any.whl" in str(info.value)


# --- cache and offline ---


def test_warm_cache_fetches_only_pages(demo: IndexServer, make_client: MakeClient) -> None:
    name = canonicalize_name("demo")
    cold = make_client(demo)
    files = cold.files(name)
    for file in files:
        cold.metadata(file)
        cold.build_requires(file)
    assert demo.paths("/files/")
    cold.close()
    demo.requests.clear()

    warm = make_client(demo)
    assert warm.files(name) == files
    assert [warm.metadata(f) for f in files] == [cold.metadata(f) for f in files]
    assert [warm.build_requires(f) for f in files] == [cold.build_requires(f) for f in files]
    assert demo.paths() == ["/simple/demo/"]


def test_pages_are_revalidated_with_etags(
    demo: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    demo.etags = True
    name = canonicalize_name("demo")
    files = make_client(demo).files(name)
    warm = make_client(demo)
    assert warm.files(name) == files
    assert [r.status for r in demo.requests] == [200, 304]
    assert "if-none-match" in demo.requests[1].headers
    # a cache whose page body went missing fetches the page whole again
    for body in (tmp_path / "cache").rglob("*.body"):
        body.unlink()
    assert make_client(demo).files(name) == files
    assert [r.status for r in demo.requests] == [200, 304, 304, 200]


def test_offline_works_from_the_cache(demo: IndexServer, make_client: MakeClient) -> None:
    name = canonicalize_name("demo")
    online = make_client(demo)
    files = online.files(name)
    metas = [online.metadata(f) for f in files]
    sdist = by_name(files)["demo-1.0.tar.gz"]
    reqs = online.build_requires(sdist)
    demo.close()

    offline = make_client(demo, offline=True)
    assert offline.files(name) == files
    assert [offline.metadata(f) for f in files] == metas
    assert offline.build_requires(sdist) == reqs
    with pytest.raises(IndexError_, match="offline, and the page of nope is not in the cache"):
        offline.files(canonicalize_name("nope"))
    assert offline._http is None  # never went online, nor loaded certificates for it
    assert offline._certificates is None


def test_offline_missing_metadata_is_clear(demo: IndexServer, make_client: MakeClient) -> None:
    name = canonicalize_name("demo")
    make_client(demo).files(name)
    offline = make_client(demo, offline=True)
    wheel = by_name(offline.files(name))["demo-1.0-py3-none-any.whl"]
    with pytest.raises(MetadataError, match="offline") as info:
        offline.metadata(wheel)
    assert info.value.where == wheel.url
    assert not demo.paths("/files/")


# --- retries ---


def test_retries_on_503_then_succeeds(demo: IndexServer, make_client: MakeClient) -> None:
    demo.fail("/simple/demo/", 503, times=2)
    demo.fail("/files/", 429, times=1, retry_after="0")
    client = make_client(demo, retries=3)
    files = client.files(canonicalize_name("demo"))
    assert len(files) == 5
    assert demo.paths("/simple/") == ["/simple/demo/"] * 3
    client.metadata(files[0])
    assert [r.status for r in demo.requests if r.path.startswith("/files/")] == [429, 200]


def test_persistent_500_names_the_url(demo: IndexServer, make_client: MakeClient) -> None:
    demo.fail("/simple/demo/", 500, times=100)
    client = make_client(demo, retries=2)
    with pytest.raises(IndexError_, match="after 3 attempts: HTTP 500") as info:
        client.files(canonicalize_name("demo"))
    assert info.value.where == f"{demo.url}demo/"
    assert info.value.hint
    assert len(demo.paths("/simple/demo/")) == 3


def test_connection_refused_is_an_index_error(
    make_client: MakeClient, pypi_index: IndexServer
) -> None:
    pypi_index.close()
    client = make_client(pypi_index, retries=1)
    with pytest.raises(IndexError_, match="connection failed"):
        client.files(canonicalize_name("demo"))


# --- routing ---


@pytest.fixture
def second_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    server = IndexServer(tmp_path_factory.mktemp("second-index"))
    yield server
    server.close()


def test_routed_package_comes_only_from_its_index(
    demo: IndexServer, second_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    demo.publish(make_wheel(tmp_path / "public", "private-pkg", "99.0"))
    second_index.publish(make_wheel(tmp_path / "private", "private-pkg", "1.0"))
    client = make_client(
        IndexRoute(demo.url),
        IndexRoute(second_index.url.rstrip("/"), frozenset({"Private_Pkg"})),  # type: ignore[arg-type]
    )
    files = client.files(canonicalize_name("private-pkg"))
    assert [(f.filename, f.index) for f in files] == [
        ("private_pkg-1.0-py3-none-any.whl", second_index.url)
    ]
    assert "/simple/private-pkg/" not in demo.paths()
    assert len(client.files(canonicalize_name("demo"))) == 5
    assert "/simple/demo/" not in second_index.paths()
    assert client.build_index_urls() == [second_index.url, demo.url]


def test_unrouted_names_merge_unrestricted_indexes(
    demo: IndexServer, second_index: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    second_index.publish(make_wheel(tmp_path / "more", "demo", "3.0"))
    second_index.publish(make_wheel(tmp_path / "only", "only-here", "1.0"))
    client = make_client(demo, second_index)
    files = client.files(canonicalize_name("demo"))
    assert {str(f.version) for f in files} == {"0.8", "0.9", "1.0", "2.0", "3.0"}
    assert [f.index for f in files if str(f.version) == "3.0"] == [second_index.url]
    # a 404 on one index is fine when another has the project
    assert len(client.files(canonicalize_name("only-here"))) == 1


def test_build_requires_of_wheel_is_empty(demo: IndexServer, make_client: MakeClient) -> None:
    client = make_client(demo)
    wheel = by_name(client.files(canonicalize_name("demo")))["demo-1.0-py3-none-any.whl"]
    assert client.build_requires(wheel) == ()
    sdist = by_name(client.files(canonicalize_name("demo")))["demo-1.0.tar.gz"]
    assert client.build_requires(sdist) == (Requirement("fixture-backend"),)


def test_unsupported_index_url_fails_at_once(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(IndexRoute(f"file://{tmp_path}/simple"), retries=3, backoff=10)
    with pytest.raises(IndexError_, match="unsupported URL") as info:
        client.files(canonicalize_name("demo"))
    assert info.value.hint == "index URLs must be http:// or https://"


def test_page_parsers_refuse_odd_entries() -> None:
    from bot.lock.index.simple import parse_html, parse_json

    name = canonicalize_name("demo")
    sha = "ab" * 32
    page = (
        '<html><head><base href="https://files.example/base/"></head><body>'
        f'<a href="demo-1.0.tar.gz#md5=0123">demo-1.0.tar.gz</a>'
        f'<a href="demo-1.0-py3-none-any.whl#sha256={sha}" data-yanked '
        'data-dist-info-metadata="true" data-requires-python="&gt;=3.8">x</a>'
        f'<a href="demo-1.0.exe#sha256={sha}">exe</a>'
        f'<a href="other-1.0.tar.gz#sha256={sha}">other</a>'
        f'<a href="demo-1.0.egg#sha256={sha}">egg</a>'
        "</body></html>"
    ).encode()
    (wheel,) = parse_html(
        page, "https://index.example/simple/demo/", "https://index.example/simple/", name
    ).all_files()
    assert wheel.url == "https://files.example/base/demo-1.0-py3-none-any.whl"
    assert wheel.yanked == ""
    assert wheel.core_metadata == ""
    assert str(wheel.requires_python) == ">=3.8"
    body = (
        '{"meta": {"api-version": "1.0"}, "files": ['
        '{"filename": "demo-1.0.tar.gz", "url": "x/demo-1.0.tar.gz", "hashes": {"sha256": 5}},'
        '{"filename": "demo-1.0.zip", "url": "demo-1.0.zip", "hashes": {"sha256": "' + sha + '"},'
        ' "yanked": "bad", "dist-info-metadata": {"sha256": "' + sha + '"}}]}'
    ).encode()
    (sdist,) = parse_json(
        body, "https://index.example/simple/demo/", "https://index.example/simple/", name
    ).all_files()
    assert sdist.url == "https://index.example/simple/demo/demo-1.0.zip"
    assert sdist.kind == "sdist"
    assert sdist.yanked == "bad"
    assert sdist.core_metadata == sha


def test_a_release_with_unusable_metadata_is_passed_over_by_the_resolution(
    pypi_index: IndexServer,
    make_client: MakeClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wheel whose METADATA has a Requires-Python PEP 440 rejects (the '.*' after '>=' of
    many 2016-2019 uploads; the page states none): the lock takes the release before it, with
    one warning naming the file, as pip and uv do, instead of failing."""
    from bot.lock.resolve import Request, resolve
    from bot.model.targets import targets_for

    dist = tmp_path / "dist"
    for name, version, requires in [
        ("build", "1.2.2", ["packaging>=19.1", "pyproject-hooks"]),
        ("installer", "0.7.0", []),
        ("packaging", "24.2", []),
        ("pyproject-hooks", "1.2.0", []),
        ("foo", "1.0", []),
    ]:
        pypi_index.publish(make_wheel(dist, name, version, requires_dist=requires))
    pypi_index.publish(
        make_wheel(dist, "foo", "2.0", requires_python=">=3.6.*"), requires_python=""
    )
    client = make_client(pypi_index)
    request = Request(requirements=[(Requirement("foo"), "case")], targets=targets_for("3.12"))
    with caplog.at_level("WARNING", logger="bot"):
        resolution = resolve(client, request)
    assert str(resolution.packages[canonicalize_name("foo")].version) == "1.0"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "foo 2.0 skipped: unusable core metadata in foo-2.0-py3-none-any.whl" in w for w in warnings
    ), warnings
