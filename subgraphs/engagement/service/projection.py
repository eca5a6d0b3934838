"""Engagement's view of other services, kept from their events: users (role, suspension),
videos (owner, visibility, status, duration) and live streams (owner, status). Deleting a
user, video or stream deletes or anonymises the engagement data around it.

Consumers are idempotent: each message is claimed once in the inbox inside the transaction
of its effect, the effects themselves can run twice without harm, and events of different
topics may arrive in any order (the newest publish time wins, a deletion wins for ever).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from subgraphs.engagement import events
from subgraphs.engagement.models import (
    AnonymousViewer,
    ChatBan,
    ChatMessage,
    ChatRoom,
    ChatSender,
    Comment,
    Follow,
    KnownUser,
    KnownVideo,
    Notification,
    Presence,
    Reaction,
    SavedVideo,
    UserStats,
    VideoRetention,
    VideoStats,
    VideoViewer,
    View,
    WatchHistory,
    inbox,
)
from subgraphs.engagement.service.base import Parts, insert, is_id
from subgraphs.engagement.service.comments import Comments
from subgraphs.engagement.service.follows import Follows
from subgraphs.kernel.bus import Message
from subgraphs.kernel.outbox import first_delivery

log = logging.getLogger(__name__)

ROLES = ("VIEWER", "CREATOR", "ADMIN")
VISIBILITIES = ("PUBLIC", "UNLISTED", "PRIVATE")
STATUSES = ("UPLOADING", "PROCESSING", "READY", "FAILED")
STREAM_STATUSES = {
    events.STREAM_CREATED: None,
    events.STREAM_LIVE: "LIVE",
    events.STREAM_ENDED: "ENDED",
}

Effect = Callable[[AsyncSession, dict[str, Any], float], Awaitable[None]]


def _choice(payload: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = payload.get(key)
    return value if value in allowed else None


async def _locked(session: AsyncSession, model: type[SQLModel], key: str, **defaults: Any) -> Any:
    """The projection row for `key`, created from `defaults` if missing, locked."""
    await session.execute(
        insert(session, model).values(id=key, **defaults).on_conflict_do_nothing()
    )
    table = model.__table__  # type: ignore[attr-defined]
    return (
        await session.execute(select(model).where(table.c.id == key).with_for_update())
    ).scalar_one()


class Projection:
    def __init__(self, parts: Parts, follows: Follows) -> None:
        self.parts = parts
        self.follows = follows

    def handlers(self) -> dict[str, Callable[[Message], Awaitable[None]]]:
        effects: dict[str, Effect] = {
            events.USER_REGISTERED: self._user,
            events.USER_UPDATED: self._user,
            events.USER_DELETED: self._user_deleted,
            events.VIDEO_CREATED: self._video,
            events.VIDEO_UPDATED: self._video,
            events.VIDEO_READY: self._video_ready,
            events.VIDEO_FAILED: self._video_failed,
            events.VIDEO_DELETED: self._video_deleted,
            events.STREAM_CREATED: self._stream,
            events.STREAM_LIVE: self._stream,
            events.STREAM_ENDED: self._stream,
            events.STREAM_DELETED: self._stream_deleted,
        }
        return {topic: self._once(topic, effect) for topic, effect in effects.items()}

    def _once(self, topic: str, effect: Effect) -> Callable[[Message], Awaitable[None]]:
        async def handle(message: Message) -> None:
            async with self.parts.db.transaction() as session:
                if not await first_delivery(session, inbox, events.GROUP, topic, message.id):
                    return
                await effect(session, {**message.payload, "_topic": topic}, message.published_at)

        return handle

    # --- users --------------------------------------------------------------------------

    async def _user(self, session: AsyncSession, payload: dict[str, Any], version: float) -> None:
        user_id = payload.get("userId")
        if not isinstance(user_id, str) or not is_id(user_id):
            log.error("ignoring a user event without a valid userId")
            return
        role = _choice(payload, "role", ROLES) or "VIEWER"
        suspended = payload.get("suspended") is True
        user = await _locked(
            session, KnownUser, user_id, role=role, suspended=suspended, version=0.0
        )
        if user.deleted or version < user.version:
            return
        user.role, user.suspended, user.version = role, suspended, version
        session.add(user)

    async def _user_deleted(
        self, session: AsyncSession, payload: dict[str, Any], version: float
    ) -> None:
        user_id = payload.get("userId")
        if not isinstance(user_id, str) or not is_id(user_id):
            log.error("ignoring a user deletion without a valid userId")
            return
        user = await _locked(session, KnownUser, user_id, role="VIEWER", version=0.0)
        user.deleted = True
        user.version = max(user.version, version)
        session.add(user)
        await self.forget_user(session, user_id)

    # --- videos -------------------------------------------------------------------------

    async def _video_ready(
        self, session: AsyncSession, payload: dict[str, Any], version: float
    ) -> None:
        await self._video(session, {**payload, "status": "READY"}, version)

    async def _video_failed(
        self, session: AsyncSession, payload: dict[str, Any], version: float
    ) -> None:
        await self._video(session, {**payload, "status": "FAILED"}, version)

    async def _video(self, session: AsyncSession, payload: dict[str, Any], version: float) -> None:
        video_id, owner_id = payload.get("videoId"), payload.get("ownerId")
        if not (isinstance(video_id, str) and is_id(video_id)) or not (
            isinstance(owner_id, str) and is_id(owner_id)
        ):
            log.error("ignoring a video event without valid videoId and ownerId")
            return
        status = _choice(payload, "status", STATUSES)
        visibility = _choice(payload, "visibility", VISIBILITIES)
        title = events.text(payload, "title")
        video = await _locked(
            session, KnownVideo, video_id, owner_id=owner_id, status=status or "UPLOADING"
        )
        if video.deleted:
            return
        duration = payload.get("durationSeconds")
        if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
            video.duration_seconds = float(duration)
        if version >= video.version:
            video.version = version
            video.status = status or video.status
            video.visibility = visibility or video.visibility
            video.title = title or video.title
        else:
            # An older event still fills in what no newer one has said.
            video.visibility = video.visibility or visibility
            video.title = video.title or title
        session.add(video)
        await session.execute(
            insert(session, VideoStats).values(video_id=video_id).on_conflict_do_nothing()
        )
        if video.status == "READY" and video.visibility == "PUBLIC" and not video.announced:
            video.announced = True
            await self.follows.notify_followers(
                session,
                actor_id=video.owner_id,
                kind="NEW_VIDEO",
                subject_id=video_id,
                occurrence="",
                title=video.title,
            )

    async def _video_deleted(
        self, session: AsyncSession, payload: dict[str, Any], version: float
    ) -> None:
        video_id, owner_id = payload.get("videoId"), payload.get("ownerId")
        if not (isinstance(video_id, str) and is_id(video_id)):
            log.error("ignoring a video deletion without a valid videoId")
            return
        owner = owner_id if isinstance(owner_id, str) else ""
        video = await _locked(session, KnownVideo, video_id, owner_id=owner, status="UPLOADING")
        video.deleted = True
        session.add(video)
        await self.forget_video(session, video_id)

    # --- live streams -------------------------------------------------------------------

    async def _stream(self, session: AsyncSession, payload: dict[str, Any], version: float) -> None:
        stream_id, owner_id = payload.get("streamId"), payload.get("ownerId")
        if not (isinstance(stream_id, str) and is_id(stream_id)) or not (
            isinstance(owner_id, str) and is_id(owner_id)
        ):
            log.error("ignoring a stream event without valid streamId and ownerId")
            return
        status = STREAM_STATUSES.get(payload["_topic"])
        title = events.text(payload, "title")
        room = await _locked(session, ChatRoom, stream_id, owner_id=owner_id, title=title)
        if room.deleted:
            return
        if version >= room.version:
            room.version = version
            room.status = status or room.status
            room.title = title or room.title
        session.add(room)
        if status == "LIVE":
            await self.follows.notify_followers(
                session,
                actor_id=room.owner_id,
                kind="LIVE_STARTED",
                subject_id=stream_id,
                # Each broadcast is announced once, however often its event is delivered.
                occurrence=events.text(payload, "startedAt")[:64],
                title=room.title,
            )

    async def _stream_deleted(
        self, session: AsyncSession, payload: dict[str, Any], version: float
    ) -> None:
        stream_id, owner_id = payload.get("streamId"), payload.get("ownerId")
        if not (isinstance(stream_id, str) and is_id(stream_id)):
            log.error("ignoring a stream deletion without a valid streamId")
            return
        owner = owner_id if isinstance(owner_id, str) else ""
        room = await _locked(session, ChatRoom, stream_id, owner_id=owner)
        room.deleted = True
        session.add(room)
        await self.forget_stream(session, stream_id)

    # --- cleanup ------------------------------------------------------------------------

    async def forget_user(self, session: AsyncSession, user_id: str) -> None:
        """Delete a deleted user's engagement, keeping only anonymous aggregates.

        Counters move by what the DELETEs return, never by rows read before them: a change
        of the user's (an unfollow, say) that commits meanwhile has moved them for its row
        already, and PostgreSQL deletes the row as that change left it, or not at all. The
        reactions and follows are deleted before their counters move (at the end, in id
        order), so this never holds a like or follower counter while it waits for a row that
        a transaction holding that counter has locked.
        """
        now = self.parts.now()
        reactions = (
            await session.execute(
                delete(Reaction)
                .where(col(Reaction.user_id) == user_id)
                .returning(col(Reaction.video_id), col(Reaction.kind))
            )
        ).all()
        losses: list[tuple[str, str]] = []
        for column, other, counter in (
            (Follow.follower_id, Follow.followee_id, "follower_count"),
            (Follow.followee_id, Follow.follower_id, "following_count"),
        ):
            deleted = await session.execute(
                delete(Follow).where(col(column) == user_id).returning(col(other))
            )
            losses += [(other_id, counter) for other_id in deleted.scalars().all()]
        await session.execute(delete(UserStats).where(col(UserStats.user_id) == user_id))
        comments = (
            (
                await session.execute(
                    select(Comment)
                    .where(col(Comment.author_id) == user_id, col(Comment.deleted_at).is_(None))
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        for comment in comments:
            await Comments.soft_delete(session, comment, now)
        await session.flush()
        await session.execute(
            update(Comment).where(col(Comment.author_id) == user_id).values(author_id=None)
        )
        for video_id, kind in sorted(reactions):
            if kind in ("LIKE", "DISLIKE"):
                counter = "like_count" if kind == "LIKE" else "dislike_count"
                await session.execute(
                    update(VideoStats)
                    .where(col(VideoStats.video_id) == video_id)
                    .values({counter: getattr(VideoStats, counter) - 1})
                )
        for other_id, counter in sorted(losses):
            await session.execute(
                update(UserStats)
                .where(col(UserStats.user_id) == other_id)
                .values({counter: getattr(UserStats, counter) - 1})
            )
        await session.execute(delete(WatchHistory).where(col(WatchHistory.user_id) == user_id))
        await session.execute(delete(SavedVideo).where(col(SavedVideo.user_id) == user_id))
        await session.execute(
            delete(Notification).where(
                or_(col(Notification.user_id) == user_id, col(Notification.actor_id) == user_id)
            )
        )
        await session.execute(
            update(ChatMessage)
            .where(col(ChatMessage.author_id) == user_id)
            .values(
                author_id=None,
                body="",
                deleted_at=func.coalesce(col(ChatMessage.deleted_at), now),
            )
        )
        await session.execute(delete(ChatBan).where(col(ChatBan.user_id) == user_id))
        await session.execute(delete(ChatSender).where(col(ChatSender.user_id) == user_id))
        # Views stay counted; whose they were does not stay.
        anonymous = f"x:{uuid.uuid4().hex}"
        for model in (VideoViewer, View):
            await session.execute(
                update(model)
                .where(col(model.viewer_key) == f"u:{user_id}")
                .values(viewer_key=anonymous)
            )

    async def forget_video(self, session: AsyncSession, video_id: str) -> None:
        for model in (
            Reaction,
            Comment,
            WatchHistory,
            SavedVideo,
            AnonymousViewer,
            VideoViewer,
            View,
            VideoRetention,
            VideoStats,
        ):
            await session.execute(delete(model).where(col(model.video_id) == video_id))
        await session.execute(
            delete(Notification).where(
                col(Notification.kind) == "NEW_VIDEO", col(Notification.subject_id) == video_id
            )
        )

    async def forget_stream(self, session: AsyncSession, stream_id: str) -> None:
        for model in (ChatMessage, ChatBan, ChatSender, Presence):
            await session.execute(delete(model).where(col(model.stream_id) == stream_id))
        await session.execute(
            delete(Notification).where(
                col(Notification.kind) == "LIVE_STARTED", col(Notification.subject_id) == stream_id
            )
        )
