"""`S3Storage`: objects in an S3-compatible bucket through aioboto3, large streams as multipart."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioboto3
import aiofiles
import aiofiles.os
from botocore.config import Config
from botocore.exceptions import ClientError

from .base import InvalidKey, ObjectInfo, ObjectNotFound, Storage
from .keys import guess_content_type, validate_key, validate_prefix, validate_range

if TYPE_CHECKING:
    from subgraphs.kernel.settings import Settings

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
DEFAULT_PART_SIZE = 8 * MiB
_DELETE_BATCH = 1000  # the most keys one DeleteObjects request accepts

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})


class S3Storage(Storage):
    """Objects in one bucket. One client is opened on first use and kept until `close()`.

    The bucket is created on first use unless `create_bucket=False`. Streamed `put`s buffer at most
    one part (`part_size`, >= 5 MiB) in memory; a stream that fails is aborted server-side, so
    no object and no dangling multipart upload remain. When `put` gets no content type it
    stores the one guessed from the extension, as the local backend reports.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        create_bucket: bool = True,
        session: aioboto3.Session | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.part_size = part_size
        self._create_bucket = create_bucket
        # Sharing a session shares its loaded service models, making new clients cheaper.
        self._session = session or aioboto3.Session()
        self._client_kwargs: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": Config(
                signature_version="s3v4",
                # Checksums only where S3 demands them (DeleteObjects): S3-compatible servers
                # vary in their support for the newer default ones.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        }
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._bucket_ready = False
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, session: aioboto3.Session | None = None
    ) -> S3Storage:
        return cls(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            session=session,
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    # --- client --------------------------------------------------------------------------------

    async def _s3(self) -> Any:
        """The shared client, opened (and the bucket ensured) on first use."""
        if self._client is None or not self._bucket_ready:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        self._session.client("s3", **self._client_kwargs)
                    )
                    self._stack = stack
                if not self._bucket_ready:
                    if self._create_bucket:
                        await self._ensure_bucket(self._client)
                    self._bucket_ready = True
        return self._client

    async def ensure_bucket(self) -> None:
        """Open the client and create the bucket if missing (unless `create_bucket=False`); done
        lazily on first use otherwise, so calling this is only a way to fail early."""
        await self._s3()

    async def _ensure_bucket(self, s3: Any) -> None:
        try:
            await s3.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in _NO_BUCKET_CODES:
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # the one region that rejects an explicit constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await s3.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":  # another process won the race
                raise

    async def close(self) -> None:
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
            self._bucket_ready = False
            if stack is not None:
                await stack.aclose()

    # --- writing -------------------------------------------------------------------------------

    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        validate_key(key)
        content_type = content_type or guess_content_type(key)
        s3 = await self._s3()
        if isinstance(data, bytes | bytearray | memoryview):
            body = bytes(data)
            await s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
            size = len(body)
        else:
            size = await self._put_stream(s3, key, data, content_type)
        return ObjectInfo(key=key, size=size, content_type=content_type, modified_at=time.time())

    async def _put_stream(
        self, s3: Any, key: str, data: AsyncIterable[bytes], content_type: str
    ) -> int:
        """Upload a stream: one PutObject if it fits in a part, else a multipart upload."""
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []

        async def flush() -> None:
            nonlocal upload_id, buffer
            if upload_id is None:
                created = await s3.create_multipart_upload(
                    Bucket=self.bucket, Key=key, ContentType=content_type
                )
                upload_id = str(created["UploadId"])
            number = len(parts) + 1
            uploaded = await s3.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(buffer),
            )
            parts.append({"PartNumber": number, "ETag": uploaded["ETag"]})
            buffer = bytearray()

        try:
            async for chunk in data:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= self.part_size:
                    await flush()
            if upload_id is None:
                await s3.put_object(
                    Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType=content_type
                )
                return size
            if buffer:
                await flush()
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            return size
        except BaseException:
            if upload_id is not None:
                await self._abort(s3, key, upload_id)
            raise

    async def _abort(self, s3: Any, key: str, upload_id: str) -> None:
        try:
            await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception:
            # The original error matters more; a bucket lifecycle rule can reap what is left.
            log.warning(
                "could not abort multipart upload of %r (%s)", key, upload_id, exc_info=True
            )

    async def put_file(self, key: str, path: str, *, content_type: str | None = None) -> ObjectInfo:
        validate_key(key)
        await aiofiles.os.stat(path)  # a missing file fails before any request is made
        return await self.put(key, _read_chunks(path, self.part_size), content_type=content_type)

    # --- reading -------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from None
            raise
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            content_type=head.get("ContentType"),
            modified_at=head["LastModified"].timestamp(),
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 64 * 1024
    ) -> AsyncIterator[bytes]:
        # Arguments are checked now; a missing object is reported on the first iteration.
        validate_key(key)
        validate_range(start, end, chunk_size)
        return self._read(key, start, end, chunk_size)

    async def _read(
        self, key: str, start: int, end: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            await self.stat(key)  # an empty range still reports a missing object
            return
        kwargs: dict[str, Any] = {}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            body = await self._get_body(key, **kwargs)
        except ClientError as exc:
            # A range starting at or past the end: the local backend yields nothing there too.
            if _error_code(exc) == "InvalidRange":
                return
            raise
        # Leaving the block releases the connection even when the consumer stops early.
        async with body:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk

    async def _get_body(self, key: str, **kwargs: Any) -> Any:
        s3 = await self._s3()
        try:
            response = await s3.get_object(Bucket=self.bucket, Key=key, **kwargs)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from None
            raise
        return response["Body"]

    async def get(self, key: str) -> bytes:
        validate_key(key)
        body = await self._get_body(key)
        async with body:
            data: bytes = await body.read()
        return data

    async def download(self, key: str, path: str) -> None:
        validate_key(key)
        target = Path(path)
        body = await self._get_body(key)
        # Write beside the target and rename, so the target is never a partial file.
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            async with body, aiofiles.open(tmp, "wb") as f:
                async for chunk in body.iter_chunks(1 * MiB):
                    await f.write(chunk)
            await aiofiles.os.replace(tmp, target)
        except BaseException:
            with suppress(FileNotFoundError):
                await aiofiles.os.remove(tmp)
            raise

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects in key order; `content_type` is None, as ListObjectsV2 does not return it."""
        validate_prefix(prefix)
        return self._list(prefix)

    async def _list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item["Size"]),
                    content_type=None,
                    modified_at=item["LastModified"].timestamp(),
                )

    # --- deleting ------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        validate_key(key)
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (string match: pass `videos/1/`,
        not `videos/1`, to spare `videos/12/`). An empty prefix is refused as too dangerous."""
        validate_prefix(prefix)
        if not prefix:
            raise InvalidKey("refusing to delete every object: empty prefix")
        s3 = await self._s3()
        count = 0
        batch: list[str] = []
        # Deleting already-listed keys is safe mid-pagination: the continuation token is a key.
        async for info in self._list(prefix):
            batch.append(info.key)
            if len(batch) == _DELETE_BATCH:
                count += await self._delete_batch(s3, batch)
                batch = []
        if batch:
            count += await self._delete_batch(s3, batch)
        return count

    async def _delete_batch(self, s3: Any, keys: Sequence[str]) -> int:
        response = await s3.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise OSError(
                f"could not delete {len(errors)} of {len(keys)} objects, e.g. "
                f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
            )
        return len(keys)

    # --- misc ----------------------------------------------------------------------------------

    async def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        """A signed GET URL, made without a request: it is returned for missing keys too."""
        validate_key(key)
        s3 = await self._s3()
        url: str = await s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


async def _read_chunks(path: str, chunk_size: int) -> AsyncIterator[bytes]:
    async with aiofiles.open(path, "rb") as f:
        while chunk := await f.read(chunk_size):
            yield chunk
