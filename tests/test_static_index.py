"""The static index of the sets: pip and uv install exactly a locked set from it, with no other
index; files linked or mirrored (every byte checked), foreign directories refused, atomic."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.errors import BotError
from bot.nightly.static_index import (
    MANIFEST,
    IndexContent,
    StaticIndexError,
    constraints,
    write_index,
)
from bot.nightly.static_index_mirror import FILE_MTIME
from bot.nightly.static_index_push import publish_index
from tests.plugins.nixenv import entry, write_lock
from tests.plugins.pypi import IndexServer, make_wheel
from tests.plugins.sshd import SshServer
from tests.plugins.static_http import serve_directory

UV = Path(sys.executable).with_name("uv")


@pytest.fixture
def serve_dir() -> Iterator[functools.partial[str]]:
    """Serve a directory over HTTP on loopback (a plain static server: no negotiation)."""
    with contextlib.ExitStack() as servers:

        def start(root: Path) -> str:
            return servers.enter_context(serve_directory(root))

        yield functools.partial(start)


@pytest.fixture
def demo_repo(tmp_path: Path, pypi_index: IndexServer) -> Path:
    """A repository with one set, demo: alpha 1.0 (needs beta) and beta 2.0, locked for 3.12
    against the loopback index, which also serves a newer beta the lock does not hold."""
    dists = tmp_path / "dists"
    alpha = make_wheel(dists, "alpha", "1.0", requires_dist=["beta"])
    beta = make_wheel(dists, "beta", "2.0", modules={"beta.py": "X = 2\n"})
    newer = make_wheel(dists, "beta", "3.0", modules={"beta.py": "X = 3\n"})
    for path in (alpha, beta, newer):
        pypi_index.publish(path)
    repo = tmp_path / "repo"
    (repo / "nix").mkdir(parents=True)
    (repo / "sets" / "demo").mkdir(parents=True)
    (repo / "sets" / "demo" / "set.yaml").write_text(
        'description: demo\npython: ["3.12"]\nrequirements: [alpha]\n'
    )
    write_lock(
        repo / "sets" / "demo" / "pylock.py312.toml",
        [entry(alpha, "beta"), entry(beta)],
        base_url=f"{pypi_index.root_url}/files/",
        set_name="demo",
        roots=["alpha"],
    )
    return repo


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env |= {"UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    return env


def pip_install(tmp_path: Path, target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pip with no configuration, no cache and no index but the one given."""
    argv = [sys.executable, "-m", "pip", "--isolated", "install", "--no-cache-dir"]
    argv += ["--disable-pip-version-check", "--target", str(target), *args]
    return subprocess.run(
        argv, check=False, env=_isolated_env(tmp_path), capture_output=True, text=True
    )


def installed(target: Path) -> set[str]:
    """name-version of every distribution installed in ``target``."""
    return {p.name.removesuffix(".dist-info") for p in target.glob("*.dist-info")}


def test_pip_installs_the_locked_set_from_the_linked_index(
    demo_repo: Path, tmp_path: Path, pypi_index: IndexServer, serve_dir: functools.partial[str]
) -> None:
    result = write_index(demo_repo, tmp_path / "index")
    assert (result.sets, result.projects, result.files, result.mirrored) == (("demo",), 2, 2, 0)
    root = serve_dir(tmp_path / "index")
    target = tmp_path / "site"
    proc = pip_install(
        tmp_path,
        target,
        "--index-url",
        f"{root}/simple/",
        "-c",
        f"{root}/demo/constraints.txt",
        "alpha",
    )
    assert proc.returncode == 0, proc.stderr
    # beta 3.0 is on the origin index, but the static index only lists the locked 2.0
    assert installed(target) == {"alpha-1.0", "beta-2.0"}
    # files came from their origin URLs; the origin's own pages were never asked
    asked = [r.path for r in pypi_index.requests]
    assert any(p.endswith("beta-2.0-py3-none-any.whl") for p in asked)
    assert not any(p.startswith("/simple/") for p in asked)


def test_pages_name_the_locked_hashes(demo_repo: Path, tmp_path: Path) -> None:
    write_index(demo_repo, tmp_path / "index")
    lock = (demo_repo / "sets" / "demo" / "pylock.py312.toml").read_text()
    page = json.loads((tmp_path / "index" / "simple" / "beta" / "index.json").read_text())
    assert page["meta"] == {"api-version": "1.0"}
    [file] = page["files"]
    assert file["filename"] == "beta-2.0-py3-none-any.whl"
    assert file["hashes"]["sha256"] in lock
    html_page = (tmp_path / "index" / "simple" / "beta" / "index.html").read_text()
    assert f"#sha256={file['hashes']['sha256']}" in html_page
    root = json.loads((tmp_path / "index" / "simple" / "index.json").read_text())
    assert [p["name"] for p in root["projects"]] == ["alpha", "beta"]
    assert (tmp_path / "index" / "demo" / "pylock.py312.toml").read_text() == lock
    assert (tmp_path / "index" / "demo" / "constraints.txt").read_text().splitlines()[1:] == [
        "alpha==1.0",
        "beta==2.0",
    ]


