"""verify(): substitution into a fresh store that requires signatures and trusts one key.

Each bad case is made the way it happens in real life: a path pushed without signing, a
path signed by somebody else's key, a narinfo whose ``Sig:`` line was copied from another
path's narinfo, a NAR swapped for another, a narinfo that is simply not there.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot import cache
from bot.core.errors import CacheError
from tests.plugins.static_http import serve_directory
from tests.test_cache import Keys, build_closure, nix

if TYPE_CHECKING:
    from tests.plugins.sshd import SshServer

pytestmark = pytest.mark.nix

# the sshd fixture, and the ``keys`` / ``server`` fixtures of the push tests
pytest_plugins = ["tests.plugins.sshd", "tests.test_cache"]


def copy_unsigned(paths: list[str], to: str, env: dict[str, str] | None = None) -> None:
    """Copy without signing: what a careless push would publish."""
    proc = nix("copy", "--to", to, *paths, env=env)
    assert proc.returncode == 0, proc.stderr


def sign(paths: list[str], key: Path) -> None:
    proc = nix("store", "sign", "--key-file", str(key), *paths)
    assert proc.returncode == 0, proc.stderr


def narinfo(cache_dir: Path, path: str) -> Path:
    return cache_dir / (path.removeprefix("/nix/store/")[:32] + ".narinfo")


def reasons(result: cache.VerifyResult) -> dict[str, str]:
    return {f.path: f.reason for f in result.failures}


def test_verify_reports_each_bad_path_with_its_reason(keys: Keys, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    uri = f"file://{cache_dir}"
    good, good_closure = build_closure()
    unsigned, unsigned_closure = build_closure()
    foreign, foreign_closure = build_closure()
    forged, forged_closure = build_closure()
    swapped, swapped_closure = build_closure()
    gone, gone_closure = build_closure()

    for top in (good, forged, swapped, gone):
        assert cache.push([top], to=uri, signing_key=keys.secret).copied_count == 2
    copy_unsigned([unsigned], uri)
    sign(foreign_closure, keys.other_secret)
    copy_unsigned([foreign], uri)

    # forged: the top's Sig line replaced by a valid signature of ANOTHER path (good's top)
    good_sig = re.search(r"^Sig: .*$", narinfo(cache_dir, good).read_text(), re.M)
    assert good_sig is not None
    forged_info = narinfo(cache_dir, forged)
    forged_info.write_text(re.sub(r"^Sig: .*$", good_sig.group(0), forged_info.read_text(),
                                  flags=re.M))  # fmt: skip
    # swapped: the top's NAR replaced by the (valid, signed) NAR of another path
    nar_of = {
        p: cache_dir / re.search(r"^URL: (.*)$", narinfo(cache_dir, p).read_text(), re.M)[1]  # type: ignore[index]
        for p in (good, swapped)
    }
    nar_of[swapped].write_bytes(nar_of[good].read_bytes())
    # gone: the leaf's narinfo deleted, the top still there
    gone_leaf = next(p for p in gone_closure if p != gone)
    narinfo(cache_dir, gone_leaf).unlink()

    tops = [good, unsigned, foreign, forged, swapped, gone]
    result = cache.verify(tops, from_=uri, public_key=keys.public)
    assert not result.ok
    unsigned_leaf = next(p for p in unsigned_closure if p != unsigned)
    foreign_leaf = next(p for p in foreign_closure if p != foreign)
    assert reasons(result) == {
        unsigned: "unsigned",
        unsigned_leaf: "unsigned",
        foreign: "untrusted-key",
        foreign_leaf: "untrusted-key",
        forged: "bad-signature",
        swapped: "hash-mismatch",
        gone_leaf: "missing",
        gone: "dependency-failed",
    }
    assert good not in reasons(result)
    by_path = {f.path: f for f in result.failures}
    assert "other-cache-1" in by_path[foreign].detail
    assert set(result.checked) >= set(good_closure + forged_closure + swapped_closure)
    # each good path alone verifies
    assert cache.verify([good], from_=uri, public_key=keys.public).ok
    # and trusting the other key instead turns the picture around for those two
    other = cache.verify([good, foreign], from_=uri, public_key=keys.other_public)
    assert reasons(other) == dict.fromkeys(good_closure, "untrusted-key")


def test_verify_missing_path(keys: Keys, tmp_path: Path) -> None:
    top, closure = build_closure()
    uri = f"file://{tmp_path / 'cache'}"
    cache.push([closure[0] if closure[0] != top else closure[1]], to=uri, signing_key=keys.secret)
    result = cache.verify([top], from_=uri, public_key=keys.public)
    assert reasons(result) == {top: "missing"}


def test_verify_over_ssh_ng_rejects_unsigned(server: SshServer, keys: Keys, tmp_path: Path) -> None:
    """ssh:// (``nix-store --serve``) accepts unsigned paths from a trusted user; verify over
    ssh-ng:// of the same remote store catches them."""
    top, closure = build_closure()
    remote = tmp_path / "remote"
    env = {"NIX_SSHOPTS": f"-F {server.ssh_config}"}
    copy_unsigned([top], f"ssh://{server.host}?remote-store={remote}", env=env)
    uri = f"ssh-ng://{server.host}?remote-store={remote}"
    result = cache.verify([top], from_=uri, public_key=keys.public, ssh_config=server.ssh_config)
    assert reasons(result) == dict.fromkeys(closure, "unsigned")


def test_verify_cleans_up_and_needs_a_valid_key(
    keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top, _ = build_closure()
    uri = f"file://{tmp_path / 'cache'}"
    cache.push([top], to=uri, signing_key=keys.secret)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    assert cache.verify([top], from_=uri, public_key=keys.public).ok
    assert list(tmp.iterdir()) == []  # the fresh store (read-only paths) was removed
    with pytest.raises(CacheError, match="not a Nix public signing key"):
        cache.verify([top], from_=uri, public_key="not-a-key")


@pytest.fixture
def http_cache(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The documented way to serve the embedded cache: a static HTTP server on its directory."""
    root = tmp_path / "binary-cache"
    root.mkdir()
    with serve_directory(root) as url:
        yield root, url


def test_verify_served_default_cache_over_http(
    keys: Keys, tmp_path: Path, http_cache: tuple[Path, str]
) -> None:
    root, url = http_cache
    top, closure = build_closure()
    unsigned, _ = build_closure()
    assert cache.push([top], to=f"file://{root}", signing_key=keys.secret).copied_count == 2
    copy_unsigned([unsigned], f"file://{root}")
    assert cache.has_paths(url, [*closure, unsigned]) == {*closure, unsigned}
    assert cache.verify([top], from_=url, public_key=keys.public).ok
    assert reasons(cache.verify([unsigned], from_=url, public_key=keys.public))[unsigned] == (
        "unsigned"
    )
    with pytest.raises(CacheError, match="read-only"):
        cache.push([top], to=url, signing_key=keys.secret)
