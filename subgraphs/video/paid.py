"""Paid access to media. Video learns prices (`billing.price.updated`) and ended playback
sessions (`billing.playback.ended`) from billing's events, and `PaidMediaGate` serves a priced
video's media only with a playback token of a session billing has not ended, or to its owner
and admins. Tokens are verified locally against billing's keys: no call to billing per request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError
from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from starlette.requests import Request

from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.outbox import first_delivery
from subgraphs.kernel.playback import InvalidPlaybackToken, PlaybackTokenVerifier
from subgraphs.kernel.settings import Settings
from subgraphs.video import events
from subgraphs.video.media import (
    MediaDenied,
    MediaGrant,
    MediaSigner,
    PlayableVideo,
    is_playback_token,
    media_token,
)
from subgraphs.video.models import EndedPlaybackSession, Video, inbox

log = logging.getLogger(__name__)

# A token of an ended session is valid at most a session TTL after the end; its row is kept
# far longer than that, so a late or skewed clock cannot bring the session back.
ENDED_SESSION_RETENTION = timedelta(days=1)
CURRENCY_LENGTH = 3


def _uuid(value: object) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else None
    except ValueError:
        return None


def stream_token(signer: MediaSigner, video: Video, *, manager: bool) -> str | None:
    """The token in `Video`'s stream URLs (playlists, segments, storyboard). A priced video's
    stream is its owner's and admins' with a signed URL; anyone else gets None and plays it
    through a playback session (`PlaybackSession.hlsUrl`)."""
    if video.price_per_minute > 0:
        return signer.sign(video.id) if manager else None
    return media_token(signer, video.id, video.visibility)


@dataclass(frozen=True)
class SessionStream:
    """A playback token that grants `video` now: what `PlaybackSession`'s URLs are built from."""

    video: Video
    token: str


@dataclass
class PaidAccess:
    """Video's copy of what billing decided: prices and ended sessions."""

    db: Database
    settings: Settings
    playback: PlaybackTokenVerifier

    # Consumed events ---------------------------------------------------------------------

    async def apply_price(
        self, message_id: str, payload: Mapping[str, Any], published_at: float
    ) -> None:
        """`billing.price.updated`: the video's price, once per message (inbox), and only if
        no newer price was applied (topics are redelivered and replicas race)."""
        video_id = _uuid(payload.get("videoId"))
        price, currency = payload.get("pricePerMinute"), payload.get("currency")
        valid = (
            video_id is not None
            and isinstance(price, int)
            and not isinstance(price, bool)
            and price >= 0
            # Free needs no currency (billing sends null); a price needs one.
            and (price == 0 or (isinstance(currency, str) and len(currency) == CURRENCY_LENGTH))
        )
        async with self.db.transaction() as session:
            if not await first_delivery(
                session, inbox, events.GROUP, events.PRICE_UPDATED, message_id
            ):
                return
            if not valid:
                # Recorded in the inbox, so it is not retried forever.
                log.warning("ignored a malformed %s event", events.PRICE_UPDATED)
                return
            # One conditional update: whichever replica applies which message in which order,
            # the event published last wins.
            await session.execute(
                update(Video)
                .where(col(Video.id) == video_id, col(Video.price_event_at) <= published_at)
                .values(
                    price_per_minute=price,
                    price_currency=currency if price else None,
                    price_event_at=published_at,
                )
            )

    async def record_ended(self, payload: Mapping[str, Any]) -> None:
        """`billing.playback.ended`: the session's tokens stop opening media now. Naturally
        idempotent (one row per session), so no inbox row; old rows are pruned as new ones
        arrive."""
        session_id, video_id = _uuid(payload.get("sessionId")), _uuid(payload.get("videoId"))
        reason = payload.get("reason")
        if session_id is None or video_id is None:
            log.warning("ignored a malformed %s event", events.PLAYBACK_ENDED)
            return
        now = utcnow()
        values = {
            "session_id": session_id,
            "video_id": video_id,
            "reason": str(reason)[:24] if isinstance(reason, str) and reason else "ENDED",
            "recorded_at": now,
        }
        table: Any = EndedPlaybackSession.__table__  # type: ignore[attr-defined]
        async with self.db.transaction() as session:
            insert: Any = sqlite.insert(table) if self.db.is_sqlite else postgresql.insert(table)
            await session.execute(
                insert.values(**values).on_conflict_do_nothing(index_elements=["session_id"])
            )
            await session.execute(
                delete(EndedPlaybackSession).where(
                    col(EndedPlaybackSession.recorded_at) < now - self._retention()
                )
            )

    def _retention(self) -> timedelta:
        ttl = timedelta(seconds=self.settings.billing_session_ttl_seconds)
        return max(ENDED_SESSION_RETENTION, 2 * ttl)

    # Reads -------------------------------------------------------------------------------

    async def has_ended(self, session_id: str) -> bool:
        async with self.db.transaction() as session:
            row = await session.get(EndedPlaybackSession, session_id)
        return row is not None

    async def session_stream(self, token: str | None) -> SessionStream | None:
        """The video a playback token grants now (verified, not ended, READY and visible to
        the session's viewer), else None: `PlaybackSession`'s URLs are null then."""
        if token is None or not is_playback_token(token):
            return None
        try:
            # The claimed video only picks what to verify against; the signature decides.
            claimed = _uuid(jwt.get_unverified_claims(token).get("vid"))
        except (JOSEError, AttributeError, TypeError, ValueError):
            return None
        if claimed is None:
            return None
        try:
            grant = await self.playback.verify(token, video_id=claimed)
        except InvalidPlaybackToken:
            return None
        if await self.has_ended(grant.session_id):
            return None
        async with self.db.transaction() as session:
            video = await session.get(Video, grant.video_id)
        if video is None or video.status != "READY":
            return None
        if video.visibility == "PRIVATE" and grant.viewer_id != video.owner_id:
            return None
        return SessionStream(video, token)


class PaidMediaGate:
    """A priced video's media, all but its poster (a preview that listings show), needs a
    playback token or a signed token, which only the owner and admins are ever given (see
    `stream_token`; PRIVATE videos' signed URLs are theirs alone too). A playback token of a
    session billing ended never grants, whatever the video's price."""

    def __init__(self, access: PaidAccess) -> None:
        self.access = access

    async def check(self, video: PlayableVideo, grant: MediaGrant, request: Request) -> None:
        if grant.kind == "playback":
            assert grant.session_id is not None
            if await self.access.has_ended(grant.session_id):
                raise MediaDenied(403, "playback session has ended")
            return
        if video.price_per_minute <= 0 or grant.kind == "signed":
            return
        if video.poster is not None and request.path_params.get("path") == video.poster:
            return
        raise MediaDenied(403, "a playback session is required")
