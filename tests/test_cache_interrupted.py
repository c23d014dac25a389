"""A push cut off part way leaves a cache clients can read, and the next push or night
finishes it.

The rsync+ssh push uploads narinfos references first, one rsync run per layer; a wrapper
``rsync`` on PATH (running the real one through the real OpenSSH server on loopback) cuts
the upload off after a given number of narinfos and then dies, as a dropped connection or a
SIGKILL would.  Whatever the cut, every narinfo on the cache has its NAR and its references'
narinfos.  A cache left incomplete the other way round (an environment's narinfo without a
reference's: what the unordered upload of earlier versions could leave) is seen by
:func:`bot.cache.has_closures`, which the nightly's quiet check asks, and is healed by the
next push.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot import cache
from bot.cache.narinfo import Narinfo, complete_roots, layers, parse_narinfo, read_narinfo
from bot.core.errors import CacheError
from bot.nightly.run import run_nightly
from tests.test_cache import Keys, keys, server  # noqa: F401
from tests.test_nightly import night_index, night_repo, options  # noqa: F401

if TYPE_CHECKING:
    from tests.plugins.pypi import IndexServer
    from tests.plugins.sshd import SshServer

pytestmark = pytest.mark.nix

pytest_plugins = ["tests.plugins.sshd"]

#: a closure three layers deep: top -> mid -> a, and top -> b (data via --argstr only)
DEEP_EXPR = """
{ nonce }:
let
  mk = name: deps: derivation {
    inherit name nonce deps;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/bin:/usr/bin";
    args = [ "-c" "mkdir $out && echo $nonce $deps > $out/info" ];
  };
  a = mk "a-${nonce}" [ ];
  b = mk "b-${nonce}" [ ];
  mid = mk "mid-${nonce}" [ a ];
in mk "top-${nonce}" [ mid b ]
"""

#: rsync that passes downloads through, and cuts uploads off after BUDGET narinfos in all
#: (then dies by SIGKILL, and so does every later upload: the connection is gone); with
#: SLEEP, sleeps that long after the first narinfo run instead (a slow link)
WRAPPER = """\
import json, os, signal, subprocess, sys, time
real, state_file = {real!r}, {state!r}
args = sys.argv[1:]
if args[-1].startswith("/"):  # a download: the destination is local
    os.execv(real, [real, *args])
with open(state_file) as f:
    state = json.load(f)
def save():
    with open(state_file, "w") as f:
        json.dump(state, f)
def die():
    state["dead"] = True
    save()
    os.kill(os.getpid(), signal.SIGKILL)
if state.get("dead"):
    die()
if "--files-from" in args:
    at = args.index("--files-from") + 1
    with open(args[at]) as f:
        names = f.read().split()
    state["runs"] = state.get("runs", 0) + 1
    budget = state.get("budget")
    if budget is not None and len(names) > budget:
        if budget:
            with open(args[at] + ".cut", "w") as f:
                f.write("".join(n + "\\n" for n in names[:budget]))
            args[at] += ".cut"
            subprocess.run([real, *args])
        die()
    if budget is not None:
        state["budget"] = budget - len(names)
    save()
    code = subprocess.run([real, *args]).returncode
    if state["runs"] == 1 and state.get("sleep"):
        time.sleep(state["sleep"])
    sys.exit(code)
