"""Likes and dislikes: one reaction per user and video, with counts that stay exact under
concurrency (the user's reaction row is locked, the counters move by deltas)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.engagement.models import Reaction, VideoStats
from subgraphs.engagement.service.base import (
    Parts,
    insert,
    member,
    parse_id,
    require,
    visible_video,
)
from subgraphs.kernel.errors import BadUserInput
from subgraphs.kernel.tokens import AccessClaims

KINDS = ("LIKE", "DISLIKE", "NONE")


def _delta(kind: str) -> tuple[int, int]:
    return (1 if kind == "LIKE" else 0, 1 if kind == "DISLIKE" else 0)


class Reactions:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    async def react(self, claims: AccessClaims | None, video_id: str, kind: str) -> str:
        """Set the caller's reaction to a video; returns the video id."""
        claims = require(claims)
        video_id = parse_id(video_id, "videoId")
        if kind not in KINDS:
            raise BadUserInput("Reaction must be LIKE, DISLIKE or NONE.", field="reaction")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims, writing=True)
            await visible_video(session, video_id, who)
            previous = await self._lock(session, video_id, who.id)
            if previous == kind:
                return video_id
            old_like, old_dislike = _delta(previous)
            new_like, new_dislike = _delta(kind)
            if kind == "NONE":
                await session.execute(
                    Reaction.__table__.delete().where(  # type: ignore[attr-defined]
                        col(Reaction.video_id) == video_id, col(Reaction.user_id) == who.id
                    )
                )
            else:
                await session.execute(
                    update(Reaction)
                    .where(col(Reaction.video_id) == video_id, col(Reaction.user_id) == who.id)
                    .values(kind=kind, updated_at=self.parts.now())
                )
            # A delta, never a value read earlier: concurrent reactions of other users add up.
            await session.execute(
                update(VideoStats)
                .where(col(VideoStats.video_id) == video_id)
                .values(
                    like_count=col(VideoStats.like_count) + (new_like - old_like),
                    dislike_count=col(VideoStats.dislike_count) + (new_dislike - old_dislike),
                )
            )
        return video_id

    async def _lock(self, session: AsyncSession, video_id: str, user_id: str) -> str:
        """The user's current reaction, with its row locked until the transaction ends.

        A NONE row is inserted first when there is none, so there is always a row to lock:
        two concurrent first reactions of one user then serialise instead of both counting.
        """
        await session.execute(
            insert(session, Reaction)
            .values(video_id=video_id, user_id=user_id, kind="NONE", updated_at=self.parts.now())
            .on_conflict_do_nothing()
        )
        kind = (
            await session.execute(
                select(col(Reaction.kind))
                .where(col(Reaction.video_id) == video_id, col(Reaction.user_id) == user_id)
                .with_for_update()
            )
        ).scalar_one()
        return str(kind)

    async def viewer_reactions(self, user_id: str, video_ids: Sequence[str]) -> dict[str, str]:
        async with self.parts.db.transaction() as session:
            rows = await session.execute(
                select(col(Reaction.video_id), col(Reaction.kind)).where(
                    col(Reaction.user_id) == user_id, col(Reaction.video_id).in_(video_ids)
                )
            )
            return {video_id: kind for video_id, kind in rows.all()}
