"""Building against nixpkgs by default: the pin, its release's facts, `nixpkgs update`, and a
stand-in nixpkgs whose outputs can only be substituted from a loopback signed cache."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.nix import run_nix
from bot.model.nixpkgs import PinError, PinUnavailableError, ensure_pin, read_pin, release_of
from tests.harness import git
from tests.plugins.nixenv import NixRepo, lock_demo
from tests.plugins.pypi import IndexServer
from tests.plugins.standin import make_standin, serve
from tests.plugins.static_http import serve_directory

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_pin_is_a_supported_release() -> None:
    pin = read_pin(ROOT)
    assert pin.release == "26.05"
    assert pin.branch == "nixos-26.05"
    assert pin.rev in pin.url
    assert release_of(ROOT).systems == (
        "aarch64-darwin",
        "aarch64-linux",
        "x86_64-darwin",
        "x86_64-linux",
    )
    assert release_of(ROOT).macos_min == (14, 0)
    assert release_of(ROOT).glibc == (2, 42)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rev", "123", "field 'rev' is malformed"),
        ("sha256", "not-a-hash", "field 'sha256' is not a sha256 hash"),
        ("release", "19.03", "release '19.03' is not supported"),
        ("url", "ftp://x/y.tar.gz", "not an http(s) or file URL"),
    ],
)
def test_a_bad_pin_is_one_error_naming_the_file(
    nix_repo: NixRepo, capsys: pytest.CaptureFixture[str], field: str, value: str, message: str
) -> None:
    _own_pin(nix_repo, **{field: value})
    assert main(["--repo", str(nix_repo.root), "build"]) == 1
    err = capsys.readouterr().err
    assert "nix/nixpkgs.json" in err
    assert message in err
    assert "Traceback" not in err


def _own_pin(repo: NixRepo, **fields: str) -> Path:
    """Give the test repository its own nix/ (a copy) with a pin of ``fields``."""
    nix = repo.root / "nix"
    if nix.is_symlink():
        nix.unlink()
        subprocess.run(["cp", "-r", str(ROOT / "nix"), str(nix)], check=True)
    data = json.loads((nix / "nixpkgs.json").read_text())
    data.update(fields)
    (nix / "nixpkgs.json").write_text(json.dumps(data))
    return nix / "nixpkgs.json"


@pytest.fixture
def tarball_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server for tarballs; (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as url:
        yield url, root


def _tarball(path: Path, top: str, files: dict[str, str]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue(), mtime=0))


def _prefetch(url: str) -> str:
    proc = run_nix("nix-prefetch-url", ["--unpack", url], substituters=None)
    base32 = proc.stdout.strip().splitlines()[-1]
    sri = run_nix("nix", ["hash", "to-sri", "--type", "sha256", base32])
    return sri.stdout.strip()


def test_the_pin_is_fetched_and_checked_against_its_hash(
    nix_repo: NixRepo, tarball_server: tuple[str, Path]
) -> None:
    base, www = tarball_server
    rev = os.urandom(20).hex()  # a new tarball each run: nothing in the store has it yet
    _tarball(
        www / f"{rev}.tar.gz", f"nixpkgs-{rev}", {"default.nix": f"# {rev}\n{{ ... }}: {{ }}\n"}
    )
    url = f"{base}/{rev}.tar.gz"
    good = _prefetch(url)
    _own_pin(nix_repo, rev=rev, url=url, sha256=good)
    path = ensure_pin(nix_repo.root)
    assert Path(path, "default.nix").read_text().startswith(f"# {rev}")
    (www / f"{rev}.tar.gz").unlink()
    assert ensure_pin(nix_repo.root) == path  # now from the store, no download

    # another tarball under a pinned hash that is not its own: one error naming the pin
    other = os.urandom(20).hex()
    _tarball(www / f"{other}.tar.gz", "nixpkgs", {"default.nix": "{ ... }: { tampered = 1; }\n"})
    _own_pin(nix_repo, rev=other, url=f"{base}/{other}.tar.gz", sha256=good)
    with pytest.raises(PinError, match="does not match the pinned sha256") as exc:
        ensure_pin(nix_repo.root)
    assert "nix/nixpkgs.json" in str(exc.value)

    # nothing at the URL (a machine without the network): "unavailable", naming the way out
    _own_pin(nix_repo, rev=os.urandom(20).hex(), url=f"{base}/gone.tar.gz", sha256=good)
    with pytest.raises(PinUnavailableError, match="cannot fetch") as unavailable:
        ensure_pin(nix_repo.root)
    assert "--standalone" in str(unavailable.value)


def test_a_pin_this_machine_cannot_fetch_is_tried_again_later(
    nix_repo: NixRepo, tarball_server: tuple[str, Path], tmp_path: Path
) -> None:
    """On the embedded defaults the night remembers that the pin could not be fetched: it
    says so every run, fetches again only after the retry time (an hour, doubling), and a
    changed pin or an explicit one is fetched at once."""
    from bot.model.nixpkgs import PIN_FAILURE_FILE, remembered_failure
    from bot.nightly.options import NightlyOptions
    from bot.nightly.per_set import choose_nixpkgs

    base, www = tarball_server
    rev = os.urandom(20).hex()
    tarball = www / f"{rev}.tar.gz"
    _tarball(tarball, f"nixpkgs-{rev}", {"default.nix": f"# {rev}\n{{ ... }}: {{ }}\n"})
    good = _prefetch(f"{base}/{rev}.tar.gz")
    _own_pin(nix_repo, rev=rev, url=f"{base}/{rev}.tar.gz", sha256=good)
    tarball.rename(www / "away")  # the pin's host is unreachable
    memo = tmp_path / "cache" / PIN_FAILURE_FILE

    def night(now: float, *, fallback: bool = True) -> tuple[str | None, bool]:
        opts = NightlyOptions(
            repo=nix_repo.root, cache_dir=tmp_path / "cache", standalone_fallback=fallback
        )
        note = choose_nixpkgs(opts, now=now)
        return note, opts.nixpkgs

    t0 = 1_800_000_000.0
    note, with_pin = night(t0)
    assert not with_pin
    assert note is not None
    assert "the pinned nixpkgs is not available on this machine (cannot fetch" in note
    assert "using the standalone interpreters" in note
    assert json.loads(memo.read_text())["failures"] == 1

    (www / "away").rename(tarball)  # it could be fetched now, but is not tried yet
    note, with_pin = night(t0 + 600)
    assert not with_pin
    assert note is not None
    assert "at 2027-01-15 08:00 UTC, tried again after 2027-01-15 09:00 UTC" in note
    assert str(memo) in note

    # after the retry time it is fetched: the pin is used and the failure forgotten
    assert night(t0 + 3601) == (None, True)
    assert not memo.exists()

    # a new pin that cannot be fetched either: a failure of its own, then the wait doubles
    _own_pin(nix_repo, rev=os.urandom(20).hex(), url=f"{base}/gone.tar.gz", sha256=good)
    assert night(t0 + 4000)[1] is False
    assert night(t0 + 4000 + 3601)[1] is False
    assert json.loads(memo.read_text())["failures"] == 2
    assert remembered_failure(memo, nix_repo.root, t0 + 4000 + 3601 + 7199) is not None
    assert remembered_failure(memo, nix_repo.root, t0 + 4000 + 3601 + 7201) is None
    # asked for explicitly (not the embedded defaults), the pin is always fetched: an error
    with pytest.raises(PinUnavailableError, match="cannot fetch"):
        night(t0 + 4000 + 3700, fallback=False)


def test_nixpkgs_update_follows_the_branch(
    nix_repo: NixRepo, tarball_server: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, www = tarball_server
    upstream = nix_repo.root.parent / "nixpkgs-upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "nixos-26.05")

    def commit(text: str) -> str:
        (upstream / "default.nix").write_text(text)
        git(upstream, "add", "default.nix")
        git(upstream, "commit", "-q", "-m", text[:20])
        rev = git(upstream, "rev-parse", "HEAD")
        archive = subprocess.run(
            ["git", "archive", "--format=tar", f"--prefix=nixpkgs-{rev}/", rev],
            cwd=upstream,
            check=True,
            capture_output=True,
        ).stdout
        (www / f"{rev}.tar.gz").write_bytes(gzip.compress(archive, mtime=0))
        return rev

    first = commit(f"# {os.urandom(8).hex()}\n{{ ... }}: {{ }}\n")
    _own_pin(nix_repo)
    args = [
        "--repo",
        str(nix_repo.root),
        "nixpkgs",
        "update",
        "--upstream",
        f"file://{upstream}",
        "--archive-url",
        base + "/{rev}.tar.gz",
    ]
    assert main(args) == 0
    pin = read_pin(nix_repo.root)
    assert (pin.rev, pin.release, pin.branch) == (first, "26.05", "nixos-26.05")
    assert pin.sha256 == _prefetch(f"{base}/{first}.tar.gz")
    assert ensure_pin(nix_repo.root)  # the new pin fetches and checks

    assert main(args) == 0
    assert "unchanged" in capsys.readouterr().out

    second = commit(f"# {os.urandom(8).hex()}\n{{ ... }}: {{ }}\n")
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is True
    assert out["old"]["rev"] == first
    assert out["new"]["rev"] == second == read_pin(nix_repo.root).rev

    # a branch that is no supported release, or is missing: one error, the pin untouched
    assert main([*args, "--branch", "nixos-19.03"]) == 1
    assert main([*args, "--branch", "nixos-26.11"]) == 1  # supported, but no such branch
    err = capsys.readouterr().err
    assert "not a supported nixpkgs release branch" in err
    assert "cannot read branch 'nixos-26.11'" in err
    assert "Traceback" not in err
    assert read_pin(nix_repo.root).rev == second


def test_the_standin_cannot_build_its_own_outputs(
    tmp_path: Path, interpreters: dict[str, str]
) -> None:
    standin = make_standin(tmp_path, {"3.12": interpreters["3.12"]}, prebuild=False)
    proc = run_nix(
        "nix-build",
        [str(standin.path), "-A", "python312", "--no-out-link"],
        check=False,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "nixpkgs-python-standin-cache-only" in proc.stderr


def _closure(path: str) -> list[str]:
    return run_nix("nix-store", ["--query", "--requisites", path]).stdout.split()


def test_build_with_nixpkgs_substitutes_and_standalone_is_explicit(
    tmp_path: Path,
    nix_repo: NixRepo,
    demo_index: IndexServer,
    demo_dists: dict[str, Path],
    interpreters: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock_demo(nix_repo, demo_index, demo_dists)
    # a fresh stand-in: its interpreter is in no store, only in its loopback cache
    standin = make_standin(tmp_path / "standin", {"3.12": interpreters["3.12"]})
    python = next(p for p in standin.outputs if p.endswith("python3-3.12-standin"))
    assert run_nix("nix-store", ["--check-validity", python], check=False).returncode != 0
    with serve(standin):
        monkeypatch.setenv("NIX_CONFIG", standin.nix_config)
        argv = ["--repo", str(nix_repo.root), "build", "demo", "--json"]
        assert main([*argv, "--nixpkgs", str(standin.path)]) == 0
        built = json.loads(capsys.readouterr().out)[0]
        assert python in _closure(built["out_path"])  # substituted: it cannot be built here

        # the same through the environment variable the workflows can set
        monkeypatch.setenv("NIXPKGS_PYTHON_NIXPKGS", str(standin.path))
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)[0]["out_path"] == built["out_path"]
        monkeypatch.delenv("NIXPKGS_PYTHON_NIXPKGS")

        # --standalone: the machine's interpreter, other outputs, no stand-in in the closure
        assert main([*argv, "--standalone"]) == 0
        alone = json.loads(capsys.readouterr().out)[0]
        assert alone["out_path"] != built["out_path"]
        assert python not in _closure(alone["out_path"])
        assert main([*argv, "--standalone", "--nixpkgs", str(standin.path)]) == 2


def test_build_leaves_the_substituters_alone_only_with_nixpkgs(
    tmp_path: Path,
    nix_repo: NixRepo,
    demo_index: IndexServer,
    demo_dists: dict[str, Path],
    interpreters: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the substituters emptied (as standalone builds do) the stand-in cannot build:
    the bot's nixpkgs builds must not do that."""
    lock_demo(nix_repo, demo_index, demo_dists)
    standin = make_standin(tmp_path / "standin", {"3.12": interpreters["3.12"]})
    with serve(standin):
        monkeypatch.setenv("NIX_CONFIG", standin.nix_config.replace(standin.url or "", ""))
        argv = ["--repo", str(nix_repo.root), "build", "demo", "--nixpkgs", str(standin.path)]
        assert main(argv) == 2
        assert "nixpkgs-python-standin-cache-only" in capsys.readouterr().out


def test_default_nix_builds_with_the_pin() -> None:
    """``import ./. { }`` asks for the pinned nixpkgs (it cannot be fetched here: the error
    names the pin's tarball); it never falls back to a standalone interpreter."""
    proc = run_nix(
        "nix-instantiate",
        ["--eval", "-E", "(import ./default.nix { }).pytest.meta.interpreterSource"],
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode != 0
    assert f"{read_pin(ROOT).rev}.tar.gz" in proc.stderr