os.execv(real, [real, *args])
"""


def build_deep() -> dict[str, str]:
    """Build a fresh deep closure; its paths by role (a, b, mid, top)."""
    nonce = uuid.uuid4().hex[:12]
    top = subprocess.run(
        ["nix-build", "--option", "substituters", "", "--no-out-link", "-E", DEEP_EXPR,
         "--argstr", "nonce", nonce],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    closure = subprocess.run(
        ["nix-store", "-qR", top], capture_output=True, text=True, check=True
    ).stdout.split()
    return {Path(p).name.split("-", 2)[1]: p for p in closure}


def narinfo_name(path: str) -> str:
    return path.removeprefix("/nix/store/")[:32] + ".narinfo"


def published(cache_dir: Path) -> dict[str, Narinfo]:
    """The narinfos a client finds in ``cache_dir``, checked: each has its NAR and the
    narinfos of all its references."""
    infos: dict[str, Narinfo] = {}
    for file in cache_dir.glob("*.narinfo"):
        info = read_narinfo(file)
        assert info is not None, file.read_text()
        infos[info.store_path] = info
    for info in infos.values():
        assert (cache_dir / info.url).is_file(), f"{info.store_path}: no NAR {info.url}"
        missing = [r for r in info.references if r not in infos]
        assert not missing, f"{info.store_path} is on the cache without {missing}"
    return infos


@pytest.fixture
def wrapped_rsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the cutting rsync first on PATH; the returned file holds its state (JSON)."""
    real = shutil.which("rsync")
    if real is None:
        pytest.skip("rsync is not installed")
    bindir, state = tmp_path / "wrapper-bin", tmp_path / "wrapper-state.json"
    bindir.mkdir()
    state.write_text("{}")
    script = bindir / "rsync"
    script.write_text(f"#!{sys.executable}\n" + WRAPPER.format(real=real, state=str(state)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr("bot.cache.transfer.RETRY_BACKOFF", 0.01)
    return state


# --- narinfos, layers, closures (no cache needed) ----------------------------------------------


def info(name: str, *refs: str) -> Narinfo:
    path = f"/nix/store/{name * 32}-{name}"
    return Narinfo(path, tuple(f"/nix/store/{r * 32}-{r}" for r in refs), f"nar/{name}.nar")


def test_layers_put_references_first_and_closures_need_every_narinfo() -> None:
    a, b, mid, top = info("a"), info("b"), info("c", "a"), info("d", "c", "b")
    infos = {i.store_path: i for i in (top, mid, b, a)}
    assert layers(infos) == [[a.store_path, b.store_path], [mid.store_path], [top.store_path]]
    assert complete_roots([top.store_path, mid.store_path], infos) == {
        top.store_path,
        mid.store_path,
    }
    without_a = {p: i for p, i in infos.items() if i is not a}
    assert complete_roots([top.store_path, b.store_path], without_a) == {b.store_path}
    # a cycle (no store has one) neither hangs nor vanishes: its paths come last, together
    x, y = info("f", "g"), info("g", "f")
    assert layers({x.store_path: x, y.store_path: y, a.store_path: a}) == [
        [a.store_path],
        [x.store_path, y.store_path],
    ]


@pytest.mark.parametrize(
    "text",
    [
        "URL: nar/x.nar\n",  # no StorePath
        "StorePath: /tmp/" + "a" * 32 + "-x\n",  # not in the store
        "StorePath: /nix/store/" + "a" * 32 + "-x\nReferences: ../../etc/passwd\n",
        "StorePath: /nix/store/" + "e" * 32 + "-x\n",  # 'e' is not in nix's base32
    ],
)
def test_a_malformed_narinfo_counts_as_absent(text: str) -> None:
    assert parse_narinfo(text) is None


def test_a_narinfo_lists_itself_among_its_references_only_once() -> None:
    path = "/nix/store/" + "a" * 32 + "-x"
    ref = "b" * 32 + "-y"
    parsed = parse_narinfo(f"StorePath: {path}\nURL: nar/a.nar\nReferences: {ref} {path[11:]}\n")
    assert parsed == Narinfo(path, ("/nix/store/" + ref,), "nar/a.nar")


# --- a cut-off push ------------------------------------------------------------------------------


def test_push_publishes_narinfos_layer_by_layer(
    server: SshServer,  # noqa: F811
    keys: Keys,  # noqa: F811
    tmp_path: Path,
) -> None:
    paths = build_deep()
    remote = tmp_path / "srv"
    uri = f"rsync+ssh://{server.host}{remote}"
    result = cache.push([paths["top"]], to=uri, signing_key=keys.secret,
                        ssh_config=server.ssh_config)  # fmt: skip
    phases = {p.name: sorted(p.files) for p in result.sync}
    assert list(phases) == ["nar", "narinfo-1", "narinfo-2", "narinfo-3", "nix-cache-info"]
    assert phases["narinfo-1"] == sorted(narinfo_name(paths[k]) for k in ("a", "b"))
    assert phases["narinfo-2"] == [narinfo_name(paths["mid"])]
    assert phases["narinfo-3"] == [narinfo_name(paths["top"])]
    assert set(published(remote)) == set(paths.values())


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_a_push_cut_off_among_the_narinfos_shows_no_narinfo_without_its_references(
    server: SshServer,  # noqa: F811
    keys: Keys,  # noqa: F811
    tmp_path: Path,
    wrapped_rsync: Path,
    budget: int,
) -> None:
    paths = build_deep()
    top = paths["top"]
    remote = tmp_path / "srv"
    uri = f"rsync+ssh://{server.host}{remote}"
    wrapped_rsync.write_text(json.dumps({"budget": budget}))
    with pytest.raises(CacheError, match="sync step after 2 attempts"):
        cache.push([top], to=uri, signing_key=keys.secret, ssh_config=server.ssh_config,
                   retries=1)  # fmt: skip
    assert json.loads(wrapped_rsync.read_text())["dead"]  # it really was cut off there
    up = published(remote)  # every narinfo there has its references' (and its NAR)
    assert len(up) == budget
    assert top not in up
    assert cache.has_closures(uri, [top], ssh_config=server.ssh_config) == set()

    # the next push (the connection is back) sends the rest: a complete cache
    wrapped_rsync.write_text("{}")
    again = cache.push([top], to=uri, signing_key=keys.secret, ssh_config=server.ssh_config)
    assert sorted(again.copied) == sorted(set(paths.values()) - set(up))
    assert set(published(remote)) == set(paths.values())
    assert cache.has_closures(uri, [top], ssh_config=server.ssh_config) == {top}
    assert cache.verify([top], from_=uri, public_key=keys.public,
                        ssh_config=server.ssh_config).ok  # fmt: skip


def test_a_deadline_passing_among_the_narinfos_stops_between_layers(
    server: SshServer,  # noqa: F811
    keys: Keys,  # noqa: F811
    tmp_path: Path,
    wrapped_rsync: Path,
) -> None:
    """The sync's deadline passes while the first layer goes up (a slow link): that run is
    stopped, the second is not started, and what is up is consistent."""
    paths = build_deep()
    staging = tmp_path / "staging"
    cache.push([paths["top"]], to=f"file://{staging}", signing_key=keys.secret)
    remote = tmp_path / "srv"
    target = cache.parse_store(f"rsync+ssh://{server.host}{remote}")
    wrapped_rsync.write_text(json.dumps({"sleep": 4}))
    with cache.ssh_options(server.ssh_config) as env, pytest.raises(CacheError) as cut:
        cache.sync_file_cache(staging, target, env, timeout=3.0)
    assert "rsync (narinfo-1 phase) timed out" in str(cut.value)
    assert set(published(remote)) == {paths["a"], paths["b"]}


# --- an incomplete closure is seen and healed ---------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "rsync"])
def test_a_narinfo_whose_reference_is_missing_is_seen_and_healed_by_the_next_push(
    server: SshServer,  # noqa: F811
    keys: Keys,  # noqa: F811
    tmp_path: Path,
    kind: str,
) -> None:
    """What an unordered upload cut off could leave: top's narinfo, not mid's."""
    paths = build_deep()
    top, mid = paths["top"], paths["mid"]
    remote = tmp_path / "srv"
    uri = f"file://{remote}" if kind == "file" else f"rsync+ssh://{server.host}{remote}"
    ssh = {"ssh_config": server.ssh_config}
    cache.push([top], to=uri, signing_key=keys.secret, **ssh)
    assert cache.has_closures(uri, [top, mid], **ssh) == {top, mid}
    (remote / narinfo_name(mid)).unlink()
    assert cache.has_paths(uri, [top], **ssh) == {top}  # the path alone looks fine ...
    assert cache.has_closures(uri, [top], **ssh) == set()  # ... its closure is not
    (remote / narinfo_name(mid)).write_text(  # nor one whose narinfo names another path
        (remote / narinfo_name(paths["a"])).read_text()
    )
    assert cache.has_closures(uri, [top, paths["a"]], **ssh) == {paths["a"]}
    (remote / narinfo_name(mid)).unlink()
    healed = cache.push([top], to=uri, signing_key=keys.secret, **ssh)
    assert healed.copied == (mid,)
    assert set(published(remote)) == set(paths.values())
    assert cache.has_closures(uri, [top], **ssh) == {top}


def test_a_quiet_night_with_an_incomplete_closure_pushes_the_rest(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The locks did not change, the environment's narinfo is on the cache but one of its
    references' is not: the night is not quiet for that set; it pushes what is missing."""
    work, _ = night_repo
    binary_cache = tmp_path / "binary-cache"
    first = run_nightly(options(work, night_index, tmp_path, 2))
    assert [s.status for s in first.report.sets] == ["ok"], first.errors
    infos = published(binary_cache)
    referenced = sorted({r for i in infos.values() for r in i.references})
    assert referenced
    lost = binary_cache / narinfo_name(referenced[0])
    lost.unlink()

    healing = run_nightly(options(work, night_index, tmp_path, 3))
    assert healing.exit_code == 0, healing.errors
    [row] = healing.report.sets
    assert row.status == "ok"  # built (from the local store) and pushed, nothing to commit
    assert row.commit is None
    assert row.pushed_bytes
    assert lost.is_file()
    assert set(published(binary_cache)) == set(infos)

    quiet = run_nightly(options(work, night_index, tmp_path, 4))
    assert [s.status for s in quiet.report.sets] == ["unchanged"]


def test_the_push_timeout_reaches_the_nights_push(
    night_repo: tuple[Path, Path],  # noqa: F811
    night_index: IndexServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    work, _ = night_repo
    result = run_nightly(options(work, night_index, tmp_path, 2, push_timeout=1e-9))
    [row] = result.report.sets
    assert row.status == "failed"
    assert "timed out before the query step" in (row.log_tail or ""), row
    assert not (tmp_path / "binary-cache").exists() or not list(
        (tmp_path / "binary-cache").glob("*.narinfo")
    )
