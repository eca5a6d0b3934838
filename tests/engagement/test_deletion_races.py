"""A user's deletion racing their own reactions and unfollows: every counter is moved once,
by what the deletion actually deleted. On PostgreSQL the races are staged for real: a test
transaction holds a counter row so the user's change stops half-way (its row changed and
locked, its counters not yet moved), the deletion starts beside it, and both are let go."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from subgraphs.engagement.models import Follow, Reaction, UserStats, VideoStats
from subgraphs.kernel.db import Database
from subgraphs.kernel.errors import Unauthenticated
from subgraphs.kernel.tokens import AccessClaims
from tests.engagement.world import World, open_world
from tests.support.processes import environment


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with environment(tmp_path, database="postgres", bus="local") as env:
        yield env.settings().database_url_for("engagement")


@pytest.fixture
async def pg_world(pg_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(pg_url, tmp_path) as world:
        yield world


async def waiting_for_locks(db: Database, n: int) -> None:
    """Until `n` sessions of this database wait on a lock (the staged transactions)."""
    deadline = time.monotonic() + 60
    while True:
        async with db.transaction() as session:
            waiting = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
        if waiting >= n:
            return
        assert time.monotonic() < deadline, f"{waiting} of {n} sessions waiting on a lock"
        await asyncio.sleep(0.05)


async def finished(*tasks: Awaitable[object]) -> None:
    await asyncio.wait_for(asyncio.gather(*tasks), 60)


async def video_counts(world: World, video: str) -> tuple[int, int]:
    async with world.db.transaction() as session:
        stats = await session.get(VideoStats, video)
        assert stats is not None
        return stats.like_count, stats.dislike_count


async def user_counts(world: World, user_id: str) -> tuple[int, int]:
    async with world.db.transaction() as session:
        stats = await session.get(UserStats, user_id)
        return (stats.follower_count, stats.following_count) if stats else (0, 0)


async def test_a_reaction_switched_while_its_user_is_deleted_is_taken_back_once(
    pg_world: World,
) -> None:
    world = pg_world
    owner, leaver, fan = await world.user(), await world.user(), await world.user()
    video = await world.video(owner)
    await world.service.reactions.react(leaver, video, "LIKE")
    await world.service.reactions.react(fan, video, "LIKE")
    assert await video_counts(world, video) == (2, 0)

    async with world.db.transaction() as hold:
        await hold.execute(
            select(VideoStats).where(col(VideoStats.video_id) == video).with_for_update()
        )
        switch = asyncio.create_task(world.service.reactions.react(leaver, video, "DISLIKE"))
        await waiting_for_locks(world.db, 1)
        deletion = asyncio.create_task(world.event("auth.user.deleted", {"userId": leaver.subject}))
        await waiting_for_locks(world.db, 2)
    # The switch went first (LIKE → DISLIKE); the deletion then took back the DISLIKE only.
    await finished(switch, deletion)

    assert await video_counts(world, video) == (1, 0)
    async with world.db.transaction() as session:
        left = (
            await session.execute(
                select(func.count()).where(col(Reaction.user_id) == leaver.subject)
            )
        ).scalar_one()
    assert left == 0


async def test_an_unfollow_while_its_user_is_deleted_is_counted_once(pg_world: World) -> None:
    world = pg_world
    creator, leaver, friend = await world.user(), await world.user(), await world.user()
    await world.service.follows.follow(leaver, creator.subject)
    await world.service.follows.follow(friend, leaver.subject)
    assert await user_counts(world, creator.subject) == (1, 0)

    async with world.db.transaction() as hold:
        await hold.execute(
            select(UserStats).where(col(UserStats.user_id) == creator.subject).with_for_update()
        )
        unfollow = asyncio.create_task(world.service.follows.unfollow(leaver, creator.subject))
        await waiting_for_locks(world.db, 1)
        deletion = asyncio.create_task(world.event("auth.user.deleted", {"userId": leaver.subject}))
        await waiting_for_locks(world.db, 2)
    await finished(unfollow, deletion)

    assert await user_counts(world, creator.subject) == (0, 0)
    assert await user_counts(world, friend.subject) == (0, 0)
    async with world.db.transaction() as session:
        follows = (await session.execute(select(func.count()).select_from(Follow))).scalar_one()
    assert follows == 0


async def test_counts_stay_exact_when_reactions_race_their_users_deletion(world: World) -> None:
    """Unstaged: users flip their reactions while they are deleted, in whatever order the
    database lets them. Whatever wins, the counters are the rows that are left."""
    owner = await world.user()
    video = await world.video(owner)
    leavers = [await world.user() for _ in range(6)]
    stayers = [await world.user() for _ in range(4)]
    for who in leavers + stayers:
        await world.service.reactions.react(who, video, "LIKE")

    async def flip(who: AccessClaims) -> None:
        for kind in ("DISLIKE", "LIKE", "NONE", "DISLIKE"):
            try:
                await world.service.reactions.react(who, video, kind)
            except Unauthenticated:
                return  # deleted by now: refused, as it should be

    deletions = [world.event("auth.user.deleted", {"userId": u.subject}) for u in leavers]
    await finished(*(flip(u) for u in leavers + stayers), *deletions)

    async with world.db.transaction() as session:
        rows = dict(
            (
                await session.execute(
                    select(col(Reaction.kind), func.count())
                    .where(col(Reaction.video_id) == video)
                    .group_by(col(Reaction.kind))
                )
            ).all()
        )
        reactors = set(
            (
                await session.execute(
                    select(col(Reaction.user_id)).where(col(Reaction.video_id) == video)
                )
            ).scalars()
        )
    assert await video_counts(world, video) == (rows.get("LIKE", 0), rows.get("DISLIKE", 0))
    assert await video_counts(world, video) == (0, 4)
    assert reactors <= {u.subject for u in stayers}
