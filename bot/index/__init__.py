"""PyPI client: simple API (PEP 691 JSON, PEP 503 HTML), metadata, cache, retries."""

from __future__ import annotations

from bot.index.client import IndexClient, IndexRoute, ProjectNotFound
from bot.index.models import CoreMetadata, DistFile, PackageIndex

__all__ = [
    "CoreMetadata",
    "DistFile",
    "IndexClient",
    "IndexRoute",
    "PackageIndex",
    "ProjectNotFound",
]
