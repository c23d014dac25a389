"""PyPI client: simple API (PEP 691 JSON, PEP 503 HTML), metadata, cache, retries.

Importing this package is cheap: the client (metadata parsing, http.client and ssl) loads on
first use of ``IndexClient`` or ``ProjectNotFound``.
"""

from __future__ import annotations

from typing import Any

from bot.lock.index.models import CoreMetadata, DistFile, IndexRoute, PackageIndex

__all__ = [
    "CoreMetadata",
    "DistFile",
    "IndexClient",
    "IndexRoute",
    "PackageIndex",
    "ProjectNotFound",
]


def __getattr__(name: str) -> Any:
    if name in ("IndexClient", "ProjectNotFound"):
        from bot.lock.index import client

        return getattr(client, name)
    raise AttributeError(name)
