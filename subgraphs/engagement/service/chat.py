"""Live chat per stream: sending under a per-user rate that slow mode raises, the last
messages kept readable, and moderation (delete, ban, slow mode) by the stream's owner and
admins. Every change is published through the outbox for subscribers on every replica."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import col

from subgraphs.engagement import events
from subgraphs.engagement.models import ChatBan, ChatMessage, ChatRoom, ChatSender
from subgraphs.engagement.service.base import (
    Member,
    Parts,
    clean_text,
    insert,
    is_id,
    live_room,
    member,
    parse_id,
    require,
)
from subgraphs.kernel.errors import BadUserInput, Forbidden, NotFound, RateLimited
from subgraphs.kernel.tokens import AccessClaims

MAX_SLOW_MODE = 3600
MAX_BAN_SECONDS = 366 * 86400


def _moderates(who: Member, room: ChatRoom) -> bool:
    return who.is_admin or room.owner_id == who.id


class Chat:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    async def send(self, claims: AccessClaims | None, stream_id: str, body: str) -> ChatMessage:
        claims = require(claims)
        stream_id = parse_id(stream_id, "streamId")
        settings = self.parts.settings
        text = clean_text(
            body, field="body", max_length=settings.chat_message_max_length, multiline=False
        )
        async with self.parts.db.transaction() as session:
            who = await member(session, claims, writing=True)
            room = await live_room(session, stream_id)
            now = self.parts.now()
            ban = await session.get(ChatBan, (stream_id, who.id))
            if ban is not None and (ban.until is None or ban.until > now):
                extra = {"until": ban.until.isoformat()} if ban.until else {}
                raise Forbidden(
                    "You are banned from this chat.", reason="BANNED_FROM_CHAT", **extra
                )
            # The owner and admins are held to the base rate only, never to slow mode.
            interval = settings.chat_min_interval
            if not _moderates(who, room):
                interval = max(interval, float(room.slow_mode_seconds))
            await session.execute(
                insert(session, ChatSender)
                .values(stream_id=stream_id, user_id=who.id, last_sent_at=0.0)
                .on_conflict_do_nothing()
            )
            # Locked: two replicas serving one user's burst see each other's sends.
            last_sent = (
                await session.execute(
                    select(col(ChatSender.last_sent_at))
                    .where(
                        col(ChatSender.stream_id) == stream_id, col(ChatSender.user_id) == who.id
                    )
                    .with_for_update()
                )
            ).scalar_one()
            clock = self.parts.clock()
            wait = last_sent + interval - clock
            if wait > 0:
                raise RateLimited(
                    "You are sending messages too fast.", retry_after=max(1, math.ceil(wait))
                )
            await session.execute(
                update(ChatSender)
                .where(col(ChatSender.stream_id) == stream_id, col(ChatSender.user_id) == who.id)
                .values(last_sent_at=clock)
            )
            await session.execute(
                update(ChatRoom)
                .where(col(ChatRoom.id) == stream_id)
                .values(last_seq=col(ChatRoom.last_seq) + 1)
            )
            seq = (
                await session.execute(
                    select(col(ChatRoom.last_seq)).where(col(ChatRoom.id) == stream_id)
                )
            ).scalar_one()
            message = ChatMessage(
                id=str(uuid.uuid4()),
                stream_id=stream_id,
                seq=seq,
                author_id=who.id,
                body=text,
                created_at=now,
            )
            session.add(message)
            await session.execute(
                delete(ChatMessage).where(
                    col(ChatMessage.stream_id) == stream_id,
                    col(ChatMessage.seq) <= seq - settings.chat_history,
                )
            )
            await events.chat_message_added(
                session,
                message_id=message.id,
                stream_id=stream_id,
                author_id=who.id,
                body=text,
                created_at=now,
            )
        return message

    async def history(self, stream_id: str, last: int) -> list[ChatMessage]:
        """The newest `last` messages that are not deleted, oldest first."""
        stream_id = parse_id(stream_id, "streamId")
        limit = self.parts.settings.chat_history
        if last < 1 or last > limit:
            raise BadUserInput(f"last must be between 1 and {limit}.", field="last")
        async with self.parts.db.transaction() as session:
            await live_room(session, stream_id)
            rows = (
                (
                    await session.execute(
                        select(ChatMessage)
                        .where(
                            col(ChatMessage.stream_id) == stream_id,
                            col(ChatMessage.deleted_at).is_(None),
                        )
                        .order_by(col(ChatMessage.seq).desc())
                        .limit(last)
                    )
                )
                .scalars()
                .all()
            )
        return list(reversed(rows))

    async def delete(self, claims: AccessClaims | None, message_id: str) -> bool:
        claims = require(claims)
        message_id = parse_id(message_id, "id")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            message = await session.get(ChatMessage, message_id, with_for_update=True)
            if message is None:
                raise NotFound("Chat message not found.")
            room = await live_room(session, message.stream_id)
            if not _moderates(who, room):
                raise Forbidden("Only the stream's owner or an admin can delete chat messages.")
            if message.deleted_at is not None:
                return True
            message.deleted_at = self.parts.now()
            message.body = ""
            session.add(message)
            await events.chat_message_deleted(
                session, message_id=message.id, stream_id=message.stream_id
            )
        return True

    async def ban(
        self,
        claims: AccessClaims | None,
        stream_id: str,
        user_id: str,
        duration_seconds: int | None,
    ) -> ChatBan:
        """Ban a user from a room for a while, or until lifted (no duration)."""
        claims = require(claims)
        stream_id = parse_id(stream_id, "streamId")
        user_id = parse_id(user_id, "userId")
        if duration_seconds is not None and not 1 <= duration_seconds <= MAX_BAN_SECONDS:
            raise BadUserInput(
                f"durationSeconds must be between 1 and {MAX_BAN_SECONDS}.",
                field="durationSeconds",
            )
        async with self.parts.db.transaction() as session:
            who = await member(session, claims, writing=True)
            room = await live_room(session, stream_id)
            if not _moderates(who, room):
                raise Forbidden("Only the stream's owner or an admin can ban from chat.")
            if user_id in (room.owner_id, who.id):
                raise BadUserInput("The stream's owner cannot be banned.", field="userId")
            now = self.parts.now()
            values: dict[str, Any] = {
                "until": now + timedelta(seconds=duration_seconds) if duration_seconds else None,
                "banned_by": who.id,
                "created_at": now,
            }
            await session.execute(
                insert(session, ChatBan)
                .values(stream_id=stream_id, user_id=user_id, **values)
                .on_conflict_do_update(index_elements=["stream_id", "user_id"], set_=values)
            )
        return ChatBan(stream_id=stream_id, user_id=user_id, **values)

    async def unban(self, claims: AccessClaims | None, stream_id: str, user_id: str) -> bool:
        """True when the user was banned."""
        claims = require(claims)
        stream_id = parse_id(stream_id, "streamId")
        user_id = parse_id(user_id, "userId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            room = await live_room(session, stream_id)
            if not _moderates(who, room):
                raise Forbidden("Only the stream's owner or an admin can lift a ban.")
            result = await session.execute(
                delete(ChatBan).where(
                    col(ChatBan.stream_id) == stream_id, col(ChatBan.user_id) == user_id
                )
            )
        return bool(getattr(result, "rowcount", 0))

    async def set_slow_mode(
        self, claims: AccessClaims | None, stream_id: str, seconds: int
    ) -> ChatRoom:
        claims = require(claims)
        stream_id = parse_id(stream_id, "streamId")
        if not 0 <= seconds <= MAX_SLOW_MODE:
            raise BadUserInput(
                f"Slow mode must be between 0 and {MAX_SLOW_MODE} seconds.", field="seconds"
            )
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            room = await live_room(session, stream_id)
            if not _moderates(who, room):
                raise Forbidden("Only the stream's owner or an admin can set slow mode.")
            room.slow_mode_seconds = seconds
            session.add(room)
        return room

    async def room(self, stream_id: str) -> ChatRoom:
        """A room that exists, or NOT_FOUND (subscriptions check before they start)."""
        stream_id = parse_id(stream_id, "streamId")
        async with self.parts.db.transaction() as session:
            return await live_room(session, stream_id)

    async def rooms(self, stream_ids: Sequence[str]) -> dict[str, ChatRoom]:
        valid = [s for s in stream_ids if is_id(s)]
        async with self.parts.db.transaction() as session:
            rows = await session.execute(
                select(ChatRoom).where(
                    col(ChatRoom.id).in_(valid), col(ChatRoom.deleted).is_(False)
                )
            )
            return {room.id: room for room in rows.scalars().all()}
