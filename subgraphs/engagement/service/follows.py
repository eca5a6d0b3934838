"""Follows, with exact follower counts, and the notifications a followed creator's new video or
live start creates for each follower (fanned out to live subscribers through the bus)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.engagement import events
from subgraphs.engagement.models import Follow, Notification, UserStats
from subgraphs.engagement.service.base import (
    Parts,
    cursor_id,
    insert,
    is_id,
    known_user,
    member,
    parse_id,
    require,
    rowcount,
)
from subgraphs.kernel.errors import BadUserInput, Forbidden, NotFound
from subgraphs.kernel.pagination import (
    INT64_MAX,
    cursor_int,
    cursor_time,
    decode_cursor,
    encode_cursor,
)
from subgraphs.kernel.tokens import AccessClaims

KINDS = ("NEW_VIDEO", "LIVE_STARTED")
# Recipients per bus message when a notification fans out.
FANOUT_CHUNK = 500
# Ids one markNotificationsRead may name (a page is at most 100).
MAX_MARKED = 100
NOTIFICATION_ID = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class FollowPage:
    user_ids: Sequence[str]
    cursors: Sequence[str]
    has_next_page: bool
    total_count: int


@dataclass(frozen=True)
class NotificationPage:
    notifications: Sequence[Notification]
    cursors: Sequence[str]
    has_next_page: bool
    unread_count: int


class Follows:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    # --- follows ------------------------------------------------------------------------

    async def follow(self, claims: AccessClaims | None, user_id: str) -> str:
        claims = require(claims)
        user_id = parse_id(user_id, "userId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims, writing=True)
            if user_id == who.id:
                raise BadUserInput("You cannot follow yourself.", field="userId")
            # Held until commit: the followee's deletion waits, or has happened (NOT_FOUND).
            target = await known_user(session, user_id, lock=True)
            if target is None or target.deleted:
                raise NotFound("User not found.", field="userId")
            added = rowcount(
                await session.execute(
                    insert(session, Follow)
                    .values(follower_id=who.id, followee_id=user_id, created_at=self.parts.now())
                    .on_conflict_do_nothing()
                )
            )
            if added:
                await _adjust_both(session, follower=who.id, followee=user_id, delta=+1)
        return user_id

    async def unfollow(self, claims: AccessClaims | None, user_id: str) -> str:
        claims = require(claims)
        user_id = parse_id(user_id, "userId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            removed = rowcount(
                await session.execute(
                    Follow.__table__.delete().where(  # type: ignore[attr-defined]
                        col(Follow.follower_id) == who.id, col(Follow.followee_id) == user_id
                    )
                )
            )
            if removed:
                await _adjust_both(session, follower=who.id, followee=user_id, delta=-1)
        return user_id

    async def following(
        self, claims: AccessClaims | None, user_id: str, *, first: int, after: str | None
    ) -> FollowPage:
        """Whom a user follows, newest first. The user and admins only."""
        claims = require(claims)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            if who.id != user_id and not who.is_admin:
                raise Forbidden("Only the user can see whom they follow.")
            if not is_id(user_id):
                # An entity id we never issued: nobody, who follows nobody.
                return FollowPage([], [], False, 0)
            query = select(Follow).where(col(Follow.follower_id) == user_id)
            if after is not None:
                created, followee = decode_cursor(after, 2)
                query = query.where(
                    tuple_(col(Follow.created_at), col(Follow.followee_id))
                    < tuple_(cursor_time(created), cursor_id(followee))
                )
            query = query.order_by(col(Follow.created_at).desc(), col(Follow.followee_id).desc())
            rows = (await session.execute(query.limit(first + 1))).scalars().all()
            stats = await session.get(UserStats, user_id)
        page = rows[:first]
        return FollowPage(
            [f.followee_id for f in page],
            [encode_cursor(f.created_at.isoformat(), f.followee_id) for f in page],
            len(rows) > first,
            stats.following_count if stats else 0,
        )

    async def stats(self, user_ids: Sequence[str]) -> dict[str, UserStats]:
        valid = [u for u in user_ids if is_id(u)]
        async with self.parts.db.transaction() as session:
            rows = await session.execute(select(UserStats).where(col(UserStats.user_id).in_(valid)))
            return {s.user_id: s for s in rows.scalars().all()}

    async def followed_by(self, follower_id: str, user_ids: Sequence[str]) -> set[str]:
        async with self.parts.db.transaction() as session:
            rows = await session.execute(
                select(col(Follow.followee_id)).where(
                    col(Follow.follower_id) == follower_id,
                    col(Follow.followee_id).in_([u for u in user_ids if is_id(u)]),
                )
            )
            return set(rows.scalars().all())

    # --- notifications ------------------------------------------------------------------

    async def notify_followers(
        self,
        session: AsyncSession,
        *,
        actor_id: str,
        kind: str,
        subject_id: str,
        occurrence: str,
        title: str,
    ) -> int:
        """Give each follower of `actor_id` one notification, inside the caller's transaction.

        Redelivered events change nothing: a recipient has at most one notification per
        (kind, subject, occurrence).
        """
        now = self.parts.now()
        created = (
            await session.execute(
                insert(session, Notification)
                .from_select(
                    [
                        "user_id",
                        "kind",
                        "subject_id",
                        "occurrence",
                        "actor_id",
                        "title",
                        "created_at",
                    ],
                    select(
                        col(Follow.follower_id),
                        literal(kind),
                        literal(subject_id),
                        literal(occurrence),
                        literal(actor_id),
                        literal(title[:500]),
                        literal(now, Notification.__table__.c.created_at.type),  # type: ignore[attr-defined]
                    ).where(col(Follow.followee_id) == actor_id),
                )
                .on_conflict_do_nothing()
                .returning(Notification.__table__.c.id, Notification.__table__.c.user_id)  # type: ignore[attr-defined]
            )
        ).all()
        recipients = [{"notificationId": str(n), "userId": u} for n, u in created]
        for start in range(0, len(recipients), FANOUT_CHUNK):
            await events.notifications_added(
                session,
                kind=kind,
                subject_id=subject_id,
                actor_id=actor_id,
                title=title,
                created_at=now,
                recipients=recipients[start : start + FANOUT_CHUNK],
            )
        return len(recipients)

    async def notifications(
        self, claims: AccessClaims | None, *, first: int, after: str | None
    ) -> NotificationPage:
        claims = require(claims)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            query = select(Notification).where(col(Notification.user_id) == who.id)
            if after is not None:
                (last,) = decode_cursor(after, 1)
                query = query.where(col(Notification.id) < cursor_int(last))
            rows = (
                (
                    await session.execute(
                        query.order_by(col(Notification.id).desc()).limit(first + 1)
                    )
                )
                .scalars()
                .all()
            )
            unread = (
                await session.execute(
                    select(func.count()).where(
                        col(Notification.user_id) == who.id, col(Notification.read_at).is_(None)
                    )
                )
            ).scalar_one()
        page = rows[:first]
        return NotificationPage(
            page, [encode_cursor(n.id) for n in page], len(rows) > first, int(unread)
        )

    async def mark_read(self, claims: AccessClaims | None, ids: Sequence[str] | None) -> int:
        """Mark the caller's notifications read (all, or those listed); returns how many changed.

        Ids of other users' notifications change nothing.
        """
        claims = require(claims)
        numbers = None if ids is None else _notification_ids(ids)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            query = update(Notification).where(
                col(Notification.user_id) == who.id, col(Notification.read_at).is_(None)
            )
            if numbers is not None:
                query = query.where(col(Notification.id).in_(numbers))
            result = await session.execute(query.values(read_at=self.parts.now()))
        return rowcount(result)


def _notification_ids(ids: Sequence[str]) -> list[int]:
    """Notification ids as we issue them: decimal BIGINTs, at most `MAX_MARKED` of them."""
    if len(ids) > MAX_MARKED:
        raise BadUserInput(f"At most {MAX_MARKED} ids at a time.", field="ids")
    numbers = []
    for value in ids:
        # Not int(): it also takes " 1", "+1" and "1_000", and numbers no BIGINT holds.
        if not NOTIFICATION_ID.fullmatch(value) or int(value) > INT64_MAX:
            raise BadUserInput("Not a valid notification id.", field="ids")
        numbers.append(int(value))
    return numbers


async def _adjust_both(session: AsyncSession, *, follower: str, followee: str, delta: int) -> None:
    """Both counters of one follow, in user-id order: two people following each other at once
    lock the same two rows in the same order, so they queue instead of deadlocking."""
    changes = {followee: {"followers": delta}, follower: {"following": delta}}
    for user_id in sorted(changes):
        await _adjust(session, user_id, **changes[user_id])


async def _adjust(
    session: AsyncSession, user_id: str, *, followers: int = 0, following: int = 0
) -> None:
    await session.execute(
        insert(session, UserStats)
        .values(user_id=user_id, follower_count=0, following_count=0)
        .on_conflict_do_nothing()
    )
    await session.execute(
        update(UserStats)
        .where(col(UserStats.user_id) == user_id)
        .values(
            follower_count=col(UserStats.follower_count) + followers,
            following_count=col(UserStats.following_count) + following,
        )
    )
