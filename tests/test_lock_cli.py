"""`nixpkgs-python lock` end to end against the loopback index, and a lock consumer (uv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.cli import main
from tests.plugins.pypi import IndexServer, make_sdist, make_wheel

CUTOFF = "2025-06-01T00:00:00Z"


@pytest.fixture
def demo_index(
    pypi_index_with_backend: IndexServer, frontend_wheels: dict[str, Path], tmp_path: Path
) -> IndexServer:
    """An index with a small set's worth of packages and every awkward case."""
    index = pypi_index_with_backend
    dist = tmp_path / "dist"
    dist.mkdir()
    for wheel in frontend_wheels.values():
        index.publish(wheel)
    index.publish(
        make_wheel(
            dist,
            "demo-app",
            "1.0",
            requires_dist=[
                "demo-lib>=1",
                "demo-mac; sys_platform == 'darwin'",
                "demo-click; extra == 'cli'",
            ],
            console_scripts={"demo-app": "demo_app:main"},
            modules={"demo_app/__init__.py": "def main():\n    print('demo-app ok')\n"},
        )
    )
    index.publish(make_wheel(dist, "demo-lib", "1.0"))
    # 2.0 exists only as an sdist built by fixture-backend (which the index serves)
    index.publish(make_sdist(dist, "demo-lib", "2.0"))
    index.publish(make_wheel(dist, "demo-lib", "2.1"), yanked="broken")
    index.publish(make_wheel(dist, "demo-lib", "2.2"), with_hash=False)
    index.publish(make_wheel(dist, "demo-lib", "3.0", requires_python=">=3.14"))
    index.publish(make_wheel(dist, "demo-lib", "4.0"), upload_time="2026-01-01T00:00:00Z")
    index.publish(make_wheel(dist, "demo-mac", "1.0"))
    index.publish(make_wheel(dist, "demo-click", "1.0"))
    return index


def make_repo(tmp_path: Path, requirements: list[str], name: str = "demo") -> Path:
    repo = tmp_path / "repo"
    (repo / "sets" / name).mkdir(parents=True)
    (repo / "nix").mkdir(exist_ok=True)
    lines = "".join(f"  - {r!r}\n" for r in requirements)
    (repo / "sets" / name / "set.yaml").write_text(
        f"description: demo\npython: ['3.12']\nrequirements:\n{lines}"
    )
    return repo


def lock(repo: Path, index: IndexServer, *args: str) -> int:
    return main(
        [
            "--repo",
            str(repo),
            "-q",
            "lock",
            "--index-url",
            index.url,
            "--cache-dir",
            str(repo / ".cache"),
            *args,
        ]
    )


def test_lock_end_to_end(
    demo_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, ["demo-app[cli]"])
    assert lock(repo, demo_index, "demo", "--exclude-newer", CUTOFF) == 0
    path = repo / "sets" / "demo" / "pylock.py312.toml"
    first = path.read_bytes()
    document = tomllib.loads(first.decode())
    packages = {p["name"]: p for p in document["packages"]}
    assert packages["demo-app"]["version"] == "1.0"
    # 2.1 yanked, 2.2 has no hash, 3.0 needs Python 3.14, 4.0 is newer than the cutoff
    assert packages["demo-lib"]["version"] == "2.0"
    assert packages["demo-lib"]["sdist"]["name"] == "demo_lib-2.0.tar.gz"
    assert packages["demo-lib"]["tool"]["nixpkgs-python"]["build-requires"] == ["fixture-backend"]
    assert "fixture-backend" in packages
    assert packages["demo-mac"]["marker"] == "sys_platform == 'darwin'"
    assert "demo-click" in packages
    assert document["tool"]["nixpkgs-python"]["exclude-newer"] == CUTOFF
    assert document["tool"]["nixpkgs-python"]["indexes"] == [demo_index.url]
    assert "demo (Python 3.12): created" in capsys.readouterr().out

    # same inputs, same snapshot: byte-identical, and reported unchanged
    assert lock(repo, demo_index, "demo", "--exclude-newer", CUTOFF) == 0
    assert path.read_bytes() == first
    assert "unchanged" in capsys.readouterr().out

    # --check: nothing to do -> 0; a changed definition -> 1 and nothing written
    assert lock(repo, demo_index, "--check") == 0
    set_yaml = repo / "sets" / "demo" / "set.yaml"
    set_yaml.write_text(set_yaml.read_text() + "constraints: ['demo-lib<2']\n")
    assert lock(repo, demo_index, "--check") == 1
    assert path.read_bytes() == first
    assert "would-change" in capsys.readouterr().out


