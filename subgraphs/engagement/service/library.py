"""A viewer's own library: watch history with resume positions, continue watching, and the
watch-later and favorites lists. Only their owner reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.engagement.models import KnownVideo, SavedVideo, WatchHistory
from subgraphs.engagement.service.base import (
    Member,
    Parts,
    cursor_id,
    insert,
    member,
    parse_id,
    require,
    rowcount,
    visible_to,
    visible_video,
)
from subgraphs.engagement.service.views import COMPLETION, Progress
from subgraphs.kernel.errors import BadUserInput, Forbidden
from subgraphs.kernel.pagination import cursor_time, decode_cursor, encode_cursor
from subgraphs.kernel.tokens import AccessClaims

LISTS = ("WATCH_LATER", "FAVORITES")
# Continue watching leaves out what was barely started.
STARTED_SECONDS = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    cursors: Sequence[str]
    has_next_page: bool
    total_count: int


@dataclass(frozen=True)
class Saved:
    video_id: str
    added_at: datetime


def _after(after: str | None) -> tuple[datetime, str] | None:
    if after is None:
        return None
    when, video_id = decode_cursor(after, 2)
    return cursor_time(when), cursor_id(video_id)


def _list(name: str) -> str:
    if name not in LISTS:
        raise BadUserInput("List must be WATCH_LATER or FAVORITES.", field="list")
    return name


class Library:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    async def _owner(
        self, session: AsyncSession, claims: AccessClaims | None, user_id: str
    ) -> Member:
        who = await member(session, require(claims))
        if who.id != user_id:
            raise Forbidden("Only the user can see their own library.")
        return who

    # --- watch history ------------------------------------------------------------------

    async def history(
        self, claims: AccessClaims | None, user_id: str, *, first: int, after: str | None
    ) -> Page[Progress]:
        async with self.parts.db.transaction() as session:
            who = await self._owner(session, claims, user_id)
            mine = and_(
                col(WatchHistory.user_id) == who.id,
                col(KnownVideo.id) == col(WatchHistory.video_id),
                visible_to(who),
            )
            query = select(WatchHistory, col(KnownVideo.duration_seconds)).where(mine)
            if (position := _after(after)) is not None:
                query = query.where(
                    tuple_(col(WatchHistory.watched_at), col(WatchHistory.video_id))
                    < tuple_(*position)
                )
            query = query.order_by(
                col(WatchHistory.watched_at).desc(), col(WatchHistory.video_id).desc()
            )
            rows = (await session.execute(query.limit(first + 1))).all()
            total = (
                await session.execute(
                    select(func.count()).select_from(WatchHistory).join(KnownVideo, mine)
                )
            ).scalar_one()
        items = [_progress(entry, duration) for entry, duration in rows[:first]]
        return Page(
            items,
            [encode_cursor(p.watched_at.isoformat(), p.video_id) for p in items],
            len(rows) > first,
            int(total),
        )

    async def continue_watching(
        self, claims: AccessClaims | None, user_id: str, *, first: int
    ) -> list[Progress]:
        """Videos started and not finished, most recently watched first."""
        async with self.parts.db.transaction() as session:
            who = await self._owner(session, claims, user_id)
            duration = col(KnownVideo.duration_seconds)
            rows = (
                await session.execute(
                    select(WatchHistory, duration)
                    .join(KnownVideo, col(KnownVideo.id) == col(WatchHistory.video_id))
                    .where(
                        col(WatchHistory.user_id) == who.id,
                        visible_to(who),
                        duration.is_not(None),
                        col(WatchHistory.position_seconds) >= STARTED_SECONDS,
                        col(WatchHistory.position_seconds) < duration * COMPLETION,
                    )
                    .order_by(
                        col(WatchHistory.watched_at).desc(), col(WatchHistory.video_id).desc()
                    )
                    .limit(first)
                )
            ).all()
        return [_progress(entry, length) for entry, length in rows]

    async def progress_of(self, user_id: str, video_ids: Sequence[str]) -> dict[str, Progress]:
        async with self.parts.db.transaction() as session:
            rows = await session.execute(
                select(WatchHistory, col(KnownVideo.duration_seconds))
                .join(KnownVideo, col(KnownVideo.id) == col(WatchHistory.video_id))
                .where(
                    col(WatchHistory.user_id) == user_id,
                    col(WatchHistory.video_id).in_(video_ids),
                )
            )
            return {entry.video_id: _progress(entry, duration) for entry, duration in rows.all()}

    async def clear_history(self, claims: AccessClaims | None) -> int:
        claims = require(claims)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            result = await session.execute(
                delete(WatchHistory).where(col(WatchHistory.user_id) == who.id)
            )
        return rowcount(result)

    async def remove_from_history(self, claims: AccessClaims | None, video_id: str) -> bool:
        """True when the video was in the history. Works for videos no longer visible too."""
        claims = require(claims)
        video_id = parse_id(video_id, "videoId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            result = await session.execute(
                delete(WatchHistory).where(
                    col(WatchHistory.user_id) == who.id, col(WatchHistory.video_id) == video_id
                )
            )
        return rowcount(result) == 1

    # --- watch later and favorites ------------------------------------------------------

    async def save(self, claims: AccessClaims | None, name: str, video_id: str) -> str:
        claims = require(claims)
        name = _list(name)
        video_id = parse_id(video_id, "videoId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims, writing=True)
            await visible_video(session, video_id, who)
            await session.execute(
                insert(session, SavedVideo)
                .values(user_id=who.id, list=name, video_id=video_id, added_at=self.parts.now())
                .on_conflict_do_nothing()
            )
        return video_id

    async def unsave(self, claims: AccessClaims | None, name: str, video_id: str) -> bool:
        """True when the video was on the list. Works for videos no longer visible too."""
        claims = require(claims)
        name = _list(name)
        video_id = parse_id(video_id, "videoId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            result = await session.execute(
                delete(SavedVideo).where(
                    col(SavedVideo.user_id) == who.id,
                    col(SavedVideo.list) == name,
                    col(SavedVideo.video_id) == video_id,
                )
            )
        return rowcount(result) == 1

    async def saved(
        self,
        claims: AccessClaims | None,
        user_id: str,
        name: str,
        *,
        first: int,
        after: str | None,
    ) -> Page[Saved]:
        """Newest first; videos that stopped being visible are left out, not removed."""
        name = _list(name)
        async with self.parts.db.transaction() as session:
            who = await self._owner(session, claims, user_id)
            mine = and_(
                col(SavedVideo.user_id) == who.id,
                col(SavedVideo.list) == name,
                col(KnownVideo.id) == col(SavedVideo.video_id),
                visible_to(who),
            )
            query: Any = select(col(SavedVideo.video_id), col(SavedVideo.added_at)).where(mine)
            if (position := _after(after)) is not None:
                query = query.where(
                    tuple_(col(SavedVideo.added_at), col(SavedVideo.video_id)) < tuple_(*position)
                )
            query = query.order_by(col(SavedVideo.added_at).desc(), col(SavedVideo.video_id).desc())
            rows = (await session.execute(query.limit(first + 1))).all()
            total = (
                await session.execute(
                    select(func.count()).select_from(SavedVideo).join(KnownVideo, mine)
                )
            ).scalar_one()
        items = [Saved(video_id, added_at) for video_id, added_at in rows[:first]]
        return Page(
            items,
            [encode_cursor(s.added_at.isoformat(), s.video_id) for s in items],
            len(rows) > first,
            int(total),
        )

    async def saved_lists(self, user_id: str, video_ids: Sequence[str]) -> dict[str, set[str]]:
        """Which of the user's lists each video is on."""
        async with self.parts.db.transaction() as session:
            rows = await session.execute(
                select(col(SavedVideo.video_id), col(SavedVideo.list)).where(
                    col(SavedVideo.user_id) == user_id, col(SavedVideo.video_id).in_(video_ids)
                )
            )
            found: dict[str, set[str]] = {}
            for video_id, name in rows.all():
                found.setdefault(video_id, set()).add(name)
            return found


def _progress(entry: WatchHistory, duration: float | None) -> Progress:
    return Progress(entry.video_id, entry.position_seconds, duration, entry.watched_at)
