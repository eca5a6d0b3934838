"""Uploads of a video's source: resumable sessions (spoken over tus by `tus.py`) and direct
GraphQL multipart uploads. No HTTP or GraphQL in here.

A resumable upload's bytes arrive as parts: each PATCH is stored as its own object under
`uploads/<videoId>/parts/` and recorded only if the upload's offset is still the one it
started at, so racing PATCHes cannot both land and any replica can take the next one. Bytes
received before a connection broke are kept. An upload has at most `video_upload_max_parts`
parts, and a user at most `video_max_open_uploads` uploads waiting for bytes. When the last
byte is in, the parts are joined into `uploads/<videoId>/source` and the video moves to
PROCESSING with its `media.transcode` job in the same transaction. A sweep finishes joins a
crash interrupted and deletes uploads that expired unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.errors import Conflict, DomainError, NotFound
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import ObjectNotFound, Storage
from subgraphs.kernel.tokens import AccessClaims
from subgraphs.video.models import Upload, UploadPart, Video
from subgraphs.video.service import (
    UploadTooLarge,
    VideoDraft,
    VideoService,
    is_uuid,
    require_uploader,
)

log = logging.getLogger(__name__)

CHECKSUM_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "md5": hashlib.md5,
}
# A finished upload whose join has not happened this long after its last byte was probably
# interrupted by a crash; the sweep finishes it.
FINALIZE_GRACE = timedelta(seconds=60)
SWEEP_BATCH = 100


class UploadExpired(DomainError):
    code = "UPLOAD_EXPIRED"


class OffsetMismatch(Conflict):
    """The client's offset is not the upload's: it must ask (HEAD) and resume from there."""


class ChecksumMismatch(DomainError):
    code = "CHECKSUM_MISMATCH"


class PartTooSmall(DomainError):
    """A PATCH too small for the upload to finish within its parts (tus answers 400)."""

    code = "UPLOAD_PART_TOO_SMALL"


class TooManyUploads(DomainError):
    code = "TOO_MANY_UPLOADS"


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


async def _owned(session: AsyncSession, viewer: AccessClaims, upload_id: str) -> Upload:
    upload = await session.get(Upload, str(uuid.UUID(upload_id))) if is_uuid(upload_id) else None
    if upload is None or upload.owner_id != viewer.subject:
        raise NotFound("Upload not found.")
    return upload


def source_key(video_id: str) -> str:
    return f"uploads/{video_id}/source"


def _parts_prefix(video_id: str) -> str:
    return f"uploads/{video_id}/parts/"


class _TooLong(Exception):
    """More bytes arrived than the upload has room for."""


@dataclass
class _Counted:
    """Passes a body through, counting and hashing it, and stops it past `room` bytes."""

    body: AsyncIterable[bytes]
    room: int
    hasher: Any = None
    size: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.body:
            self.size += len(chunk)
            if self.size > self.room:
                raise _TooLong
            if self.hasher is not None:
                self.hasher.update(chunk)
            yield chunk


@dataclass
class UploadService:
    db: Database
    storage: Storage
    videos: VideoService
    settings: Settings
    _finalizing: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    @property
    def expiry(self) -> timedelta:
        return timedelta(seconds=self.settings.video_upload_expiry_seconds)

    # Creating ----------------------------------------------------------------------------

    async def create(
        self,
        viewer: AccessClaims,
        draft: VideoDraft,
        size_bytes: int,
        *,
        upload_metadata: str | None = None,
    ) -> tuple[Video, Upload]:
        """A video in UPLOADING and the resumable upload its bytes go to. Size limit and quota
        are checked here, before any byte is stored."""
        require_uploader(viewer)
        self.videos.check_size(size_bytes)
        async with self.db.transaction() as session:
            await self.videos.require_category(session, draft.category_id)
            await self.videos.admit_owner(session, viewer)
            await self._check_open_uploads(session, viewer.subject)
            await self.videos.check_quota(session, viewer.subject, size_bytes)
            video = await self.videos.insert_video(
                session, viewer.subject, draft, size_bytes=size_bytes, status="UPLOADING"
            )
            now = utcnow()
            upload = Upload(
                id=str(uuid.uuid4()),
                video_id=video.id,
                owner_id=viewer.subject,
                length=size_bytes,
                offset=0,
                upload_metadata=upload_metadata,
                created_at=now,
                expires_at=now + self.expiry,
            )
            session.add(upload)
        return video, upload

    async def _check_open_uploads(self, session: AsyncSession, owner_id: str) -> None:
        """Refuse a new resumable upload while the owner holds the most allowed that still
        wait for bytes (expired ones, about to be swept, do not count)."""
        limit = self.settings.video_max_open_uploads
        open_uploads = (
            await session.execute(
                select(func.count())
                .select_from(Upload)
                .where(
                    col(Upload.owner_id) == owner_id,
                    col(Upload.completed_at).is_(None),
                    col(Upload.offset) < col(Upload.length),
                    col(Upload.expires_at) > utcnow(),
                )
            )
        ).scalar_one()
        if open_uploads >= limit:
            raise TooManyUploads(
                f"You have {open_uploads} unfinished uploads, the most allowed at once: "
                "finish or delete one first.",
                limit=limit,
            )

    async def upload_direct(
        self,
        viewer: AccessClaims,
        draft: VideoDraft,
        chunks: AsyncIterable[bytes],
        size_bytes: int,
    ) -> Video:
        """A whole file in one request (GraphQL multipart): stored as the source, then
        processing starts."""
        require_uploader(viewer)
        self.videos.check_size(size_bytes, limit=self.settings.video_max_direct_upload_bytes)
        async with self.db.transaction() as session:
            # Checked before the bytes are stored, and again when the video is created.
            await self.videos.require_category(session, draft.category_id)
            await self.videos.admit_owner(session, viewer)
            await self.videos.check_quota(session, viewer.subject, size_bytes)
        video_id = str(uuid.uuid4())
        try:
            counted = _Counted(chunks, room=size_bytes)
            await self.storage.put(source_key(video_id), counted.chunks())
            if counted.size != size_bytes:
                raise UploadTooLarge("The file's size changed while it was uploaded.")
            async with self.db.transaction() as session:
                await self.videos.admit_owner(session, viewer)
                await self.videos.check_quota(session, viewer.subject, size_bytes)
                video = await self.videos.insert_video(
                    session,
                    viewer.subject,
                    draft,
                    size_bytes=size_bytes,
                    status="UPLOADING",
                    video_id=video_id,
                )
                await self.videos.start_processing(session, video)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.storage.delete_prefix(f"uploads/{video_id}/")
            raise
        return video

    # The resumable protocol's operations --------------------------------------------------

    async def session_for(self, viewer: AccessClaims, upload_id: str) -> Upload:
        """The viewer's upload; another user's answers exactly like a missing one."""
        async with self.db.transaction() as session:
            upload = await _owned(session, viewer, upload_id)
        if upload.completed_at is None and upload.expires_at <= utcnow():
            raise UploadExpired("This upload has expired.")
        return upload

    async def append(
        self,
        viewer: AccessClaims,
        upload_id: str,
        *,
        offset: int,
        body: AsyncIterable[bytes],
        interrupted: Callable[[], bool] = lambda: False,
        content_length: int | None = None,
        checksum: Checksum | None = None,
    ) -> Upload:
        """Store the bytes of one PATCH at `offset` and return the upload as it now stands."""
        upload = await self.session_for(viewer, upload_id)
        if offset != upload.offset:
            raise OffsetMismatch(
                f"The upload's offset is {upload.offset}, not {offset}.", offset=upload.offset
            )
        room = upload.length - upload.offset
        if content_length is not None and content_length > room:
            raise UploadTooLarge("The request carries more bytes than the upload has left.")
        if room == 0:
            self._finalize_soon(upload.id)
            return upload
        if content_length == 0:
            return upload
        least, last_part = await self._least_bytes(upload)
        if content_length is not None and content_length < least:
            raise PartTooSmall(self._too_small(least, last_part))
        key = f"{_parts_prefix(upload.video_id)}{offset:020d}.{uuid.uuid4().hex}"
        hasher = CHECKSUM_ALGORITHMS[checksum.algorithm]() if checksum else None
        counted = _Counted(body, room=room, hasher=hasher)
        try:
            await self.storage.put(key, counted.chunks())
        except _TooLong:
            raise UploadTooLarge(
                "The request carries more bytes than the upload has left."
            ) from None
        keep = counted.size > 0
        if keep and checksum is not None:
            # A checksum covers the whole request body: cut-off bytes cannot be verified.
            keep = not interrupted() and hasher is not None and hasher.digest() == checksum.digest
            if not keep and not interrupted():
                await self._discard(key)
                raise ChecksumMismatch("The bytes do not match Upload-Checksum.")
        if keep and counted.size < least:
            # Bytes of a PATCH cut off mid-way are kept whatever their size, so the client
            # resumes after them; but the upload's last part must finish it, so a cut-off last
            # part is dropped and the client resends from the same offset.
            keep = interrupted() and not last_part
            if not keep and not interrupted():
                await self._discard(key)
                raise PartTooSmall(self._too_small(least, last_part))
        if not keep:
            await self._discard(key)
            return upload
        accepted = False
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Upload)
                .where(
                    col(Upload.id) == upload.id,
                    col(Upload.offset) == offset,
                    col(Upload.completed_at).is_(None),
                )
                .values(offset=offset + counted.size, expires_at=utcnow() + self.expiry)
            )
            if getattr(result, "rowcount", 0) == 1:
                session.add(
                    UploadPart(upload_id=upload.id, offset=offset, size=counted.size, key=key)
                )
                accepted = True
            current = await session.get(Upload, upload.id, populate_existing=True)
        if not accepted:
            # Another request got there first (or the upload was deleted meanwhile).
            await self._discard(key)
            if current is None:
                raise NotFound("Upload not found.")
            raise OffsetMismatch(
                f"The upload's offset is {current.offset}, not {offset}.", offset=current.offset
            )
        assert current is not None
        if current.offset == current.length:
            self._finalize_soon(current.id)
        return current

    async def _least_bytes(self, upload: Upload) -> tuple[int, bool]:
        """The fewest bytes the next PATCH must carry, and whether it is the upload's last
        allowed part. An upload has at most `video_upload_max_parts` parts: every part but
        the one that finishes it carries at least 1/max_parts of it, and once only one part
        is left it must carry every remaining byte. Counted before the bytes are stored: a
        part that lands meanwhile moves the offset, and this PATCH then loses with 409."""
        maximum = self.settings.video_upload_max_parts
        async with self.db.transaction() as session:
            parts = (
                await session.execute(
                    select(func.count())
                    .select_from(UploadPart)
                    .where(col(UploadPart.upload_id) == upload.id)
                )
            ).scalar_one()
        room = upload.length - upload.offset
        if parts >= maximum - 1:
            return room, True
        return min(room, -(-upload.length // maximum)), False

    def _too_small(self, least: int, last_part: bool) -> str:
        maximum = self.settings.video_upload_max_parts
        if last_part:
            return (
                f"Only the last of this upload's {maximum} parts is left: the next PATCH must "
                f"carry all {least} remaining bytes."
            )
        return (
            f"An upload has at most {maximum} parts: every PATCH but the last must carry at "
            f"least {least} bytes."
        )

    async def terminate(self, viewer: AccessClaims, upload_id: str) -> None:
        """Give up an unfinished upload: the video it was for is deleted with it."""
        async with self.db.transaction() as session:
            upload = await _owned(session, viewer, upload_id)
            if upload.completed_at is not None or upload.offset == upload.length:
                raise Conflict("This upload is complete; delete the video instead.")
            await self._delete_video(session, upload)
        await self.videos.purge_media_quietly(upload.video_id)

    async def _delete_video(self, session: AsyncSession, upload: Upload) -> None:
        video = await session.get(Video, upload.video_id)
        if video is not None:
            await self.videos.delete_rows(session, video)
        else:
            await session.delete(upload)

    # Joining the parts ---------------------------------------------------------------------

    def _finalize_soon(self, upload_id: str) -> None:
        """Join in the background: a large source takes a while and the client need not wait.
        A crash before the join committed leaves it to the sweep."""
        task = asyncio.create_task(self._finalize_logged(upload_id))
        self._finalizing.add(task)
        task.add_done_callback(self._finalizing.discard)

    async def _finalize_logged(self, upload_id: str) -> None:
        try:
            await self.finalize(upload_id)
        except Exception:
            log.exception("joining upload %s failed; the sweep retries it", upload_id)

    async def wait_for_finalizing(self) -> None:
        """Let joins in progress finish (on shutdown)."""
        if self._finalizing:
            await asyncio.wait(set(self._finalizing), timeout=10)

    async def finalize(self, upload_id: str) -> bool:
        """Join a complete upload's parts into the source and start processing; idempotent.
        True if this call started processing."""
        async with self.db.transaction() as session:
            upload = await session.get(Upload, upload_id)
            if upload is None or upload.completed_at is not None or upload.offset != upload.length:
                return False
            parts = list(
                (
                    await session.execute(
                        select(UploadPart)
                        .where(col(UploadPart.upload_id) == upload_id)
                        .order_by(col(UploadPart.offset))
                    )
                )
                .scalars()
                .all()
            )
        expected = 0
        for part in parts:
            if part.offset != expected:
                raise RuntimeError(f"upload {upload_id} has a gap at byte {expected}")
            expected += part.size
        if expected != upload.length:
            raise RuntimeError(f"upload {upload_id} parts cover {expected} of {upload.length}")
        try:
            await self.storage.put(source_key(upload.video_id), self._joined(parts))
        except ObjectNotFound:
            # Another replica finished the join and removed the parts first.
            return False
        started = False
        orphan = False
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Upload)
                .where(
                    col(Upload.id) == upload_id,
                    col(Upload.completed_at).is_(None),
                    col(Upload.offset) == col(Upload.length),
                )
                .values(completed_at=utcnow())
            )
            if getattr(result, "rowcount", 0) == 1:
                video = await session.get(Video, upload.video_id)
                if video is not None and video.status == "UPLOADING":
                    await self.videos.start_processing(session, video)
                    started = True
                await session.execute(
                    delete(UploadPart).where(col(UploadPart.upload_id) == upload_id)
                )
            elif await session.get(Upload, upload_id) is None:
                orphan = True
        if orphan:
            await self.videos.purge_media_quietly(upload.video_id)
        elif started:
            await self._discard_prefix(_parts_prefix(upload.video_id))
        return started

    async def _joined(self, parts: list[UploadPart]) -> AsyncIterator[bytes]:
        for part in parts:
            async for chunk in self.storage.read(part.key, chunk_size=1024 * 1024):
                yield chunk

    # Sweeping --------------------------------------------------------------------------------

    async def sweep(self) -> tuple[int, int]:
        """Finish joins a crash interrupted; delete uploads that expired unfinished (and
        their videos and parts). Returns (finished, expired)."""
        now = utcnow()
        async with self.db.transaction() as session:
            stalled = (
                (
                    await session.execute(
                        select(col(Upload.id))
                        .where(
                            col(Upload.completed_at).is_(None),
                            col(Upload.offset) == col(Upload.length),
                            col(Upload.expires_at) < now + self.expiry - FINALIZE_GRACE,
                        )
                        .limit(SWEEP_BATCH)
                    )
                )
                .scalars()
                .all()
            )
            expired = (
                (
                    await session.execute(
                        select(col(Upload.id))
                        .where(
                            col(Upload.completed_at).is_(None),
                            col(Upload.offset) < col(Upload.length),
                            col(Upload.expires_at) <= now,
                        )
                        .limit(SWEEP_BATCH)
                    )
                )
                .scalars()
                .all()
            )
        finished = 0
        for upload_id in stalled:
            if await self.finalize(upload_id):
                finished += 1
        removed = 0
        for upload_id in expired:
            video_id = None
            async with self.db.transaction() as session:
                upload = await session.get(Upload, upload_id)
                # Checked again: a PATCH may have extended it since the list was read.
                if (
                    upload is not None
                    and upload.completed_at is None
                    and upload.expires_at <= utcnow()
                ):
                    video_id = upload.video_id
                    await self._delete_video(session, upload)
            if video_id is not None:
                removed += 1
                await self.videos.purge_media_quietly(video_id)
        return finished, removed

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                finished, removed = await self.sweep()
                if finished or removed:
                    log.info("upload sweep", extra={"finished": finished, "expired": removed})
            except Exception:
                log.exception("upload sweep failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.video_upload_sweep_seconds)
        await self.wait_for_finalizing()

    async def _discard(self, key: str) -> None:
        try:
            await self.storage.delete(key)
        except Exception:
            log.warning("could not delete upload part %s", key, exc_info=True)

    async def _discard_prefix(self, prefix: str) -> None:
        try:
            await self.storage.delete_prefix(prefix)
        except Exception:
            log.warning("could not delete upload parts under %s", prefix, exc_info=True)