def test_lock_installs_with_uv(
    demo_index: IndexServer, tmp_path: Path, interpreters: dict[str, str]
) -> None:
    """A consumer nobody here wrote installs the lock: uv, from the loopback index only."""
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed (it is a test dependency)")
    python312 = interpreters["3.12"]
    repo = make_repo(tmp_path, ["demo-app[cli]"])
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    venv = tmp_path / "venv"
    env = {
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "PATH": "/usr/bin:/bin",
        "UV_INDEX_URL": demo_index.url,
        "UV_OFFLINE": "0",
    }
    subprocess.run([uv, "venv", "-q", "--python", python312, str(venv)], check=True, env=env)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            "--index-url",
            demo_index.url,
            "-r",
            str(repo / "sets/demo/pylock.py312.toml"),
        ],
        check=True,
        env=env,
    )
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import demo_app, demo_lib, demo_click; print(demo_lib.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "2.0"
    script = subprocess.run(
        [str(venv / "bin" / "demo-app")], capture_output=True, text=True, check=True
    )
    assert script.stdout.strip() == "demo-app ok"
    assert not (venv / "lib" / "python3.12" / "site-packages" / "demo_mac").exists()


@pytest.mark.parametrize(
    ("requirements", "args", "code", "fragments"),
    [
        (["demo-app"], ["nope"], 1, ["unknown set 'nope'", "known sets: demo"]),
        (
            ["demo-lib<1"],
            [],
            2,
            ["no versions of demo-lib", "demo-lib<1 is requested", "set.yaml:4"],
        ),
        (["demo-app", "demo-lib==4.0"], [], 2, ["demo-lib 4.0", "uploaded after"]),
        (["does-not-exist"], [], 2, ["does-not-exist", "no project"]),
        (["demo-app"], ["--python", "3.13"], 1, ["not defined for Python 3.13"]),
        (["demo-app"], ["--python", "2.7"], 2, ["'2.7'"]),
    ],
)
def test_bad_input_is_one_clear_error(
    demo_index: IndexServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    requirements: list[str],
    args: list[str],
    code: int,
    fragments: list[str],
) -> None:
    repo = make_repo(tmp_path, requirements)
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF, *args) == code
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err
    assert not list((repo / "sets" / "demo").glob("pylock*"))


def test_network_failure_names_the_url(
    demo_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, ["demo-app"])
    demo_index.fail("/simple/demo-app/", 503, times=100)
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF, "--retries", "1") == 2
    err = capsys.readouterr().err
    assert f"{demo_index.url}demo-app/" in err
    assert "Traceback" not in err
    assert not list((repo / "sets" / "demo").glob("pylock*"))


def test_offline_uses_only_the_cache(
    demo_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, ["demo-app"])
    assert lock(repo, demo_index, "--offline", "--exclude-newer", CUTOFF) == 2
    assert "offline" in capsys.readouterr().err
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    path = repo / "sets" / "demo" / "pylock.py312.toml"
    online = path.read_bytes()
    path.unlink()
    seen = len(demo_index.requests)
    assert lock(repo, demo_index, "--offline", "--exclude-newer", CUTOFF) == 0
    assert len(demo_index.requests) == seen
    assert path.read_bytes() == online


def test_warm_cache_fetches_only_pages(demo_index: IndexServer, tmp_path: Path) -> None:
    """Metadata is cached by file hash: a warm run at "now" asks the index for pages only."""
    repo = make_repo(tmp_path, ["demo-app"])
    assert lock(repo, demo_index) == 0
    seen = len(demo_index.requests)
    (repo / "sets" / "demo" / "pylock.py312.toml").unlink()
    assert lock(repo, demo_index) == 0
    later = demo_index.requests[seen:]
    assert later
    assert all(r.path.startswith("/simple/") for r in later), [r.path for r in later]


def test_snapshot_older_than_the_cached_pages_needs_no_network(
    demo_index: IndexServer, tmp_path: Path
) -> None:
    """Pages fetched after the snapshot list every file it can see: no request at all."""
    repo = make_repo(tmp_path, ["demo-app"])
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    path = repo / "sets" / "demo" / "pylock.py312.toml"
    first = path.read_bytes()
    path.unlink()
    seen = len(demo_index.requests)
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    assert demo_index.requests[seen:] == []
    assert path.read_bytes() == first
    # --refresh asks anyway (an index or mirror may backdate upload times)
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF, "--refresh") == 0
    assert any(r.path.startswith("/simple/") for r in demo_index.requests[seen:])
    seen = len(demo_index.requests)
    # a snapshot after the pages were fetched cannot trust them: they are fetched again
    assert lock(repo, demo_index, "--exclude-newer", "2099-01-01T00:00:00Z") == 0
    assert any(r.path.startswith("/simple/") for r in demo_index.requests[seen:])


