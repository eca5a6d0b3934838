"""What billing publishes and consumes on the bus (docs/events.md).

Publishes (through the outbox, in the transaction of the change): `billing.charged`,
`billing.deposit.succeeded`, `billing.refunded`, `billing.price.updated`,
`billing.playback.ended`. Consumes, in group `billing`: video's lifecycle topics (the
projection of who owns which video) and `auth.user.deleted`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from subgraphs.billing.models import Charge, Deposit, PlaybackSession, Price, Refund, outbox
from subgraphs.kernel.bus import Bus, Message
from subgraphs.kernel.bus.consumer import run_consumer
from subgraphs.kernel.outbox import enqueue
from subgraphs.kernel.runtime import BackgroundTask
from subgraphs.kernel.settings import Settings

CHARGED = "billing.charged"
DEPOSIT_SUCCEEDED = "billing.deposit.succeeded"
REFUNDED = "billing.refunded"
PRICE_UPDATED = "billing.price.updated"
PLAYBACK_ENDED = "billing.playback.ended"

GROUP = "billing"
VIDEO_CREATED = "video.created"
VIDEO_UPDATED = "video.updated"
VIDEO_READY = "video.ready"
VIDEO_DELETED = "video.deleted"
USER_DELETED = "auth.user.deleted"
CONSUMED = (VIDEO_CREATED, VIDEO_UPDATED, VIDEO_READY, VIDEO_DELETED, USER_DELETED)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def charged(session: AsyncSession, charge: Charge) -> None:
    await enqueue(
        session,
        outbox,
        CHARGED,
        {
            "chargeId": charge.id,
            "sessionId": charge.session_id,
            "minuteIndex": charge.minute_index,
            "viewerId": charge.viewer_id,
            "videoId": charge.video_id,
            "creatorId": charge.creator_id,
            "amount": charge.amount,
            "creatorShare": charge.creator_share,
            "platformShare": charge.platform_share,
            "currency": charge.currency,
            "chargedAt": _iso(charge.created_at),
        },
    )


async def deposit_succeeded(session: AsyncSession, deposit: Deposit) -> None:
    assert deposit.completed_at is not None
    await enqueue(
        session,
        outbox,
        DEPOSIT_SUCCEEDED,
        {
            "depositId": deposit.id,
            "userId": deposit.user_id,
            "amount": deposit.amount,
            "currency": deposit.currency,
            "succeededAt": _iso(deposit.completed_at),
        },
    )


async def refunded(session: AsyncSession, refund: Refund) -> None:
    await enqueue(
        session,
        outbox,
        REFUNDED,
        {
            "refundId": refund.id,
            "targetKind": refund.target_kind,
            "targetId": refund.target_id,
            "userId": refund.user_id,
            "amount": refund.amount,
            "currency": refund.currency,
            "refundedAt": _iso(refund.created_at),
        },
    )


async def price_updated(session: AsyncSession, video_id: str, price: Price | None) -> None:
    payload: dict[str, Any] = {
        "videoId": video_id,
        "pricePerMinute": price.price_per_minute if price else 0,
        "currency": price.currency if price else None,
    }
    await enqueue(session, outbox, PRICE_UPDATED, payload)


async def playback_ended(session: AsyncSession, playback: PlaybackSession) -> None:
    await enqueue(
        session,
        outbox,
        PLAYBACK_ENDED,
        {
            "sessionId": playback.id,
            "viewerId": playback.viewer_id,
            "videoId": playback.video_id,
            "reason": playback.end_reason,
            "chargedMinutes": playback.charged_minutes,
            "endedAt": _iso(playback.ended_at) if playback.ended_at else None,
        },
    )


# --- consuming ---------------------------------------------------------------------------

Apply = Callable[[str, str, dict[str, Any], float], Awaitable[None]]


def consumers(bus: Bus, settings: Settings, apply: Apply) -> list[BackgroundTask]:
    """One consumer loop per topic billing reads; `apply(topic, message_id, payload,
    published_at)` does the work idempotently (the service records message ids in its inbox)."""

    def loop(topic: str) -> BackgroundTask:
        async def handle(message: Message) -> None:
            await apply(message.topic, message.id, message.payload, message.published_at)

        async def run(stop: asyncio.Event) -> None:
            await run_consumer(
                bus,
                topic,
                GROUP,
                handle,
                stop=stop,
                visibility_timeout=settings.bus_visibility_timeout,
            )

        return run

    return [loop(topic) for topic in CONSUMED]
