"""What engagement publishes on the bus, and the topics it consumes from auth and video.

Everything engagement publishes goes through its outbox, so an event leaves only with the
change it describes; GraphQL subscriptions on every replica read these topics live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from subgraphs.engagement.models import outbox
from subgraphs.kernel.bus import Message
from subgraphs.kernel.outbox import enqueue

CHAT_MESSAGE_ADDED = "engagement.chat.message.added"
CHAT_MESSAGE_DELETED = "engagement.chat.message.deleted"
CHAT_VIEWERS = "engagement.chat.viewers"
NOTIFICATION_ADDED = "engagement.notification.added"

# Consumed, in the consumer group `engagement`.
USER_REGISTERED = "auth.user.registered"
USER_UPDATED = "auth.user.updated"
USER_DELETED = "auth.user.deleted"
VIDEO_CREATED = "video.created"
VIDEO_UPDATED = "video.updated"
VIDEO_READY = "video.ready"
VIDEO_FAILED = "video.failed"
VIDEO_DELETED = "video.deleted"
STREAM_CREATED = "video.stream.created"
STREAM_DELETED = "video.stream.deleted"
STREAM_LIVE = "video.stream.live"
STREAM_ENDED = "video.stream.ended"

CONSUMED = (
    USER_REGISTERED,
    USER_UPDATED,
    USER_DELETED,
    VIDEO_CREATED,
    VIDEO_UPDATED,
    VIDEO_READY,
    VIDEO_FAILED,
    VIDEO_DELETED,
    STREAM_CREATED,
    STREAM_DELETED,
    STREAM_LIVE,
    STREAM_ENDED,
)
GROUP = "engagement"

Handler = Callable[[Message], Awaitable[None]]


async def chat_message_added(
    session: AsyncSession,
    *,
    message_id: str,
    stream_id: str,
    author_id: str,
    body: str,
    created_at: datetime,
) -> None:
    await enqueue(
        session,
        outbox,
        CHAT_MESSAGE_ADDED,
        {
            "messageId": message_id,
            "streamId": stream_id,
            "authorId": author_id,
            "body": body,
            "createdAt": created_at.isoformat(),
        },
    )


async def chat_message_deleted(session: AsyncSession, *, message_id: str, stream_id: str) -> None:
    await enqueue(
        session, outbox, CHAT_MESSAGE_DELETED, {"messageId": message_id, "streamId": stream_id}
    )


async def chat_viewers(
    session: AsyncSession, *, stream_id: str, viewer_count: int, version: int
) -> None:
    await enqueue(
        session,
        outbox,
        CHAT_VIEWERS,
        {"streamId": stream_id, "viewerCount": viewer_count, "version": version},
    )


async def notifications_added(
    session: AsyncSession,
    *,
    kind: str,
    subject_id: str,
    actor_id: str,
    title: str,
    created_at: datetime,
    recipients: Sequence[Mapping[str, str]],
) -> None:
    await enqueue(
        session,
        outbox,
        NOTIFICATION_ADDED,
        {
            "kind": kind,
            "subjectId": subject_id,
            "actorId": actor_id,
            "title": title,
            "createdAt": created_at.isoformat(),
            "recipients": list(recipients),
        },
    )


def text(payload: Mapping[str, Any], key: str, default: str = "") -> str:
    """A string field of a payload we did not write, tolerating its absence."""
    value = payload.get(key)
    return value if isinstance(value, str) else default
