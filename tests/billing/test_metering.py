"""Metering rules at the service level, on a real SQLite file and a real PostgreSQL database,
with a clock the test moves (a minute is 60 s, a session lapses 90 s after the last heartbeat
that extended it): every second a playback token grants is paid for, by the wall clock and
never by the position a client claims; a paused player is neither charged nor extended; a
lapsed or ended session is charged the minutes its token granted; a price change ends the
sessions it reprices."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jose import jwt
from sqlalchemy import select

from subgraphs.billing import events, ledger
from subgraphs.billing.models import PlaybackSession, outbox
from subgraphs.billing.service import BillingService, Playback, SessionEnded
from subgraphs.kernel.errors import DomainError
from tests.billing.harness import Clock, billing_service, claims, migrated_database

MINUTE = 60.0
TTL = 90.0


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory.mktemp("metering")) as url:
        yield url


@pytest.fixture
async def billing(database: str, tmp_path: Path) -> AsyncIterator[tuple[BillingService, Clock]]:
    clock = Clock()
    async with billing_service(
        database,
        tmp_path,
        clock,
        billing_minute_seconds=MINUTE,
        billing_session_ttl_seconds=TTL,
    ) as service:
        yield service, clock


async def _video(service: BillingService, creator: str, price: int) -> str:
    video = str(uuid.uuid4())
    await service.apply_event(
        "video.ready",
        uuid.uuid4().hex,
        {"videoId": video, "ownerId": creator, "visibility": "PUBLIC"},
    )
    await service.set_video_price(claims(creator), video, price, None)
    return video


async def _viewer(service: BillingService, funds: int) -> str:
    viewer = str(uuid.uuid4())
    await service.deposit(
        claims(viewer), amount=funds, payment_token="tok_visa", idempotency_key=uuid.uuid4().hex
    )
    return viewer


async def _balance(service: BillingService, user: str) -> int:
    async with service.db.transaction() as session:
        return await ledger.balance(session, ledger.wallet(user, "USD"))


async def _row(service: BillingService, session_id: str) -> PlaybackSession:
    async with service.db.transaction() as session:
        row = await session.get(PlaybackSession, session_id)
    assert row is not None
    return row


def _token_expiry(view: Playback) -> int:
    assert view.token is not None
    return int(jwt.get_unverified_claims(view.token)["exp"])


async def _ended_events(service: BillingService, session_id: str) -> list[dict[str, Any]]:
    async with service.db.transaction() as session:
        rows = (
            await session.execute(
                select(outbox.c.payload).where(outbox.c.topic == events.PLAYBACK_ENDED)
            )
        ).scalars()
        payloads = [json.loads(p) for p in rows]
    return [p for p in payloads if p["sessionId"] == session_id]


def _ended_with(error: pytest.ExceptionInfo[DomainError]) -> str:
    assert isinstance(error.value, SessionEnded)
    return str(error.value.extensions["reason"])


async def test_a_client_stuck_at_position_zero_gets_no_token_time_it_does_not_pay_for(
    billing: tuple[BillingService, Clock],
) -> None:
    service, clock = billing
    creator = str(uuid.uuid4())
    video, viewer = await _video(service, creator, 10), await _viewer(service, 10_000)
    started = await service.start_playback(claims(viewer), video)
    first_expiry = started.session.expires_at
    # Position 0 for ever (paused, or lying to pay for minute 0 only): nothing is charged and
    # neither the session nor its token is extended.
    for _ in range(2):
        clock.advance(30)
        beat = await service.heartbeat(claims(viewer), started.session.id, 0)
        assert beat.session.charged_minutes == 1
        assert beat.session.expires_at == first_expiry
        assert _token_expiry(beat) == int(first_expiry.timestamp())
    clock.advance(30)  # the token granted 90 s: the session has lapsed
    with pytest.raises(DomainError) as refused:
        await service.heartbeat(claims(viewer), started.session.id, 0)
    assert _ended_with(refused) == "EXPIRED"
    # Both minutes the token granted (0 and 1, begun before its expiry at 90 s) are paid.
    row = await _row(service, started.session.id)
    assert (row.status, row.end_reason, row.charged_minutes) == ("ENDED", "EXPIRED", 2)
    assert await _balance(service, viewer) == 10_000 - 20
    assert [e["reason"] for e in await _ended_events(service, row.id)] == ["EXPIRED"]


async def test_extending_the_token_is_charged_by_the_wall_clock_not_the_position(
    billing: tuple[BillingService, Clock],
) -> None:
    service, clock = billing
    video, viewer = await _video(service, str(uuid.uuid4()), 10), await _viewer(service, 10_000)
    started = await service.start_playback(claims(viewer), video)
    session_id = started.session.id
    # A client that claims barely to have moved, every 25 s for ten minutes: each heartbeat
    # extends the token, so each is billed every minute begun since the start.
    for beat_number in range(1, 25):
        clock.advance(25)
        beat = await service.heartbeat(claims(viewer), session_id, 0.001 * beat_number)
        elapsed = 25 * beat_number
        assert beat.session.charged_minutes == elapsed // 60 + 1
        assert beat.session.expires_at == clock.now + timedelta(seconds=TTL)
    assert await _balance(service, viewer) == 10_000 - 10 * (600 // 60 + 1)
    # A retry of the last heartbeat (same position) charges nothing and extends nothing.
    expiry = (await _row(service, session_id)).expires_at
    again = await service.heartbeat(claims(viewer), session_id, 0.001 * 24)
    assert (again.session.charged_minutes, again.session.expires_at) == (11, expiry)


async def test_a_session_whose_heartbeats_stop_pays_for_every_minute_its_token_granted(
    billing: tuple[BillingService, Clock],
) -> None:
    service, clock = billing
    video, viewer = await _video(service, str(uuid.uuid4()), 10), await _viewer(service, 10_000)
    started = await service.start_playback(claims(viewer), video)
    # One heartbeat just before minute 1 extends the token to 149 s; then the client stops
    # (to start a fresh session and pay one minute per 149 s, if it could).
    clock.advance(59)
    beat = await service.heartbeat(claims(viewer), started.session.id, 59)
    assert beat.session.charged_minutes == 1
    clock.advance(89)
    assert await service.expire_sessions() == 0  # still valid at 148 s
    clock.advance(30)
    assert await service.expire_sessions() == 1
    row = await _row(service, started.session.id)
    # Minutes 0, 1 and 2 began while the token was valid (until 149 s).
    assert (row.status, row.end_reason, row.charged_minutes) == ("ENDED", "EXPIRED", 3)
    assert await _balance(service, viewer) == 10_000 - 30
    assert [(e["reason"], e["chargedMinutes"]) for e in await _ended_events(service, row.id)] == [
        ("EXPIRED", 3)
    ]
    assert await service.expire_sessions() == 0  # swept once


async def test_ending_a_session_charges_the_minutes_begun_until_then(
    billing: tuple[BillingService, Clock],
) -> None:
    service, clock = billing
    video, viewer = await _video(service, str(uuid.uuid4()), 10), await _viewer(service, 10_000)
    one = await service.start_playback(claims(viewer), video)
    clock.advance(30)
    await service.heartbeat(claims(viewer), one.session.id, 30)
    clock.advance(31)  # 61 s: minute 1 has begun
    ended = await service.end_playback(claims(viewer), one.session.id)
    assert (ended.session.end_reason, ended.session.charged_minutes) == ("ENDED_BY_VIEWER", 2)
    # A minute that begins exactly at the end was never granted.
    two = await service.start_playback(claims(viewer), video)
    clock.advance(60)
    ended = await service.end_playback(claims(viewer), two.session.id)
    assert (ended.session.end_reason, ended.session.charged_minutes) == ("ENDED_BY_VIEWER", 1)
    # Ending again charges nothing more.
    await service.end_playback(claims(viewer), two.session.id)
    assert await _balance(service, viewer) == 10_000 - 30


async def test_a_lapsed_session_the_wallet_cannot_pay_ends_for_insufficient_funds(
    billing: tuple[BillingService, Clock],
) -> None:
    service, clock = billing
    video, viewer = await _video(service, str(uuid.uuid4()), 40), await _viewer(service, 100)
    started = await service.start_playback(claims(viewer), video)
    clock.advance(59)
    await service.heartbeat(claims(viewer), started.session.id, 59)
    clock.advance(120)
    # The late heartbeat finds it lapsed: minute 1 is paid, minute 2 cannot be.
    with pytest.raises(DomainError) as refused:
        await service.heartbeat(claims(viewer), started.session.id, 100)
    assert _ended_with(refused) == "INSUFFICIENT_FUNDS"
    row = await _row(service, started.session.id)
    assert (row.end_reason, row.charged_minutes) == ("INSUFFICIENT_FUNDS", 2)
    assert await _balance(service, viewer) == 20  # never below zero


async def test_a_price_change_ends_the_sessions_it_reprices(
    billing: tuple[BillingService, Clock],
) -> None:
    service, clock = billing
    creator = str(uuid.uuid4())
    video = await _video(service, creator, 0)
    viewer, other = await _viewer(service, 10_000), await _viewer(service, 10_000)
    free = await service.start_playback(claims(viewer), video)
    own = await service.start_playback(claims(creator), video)
    assert free.session.price_per_minute == 0
    clock.advance(10)
    await service.set_video_price(claims(creator), video, 10, None)
    # The free session would otherwise stream the now priced video for nothing, for ever.
    row = await _row(service, free.session.id)
    assert (row.status, row.end_reason) == ("ENDED", "PRICE_CHANGED")
    assert [e["reason"] for e in await _ended_events(service, row.id)] == ["PRICE_CHANGED"]
    with pytest.raises(DomainError) as refused:
        await service.heartbeat(claims(viewer), free.session.id, 20)
    assert _ended_with(refused) == "PRICE_CHANGED"
    # The owner's own session is free whatever the price, so it runs on.
    assert (await _row(service, own.session.id)).status == "ACTIVE"

    # Sessions at the new price survive the same price set again; another price ends them.
    priced = await service.start_playback(claims(other), video)
    assert priced.session.price_per_minute == 10
    await service.set_video_price(claims(creator), video, 10, None)
    assert (await _row(service, priced.session.id)).status == "ACTIVE"
    await service.set_video_price(claims(creator), video, 25, None)
    row = await _row(service, priced.session.id)
    assert (row.end_reason, row.charged_minutes) == ("PRICE_CHANGED", 1)
    dear = await service.start_playback(claims(other), video)
    assert dear.session.price_per_minute == 25
    await service.set_video_price(claims(creator), video, 0, None)  # free again
    assert (await _row(service, dear.session.id)).end_reason == "PRICE_CHANGED"
    assert (await _row(service, own.session.id)).status == "ACTIVE"
    assert await _balance(service, other) == 10_000 - 10 - 25
