"""Binary cache: keys, push over ssh-ng:// / ssh:// / file:// / rsync+ssh:// to a real sshd.

Every test builds its own tiny closure (a nonce makes the paths new), pushes it with the real
``nix copy`` / ``rsync`` through a real OpenSSH server on loopback, and checks the far side.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot import cache
from bot.core.errors import CacheError

if TYPE_CHECKING:
    from tests.plugins.sshd import SshServer

pytestmark = pytest.mark.nix

# the lead's conftest will list it too; registering a plugin twice is a no-op
pytest_plugins = ["tests.plugins.sshd"]

NIX = ["nix", "--extra-experimental-features", "nix-command", "--option", "substituters", ""]

#: a closure of COUNT paths: a top path referring to COUNT-1 leaves (data via --argstr only)
CLOSURE_EXPR = """
{ nonce, count ? "2", size ? "64" }:
let
  mk = name: deps: derivation {
    inherit name nonce deps size;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/bin:/usr/bin";
    args = [ "-c" ("mkdir $out && echo $nonce $deps > $out/info"
                   + " && head -c $size /dev/urandom > $out/blob") ];
  };
  leaves = builtins.genList (i: mk "leaf-${toString i}-${nonce}" [ ]) (builtins.fromJSON count - 1);
in mk "top-${nonce}" leaves
"""


def build_closure(count: int = 2, size: int = 64) -> tuple[str, list[str]]:
    """Build a fresh closure; return (top path, sorted closure)."""
    nonce = uuid.uuid4().hex[:12]
    top = subprocess.run(
        ["nix-build", "--option", "substituters", "", "--no-out-link", "-E", CLOSURE_EXPR,
         "--argstr", "nonce", nonce, "--argstr", "count", str(count), "--argstr", "size",
         str(size)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    closure = subprocess.run(
        ["nix-store", "-qR", top], capture_output=True, text=True, check=True
    ).stdout.split()
    return top, sorted(closure)


def nix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NIX, *args], capture_output=True, text=True, check=False, timeout=120,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


@dataclass
class Keys:
    secret: Path
    public: str
    other_secret: Path
    other_public: str


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    pub = cache.cache_keygen("test-cache-1", d / "test.sec", d / "test.pub")
    other = cache.cache_keygen("other-cache-1", d / "other.sec", d / "other.pub")
    return Keys(d / "test.sec", pub, d / "other.sec", other)


@pytest.fixture
def server(sshd: SshServer, keys: Keys) -> Iterator[SshServer]:
    sshd.trust(keys.public)
    yield sshd
    sshd.trust(keys.public)


def remote_paths(server: SshServer, uri: str, paths: list[str]) -> set[str]:
    proc = nix("path-info", "--json", "--store", uri, *paths,
               env={"NIX_SSHOPTS": f"-F {server.ssh_config}"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import json

    return {i["path"] for i in json.loads(proc.stdout) if i.get("valid", True)}


# --- keys -------------------------------------------------------------------------------------


def test_keygen_writes_private_secret_and_refuses_overwrite(tmp_path: Path) -> None:
    secret, public = tmp_path / "k" / "c.sec", tmp_path / "k" / "c.pub"
    text = cache.cache_keygen("cache.example.org-1", secret, public)
    assert text.startswith("cache.example.org-1:")
    assert public.read_text().strip() == text
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    before = secret.read_bytes()
    with pytest.raises(CacheError, match="refusing to overwrite"):
        cache.cache_keygen("again-1", secret, public)
    assert secret.read_bytes() == before
    assert sorted(p.name for p in secret.parent.iterdir()) == ["c.pub", "c.sec"]


def test_default_store_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    store = cache.default_store(tmp_path / "repo")
    assert store == f"file://{tmp_path}/repo/binary-cache?compression=zstd"
    key = cache.default_signing_key()
    assert key == tmp_path / "config" / "nixpkgs-python" / "cache-key.sec"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cache.default_signing_key() == key  # created once, then reused
    top, _closure = build_closure()
    assert cache.push([top], to=store, signing_key=key).copied_count == 2
    pub = key.with_suffix(".pub").read_text()
    assert cache.verify([top], from_=store, public_key=pub).ok
    assert all(n.suffix == ".zst" for n in (tmp_path / "repo" / "binary-cache" / "nar").iterdir())


def test_which_key_signs_a_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given, else the environment's, else the machine's for the default cache alone."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(cache.SIGNING_KEY_ENV, raising=False)
    monkeypatch.delenv(cache.SIGNING_KEY_FILE_ENV, raising=False)
    repo, given, other = tmp_path / "repo", tmp_path / "given.sec", "ssh-ng://cache.example"
    assert cache.signing_key_for(other, repo, given) == given
    with pytest.raises(CacheError, match=r"no signing key for ssh-ng://cache\.example") as caught:
        cache.signing_key_for(other, repo, None)
    assert cache.SIGNING_KEY_FILE_ENV in (caught.value.hint or "")
    assert not (tmp_path / "config").exists()  # no key made for a store it does not sign
    default = cache.signing_key_for(cache.default_store(repo), repo, None)
    assert default == cache.default_signing_key()
    assert default is not None
    assert default.is_file()
    monkeypatch.setenv(cache.SIGNING_KEY_FILE_ENV, str(given))
    assert cache.signing_key_for(other, repo, None) is None  # signing_key_file reads it
    assert cache.signing_key_for(cache.default_store(repo), repo, None) is None


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ssh-ng://host:2222", "no port"),
        ("ssh://user@host:22", "no port"),
        ("rsync+ssh://host:22/srv/c", "no port"),
        ("rsync+ssh://host/", "absolute directory"),
        ("file://relative/dir", "absolute path"),
        ("s3://bucket", "unsupported"),
    ],
)
def test_bad_store_urls(uri: str, message: str) -> None:
    with pytest.raises(CacheError, match=message):
        cache.parse_store(uri)


# --- push ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["ssh-ng", "ssh"])
def test_push_over_ssh_then_noop(
    server: SshServer, keys: Keys, tmp_path: Path, scheme: str
) -> None:
    top, closure = build_closure(count=3)
    uri = f"{scheme}://{server.host}?remote-store={tmp_path / 'remote'}"
    result = cache.push([top], to=uri, signing_key=keys.secret, ssh_config=server.ssh_config)
    assert result.copied_count == 3
    assert sorted(result.copied) == closure
    assert result.requested == (top,)
    assert remote_paths(server, uri, closure) == set(closure)
    # the paths really landed in the separate remote store root, signed by the test key
    assert all((tmp_path / "remote" / p.lstrip("/")).exists() for p in closure)
    assert cache.has_paths(uri, closure, ssh_config=server.ssh_config) == set(closure)

    again = cache.push([top], to=uri, signing_key=keys.secret, ssh_config=server.ssh_config)
    assert again.copied_count == 0
    assert again.copied == ()
    assert cache.verify([top], from_=uri, public_key=keys.public, ssh_config=server.ssh_config).ok


def test_ssh_ng_receiver_enforces_signatures(server: SshServer, keys: Keys, tmp_path: Path) -> None:
    """The remote daemon trusts only the test key: a push signed by another key is refused."""
    top, closure = build_closure()
    uri = f"ssh-ng://{server.host}?remote-store={tmp_path / 'remote'}"
    with pytest.raises(CacheError) as err:
        cache.push([top], to=uri, signing_key=keys.other_secret, ssh_config=server.ssh_config)
    text = str(err.value)
    assert uri in text
    assert "lacks a valid signature" in text
    assert any(p in text for p in closure)  # names the path
    assert "trusted-public-keys" in text  # and says what to configure
    assert cache.has_paths(uri, closure, ssh_config=server.ssh_config) == set()


def test_push_failure_names_store_and_path(
    sshd: SshServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the configured port: retried with backoff, then one clear error."""
    monkeypatch.setattr("bot.cache.transfer.RETRY_BACKOFF", 0.05)
    config = tmp_path / "ssh_config"
    text = sshd.ssh_config.read_text().replace(f"Port {sshd.port}", "Port 1")
    config.write_text(text)
    top, _ = build_closure()
    uri = f"ssh-ng://{sshd.host}"
    with pytest.raises(CacheError) as err:
        cache.push([top], to=uri, signing_key=keys.secret, ssh_config=config, retries=2)
    message = str(err.value)
    assert uri in message
    assert "after 3 attempts" in message
    assert "/nix/store/" in message


