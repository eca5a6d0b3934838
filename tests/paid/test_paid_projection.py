"""Video's copy of billing's decisions on a real, migrated database (SQLite and PostgreSQL):
prices apply once per message and never go back to an older one, whatever order replicas
and redeliveries bring them in; malformed events change nothing; ended sessions are kept
while a token of theirs could still be valid, then pruned."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.migrations import upgrade
from subgraphs.kernel.playback import PlaybackTokenVerifier
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import JwksClient
from subgraphs.video.models import EndedPlaybackSession, Video
from subgraphs.video.paid import ENDED_SESSION_RETENTION, PaidAccess
from tests.kernel.test_migrations import _drop
from tests.support.processes import POSTGRES_SERVER


@pytest.fixture(params=["sqlite", "postgres"])
async def access(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PaidAccess]:
    name = f"rgtest_paid_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'video.db'}"
    else:
        url = (
            make_url(POSTGRES_SERVER)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    await upgrade("video", url)
    db = Database(url)
    # Never asked here: these tests feed events, not tokens.
    verifier = PlaybackTokenVerifier(JwksClient("http://127.0.0.1:9/keys.json"))
    try:
        yield PaidAccess(db=db, settings=Settings(data_dir=tmp_path), playback=verifier)
    finally:
        await verifier.close()
        await db.dispose()
        if request.param == "postgres":
            await _drop(POSTGRES_SERVER, name)


async def _video(access: PaidAccess) -> str:
    now = utcnow()
    video = Video(
        id=str(uuid.uuid4()),
        owner_id=str(uuid.uuid4()),
        title="Priced",
        title_key="priced",
        description="",
        category_id="music",
        tags="[]",
        visibility="PUBLIC",
        status="READY",
        filename="clip.mp4",
        size_bytes=1,
        created_at=now,
        updated_at=now,
    )
    async with access.db.transaction() as session:
        session.add(video)
    return video.id


async def _price(access: PaidAccess, video_id: str) -> tuple[int, str | None]:
    async with access.db.transaction() as session:
        video = await session.get(Video, video_id)
    assert video is not None
    return video.price_per_minute, video.price_currency


def _event(video_id: str, price: Any, currency: Any = "USD") -> dict[str, Any]:
    return {"videoId": video_id, "pricePerMinute": price, "currency": currency}


async def test_the_newest_price_wins_whatever_order_events_arrive_in(access: PaidAccess) -> None:
    video = await _video(access)
    assert await _price(access, video) == (0, None)
    await access.apply_price("m2", _event(video, 30), published_at=2000.0)
    # An older event delivered late (another replica, another stream position) loses.
    await access.apply_price("m1", _event(video, 10), published_at=1000.0)
    assert await _price(access, video) == (30, "USD")
    await access.apply_price("m3", _event(video, 0, None), published_at=3000.0)
    assert await _price(access, video) == (0, None)
    # A redelivery of an applied message changes nothing, even if it were the newest.
    await access.apply_price("m2", _event(video, 30), published_at=4000.0)
    assert await _price(access, video) == (0, None)


async def test_malformed_price_events_change_nothing(access: PaidAccess) -> None:
    video = await _video(access)
    await access.apply_price("ok", _event(video, 25), published_at=10.0)
    bad = [
        _event(video, -1),
        _event(video, 2.5),
        _event(video, True),
        _event(video, "25"),
        _event(video, 25, None),
        _event(video, 25, "DOLLARS"),
        _event("not-a-video", 25),
        {"videoId": video},
    ]
    for index, payload in enumerate(bad):
        await access.apply_price(f"bad{index}", payload, published_at=100.0 + index)
    assert await _price(access, video) == (25, "USD")
    # A price for a video video does not have is dropped.
    await access.apply_price("gone", _event(str(uuid.uuid4()), 25), published_at=200.0)


async def test_ended_sessions_are_recorded_once_and_pruned_when_no_token_can_be_valid(
    access: PaidAccess,
) -> None:
    video, session = await _video(access), str(uuid.uuid4())
    assert not await access.has_ended(session)
    ended = {"sessionId": session, "videoId": video, "reason": "ENDED_BY_VIEWER"}
    await access.record_ended(ended)
    await access.record_ended(ended)  # redelivered
    assert await access.has_ended(session)
    await access.record_ended({"sessionId": "nope", "videoId": video, "reason": "EXPIRED"})

    # Age the row past the retention: the next ended session prunes it.
    async with access.db.transaction() as db_session:
        await db_session.execute(
            update(EndedPlaybackSession)
            .where(EndedPlaybackSession.session_id == session)  # type: ignore[arg-type]
            .values(recorded_at=utcnow() - ENDED_SESSION_RETENTION - timedelta(minutes=1))
        )
    assert await access.has_ended(session)
    later = str(uuid.uuid4())
    await access.record_ended({"sessionId": later, "videoId": video, "reason": "EXPIRED"})
    assert not await access.has_ended(session)
    assert await access.has_ended(later)