def test_overrides_library_build_requirements_are_locked(
    demo_index: IndexServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, ["demo-lib==2.0"])
    (repo / "overrides" / "packages").mkdir(parents=True)
    (repo / "overrides" / "packages" / "demo-lib.toml").write_text(
        '[[override]]\nfrom = "2.0"\nreason = "its build imports demo_click"\n'
        'build-requires = ["demo-click"]\n'
    )
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    document = tomllib.loads((repo / "sets/demo/pylock.py312.toml").read_text())
    packages = {p["name"]: p for p in document["packages"]}
    assert packages["demo-lib"]["tool"]["nixpkgs-python"]["build-requires"] == [
        "demo-click",
        "fixture-backend",
    ]
    assert "demo-click" in packages


def test_identical_resolutions_are_reused(
    demo_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same inputs at a past snapshot, same cached pages: the lock is taken, not resolved."""
    import json

    repo = make_repo(tmp_path, ["demo-app"])
    path = repo / "sets" / "demo" / "pylock.py312.toml"

    def run(*args: str) -> dict[str, object]:
        capsys.readouterr()
        assert lock(repo, demo_index, "--exclude-newer", CUTOFF, "--json", *args) == 0
        [outcome] = json.loads(capsys.readouterr().out)
        return outcome  # type: ignore[no-any-return]

    assert run()["reused"] is False
    first = path.read_bytes()
    path.unlink()
    seen = len(demo_index.requests)
    assert run()["reused"] is True
    assert path.read_bytes() == first
    assert demo_index.requests[seen:] == []

    # --refresh resolves again (and asks the index)
    path.unlink()
    assert run("--refresh")["reused"] is False
    assert path.read_bytes() == first

    # a changed definition is a different key
    set_yaml = repo / "sets" / "demo" / "set.yaml"
    set_yaml.write_text(set_yaml.read_text() + "constraints: ['demo-lib<2']\n")
    changed = run()
    assert changed["reused"] is False
    assert changed["status"] == "updated"

    # a page that changed since (a yank seen by a refreshing run) invalidates the memo
    set_yaml.write_text(set_yaml.read_text().replace("constraints: ['demo-lib<2']\n", ""))
    assert run()["reused"] is True
    demo_index.yank("demo_lib-2.0.tar.gz", "broken")
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF, "--refresh", "--check") == 1
    capsys.readouterr()
    assert run()["reused"] is False


def test_a_reused_lock_is_this_sets_as_it_is_defined_now(
    demo_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a lock's text names (the set, its description and maintainers) is part of the
    memo's key: a memoized text is never another set's, or an outdated description's."""
    import json
    import shutil

    repo = make_repo(tmp_path, ["demo-app"])
    sets = repo / "sets"

    def run(name: str, *args: str) -> dict[str, object]:
        capsys.readouterr()
        code = lock(repo, demo_index, name, "--exclude-newer", CUTOFF, "--json", *args)
        [outcome] = json.loads(capsys.readouterr().out)
        outcome["code"] = code
        return outcome  # type: ignore[no-any-return]

    assert run("demo")["reused"] is False
    shutil.copytree(sets / "demo", sets / "copy")
    (sets / "copy" / "pylock.py312.toml").unlink()
    copy = run("copy")
    assert copy["reused"] is False  # the same resolution inputs, but another set
    assert (
        tomllib.loads((sets / "copy" / "pylock.py312.toml").read_text())["tool"]["nixpkgs-python"][
            "set"
        ]
        == "copy"
    )
    set_yaml = sets / "demo" / "set.yaml"
    text = set_yaml.read_text()
    assert "description:" in text
    set_yaml.write_text(
        "\n".join(
            "description: a new description" if line.startswith("description:") else line
            for line in text.splitlines()
        )
        + "\n"
    )
    assert run("demo", "--check")["code"] == 1  # the committed lock says the old one
    run("demo")  # (reuses what --check just resolved: the same, current, definition)
    written = tomllib.loads((sets / "demo" / "pylock.py312.toml").read_text())
    assert written["tool"]["nixpkgs-python"]["description"] == "a new description"


def test_recent_snapshots_are_never_reused(
    demo_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    repo = make_repo(tmp_path, ["demo-app"])
    for _ in range(2):
        capsys.readouterr()
        assert lock(repo, demo_index, "--json") == 0  # the snapshot is "now"
        [outcome] = json.loads(capsys.readouterr().out)
        assert outcome["reused"] is False


def test_packages_routed_to_an_extra_index(demo_index: IndexServer, tmp_path: Path) -> None:
    """set.yaml `indexes`: a routed package comes only from its index, the rest from the
    default one, and the lock records where each came from."""
    private = IndexServer(tmp_path / "private-index")
    try:
        private.publish(
            make_wheel(tmp_path / "private", "demo-private", "1.0", requires_dist=["demo-lib"])
        )
        # a decoy of the same name on the default index must never be used
        demo_index.publish(make_wheel(tmp_path / "decoy", "demo-private", "9.9"))
        repo = make_repo(tmp_path, ["demo-private"])
        set_yaml = repo / "sets" / "demo" / "set.yaml"
        set_yaml.write_text(
            set_yaml.read_text()
            + f"indexes:\n  - url: {private.url}\n    packages: [demo-private]\n"
        )
        assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
        document = tomllib.loads((repo / "sets/demo/pylock.py312.toml").read_text())
        packages = {p["name"]: p for p in document["packages"]}
        assert packages["demo-private"]["version"] == "1.0"
        assert packages["demo-private"]["index"] == private.url
        assert packages["demo-lib"]["index"] == demo_index.url
        assert document["tool"]["nixpkgs-python"]["indexes"] == [demo_index.url, private.url]
        assert not any(r.path.startswith("/simple/demo-lib") for r in private.requests)
        assert not any(r.path.startswith("/simple/demo-private") for r in demo_index.requests)
    finally:
        private.close()


def test_index_credentials_stay_out_of_locks_and_messages(
    demo_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, ["demo-app"])
    private = demo_index.url.replace("http://", "http://me:s3cret@")
    args = ["--repo", str(repo), "-q", "lock", "--cache-dir", str(repo / ".cache")]
    assert main([*args, "--index-url", private, "--exclude-newer", CUTOFF]) == 0
    text = (repo / "sets" / "demo" / "pylock.py312.toml").read_text()
    assert "s3cret" not in text
    assert "me:" not in text
    document = tomllib.loads(text)
    assert document["tool"]["nixpkgs-python"]["indexes"] == [demo_index.url]
    app = next(p for p in document["packages"] if p["name"] == "demo-app")
    assert app["wheels"][0]["url"].startswith(demo_index.root_url + "/")
    # an error naming the index does not print the token either
    missing = private.replace("/simple/", "/nothing/")
    assert main([*args, "--index-url", missing, "--exclude-newer", CUTOFF]) == 2
    err = capsys.readouterr().err
    assert "nothing" in err
    assert "s3cret" not in err


def test_debug_logs_do_not_print_index_credentials(demo_index: IndexServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["demo-app"])
    private = demo_index.url.replace("http://", "http://me:s3cret@")
    cache = str(tmp_path / "cache")
    args = ["--index-url", private, "--cache-dir", cache, "--exclude-newer", CUTOFF]
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--repo", str(repo), "-vv", "lock", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert run.returncode == 0, run.stderr
    assert f"GET {demo_index.url}demo-app/" in run.stderr
    assert "s3cret" not in run.stderr


def test_the_memo_keys_follow_the_resolvers_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another resolvelib, packaging or tomli-w (or interpreter) is another resolver: the
    memos' code digest changes with them, as with the bot's own source."""
    import importlib
    import importlib.metadata

    from bot.lock import memo

    first = memo.code_digest.__wrapped__()
    assert memo.code_digest.__wrapped__() == first
    for name, module in memo.RESOLVER_LIBRARIES.items():
        # the version a library's module states is its distribution's
        assert memo.library_version(name) == importlib.metadata.version(name), name
        with monkeypatch.context() as patch:
            patch.setattr(importlib.import_module(module), "__version__", "0.0.1")
            assert memo.code_digest.__wrapped__() != first, name
        # a module that states none: its distribution's metadata says
        with monkeypatch.context() as patch:
            patch.delattr(importlib.import_module(module), "__version__")
            assert memo.code_digest.__wrapped__() == first, name
