"""The static index beside a binary cache: ``<cache>/python-index/`` for ``file://`` and
``rsync+ssh://`` caches (what the nightly writes; see :mod:`bot.nightly.static_index`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.cache.query import fetch_files
from bot.cache.stores import parse_store, rsync_shell, ssh_options
from bot.core.errors import CommandError
from bot.core.files import default_cache_dir
from bot.core.proc import run
from bot.nightly.static_index import (
    CACHE_SUBDIR,
    MANIFEST,
    IndexResult,
    check_ours,
    write_index,
)
from bot.nightly.static_index_content import StaticIndexError


def local_index_dir(store_uri: str, subdir: str = CACHE_SUBDIR) -> Path | None:
    """The directory :func:`publish_index` writes in place for ``store_uri`` (a ``file://``
    cache), else None."""
    store = parse_store(store_uri)
    if store.kind == "file" and store.path is not None:
        return (Path(store.path) / subdir).absolute()
    return None


def publish_index(
    repo: Path,
    store_uri: str,
    *,
    ssh_config: Path | None = None,
    mirror: bool = False,
    sets: Sequence[str] = (),
    timeout: float = 1800,
    subdir: str = CACHE_SUBDIR,
    on_wait: Callable[[str], None] | None = None,
) -> IndexResult | None:
    """Write the static index into the directory ``store_uri`` names, in its ``subdir``
    (beside a binary cache: ``<cache>/python-index/``; ``""``: the directory itself): in place
    for ``file://``, with rsync for ``rsync+ssh://``.  Other stores are Nix stores, not
    directories: None.

    ``file://``: :func:`write_index` in place (the writers' lock, a generation behind a
    symlink swapped atomically).  ``rsync+ssh://``: the index is written into a local temporary
    directory and sent as real directories (``SRC/`` follows the local symlink; the host needs
    no symlink support and no command but rsync).  There the guarantee is rsync's, per file,
    not per directory: ``--delay-updates`` puts every changed file in place by a rename at the
    end of the transfer and ``--delete-delay`` removes the old ones after, so a reader meets
    no half-written file but may, for that moment, meet old and new pages together; two
    writers pushing to one host are not serialized."""
    store = parse_store(store_uri)
    downloads = default_cache_dir() / "index-files" if mirror else None
    if store.kind == "file" and store.path is not None:
        dest = Path(store.path) / subdir
        return write_index(
            repo, dest, sets=sets, mirror=mirror, downloads=downloads, on_wait=on_wait
        )
    if store.kind != "rsync" or store.path is None:
        return None
    rel = f"{subdir}/" if subdir else ""
    target = f"{store.rsync_target}{rel}"
    with ssh_options(ssh_config) as env, tempfile.TemporaryDirectory(prefix="index-") as tmp:
        local = Path(tmp) / "remote"
        shell = ["-e", rsync_shell(dict(env))]
        listing = run(
            ["rsync", "--list-only", "--recursive", *shell, target],
            timeout=timeout, check=False, error=CommandError, what="rsync --list-only",
        )  # fmt: skip
        remote: list[str] = []
        if listing.returncode == 0:
            for line in listing.stdout.splitlines():
                fields = line.split(None, 4)
                if len(fields) == 5 and not fields[0].startswith("d"):
                    remote.append(fields[4])
        elif "No such file or directory" not in listing.stderr:
            raise StaticIndexError(
                f"cannot list the remote index: {listing.stderr.strip()[-500:]}", where=target
            )
        if remote:
            fetch_files(store, [rel + MANIFEST], local, env=env, timeout=timeout)
            mirror_dir = local / subdir
            for name in remote:  # an empty stand-in per remote file, for the manifest check
                if name != MANIFEST:
                    (mirror_dir / name).parent.mkdir(parents=True, exist_ok=True)
                    (mirror_dir / name).touch()
            try:
                check_ours(mirror_dir)
            except StaticIndexError as exc:
                raise StaticIndexError(exc.message, where=target, hint=exc.hint) from None
            shutil.rmtree(mirror_dir)
        result = write_index(
            repo, Path(tmp) / CACHE_SUBDIR, sets=sets, mirror=mirror, downloads=downloads
        )
        proc = run(
            [
                "rsync", "--recursive", "--links", "--times", "--delete-delay",
                "--delay-updates", "--chmod=Du=rwx,Dgo=rx,Fu=rw,Fgo=r", *shell,
                f"{result.path}/", target,
            ],
            timeout=timeout, check=False, error=CommandError, what="rsync",
        )  # fmt: skip
        if proc.returncode != 0:
            raise StaticIndexError(
                f"rsync of the static index failed: {proc.stderr.strip()[-500:]}", where=target
            )
        return IndexResult(
            Path(store.path) / subdir,
            result.sets,
            result.projects,
            result.files,
            result.mirrored,
            result.size,
        )
