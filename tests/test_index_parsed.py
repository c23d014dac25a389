"""Project pages are read lazily: grouped by version, each version's files built on first use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.lock.index.client import IndexClient, IndexRoute
from bot.lock.index.models import DistFile, Releases
from bot.lock.index.simple import _decode_page, foreign_wheel, parse_json, version_text
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel

PAGE = "https://index.example/simple/demo/"
INDEX = "https://index.example/simple/"
SHA = "ab" * 32


def _json_page(*entries: dict[str, object]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.0"}, "files": list(entries)}).encode()


def _entry(filename: str, **extra: object) -> dict[str, object]:
    return {"filename": filename, "url": filename, "hashes": {"sha256": SHA}, **extra}


def test_versions_are_grouped_without_building_files() -> None:
    built: list[str] = []

    def spy(raw: str) -> DistFile | None:
        built.append(raw)
        return None

    releases = Releases.from_texts({"1.0": [(spy, "a")], "1.0.0": [(spy, "b")], "2.0": []})
    assert releases.versions() == [Version("2.0"), Version("1.0")]  # 1.0 and 1.0.0 are one
    assert built == []
    assert releases.files(Version("1.0")) == []
    assert built == ["a", "b"]
    releases.files(Version("1.0"))
    assert built == ["a", "b"]  # built once


def test_a_page_reads_only_the_versions_asked_for() -> None:
    name = canonicalize_name("demo")
    body = _json_page(
        _entry("demo-2.0-py3-none-any.whl"),
        _entry("demo-2.0.tar.gz", **{"requires-python": ">=3.10"}),
        _entry("demo-1.0-cp312-cp312-win_amd64.whl"),  # foreign: not even kept
        _entry("demo-1.0-not-a-version-py3-none-any.whl"),
        _entry("demo-0.9.tar.gz", hashes={}),  # no sha256: refused
        _entry("demo-0.8.exe"),
        _entry("demo-bad!version.tar.gz"),
    )
    releases = parse_json(body, PAGE, INDEX, name)
    # 1.0 has nothing but a foreign wheel: dropped while grouping, so it is no version here
    assert releases.versions() == [Version("2.0"), Version("0.9")]
    two = releases.files(Version("2.0"))
    assert [f.filename for f in two] == ["demo-2.0-py3-none-any.whl", "demo-2.0.tar.gz"]
    assert str(two[1].requires_python) == ">=3.10"
    assert releases.files(Version("1.0")) == []
    assert releases.files(Version("0.9")) == []
    assert releases.files(Version("3.0")) == []


def test_several_indexes_first_listing_wins() -> None:
    name = canonicalize_name("demo")
    first = parse_json(_json_page(_entry("demo-1.0.tar.gz")), PAGE, INDEX, name)
    other = "https://other.example/simple/"
    second = parse_json(
        _json_page(_entry("demo-1.0.tar.gz"), _entry("demo-1.1.tar.gz")),
        "https://other.example/simple/demo/",
        other,
        name,
    )
    merged = Releases.merge([first, second])
    assert merged.versions() == [Version("1.1"), Version("1.0")]
    (one,) = merged.files(Version("1.0"))
    assert one.index == INDEX
    (later,) = merged.files(Version("1.1"))
    assert later.index == other


def test_odd_json_pages_are_one_clear_error() -> None:
    from bot.core.errors import IndexError_

    for body in (b"not json", b'{"files": 3}', b'{"meta": {}}'):
        with pytest.raises(IndexError_, match="not valid PEP 691 JSON"):
            parse_json(body, PAGE, INDEX, canonicalize_name("demo"))


def test_client_files_match_the_page(pypi_index: IndexServer, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    pypi_index.publish(make_wheel(dist, "rt-pkg", "1.0", requires_python=">=3.9"))
    pypi_index.publish(
        make_wheel(dist, "rt-pkg", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
        yanked="bad build",
    )
    pypi_index.publish(make_sdist(dist, "rt-pkg", "2.0"), upload_time="2025-02-03T04:05:06Z")
    with IndexClient([IndexRoute(pypi_index.url)], cache_dir=tmp_path / "cache") as client:
        releases = client.releases(canonicalize_name("rt-pkg"))
        assert releases.versions() == [Version("2.0"), Version("1.0")]
        by_name = {f.filename: f for f in client.files(canonicalize_name("rt-pkg"))}
    assert by_name["rt_pkg-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"].yanked == "bad build"
    assert str(by_name["rt_pkg-1.0-py3-none-any.whl"].requires_python) == ">=3.9"
    sdist = by_name["rt_pkg-2.0.tar.gz"]
    assert sdist.upload_time is not None
    assert sdist.upload_time.isoformat().startswith("2025-02-03")


@pytest.mark.parametrize(
    ("filename", "version"),
    [
        ("demo-1.0-py3-none-any.whl", "1.0"),
        ("demo-1.0-1build-py3-none-any.whl", "1.0"),
        ("demo-1.0-py3-any.whl", None),
        ("Demo_Pkg-2.0rc1.tar.gz", "2.0rc1"),
        ("demo-pkg-2.0.zip", "2.0"),
        ("demo.tar.gz", None),
        ("demo-1.0.egg", None),
    ],
)
def test_version_text(filename: str, version: str | None) -> None:
    assert version_text(filename) == version


@pytest.mark.parametrize(
    ("filename", "foreign"),
    [
        ("coverage-7.0-cp39-cp39-win_amd64.whl", True),
        ("coverage-7.0-cp312-cp312-musllinux_1_1_x86_64.whl", True),
        ("coverage-7.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("coverage-7.0-cp312-cp312-manylinux_2_17_i686.manylinux2014_i686.whl", True),
        ("coverage-7.0-cp39-cp39-manylinux_2_17_x86_64.whl", True),
        ("cryptography-42.0-cp39-abi3-manylinux_2_28_x86_64.whl", False),
        ("coverage-7.0-pp39-pypy39_pp73-manylinux_2_17_x86_64.whl", True),
        ("six-1.16.0-py2.py3-none-any.whl", False),
        ("futures-3.0-py2-none-any.whl", True),
        ("x-1.0-cp312-cp312-macosx_10_9_x86_64.whl", False),
        ("x-1.0-cp312-cp312-macosx_11_0_arm64.whl", False),
        ("x-1.0-cp312-cp312-win_amd64.macosx_11_0_arm64.whl", False),
        ("x-1.0-py3-none-any.whl", False),
        ("x-1.0.tar.gz", False),
    ],
)
def test_wheels_no_target_can_use_are_skipped(filename: str, foreign: bool) -> None:
    assert foreign_wheel(filename) is foreign


def test_json_pages_in_other_layouts_read_the_same() -> None:
    name = canonicalize_name("demo")
    entries = [
        _entry("demo-1.0.tar.gz", **{"upload-time": "2025-01-01T00:00:00Z"}),
        _entry("demo-1.0-py3-none-any.whl", **{"core-metadata": {"sha256": SHA}}),
        _entry("demo-2.0.tar.gz", yanked='broken {see} "notes"'),
    ]
    compact = json.dumps({"files": entries}, separators=(",", ":")).encode()
    expected = parse_json(compact, PAGE, INDEX, name).all_files()
    assert [f.filename for f in expected] == [
        "demo-2.0.tar.gz",
        "demo-1.0.tar.gz",
        "demo-1.0-py3-none-any.whl",
    ]
    assert expected[0].yanked == 'broken {see} "notes"'
    assert expected[2].core_metadata == SHA
    layouts = [
        json.dumps({"files": entries, "meta": {"api-version": "1.1"}}),  # spaced
        json.dumps({"files": entries}, indent=2),  # pretty-printed
        json.dumps({"meta": {"x": "{"}, "files": entries}),  # braces before the files
        json.dumps({"meta": {"x": "\u00e9"}, "files": entries}, ensure_ascii=False),
        json.dumps({"files": [{"a": "}{", **e} for e in entries]}),
        # an entry without a filename: taken from its URL
        json.dumps({"files": [*entries, {"url": "demo-3.0.tar.gz", "hashes": {"sha256": SHA}}]}),
    ]
    for layout in layouts:
        releases = parse_json(layout.encode(), PAGE, INDEX, name)
        files = [f for f in releases.all_files() if f.version != Version("3.0")]
        assert files == expected, layout
    (three,) = parse_json(layouts[-1].encode(), PAGE, INDEX, name).files(Version("3.0"))
    assert three.filename == "demo-3.0.tar.gz"


def test_compact_entries_read_as_the_plain_json_objects() -> None:
    """A page of the usual shape is decoded into compact entries holding only the fields
    the bot reads; a page of another shape (here one entry is not an object) is read as
    plain JSON.  Both give the same files, field by field, absent and null alike."""
    name = canonicalize_name("demo")
    entries = [
        _entry("demo-3.0-py3-none-any.whl", **{"core-metadata": {"sha256": SHA}}),
        _entry("demo-3.0.tar.gz", **{"dist-info-metadata": True, "yanked": "broken"}),
        _entry("demo-2.0-py3-none-any.whl", **{"core-metadata": None, "yanked": True}),
        _entry(
            "demo-2.0.tar.gz",
            **{
                "requires-python": ">=3.10",
                "size": 123,
                "upload-time": "2025-03-01T12:00:00.123456Z",
                "provenance": "https://index.example/provenance",
                "data-dist-info-metadata": {"sha256": SHA},
            },
        ),
        {"url": "demo-1.0.tar.gz", "hashes": {"sha256": SHA}},  # no filename: from the URL
        _entry("demo-0.5.tar.gz", size="big"),  # malformed: skipped with a warning either way
    ]
    compact = parse_json(_json_page(*entries), PAGE, INDEX, name)
    plain = parse_json(_json_page(*entries, "not an object"), PAGE, INDEX, name)  # type: ignore[arg-type]
    assert compact.versions() == plain.versions()
    assert len(compact.versions()) == 4
    for version in compact.versions():
        assert compact.files(version) == plain.files(version)
    three = compact.files(Version("3.0"))
    assert [f.core_metadata for f in three] == [SHA, ""]
    assert [f.yanked for f in three] == [None, "broken"]
    two = compact.files(Version("2.0"))
    assert [f.core_metadata for f in two] == [None, None]
    assert str(two[1].requires_python) == ">=3.10"
    assert two[1].size == 123
    assert two[0].yanked == ""
    assert compact.files(Version("1.0"))[0].filename == "demo-1.0.tar.gz"
    assert compact.files(Version("0.5")) == []


def test_hash_objects_read_the_same_compact_or_plain() -> None:
    """The compact entries keep only the sha256 of a hashes or core-metadata object; every
    other shape of those objects still reads as it does from plain JSON: other algorithms
    beside or instead of sha256, a malformed digest, and the HTML-style string form."""
    name = canonicalize_name("demo")
    other = "ab" * 64  # a sha512-sized hex digest
    entries = [
        _entry("demo-6.0.tar.gz", hashes={"md5": "0" * 32, "sha256": SHA.upper()}),
        _entry("demo-5.0.tar.gz", hashes={"md5": "0" * 32}),  # no sha256: refused
        _entry("demo-4.0.tar.gz", hashes={"sha256": "not hex"}),  # malformed: skipped
        _entry("demo-3.0-py3-none-any.whl", **{"core-metadata": {"sha512": other}}),
        _entry("demo-3.0.tar.gz", **{"core-metadata": {"sha256": "zz"}}),
        _entry("demo-2.0-py3-none-any.whl", **{"core-metadata": f"sha256={SHA}"}),
        _entry(
            "demo-2.0.tar.gz",
            **{"core-metadata": {"sha256": SHA, "x": [1]}, "dist-info-metadata": {"a": 1}},
        ),
        _entry("demo-1.0.tar.gz", hashes=None, **{"dist-info-metadata": {"sha256": SHA}}),
    ]
    body = _json_page(*entries)
    assert _decode_page(body)[1] is not None  # the compact decoder took this page
    compact = parse_json(body, PAGE, INDEX, name)
    plain = parse_json(_json_page(*entries, "not an object"), PAGE, INDEX, name)  # type: ignore[arg-type]
    assert compact.versions() == plain.versions()
    for version in compact.versions():
        assert compact.files(version) == plain.files(version)
    assert [f.sha256 for f in compact.files(Version("6.0"))] == [SHA.lower()]
    assert compact.files(Version("5.0")) == compact.files(Version("4.0")) == []
    assert [f.core_metadata for f in compact.files(Version("3.0"))] == ["", ""]
    assert [f.core_metadata for f in compact.files(Version("2.0"))] == [SHA, SHA]
    assert compact.files(Version("1.0")) == []


@pytest.mark.parametrize(
    "odd",
    [{"hashes": "sha256=x"}, {"hashes": [SHA]}, {"core-metadata": 1}, {"core-metadata": [1]}],
    ids=["hashes-string", "hashes-list", "metadata-number", "metadata-list"],
)
def test_a_hash_field_of_another_json_type_reads_the_page_as_plain_json(
    odd: dict[str, object],
) -> None:
    """Such a value fails the compact decoder; the page is read as plain JSON, and the
    entry is judged there (skipped, or its metadata hash not trusted), the others kept."""
    name = canonicalize_name("demo")
    body = _json_page(_entry("demo-2.0.tar.gz", **odd), _entry("demo-1.0.tar.gz"))
    assert _decode_page(body)[1] is None
    releases = parse_json(body, PAGE, INDEX, name)
    assert [f.filename for f in releases.files(Version("1.0"))] == ["demo-1.0.tar.gz"]
    two = releases.files(Version("2.0"))
    if "hashes" in odd:
        assert two == []
    else:
        assert [f.core_metadata for f in two] == [None]


@pytest.mark.parametrize(
    "filename",
    [
        "demo-1.0-cp3\u00b2-cp3\u00b2-manylinux_2_17_x86_64.whl",  # "²": str.isdigit(), not int()
        f"demo-1.0-cp3{'9' * 5000}-none-any.whl",  # more digits than int() takes
        "demo-1.0-\u00b21-py3-none-any.whl",  # a build tag starting with "²"
    ],
    ids=["superscript-minor", "huge-minor", "superscript-build-tag"],
)
def test_a_wheel_name_with_non_ascii_digits_is_skipped(filename: str) -> None:
    body = _json_page(_entry(filename), _entry("demo-1.0.tar.gz"))
    releases = parse_json(body, PAGE, INDEX, canonicalize_name("demo"))
    assert releases.versions() == [Version("1.0")]
    assert [f.filename for f in releases.files(Version("1.0"))] == ["demo-1.0.tar.gz"]
