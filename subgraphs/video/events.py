"""What video publishes on the bus (through its outbox, as docs/events.md specifies) and what
it consumes there, in consumer group `video`: the media worker's answers, account deletions,
and billing's prices and ended playback sessions (`paid.py`). Payloads carry no stream keys or
signed URLs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from subgraphs.kernel.bus import Message
from subgraphs.kernel.bus.consumer import run_consumer
from subgraphs.kernel.outbox import enqueue
from subgraphs.kernel.runtime import ServiceRuntime
from subgraphs.video.models import LiveStream, Video, outbox

if TYPE_CHECKING:
    from subgraphs.video.paid import PaidAccess
    from subgraphs.video.service import VideoService

log = logging.getLogger(__name__)

VIDEO_CREATED = "video.created"
VIDEO_UPDATED = "video.updated"
VIDEO_READY = "video.ready"
VIDEO_FAILED = "video.failed"
VIDEO_DELETED = "video.deleted"
VIDEO_PROCESSING = "video.processing"
STREAM_CREATED = "video.stream.created"
STREAM_DELETED = "video.stream.deleted"
MEDIA_TRANSCODE = "media.transcode"
MEDIA_PROGRESS = "media.progress"
MEDIA_READY = "media.ready"
MEDIA_FAILED = "media.failed"
AUTH_USER_DELETED = "auth.user.deleted"
PRICE_UPDATED = "billing.price.updated"
PLAYBACK_ENDED = "billing.playback.ended"

GROUP = "video"
# Emptying a deleted video's storage must never be given up: retried after each lease expiry
# for as long as storage keeps failing (years at the default timeout), never dead-lettered.
CLEANUP_MAX_ATTEMPTS = 10_000_000


# --- publishing (outbox) -------------------------------------------------------------------


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


async def video_created(session: AsyncSession, video: Video) -> None:
    await enqueue(
        session,
        outbox,
        VIDEO_CREATED,
        {
            "videoId": video.id,
            "ownerId": video.owner_id,
            "title": video.title,
            "visibility": video.visibility,
            "status": video.status,
            "createdAt": _iso(video.created_at),
        },
    )


async def video_updated(session: AsyncSession, video: Video) -> None:
    await enqueue(
        session,
        outbox,
        VIDEO_UPDATED,
        {
            "videoId": video.id,
            "ownerId": video.owner_id,
            "title": video.title,
            "visibility": video.visibility,
            "status": video.status,
        },
    )


async def video_ready(session: AsyncSession, video: Video) -> None:
    await enqueue(
        session,
        outbox,
        VIDEO_READY,
        {
            "videoId": video.id,
            "ownerId": video.owner_id,
            "title": video.title,
            "visibility": video.visibility,
            "durationSeconds": video.duration_seconds,
            "publishedAt": _iso(video.published_at),
        },
    )


async def video_failed(session: AsyncSession, video: Video) -> None:
    await enqueue(
        session,
        outbox,
        VIDEO_FAILED,
        {"videoId": video.id, "ownerId": video.owner_id, "reason": video.failure_reason},
    )


async def video_deleted(session: AsyncSession, video: Video) -> None:
    await enqueue(session, outbox, VIDEO_DELETED, {"videoId": video.id, "ownerId": video.owner_id})


def processing_payload(video: Video) -> dict[str, Any]:
    return {
        "videoId": video.id,
        "status": video.status,
        "progress": video.processing_progress,
        "failureReason": video.failure_reason,
    }


async def video_processing(session: AsyncSession, video: Video) -> None:
    """A status change for live subscribers. Through the outbox, like progress ticks, so that
    the end of processing is never lost and every change reaches the bus in commit order."""
    await enqueue(session, outbox, VIDEO_PROCESSING, processing_payload(video))


async def processing_progress(session: AsyncSession, video_id: str, progress: float) -> None:
    await enqueue(
        session,
        outbox,
        VIDEO_PROCESSING,
        {"videoId": video_id, "status": "PROCESSING", "progress": progress, "failureReason": None},
    )


async def media_transcode(session: AsyncSession, video_id: str) -> None:
    await enqueue(
        session,
        outbox,
        MEDIA_TRANSCODE,
        {
            "videoId": video_id,
            "sourceKey": f"uploads/{video_id}/source",
            "outputPrefix": f"videos/{video_id}/",
        },
    )


async def stream_created(session: AsyncSession, stream: LiveStream) -> None:
    await enqueue(
        session,
        outbox,
        STREAM_CREATED,
        {"streamId": stream.id, "ownerId": stream.owner_id, "title": stream.title},
    )


async def stream_deleted(session: AsyncSession, stream: LiveStream) -> None:
    await enqueue(
        session, outbox, STREAM_DELETED, {"streamId": stream.id, "ownerId": stream.owner_id}
    )


# --- consuming ---------------------------------------------------------------------------------

Handler = Callable[[Message], Awaitable[None]]


def handlers(service: VideoService, paid: PaidAccess) -> dict[str, tuple[Handler, int]]:
    """Each consumed topic's handler and how many deliveries it gets before dead-lettering."""

    async def progress(message: Message) -> None:
        await service.record_progress(message.payload)

    async def ready(message: Message) -> None:
        await service.mark_ready(message.id, message.payload)

    async def failed(message: Message) -> None:
        await service.mark_failed(message.id, message.payload)

    async def user_deleted(message: Message) -> None:
        await service.delete_user_content(message.id, message.payload)

    async def video_deleted(message: Message) -> None:
        # Our own event: the one place a deleted video's storage is guaranteed to be emptied.
        video_id = message.payload.get("videoId")
        if isinstance(video_id, str):
            await service.purge_media(video_id)

    async def price_updated(message: Message) -> None:
        await paid.apply_price(message.id, message.payload, message.published_at)

    async def playback_ended(message: Message) -> None:
        await paid.record_ended(message.payload)

    return {
        MEDIA_PROGRESS: (progress, 10),
        MEDIA_READY: (ready, 10),
        MEDIA_FAILED: (failed, 10),
        AUTH_USER_DELETED: (user_deleted, 10),
        VIDEO_DELETED: (video_deleted, CLEANUP_MAX_ATTEMPTS),
        PRICE_UPDATED: (price_updated, 10),
        PLAYBACK_ENDED: (playback_ended, 10),
    }


def start_consumers(runtime: ServiceRuntime, service: VideoService, paid: PaidAccess) -> None:
    """Run one consumer per topic as the runtime's background tasks."""
    for topic, (handler, max_attempts) in handlers(service, paid).items():
        runtime.add_background(_consumer(runtime, topic, handler, max_attempts))


def _consumer(
    runtime: ServiceRuntime, topic: str, handler: Handler, max_attempts: int
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    async def consume(stop: asyncio.Event) -> None:
        await run_consumer(
            runtime.bus,
            topic,
            GROUP,
            handler,
            stop=stop,
            visibility_timeout=runtime.settings.bus_visibility_timeout,
            max_attempts=max_attempts,
        )

    return consume
