"""Object storage for uploads and media renditions: a local directory or an S3-compatible bucket.

`open_storage(settings)` picks the backend named by `settings.storage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import InvalidKey, ObjectInfo, ObjectNotFound, Storage
from .keys import guess_content_type, validate_key, validate_prefix
from .local import LocalStorage
from .s3 import S3Storage

if TYPE_CHECKING:
    from subgraphs.kernel.settings import Settings

__all__ = [
    "InvalidKey",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "guess_content_type",
    "open_storage",
    "validate_key",
    "validate_prefix",
]


def open_storage(settings: Settings) -> Storage:
    """The backend `settings.storage` names; no I/O until first use. `close()` it when done."""
    if settings.storage == "s3":
        return S3Storage.from_settings(settings)
    if settings.storage == "local":
        return LocalStorage.from_settings(settings)
    raise ValueError(f"unknown storage backend {settings.storage!r}")