def test_mirrored_index_installs_with_the_origin_gone(
    demo_repo: Path,
    tmp_path: Path,
    pypi_index: IndexServer,
    serve_dir: functools.partial[str],
    interpreters: dict[str, str],
) -> None:
    result = write_index(demo_repo, tmp_path / "index", mirror=True)
    assert result.mirrored == 2
    wheel = tmp_path / "index" / "files" / "beta" / "beta-2.0-py3-none-any.whl"
    metadata = wheel.with_name(wheel.name + ".metadata")
    assert b"Name: beta" in metadata.read_bytes()
    page = json.loads((tmp_path / "index" / "simple" / "beta" / "index.json").read_text())
    meta_sha = hashlib.sha256(metadata.read_bytes()).hexdigest()
    assert page["files"][0]["core-metadata"] == {"sha256": meta_sha}
    html_page = (tmp_path / "index" / "simple" / "beta" / "index.html").read_text()
    assert f'data-core-metadata="sha256={meta_sha}"' in html_page
    pypi_index.close()  # from here on, only the mirror has the files

    root = serve_dir(tmp_path / "index")
    target = tmp_path / "pip-site"
    proc = pip_install(
        tmp_path,
        target,
        "--index-url",
        f"{root}/simple/",
        "-c",
        f"{root}/demo/constraints.txt",
        "alpha",
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha-1.0", "beta-2.0"}

    uv_target = tmp_path / "uv-site"
    lock = tmp_path / "index" / "demo" / "pylock.py312.toml"
    argv = [str(UV), "pip", "install", "--no-index", "--python", interpreters["3.12"]]
    argv += ["--target", str(uv_target), "-r", str(lock)]
    proc = subprocess.run(
        argv, check=False, env=_isolated_env(tmp_path), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(uv_target) == {"alpha-1.0", "beta-2.0"}


def test_uv_installs_the_linked_lock(
    demo_repo: Path, tmp_path: Path, serve_dir: functools.partial[str], interpreters: dict[str, str]
) -> None:
    write_index(demo_repo, tmp_path / "index")
    target = tmp_path / "uv-site"
    argv = [str(UV), "pip", "install", "--no-index", "--python", interpreters["3.12"]]
    argv += ["--target", str(target), "-r", str(tmp_path / "index" / "demo" / "pylock.py312.toml")]
    proc = subprocess.run(
        argv, check=False, env=_isolated_env(tmp_path), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha-1.0", "beta-2.0"}


def test_a_mirrored_file_that_does_not_match_the_lock_is_refused(
    demo_repo: Path, tmp_path: Path
) -> None:
    write_index(demo_repo, tmp_path / "index")
    before = sorted(p.name for p in (tmp_path / "index").rglob("*"))

    def tampered(url: str) -> bytes:
        return b"not the locked wheel"

    with pytest.raises(StaticIndexError, match="is not the locked"):
        write_index(demo_repo, tmp_path / "index", mirror=True, fetch=tampered)
    # the previous index is untouched and nothing half-written is left beside it
    assert sorted(p.name for p in (tmp_path / "index").rglob("*")) == before
    assert leftovers(tmp_path / "index") == []


def test_mirroring_reuses_the_previous_files(demo_repo: Path, tmp_path: Path) -> None:
    write_index(demo_repo, tmp_path / "index", mirror=True)
    lock = demo_repo / "sets" / "demo" / "pylock.py312.toml"
    lock.write_text(lock.read_text() + "# edited: the index is written again\n")

    def offline(url: str) -> bytes:
        raise AssertionError(f"downloaded {url} although the previous index had it")

    result = write_index(demo_repo, tmp_path / "index", mirror=True, fetch=offline)
    assert (result.mirrored, result.unchanged) == (2, False)  # written again, not downloaded


def _inodes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_ino for p in root.rglob("*")}


def test_an_unchanged_index_is_left_as_it_is(demo_repo: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    first = write_index(demo_repo, index)
    before = _inodes(index)
    again = write_index(demo_repo, index)
    assert again.unchanged
    assert not first.unchanged
    assert (again.sets, again.projects, again.files, again.size) == (
        first.sets,
        first.projects,
        first.files,
        first.size,
    )
    assert _inodes(index) == before  # not one file or directory written again


@pytest.mark.parametrize("damage", ["edited", "removed", "added"])
def test_a_damaged_index_is_written_again(demo_repo: Path, tmp_path: Path, damage: str) -> None:
    index = tmp_path / "index"
    write_index(demo_repo, index)
    page = index / "simple" / "alpha" / "index.html"
    good = page.read_bytes()
    if damage == "edited":
        page.write_bytes(good.replace(b"alpha", b"alphx"))
    elif damage == "removed":
        page.unlink()
    else:  # a file of the index's own layout the manifest does not list
        (index / "simple" / "alpha" / "index.htm").write_bytes(good)
    if damage == "added":  # anything the index did not write is still refused, not replaced
        with pytest.raises(StaticIndexError, match="did not write"):
            write_index(demo_repo, index)
        return
    result = write_index(demo_repo, index)
    assert not result.unchanged
    assert page.read_bytes() == good


def test_a_changed_lock_or_mode_writes_the_index_again(demo_repo: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    write_index(demo_repo, index)
    lock = demo_repo / "sets" / "demo" / "pylock.py312.toml"
    text = lock.read_text()
    sha = text.split('sha256 = "', 2)[1][:64]
    lock.write_text(text.replace(sha, "f" * 64))
    assert not write_index(demo_repo, index).unchanged
    assert "f" * 64 in (index / "simple" / "alpha" / "index.html").read_text()
    assert write_index(demo_repo, index).unchanged
    # an index written by an older bot (a manifest of format 1) is written again once
    manifest = json.loads((index / MANIFEST).read_text())
    (index / MANIFEST).write_text(json.dumps({**manifest, "format": 1}))
    assert not write_index(demo_repo, index).unchanged
    assert json.loads((index / MANIFEST).read_text())["format"] == 2


def test_the_night_reads_no_lock_for_an_unchanged_index(
    demo_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.lock import document
    from bot.nightly import publish
    from bot.nightly.options import NightlyOptions
    from bot.nightly.static_index import recorded_sets

    opts = NightlyOptions(repo=demo_repo, store=f"file://{tmp_path / 'cache'}")
    said: list[str] = []
    assert publish.static_index(opts, said.append) == []
    index = tmp_path / "cache" / "python-index"
    assert recorded_sets(demo_repo, index, mirror=False) == ["demo"]
    assert recorded_sets(demo_repo, index, mirror=True) is None  # another mode: write again

    def no_parse(path: Path) -> object:
        raise AssertionError(f"a lock was parsed for an unchanged index: {path}")

    with monkeypatch.context() as m:  # the second night parses no lock at all
        m.setattr(document, "read_lock", no_parse)
        assert publish.static_index(opts, said.append) == []
    assert said[-1] == f"static index: unchanged, 2 files of 1 sets at {index}"
    # a new set (even one without locks) is a change: the sets are found again
    (demo_repo / "sets" / "other").mkdir()
    (demo_repo / "sets" / "other" / "set.yaml").write_text(
        'description: other\npython: ["3.12"]\nrequirements: [alpha]\n'
    )
    assert recorded_sets(demo_repo, index, mirror=False) is None


def test_a_directory_with_foreign_files_is_refused(demo_repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"jpeg")
    code = main(["--repo", str(demo_repo), "index", "write", str(other)])
    assert code == 1
    assert (other / "holiday.jpg").read_bytes() == b"jpeg"
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]

    write_index(demo_repo, tmp_path / "index")
    (tmp_path / "index" / "simple" / "notes.txt").write_text("mine")
    with pytest.raises(StaticIndexError, match=r"did not write: simple/notes\.txt"):
        write_index(demo_repo, tmp_path / "index")
    assert (tmp_path / "index" / "simple" / "notes.txt").read_text() == "mine"


def leftovers(index: Path) -> list[str]:
    """What is beside the index but its lock file and the generation it links to."""
    keep = {f".{index.name}.lock"}
    if index.is_symlink():
        keep.add(os.readlink(index))
    return sorted(
        p.name
        for p in index.parent.iterdir()
        if p.name.startswith(f".{index.name}.") and p.name not in keep
    )


def test_an_interrupted_write_is_healed(demo_repo: Path, tmp_path: Path) -> None:
    write_index(demo_repo, tmp_path / "index")
    # an older bot's write killed between its two renames (its PIDs are gone), a generation
    # and a link of a write killed before its swap
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    (tmp_path / f".index.{dead}.tmp" / "simple").mkdir(parents=True)
    (tmp_path / f".index.{dead}.old").mkdir()
    (tmp_path / ".index.gen-7" / "simple").mkdir(parents=True)
    (tmp_path / ".index.link").symlink_to(".index.gen-7")
    # ... but not what belongs to another index beside it, nor a live older bot's tree
    (tmp_path / ".index.x.gen-1").mkdir()
    (tmp_path / f".index.{os.getpid()}.tmp").mkdir()
    lock = demo_repo / "sets" / "demo" / "pylock.py312.toml"
    lock.write_text(lock.read_text() + "# edited: the index is written again\n")
    assert not write_index(demo_repo, tmp_path / "index").unchanged
    assert leftovers(tmp_path / "index") == [f".index.{os.getpid()}.tmp", ".index.x.gen-1"]
    assert os.readlink(tmp_path / "index") == ".index.gen-2"
    manifest = json.loads((tmp_path / "index" / MANIFEST).read_text())
    assert "simple/beta/index.html" in manifest["files"]


def test_locks_that_disagree_on_a_file_are_refused(demo_repo: Path, tmp_path: Path) -> None:
    other = demo_repo / "sets" / "other"
    other.mkdir()
    (other / "set.yaml").write_text('description: other\npython: ["3.12"]\nrequirements: [alpha]\n')
    lock = (demo_repo / "sets" / "demo" / "pylock.py312.toml").read_text()
    sha = lock.split('sha256 = "', 2)[1][:64]
    (other / "pylock.py312.toml").write_text(lock.replace(sha, "0" * 64))
    with pytest.raises(StaticIndexError, match="two locks name it with different hashes"):
        write_index(demo_repo, tmp_path / "index")


def test_constraints_mark_what_differs_between_pythons() -> None:
    pins = {
        "a": {"3.12": ("1.0", None), "3.13": ("1.0", None)},
        "b": {"3.12": ("1.0", None), "3.13": ("2.0", None)},
        "c": {"3.13": ("3.0", "sys_platform == 'linux'")},
    }
    lines = constraints(pins, ["3.12", "3.13"]).splitlines()[1:]
    assert lines == [
        "a==1.0",
        "b==1.0 ; python_version == '3.12'",
        "b==2.0 ; python_version == '3.13'",
        "c==3.0 ; python_version == '3.13' and (sys_platform == 'linux')",
    ]
    assert IndexContent().file_count == 0


def test_cli_writes_and_reports(
    demo_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--repo", str(demo_repo), "index", "write", str(tmp_path / "i"), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["sets"], data["files"]) == (["demo"], 2)
    assert main(["--repo", str(demo_repo), "index", "write", str(tmp_path / "i"), "nope"]) == 1
    assert "no such set: nope" in capsys.readouterr().err


def test_published_beside_a_file_cache(demo_repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "nix-cache-info").write_text("StoreDir: /nix/store\n")
    result = publish_index(demo_repo, f"file://{cache}?compression=zstd")
    assert result is not None
    assert (cache / "python-index" / "simple" / "alpha" / "index.html").is_file()
    assert publish_index(demo_repo, "ssh-ng://cache.invalid") is None


def test_published_beside_an_rsync_cache(demo_repo: Path, tmp_path: Path, sshd: SshServer) -> None:
    remote = tmp_path / "srv" / "cache"
    remote.mkdir(parents=True)
    uri = f"rsync+ssh://{sshd.host}{remote}"
    result = publish_index(demo_repo, uri, ssh_config=sshd.ssh_config)
    assert result is not None
    assert result.files == 2
    page = remote / "python-index" / "simple" / "beta" / "index.html"
    assert "beta-2.0-py3-none-any.whl" in page.read_text()
    # a second night replaces it (the files there are its own) ...
    assert publish_index(demo_repo, uri, ssh_config=sshd.ssh_config) is not None
    # ... but a file someone else put there stops it, and stays
    (remote / "python-index" / "simple" / "theirs.html").write_text("x")
    with pytest.raises(StaticIndexError, match=r"did not write: simple/theirs\.html"):
        publish_index(demo_repo, uri, ssh_config=sshd.ssh_config)
    assert (remote / "python-index" / "simple" / "theirs.html").read_text() == "x"

    # a directory of its own (--static-index-to): the index is the directory itself
    www = tmp_path / "www"
    result = publish_index(
        demo_repo, f"rsync+ssh://{sshd.host}{www}", ssh_config=sshd.ssh_config, subdir=""
    )
    assert result is not None
    assert (www / "demo" / "constraints.txt").is_file()
    assert (www / MANIFEST).is_file()
    (www / "index.php").write_text("<?php")
    with pytest.raises(StaticIndexError, match=r"did not write: index\.php"):
        publish_index(
            demo_repo, f"rsync+ssh://{sshd.host}{www}", ssh_config=sshd.ssh_config, subdir=""
        )


def test_the_night_writes_it_beside_its_cache_and_reports_a_failure(
    demo_repo: Path, tmp_path: Path
) -> None:
    from bot.nightly.options import NightlyOptions
    from bot.nightly.publish import static_index

    said: list[str] = []
    opts = NightlyOptions(repo=demo_repo, store=f"file://{tmp_path / 'cache'}")
    assert static_index(opts, said.append) == []
    assert (tmp_path / "cache" / "python-index" / "demo" / "constraints.txt").is_file()
    assert said == [f"static index: 2 files of 1 sets at {tmp_path / 'cache' / 'python-index'}"]
    (tmp_path / "cache" / "python-index" / "stray").write_text("x")
    [error] = static_index(opts, said.append)
    assert error.startswith("static index: ")
    assert "did not write: stray" in error
    opts.static_index = False
    assert static_index(opts, said.append) == []

    # a cache that is a Nix store has no directory: nothing, unless a directory is given
    said.clear()
    opts = NightlyOptions(repo=demo_repo, store="ssh-ng://cache.invalid")
    assert static_index(opts, said.append) == []
    assert "see --static-index-to" in said[0]
    opts.static_index_to = f"file://{tmp_path / 'www'}"
    assert static_index(opts, said.append) == []
    assert (tmp_path / "www" / "simple" / "alpha" / "index.json").is_file()
    opts.static_index_to = "ssh-ng://cache.invalid"
    [error] = static_index(opts, said.append)
    assert "is not a directory" in error
    opts.static_index_to = "bogus:nothing"  # one error line, as before, not an exception
    [error] = static_index(opts, said.append)
    assert "unsupported cache URL scheme" in error


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ('name = "beta"', 'name = "../beta"', "[Nn]ame"),
        ('name = "beta-2.0-py3-none-any.whl"', 'name = "../../etc/x.whl"', "wheel filename"),
    ],
)
def test_names_that_would_leave_the_index_are_refused(
    demo_repo: Path, tmp_path: Path, old: str, new: str, says: str
) -> None:
    lock = demo_repo / "sets" / "demo" / "pylock.py312.toml"
    text = lock.read_text()
    assert old in text
    lock.write_text(text.replace(old, new))
    # packaging.pylock refuses these first; the index checks names it writes again itself
    with pytest.raises(BotError, match=says):
        write_index(demo_repo, tmp_path / "index", mirror=True, fetch=lambda url: b"")
    assert not (tmp_path / "index").exists()


def test_the_index_checks_the_names_it_writes_itself() -> None:
    from bot.nightly.static_index import _add_package

    sha = "a" * 64
    record = {"name": "x-1.0-py3-none-any.whl", "url": "https://h/x.whl", "hashes": {"sha256": sha}}
    with pytest.raises(StaticIndexError, match="not a project name"):
        _add_package(IndexContent(), {"name": "../x", "wheels": [record]}, "lock")
    with pytest.raises(StaticIndexError, match="plain name"):
        _add_package(IndexContent(), {"name": "x", "wheels": [{**record, "name": "../x.whl"}]}, "l")
    with pytest.raises(StaticIndexError, match="no sha256"):
        _add_package(IndexContent(), {"name": "x", "wheels": [{**record, "hashes": {}}]}, "l")
    content = IndexContent()
    _add_package(content, {"name": "X_Y", "wheels": [record]}, "l")
    assert list(content.projects) == ["x-y"]


def test_mirrored_files_are_kept_by_hash_between_runs(demo_repo: Path, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    first = write_index(demo_repo, tmp_path / "a", mirror=True, downloads=downloads)
    assert first.mirrored == 2
    assert len(list(downloads.iterdir())) == 2
    wheel = tmp_path / "a" / "files" / "beta" / "beta-2.0-py3-none-any.whl"
    assert wheel.stat().st_mtime == FILE_MTIME  # rsync's quick check skips it next night

    def offline(url: str) -> bytes:
        raise AssertionError(f"downloaded {url} although the download cache had it")

    # a fresh directory: everything from the download cache, nothing fetched
    write_index(demo_repo, tmp_path / "b", mirror=True, downloads=downloads, fetch=offline)
    assert (tmp_path / "b" / "files" / "beta" / wheel.name).read_bytes() == wheel.read_bytes()

    # a cache entry that is not what its name says is not used
    for cached in downloads.iterdir():
        cached.write_bytes(b"rotten")
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return (
            wheel.read_bytes()
            if url.endswith(wheel.name)
            else (tmp_path / "a" / "files" / "alpha" / url.rsplit("/", 1)[1]).read_bytes()
        )

    write_index(demo_repo, tmp_path / "c", mirror=True, downloads=downloads, fetch=fetch)
    assert len(fetched) == 2


def test_a_locked_wheel_that_is_no_zip_is_one_error(
    demo_repo: Path, tmp_path: Path, pypi_index: IndexServer
) -> None:
    junk = tmp_path / "dists" / "gamma-1.0-py3-none-any.whl"
    junk.write_bytes(b"not a zip at all")
    write_lock(
        demo_repo / "sets" / "demo" / "pylock.py312.toml",
        [entry(junk)],
        base_url=f"{pypi_index.root_url}/files/",
        set_name="demo",
    )
    with pytest.raises(StaticIndexError, match="not a readable wheel"):
        write_index(demo_repo, tmp_path / "index", mirror=True, fetch=lambda url: junk.read_bytes())
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("damage", ["unknown-method", "encrypted", "corrupt-deflate"])
def test_a_locked_wheel_with_a_damaged_metadata_member_is_one_error(
    demo_repo: Path, tmp_path: Path, pypi_index: IndexServer, damage: str
) -> None:
    from tests.test_index_archives import damaged_zip

    good = make_wheel(tmp_path / "good", "gamma", "1.0")
    bad = tmp_path / "dists" / good.name
    bad.write_bytes(damaged_zip(good.read_bytes(), "gamma-1.0.dist-info/METADATA", damage))
    write_lock(
        demo_repo / "sets" / "demo" / "pylock.py312.toml",
        [entry(bad)],
        base_url=f"{pypi_index.root_url}/files/",
        set_name="demo",
    )
    with pytest.raises(StaticIndexError, match="not a readable wheel") as info:
        write_index(demo_repo, tmp_path / "index", mirror=True, fetch=lambda url: bad.read_bytes())
    assert info.value.where == good.name
    assert not (tmp_path / "index").exists()


# --- the exact hashes, names and requires-python ---------------------------------------------


def _locked_sha256(lock: Path) -> dict[tuple[str, str], str]:
    """(normalized project, file name) -> sha256, as the lock states each file."""
    import tomllib

    from packaging.utils import canonicalize_name

    out = {}
    for package in tomllib.loads(lock.read_text())["packages"]:
        project = str(canonicalize_name(package["name"]))
        for record in [
            *package.get("wheels", []),
            *([package["sdist"]] if "sdist" in package else []),
        ]:
            out[(project, record["name"])] = record["hashes"]["sha256"]
    return out


def test_every_link_carries_its_own_files_locked_hash(demo_repo: Path, tmp_path: Path) -> None:
    write_index(demo_repo, tmp_path / "index")
    locked = _locked_sha256(demo_repo / "sets" / "demo" / "pylock.py312.toml")
    assert len(set(locked.values())) == 2  # two files, two different hashes
    seen = {}
    for project in ("alpha", "beta"):
        page = tmp_path / "index" / "simple" / project
        html_page = (page / "index.html").read_text()
        for file in json.loads((page / "index.json").read_text())["files"]:
            sha = file["hashes"]["sha256"]
            assert sha == locked[(project, file["filename"])]
            assert f'/{file["filename"]}#sha256={sha}"' in html_page
            seen[(project, file["filename"])] = sha
    assert seen == locked


@pytest.fixture
def odd_repo(demo_repo: Path, tmp_path: Path, pypi_index: IndexServer) -> Path:
    """demo_repo with a second set, odd: the project ``Foo_Bar.baz`` (so its METADATA and
    wheel name it; the lock, as PEP 751 requires, by its normalized name), with a
    requires-python holding ``<`` and ``>``."""
    wheel = make_wheel(tmp_path / "dists", "Foo_Bar.baz", "1.0", requires_python=">=3.8,<4")
    pypi_index.publish(wheel)
    (demo_repo / "sets" / "odd").mkdir()
    (demo_repo / "sets" / "odd" / "set.yaml").write_text(
        'description: odd\npython: ["3.12"]\nrequirements: [Foo_Bar.baz]\n'
    )
    lock = write_lock(
        demo_repo / "sets" / "odd" / "pylock.py312.toml",
        [entry(wheel)],
        base_url=f"{pypi_index.root_url}/files/",
        set_name="odd",
    )
    text = lock.read_text()
    assert 'name = "foo-bar-baz"\n' in text
    lock.write_text(
        text.replace(
            'name = "foo-bar-baz"\n', 'name = "foo-bar-baz"\nrequires-python = ">=3.8,<4"\n'
        )
    )
    return demo_repo


def test_project_names_are_normalized_and_requires_python_escaped(
    odd_repo: Path, tmp_path: Path, serve_dir: functools.partial[str]
) -> None:
    write_index(odd_repo, tmp_path / "index", sets=["odd"])
    simple = tmp_path / "index" / "simple"
    assert sorted(p.name for p in simple.iterdir()) == ["foo-bar-baz", "index.html", "index.json"]
    root_html = (simple / "index.html").read_text()
    assert '<a href="foo-bar-baz/">foo-bar-baz</a>' in root_html
    assert "Foo_Bar" not in root_html
    assert json.loads((simple / "index.json").read_text())["projects"] == [{"name": "foo-bar-baz"}]
    page = (simple / "foo-bar-baz" / "index.html").read_text()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in page
    assert "<4" not in page
    assert ">=3.8" not in page
    [file] = json.loads((simple / "foo-bar-baz" / "index.json").read_text())["files"]
    assert file["requires-python"] == ">=3.8,<4"  # JSON: the value itself
    # a real installer asks for the normalized name and reads the attribute
    root = serve_dir(tmp_path / "index")
    proc = pip_install(tmp_path, tmp_path / "site", "--index-url", f"{root}/simple/", "Foo_Bar.baz")
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "site") == {"foo_bar_baz-1.0"}


# --- one writer at a time, atomic swaps --------------------------------------------------------

#: a writer held inside the lock: a mirroring write whose first download waits for a signal
HELD_WRITER = """
import sys, time
from pathlib import Path
from bot.nightly.static_index import write_index

repo, dest, dists, signals = map(Path, sys.argv[1:5])

def fetch(url):
    (signals / "inside").touch()
    while not (signals / "go").exists():
        time.sleep(0.02)
    return (dists / url.rsplit("/", 1)[1]).read_bytes()

print(write_index(repo, dest, mirror=True, fetch=fetch).mirrored)
"""


def _held_writer(repo: Path, dest: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    signals = tmp_path / "signals"
    signals.mkdir(exist_ok=True)
    argv = [sys.executable, "-c", HELD_WRITER, str(repo), str(dest), str(tmp_path / "dists")]
    proc = subprocess.Popen(
        [*argv, str(signals)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (signals / "inside").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the writer never got inside"
        time.sleep(0.02)
    return proc, signals


def _cli(repo: Path, dest: Path, tmp_path: Path, wait: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NIXPKGS_PYTHON_LOCK_WAIT": wait, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    argv = [str(Path(sys.executable).with_name("nixpkgs-python")), "--repo", str(repo)]
    return subprocess.Popen(
        [*argv, "index", "write", str(dest)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _contents(index: Path) -> dict[str, bytes]:
    return {
        p.relative_to(index).as_posix(): p.read_bytes() for p in index.rglob("*") if p.is_file()
    }


def test_a_second_writer_waits_for_the_first(demo_repo: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    write_index(demo_repo, index)
    first = _contents(index)
    held, signals = _held_writer(demo_repo, index, tmp_path)
    try:
        assert (tmp_path / ".index.gen-2").is_dir()  # the held writer's generation
        # a writer with a short wait gives up with one clear error, touching nothing
        quick = _cli(demo_repo, index, tmp_path, wait="0.5")
        out, err = quick.communicate(timeout=60)
        assert quick.returncode == 1, (out, err)
        assert f"another writer (pid {held.pid}) has been writing the static index" in err
        assert "Traceback" not in err
        # one with time waits: it neither heals the held writer's tree nor writes
        waiting = _cli(demo_repo, index, tmp_path, wait="120")
        time.sleep(1.5)
        assert waiting.poll() is None
        assert (tmp_path / ".index.gen-2").is_dir()
        assert os.readlink(index) == ".index.gen-1"
        assert _contents(index) == first
    finally:
        (signals / "go").touch()
        out, err = held.communicate(timeout=120)
    assert held.returncode == 0, err
    assert out.strip() == "2"  # the held writer finished its mirrored index: 2 files
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    # then the waiting one wrote its own (linked) index after it
    assert os.readlink(index) == ".index.gen-3"
    assert leftovers(index) == []
    assert not json.loads((index / MANIFEST).read_text())["mirrored"]
    assert _contents(index) == first


READER_WRITER = """
import sys
import time
from pathlib import Path
from bot.nightly.static_index import write_index

repo, dest, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
lock = repo / "sets" / "demo" / "pylock.py312.toml"
for i in range(count):
    lock.write_text(lock.read_text() + f"# edit {i}\\n")
    assert not write_index(repo, dest).unchanged
"""


def test_a_reader_never_sees_the_index_missing(
    demo_repo: Path, tmp_path: Path, serve_dir: functools.partial[str]
) -> None:
    import urllib.error
    import urllib.request

    index = tmp_path / "index"
    write_index(demo_repo, index)
    root = serve_dir(index)
    writes = 40
    writer = subprocess.Popen(
        [sys.executable, "-c", READER_WRITER, str(demo_repo), str(index), str(writes)],
        stderr=subprocess.PIPE,
        text=True,
    )
    reads, missing, generations = 0, [], set()
    while writer.poll() is None:
        for path in ("/simple/index.html", "/simple/beta/index.json", "/demo/constraints.txt"):
            try:
                with urllib.request.urlopen(root + path, timeout=10) as answer:
                    assert answer.status == 200
                    assert answer.read()
            except urllib.error.HTTPError as exc:
                missing.append(f"{path}: {exc.code}")
            reads += 1
        with contextlib.suppress(OSError):
            generations.add(os.readlink(index))
        # and straight from the file system, as a file:// reader
        try:
            (index / MANIFEST).read_bytes()
        except OSError as exc:
            missing.append(f"{MANIFEST}: {exc}")
    assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    assert missing == []
    assert reads > writes  # it did read while the writes went on
    assert len(generations) > 1  # ... and across swaps
    assert os.readlink(index) == f".index.gen-{writes + 1}"
    assert leftovers(index) == []


def test_a_failed_swap_keeps_the_last_good_index(
    demo_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    index = tmp_path / "index"
    write_index(demo_repo, index)
    good = _contents(index)
    lock = demo_repo / "sets" / "demo" / "pylock.py312.toml"
    lock.write_text(lock.read_text() + "# edited: the index is written again\n")
    real_replace = os.replace

    def failing(src: object, dst: object) -> None:
        if Path(str(dst)) == index:
            raise OSError(errno.EIO, "injected failure")
        real_replace(src, dst)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(os, "replace", failing)
        with pytest.raises(StaticIndexError, match="cannot put the new static index in place"):
            write_index(demo_repo, index)
        assert os.readlink(index) == ".index.gen-1"
        assert _contents(index) == good
        assert leftovers(index) == []
        # an older bot's real directory: renamed aside, then back when the link fails
        target = index.parent / os.readlink(index)
        index.unlink()
        target.rename(index)
        with pytest.raises(StaticIndexError, match="cannot put the new static index in place"):
            write_index(demo_repo, index)
        assert index.is_dir()
        assert not index.is_symlink()
        assert _contents(index) == good
        assert leftovers(index) == []
    # without the failure, the real directory becomes a generation behind a link
    assert not write_index(demo_repo, index).unchanged
    assert os.readlink(index) == ".index.gen-1"
    assert leftovers(index) == []


def test_an_interrupted_migration_puts_the_old_directory_back(
    demo_repo: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    write_index(demo_repo, index)
    good = _contents(index)
    # killed between renaming an older bot's directory aside and linking the new one
    target = index.parent / os.readlink(index)
    index.unlink()
    target.rename(tmp_path / ".index.previous")
    (tmp_path / ".index.gen-1").mkdir()  # the new generation, never linked
    result = write_index(demo_repo, index)
    assert result.unchanged  # the last good index is back, and it is current
    assert index.is_dir()
    assert not index.is_symlink()
    assert _contents(index) == good
    assert leftovers(index) == []


def test_a_killed_writers_leftovers_are_healed(demo_repo: Path, tmp_path: Path) -> None:
    import signal

    index = tmp_path / "index"
    write_index(demo_repo, index)
    good = _contents(index)
    held, _signals = _held_writer(demo_repo, index, tmp_path)
    os.kill(held.pid, signal.SIGKILL)
    held.communicate(timeout=60)
    assert held.returncode == -signal.SIGKILL
    assert (tmp_path / ".index.gen-2").is_dir()  # what it left: its unfinished generation
    assert _contents(index) == good  # readers still have the last good index

    def fetch(url: str) -> bytes:
        return (tmp_path / "dists" / url.rsplit("/", 1)[1]).read_bytes()

    started = time.monotonic()
    result = write_index(demo_repo, index, mirror=True, fetch=fetch, wait=30)
    assert time.monotonic() - started < 20  # the kernel released its lock: no wait
    assert result.mirrored == 2
    assert leftovers(index) == []
    assert os.readlink(index) == ".index.gen-2"
    assert json.loads((index / MANIFEST).read_text())["mirrored"]


def test_the_rsync_host_gets_real_directories(
    demo_repo: Path, tmp_path: Path, sshd: SshServer
) -> None:
    remote = tmp_path / "srv" / "cache"
    remote.mkdir(parents=True)
    uri = f"rsync+ssh://{sshd.host}{remote}"
    assert publish_index(demo_repo, uri, ssh_config=sshd.ssh_config) is not None
    index = remote / "python-index"
    assert index.is_dir()
    assert not index.is_symlink()
    assert not [p for p in index.rglob("*") if p.is_symlink()]
    assert sorted(p.name for p in remote.iterdir()) == ["python-index"]  # nothing beside it
    assert "beta-2.0-py3-none-any.whl" in (index / "simple" / "beta" / "index.html").read_text()


def test_the_night_says_it_waits_and_reports_a_held_lock(
    demo_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.nightly.options import NightlyOptions
    from bot.nightly.publish import static_index

    index = tmp_path / "cache" / "python-index"
    opts = NightlyOptions(repo=demo_repo, store=f"file://{tmp_path / 'cache'}")
    assert static_index(opts, [].append) == []
    lock = demo_repo / "sets" / "demo" / "pylock.py312.toml"
    lock.write_text(lock.read_text() + "# edited: the index is written again\n")
    held, signals = _held_writer(demo_repo, index, tmp_path)
    said: list[str] = []
    try:
        monkeypatch.setenv("NIXPKGS_PYTHON_LOCK_WAIT", "0.5")
        [error] = static_index(opts, said.append)
    finally:
        (signals / "go").touch()
        held.communicate(timeout=120)
    assert said == [f"static index: waiting for another writer (pid {held.pid})"]
    assert error.startswith(f"static index: {index}: another writer (pid {held.pid})")
    assert held.returncode == 0
    monkeypatch.delenv("NIXPKGS_PYTHON_LOCK_WAIT")
    assert static_index(opts, said.append) == []  # after it, the night writes its own
    assert not json.loads((index / MANIFEST).read_text())["mirrored"]
    assert leftovers(index) == []
