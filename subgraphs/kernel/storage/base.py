"""The object storage contract shared by the local-directory and S3 backends.

Keys are `/`-separated relative paths such as `videos/<id>/hls/720p/seg_00001.ts`. Writes are
atomic: a reader sees the whole old object or the whole new one, never a partial file.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


class ObjectNotFound(KeyError):
    """The key does not exist."""


class InvalidKey(ValueError):
    """The key is empty, absolute, or escapes the storage root (`..`)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None
    modified_at: float


class Storage(abc.ABC):
    @abc.abstractmethod
    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        """Store an object whole, replacing any object under the same key."""

    @abc.abstractmethod
    async def put_file(self, key: str, path: str, *, content_type: str | None = None) -> ObjectInfo:
        """Store the contents of a local file (the media worker's outputs)."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Size and metadata, or `ObjectNotFound`."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 64 * 1024
    ) -> AsyncIterator[bytes]:
        """Stream bytes `start..end` (end exclusive, None for the rest).

        Raises `ObjectNotFound` if the key is absent.
        """

    @abc.abstractmethod
    async def get(self, key: str) -> bytes:
        """The whole object, for small objects such as playlists."""

    @abc.abstractmethod
    async def download(self, key: str, path: str) -> None:
        """Copy an object to a local file (the media worker's inputs)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove one object. Deleting a missing key is not an error."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (a folder such as `videos/<id>/`).

        Returns how many objects were removed.
        """

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""

    @abc.abstractmethod
    async def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        """A time-limited direct download URL, or None when the backend has none (local)."""

    @abc.abstractmethod
    async def close(self) -> None: ...
