"""Parsing `generate`'s inputs without fetching anything: --overrides sources (the git form of
pypi2nix mis-parsed URLs with query strings; this one goes through urllib.parse), revisions,
and requirements files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import BotError
from bot.generate.command import read_requirements
from bot.generate.sources import Source, check_rev, parse_source

REV = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("spec", "url", "path"),
    [
        (f"git+file:///srv/repo?rev={REV}#path=overrides", "file:///srv/repo", "overrides"),
        (f"git+file:///srv/repo?rev={REV}", "file:///srv/repo", ""),
        (f"git+file:///srv/repo?rev={REV}#path=.", "file:///srv/repo", ""),
        (
            f"git+file://localhost/srv/repo?rev={REV}#path=a/b.nix",
            "file://localhost/srv/repo",
            "a/b.nix",
        ),
        (
            f"git+https://example.org/o/r.git?rev={REV}#path=nix/overrides",
            "https://example.org/o/r.git",
            "nix/overrides",
        ),
        (
            f"git+https://example.org:8443/o/r?rev={REV.upper()}#path=x%20y",
            "https://example.org:8443/o/r",
            "x y",
        ),
        (
            f"git+ssh://git@example.org/o/r.git?rev={REV}#path=o",
            "ssh://git@example.org/o/r.git",
            "o",
        ),
    ],
)
def test_git_sources(spec: str, url: str, path: str) -> None:
    source = parse_source(spec, Path("/"))
    assert source == Source(
        spec, "git", url=url, rev=REV, path=path, type="file" if path.endswith(".nix") else None
    )


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("git+file:///srv/repo#path=overrides", "needs exactly one ?rev="),
        ("git+file:///srv/repo?rev=#path=overrides", "needs exactly one ?rev="),
        (f"git+file:///srv/repo?rev={REV}&rev={REV}", "needs exactly one ?rev="),
        ("git+file:///srv/repo?rev=main#path=overrides", "'main' is not a full commit id"),
        (f"git+file:///srv/repo?rev={REV[:12]}", "is not a full commit id"),
        (f"git+file:///srv/repo?rev={REV}0", "is not a full commit id"),
        (f"git+file:///srv/repo?rev={REV[:-1]}g", "is not a full commit id"),
        (f"git+file:///srv/repo?rev={REV}&ref=main#path=o", "unknown query parameter(s) ref"),
        (f"git+https://example.org/r?rev={REV}&x=1&y=2", "unknown query parameter(s) x, y"),
        (f"git+file:///srv/repo?rev={REV}#overrides", "cannot read the fragment"),
        (f"git+file:///srv/repo?rev={REV}#path=a&dir=b", "cannot read the fragment"),
        (f"git+file:///srv/repo?rev={REV}#path=../etc", "stay inside it"),
        (f"git+file:///srv/repo?rev={REV}#path=/etc", "stay inside it"),
        (f"git+file://srv/repo?rev={REV}", "needs an absolute path"),
        (f"git+https:///repo?rev={REV}", "has no host"),
        (f"git+ftp://example.org/r?rev={REV}", "unsupported git URL scheme 'git+ftp'"),
        (f"git+://example.org/r?rev={REV}", "unsupported git URL scheme"),
        ("https://example.org/overrides", "cannot tell what the URL holds"),
        ("https:///x.nix", "has no host"),
        ("file:///srv/overrides.nix", "file:// URLs are not overrides sources"),
        ("no/such/dir", "overrides source not found"),
    ],
)
def test_bad_sources(spec: str, fragment: str) -> None:
    with pytest.raises(BotError) as info:
        parse_source(spec, Path("/nonexistent-cwd"))
    assert fragment in str(info.value)
    assert info.value.where is not None


def test_url_and_local_sources(tmp_path: Path) -> None:
    assert parse_source("https://e.org/a/o.nix?x=1", tmp_path).type == "file"
    assert parse_source("https://e.org/archive/v1.tar.gz", tmp_path).type == "directory"
    (tmp_path / "dir").mkdir()
    (tmp_path / "o.nix").write_text("self: super: { }\n")
    (tmp_path / "o.txt").write_text("")
    assert parse_source("dir", tmp_path) == Source(
        "dir", "path", path=str(tmp_path / "dir"), type="directory"
    )
    assert parse_source(str(tmp_path / "o.nix"), Path("/")).type == "file"
    with pytest.raises(BotError, match=r"a directory or a \.nix file"):
        parse_source("o.txt", tmp_path)


def test_check_rev() -> None:
    assert check_rev(REV.upper(), "x") == REV
    with pytest.raises(BotError, match="full commit id"):
        check_rev("HEAD", "--default-overrides-rev")


def test_read_requirements(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\n\nrequests[socks] >= 2  # why\nattrs; python_version >= '3'\n")
    located = read_requirements(path)
    assert [str(r.value) for r in located] == ["requests[socks]>=2", 'attrs; python_version >= "3"']
    assert [r.where for r in located] == [f"{path}:3", f"{path}:4"]
    path.write_text("# nothing\n")
    with pytest.raises(BotError, match="lists no packages"):
        read_requirements(path)
    path.write_text("ok\nfoo @ https://example.org/foo.whl\n")
    with pytest.raises(BotError, match="direct URL") as info:
        read_requirements(path)
    assert info.value.where == f"{path}:2"
    assert "--index-url" in str(info.value)
    with pytest.raises(BotError, match="requirements file not found"):
        read_requirements(tmp_path / "missing.txt")
