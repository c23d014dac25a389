"""Mirroring for the static index: every locked file into ``files/``, each byte checked against
the lock's sha256, with each wheel's core metadata beside it (PEP 658)."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from bot.core.errors import BotError, without_credentials
from bot.lock.index.metadata import ARCHIVE_ERRORS
from bot.nightly.static_index_content import IndexContent, IndexFile, StaticIndexError

MAX_METADATA = 16 * 1024 * 1024  #: bytes of a wheel's METADATA read when mirroring

Fetch = Callable[[str], bytes]


def _default_fetch() -> tuple[Fetch, Callable[[], None]]:
    from bot.lock.index.http import Http, load_certificates

    client = Http(certificates=load_certificates())

    def fetch(url: str) -> bytes:
        return client.get(url, what="download").content

    return fetch, client.close


def wheel_metadata(data: bytes, filename: str) -> bytes:
    """The ``*.dist-info/METADATA`` member of a wheel (bounded; exactly one)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [
                i
                for i in archive.infolist()
                if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/METADATA")
            ]
            if len(members) != 1:
                raise StaticIndexError(
                    f"{len(members)} .dist-info/METADATA files in the wheel", where=filename
                )
            if members[0].file_size > MAX_METADATA:
                raise StaticIndexError("the wheel's METADATA is too large", where=filename)
            with archive.open(members[0]) as handle:
                return handle.read(MAX_METADATA + 1)[:MAX_METADATA]
    except ARCHIVE_ERRORS as exc:  # an unknown method, an encrypted or corrupt member...
        raise StaticIndexError(
            f"not a readable wheel: {exc or type(exc).__name__}", where=filename
        ) from None


#: mtime of mirrored files (immutable: named and hashed by the lock), so that rsync's quick
#: check finds them unchanged on the next night and sends only the pages
FILE_MTIME = 315532800  # 1980-01-01, the zip epoch


def _known(paths: Iterable[Path | None], sha256: str) -> bytes | None:
    for path in paths:
        if path is not None and path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha256:
                return data
    return None


def _download(f: IndexFile, fetch: Fetch) -> bytes:
    try:
        data = fetch(f.url)
    except BotError as exc:
        raise StaticIndexError(
            f"cannot download {f.filename}: {exc.message}", where=without_credentials(f.url)
        ) from None
    got = hashlib.sha256(data).hexdigest()
    if got != f.sha256:
        raise StaticIndexError(
            f"{f.filename}: downloaded sha256 {got} is not the locked {f.sha256}",
            where=without_credentials(f.url),
            hint="the file changed on the index since it was locked; re-lock",
        )
    return data


def mirror_files(
    content: IndexContent,
    tmp: Path,
    previous: Path | None,
    fetch: Fetch | None,
    downloads: Path | None = None,
) -> tuple[dict[str, dict[str, IndexFile]], int]:
    """Put every locked file under ``tmp/files/``: from the previous index, the download
    cache (``downloads/<sha256>``) or the network, each checked against the lock's sha256."""
    from bot.core.files import write_bytes_atomic

    close: Callable[[], None] = lambda: None  # noqa: E731
    projects: dict[str, dict[str, IndexFile]] = {}
    count = 0
    try:
        for project, files in sorted(content.projects.items()):
            for filename, f in sorted(files.items()):
                rel = Path("files") / project / filename
                cached = downloads / f.sha256 if downloads is not None else None
                data = _known([previous / rel if previous else None, cached], f.sha256)
                if data is None:
                    if fetch is None:
                        fetch, close = _default_fetch()
                    data = _download(f, fetch)
                    if cached is not None:
                        write_bytes_atomic(cached, data)
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                os.utime(target, (FILE_MTIME, FILE_MTIME))
                meta_sha = None
                if f.wheel:
                    metadata = wheel_metadata(data, filename)
                    meta = target.parent / f"{filename}.metadata"
                    meta.write_bytes(metadata)
                    os.utime(meta, (FILE_MTIME, FILE_MTIME))
                    meta_sha = hashlib.sha256(metadata).hexdigest()
                projects.setdefault(project, {})[filename] = IndexFile(
                    f.project, f.filename, f.url, f.sha256, f.requires_python, meta_sha
                )
                count += 1
    finally:
        close()
    return projects, count