def test_push_to_file_cache_then_noop(keys: Keys, tmp_path: Path) -> None:
    top, closure = build_closure(count=3)
    uri = f"file://{tmp_path / 'cache'}"
    result = cache.push([top], to=uri, signing_key=keys.secret)
    assert result.copied_count == 3
    narinfos = sorted((tmp_path / "cache").glob("*.narinfo"))
    assert len(narinfos) == 3
    assert all("Sig: test-cache-1:" in n.read_text() for n in narinfos)
    assert cache.push([top], to=uri, signing_key=keys.secret).copied_count == 0
    assert cache.has_paths(uri, [*closure]) == set(closure)
    # the cache has a path when its narinfo names it: a missing or foreign one is not
    first, second, *_ = closure
    (tmp_path / "cache" / f"{Path(first).name.split('-')[0]}.narinfo").unlink()
    other = tmp_path / "cache" / f"{Path(second).name.split('-')[0]}.narinfo"
    other.write_text(other.read_text().replace(f"StorePath: {second}", f"StorePath: {first}"))
    assert cache.has_paths(uri, [*closure]) == set(closure) - {first, second}
    assert cache.has_paths(f"file://{tmp_path / 'nowhere'}", [*closure]) == set()
    other.unlink()
    assert cache.push([top], to=uri, signing_key=keys.secret).copied_count == 2
    assert cache.has_paths(uri, [*closure]) == set(closure)


