"""Comments with one level of replies, as on YouTube: authors edit, authors, the video's owner
and admins delete (softly: a deleted comment with replies keeps its place in the thread)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.engagement.models import Comment, KnownVideo, VideoStats
from subgraphs.engagement.service.base import (
    Member,
    Parts,
    clean_text,
    cursor_id,
    is_id,
    may_see,
    member,
    optional_member,
    parse_id,
    require,
    visible_video,
)
from subgraphs.kernel.errors import BadUserInput, Forbidden, NotFound
from subgraphs.kernel.pagination import cursor_int, cursor_time, decode_cursor, encode_cursor
from subgraphs.kernel.tokens import AccessClaims

ORDERS = ("NEWEST", "TOP")


@dataclass(frozen=True)
class CommentPage:
    comments: Sequence[Comment]
    cursors: Sequence[str]
    has_next_page: bool


# Reply counts are INTEGER columns: a cursor's count past that is not one we issued.
MAX_REPLY_COUNT = 2**31 - 1


class Comments:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def _body(self, body: str) -> str:
        return clean_text(
            body, field="body", max_length=self.parts.settings.comment_max_length, multiline=True
        )

    async def add(
        self, claims: AccessClaims | None, video_id: str, body: str, parent_id: str | None
    ) -> Comment:
        claims = require(claims)
        video_id = parse_id(video_id, "videoId")
        parent_key = parse_id(parent_id, "parentId") if parent_id is not None else None
        text = self._body(body)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims, writing=True)
            await visible_video(session, video_id, who)
            thread: str | None = None
            if parent_key is not None:
                parent = await session.get(Comment, parent_key, with_for_update=True)
                if parent is None or parent.video_id != video_id:
                    raise NotFound("Comment not found.", field="parentId")
                # Replies to a reply join the reply's thread: there is one level of replies.
                thread = parent.parent_id or parent.id
                if parent.parent_id is not None:
                    parent = await session.get(Comment, thread, with_for_update=True)
                    assert parent is not None
                if parent.deleted_at is not None:
                    raise BadUserInput("That comment was deleted.", field="parentId")
                await session.execute(
                    update(Comment)
                    .where(col(Comment.id) == thread)
                    .values(reply_count=col(Comment.reply_count) + 1)
                )
            comment = Comment(
                id=str(uuid.uuid4()),
                video_id=video_id,
                parent_id=thread,
                author_id=who.id,
                body=text,
                created_at=self.parts.now(),
            )
            session.add(comment)
            await self._count(session, video_id, +1)
        return comment

    async def edit(self, claims: AccessClaims | None, comment_id: str, body: str) -> Comment:
        claims = require(claims)
        comment_id = parse_id(comment_id, "commentId")
        text = self._body(body)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims, writing=True)
            comment = await self._visible(session, comment_id, who, lock=True)
            if comment.author_id != who.id:
                raise Forbidden("Only the author can edit a comment.")
            if comment.deleted_at is not None:
                raise NotFound("Comment not found.")
            if comment.body != text:
                comment.body = text
                comment.edited_at = self.parts.now()
                session.add(comment)
        return comment

    async def delete(self, claims: AccessClaims | None, comment_id: str) -> bool:
        """Soft-delete; true also when it was already deleted (deleting is idempotent)."""
        claims = require(claims)
        comment_id = parse_id(comment_id, "commentId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            comment = await self._visible(session, comment_id, who, lock=True)
            video = await session.get(KnownVideo, comment.video_id)
            owner = video is not None and video.owner_id == who.id
            if not (who.is_admin or owner or comment.author_id == who.id):
                raise Forbidden("Only the author, the video's owner or an admin can delete this.")
            if comment.deleted_at is None:
                await self.soft_delete(session, comment, self.parts.now())
        return True

    @staticmethod
    async def soft_delete(session: AsyncSession, comment: Comment, when: datetime) -> None:
        """Remove a comment's text and take it out of the counts (the caller holds its lock)."""
        comment.deleted_at = when
        comment.body = ""
        session.add(comment)
        if comment.parent_id is not None:
            await session.execute(
                update(Comment)
                .where(col(Comment.id) == comment.parent_id)
                .values(reply_count=col(Comment.reply_count) - 1)
            )
        await Comments._count(session, comment.video_id, -1)

    @staticmethod
    async def _count(session: AsyncSession, video_id: str, delta: int) -> None:
        await session.execute(
            update(VideoStats)
            .where(col(VideoStats.video_id) == video_id)
            .values(comment_count=col(VideoStats.comment_count) + delta)
        )

    async def _visible(
        self, session: AsyncSession, comment_id: str, who: Member | None, *, lock: bool = False
    ) -> Comment:
        comment = await session.get(Comment, comment_id, with_for_update=lock)
        if comment is None:
            raise NotFound("Comment not found.")
        video = await session.get(KnownVideo, comment.video_id)
        if not may_see(video, who):
            raise NotFound("Comment not found.")
        return comment

    # --- reads ---------------------------------------------------------------------------

    async def get(self, claims: AccessClaims | None, comment_id: str) -> Comment | None:
        if not is_id(comment_id):
            return None
        async with self.parts.db.transaction() as session:
            who = await optional_member(session, claims)
            try:
                return await self._visible(session, comment_id, who)
            except NotFound:
                return None

    async def threads(
        self, video_id: str, *, order: str, first: int, after: str | None
    ) -> CommentPage:
        """Top-level comments of a video; deleted ones stay while they have replies.

        The caller has already checked that the viewer may see the video.
        """
        if order not in ORDERS:
            raise BadUserInput("orderBy must be NEWEST or TOP.", field="orderBy")
        query = select(Comment).where(
            col(Comment.video_id) == video_id,
            col(Comment.parent_id).is_(None),
            or_(col(Comment.deleted_at).is_(None), col(Comment.reply_count) > 0),
        )
        if order == "TOP":
            # Most-discussed first; reply counts move, so a page boundary may shift slightly.
            key = (col(Comment.reply_count), col(Comment.created_at), col(Comment.id))
            if after is not None:
                replies, created, comment_id = decode_cursor(after, 3)
                position = (
                    cursor_int(replies, minimum=0, maximum=MAX_REPLY_COUNT),
                    cursor_time(created),
                    cursor_id(comment_id),
                )
                query = query.where(tuple_(*key) < tuple_(*position))
            query = query.order_by(*(k.desc() for k in key))
        else:
            key2 = (col(Comment.created_at), col(Comment.id))
            if after is not None:
                created, comment_id = decode_cursor(after, 2)
                query = query.where(
                    tuple_(*key2) < tuple_(cursor_time(created), cursor_id(comment_id))
                )
            query = query.order_by(*(k.desc() for k in key2))
        async with self.parts.db.transaction() as session:
            rows = (await session.execute(query.limit(first + 1))).scalars().all()
        page = rows[:first]
        if order == "TOP":
            cursors = [encode_cursor(c.reply_count, c.created_at.isoformat(), c.id) for c in page]
        else:
            cursors = [encode_cursor(c.created_at.isoformat(), c.id) for c in page]
        return CommentPage(page, cursors, len(rows) > first)

    async def replies(self, comment_id: str, *, first: int, after: str | None) -> CommentPage:
        """A thread's replies that are not deleted, oldest first."""
        query = select(Comment).where(
            col(Comment.parent_id) == comment_id, col(Comment.deleted_at).is_(None)
        )
        if after is not None:
            created, reply_id = decode_cursor(after, 2)
            query = query.where(
                tuple_(col(Comment.created_at), col(Comment.id))
                > tuple_(cursor_time(created), cursor_id(reply_id))
            )
        query = query.order_by(col(Comment.created_at), col(Comment.id)).limit(first + 1)
        async with self.parts.db.transaction() as session:
            rows = (await session.execute(query)).scalars().all()
        page = rows[:first]
        cursors = [encode_cursor(c.created_at.isoformat(), c.id) for c in page]
        return CommentPage(page, cursors, len(rows) > first)