def test_push_rsync_file_cache_nars_first(server: SshServer, keys: Keys, tmp_path: Path) -> None:
    top, closure = build_closure(count=3)
    remote_dir = tmp_path / "srv" / "cache"
    remote_dir.parent.mkdir()
    uri = f"rsync+ssh://{server.host}{remote_dir}"
    result = cache.push([top], to=uri, signing_key=keys.secret, ssh_config=server.ssh_config)
    assert result.copied_count == 3
    # phases in order: every NAR before any narinfo, the leaves' narinfos before the top's
    # (tests/test_cache_interrupted.py: deeper closures, cut off), nix-cache-info last
    assert [p.name for p in result.sync] == ["nar", "narinfo-1", "narinfo-2", "nix-cache-info"]
    nar, leaves, tops, info = result.sync
    assert len(nar.files) == 3
    assert all(f.startswith("nar/") for f in nar.files)
    assert sorted(leaves.files) == sorted(
        p.removeprefix("/nix/store/")[:32] + ".narinfo" for p in closure if p != top
    )
    assert tops.files == (top.removeprefix("/nix/store/")[:32] + ".narinfo",)
    assert info.files == ("nix-cache-info",)
    # the remote directory is a complete cache a client can read (and is world-readable)
    assert len(list(remote_dir.glob("*.narinfo"))) == 3
    assert stat.S_IMODE(remote_dir.stat().st_mode) & 0o005 == 0o005
    assert cache.has_paths(uri, closure, ssh_config=server.ssh_config) == set(closure)
    assert cache.verify([top], from_=f"file://{remote_dir}", public_key=keys.public).ok
    assert cache.verify([top], from_=uri, public_key=keys.public, ssh_config=server.ssh_config).ok

    # a second push sends nothing; a new path sharing the leaves sends only itself
    again = cache.push([top], to=uri, signing_key=keys.secret, ssh_config=server.ssh_config)
    assert again.copied_count == 0
    assert again.sync == ()
    top2, closure2 = build_closure(count=2)
    both = cache.push([top, top2], to=uri, signing_key=keys.secret, ssh_config=server.ssh_config)
    assert sorted(both.copied) == closure2
    assert [len(p.files) for p in both.sync] == [2, 1, 1, 0]  # the leaf, then top2


# --- secrets ------------------------------------------------------------------------------------


def test_secrets_never_reach_output(
    server: SshServer,
    keys: Keys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Signing key from the environment, SSH key from the environment: neither appears in
    logs (at debug level, which shows every command) or on stdout/stderr, and the temporary
    key files are gone afterwards."""
    caplog.set_level(logging.DEBUG)
    secret_text = keys.secret.read_text().strip()
    ssh_key_text = server.client_key.read_text()
    monkeypatch.setenv(cache.SIGNING_KEY_ENV, secret_text)
    monkeypatch.setenv(cache.SSH_KEY_ENV, ssh_key_text)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    # the ssh config without its IdentityFile: the key must come from the environment
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(
            line
            for line in server.ssh_config.read_text().splitlines(keepends=True)
            if "IdentityFile" not in line
        )
    )
    top, _closure = build_closure()
    for scheme in ("ssh-ng", "ssh"):
        uri = f"{scheme}://{server.host}?remote-store={tmp_path / scheme}"
        assert cache.push([top], to=uri, ssh_config=config).copied_count == 2
    uri = f"rsync+ssh://{server.host}{tmp_path / 'rsync'}"
    assert cache.push([top], to=uri, ssh_config=config).copied_count == 2
    assert cache.verify([top], from_=uri, public_key=keys.public, ssh_config=config).ok
    with pytest.raises(CacheError):
        cache.cache_keygen("x-1", keys.secret, tmp_path / "x.pub")
    # a failing push (the remote trusts another key) with the key from the environment
    server.trust(keys.other_public)
    top2, _ = build_closure()
    with pytest.raises(CacheError) as failed:
        cache.push([top2], to=f"ssh-ng://{server.host}?remote-store={tmp_path / 'x'}",
                   ssh_config=config)  # fmt: skip
    print(failed.value)  # what the CLI would show
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "$ nix" in logged  # commands were logged ...
    secret_b64 = secret_text.split(":", 1)[1]
    ssh_body = "".join(ssh_key_text.splitlines()[1:-1])[:40]
    for text in (out, err, logged, caplog.text):
        assert secret_b64 not in text  # ... but never a secret
        assert secret_b64[:24] not in text
        assert ssh_body not in text
    assert list((tmp_path / "tmp").iterdir()) == []  # temporary key files removed
