"""Progress pings, and what they add up to: resume positions, views, watch time, completion,
retention, top videos and the creator and platform dashboards.

Watch time only grows by what the real time between two pings allows, so a client cannot
inflate it by reporting positions far ahead. A view counts once a viewing session has
`view_min_seconds` of watch time (or half of a shorter video), at most once per viewer per
`view_window`. Signed-out viewers are client ids the client makes up, so one client address
has at most `anonymous_viewers_per_ip` of them counting toward a video at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.engagement.models import (
    AnonymousViewer,
    ChatRoom,
    Comment,
    Follow,
    KnownUser,
    KnownVideo,
    Presence,
    UserStats,
    VideoRetention,
    VideoStats,
    VideoViewer,
    View,
    WatchHistory,
)
from subgraphs.engagement.service.base import (
    Parts,
    address_tag,
    insert,
    may_see,
    member,
    optional_member,
    parse_id,
    require,
    rowcount,
    serialise,
    visible_video,
)
from subgraphs.kernel.errors import BadUserInput, Forbidden, NotFound
from subgraphs.kernel.tokens import AccessClaims

# Retention is measured at 0 %, 5 %, … 95 % of the video.
POINTS = 20
# A session that watched past this share of the video completed it.
COMPLETION = 0.95
# Without a known duration (not READY yet), positions are only bounded by this.
MAX_POSITION = 7 * 24 * 3600.0
# A player reports a little past the end now and then.
END_TOLERANCE = 1.0
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PERIODS = {"DAY": 86400.0, "WEEK": 7 * 86400.0, "MONTH": 30 * 86400.0, "ALL": None}
# How often each replica deletes signed-out viewers idle past the window.
SWEEP_INTERVAL = 60.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    video_id: str
    position_seconds: float
    duration_seconds: float | None
    watched_at: datetime

    @property
    def completed(self) -> bool:
        duration = self.duration_seconds
        return bool(duration) and self.position_seconds >= COMPLETION * (duration or 0)


@dataclass(frozen=True)
class Analytics:
    video_id: str
    views: int
    unique_viewers: int
    watch_time_seconds: float
    average_view_duration_seconds: float
    completion_rate: float
    retention: list[float]


@dataclass(frozen=True)
class Dashboard:
    video_count: int
    views: int
    unique_viewers: int
    watch_time_seconds: float
    likes: int
    dislikes: int
    comments: int
    followers: int


@dataclass(frozen=True)
class PlatformStats:
    users: int
    videos: int
    views: int
    watch_time_seconds: float
    likes: int
    dislikes: int
    comments: int
    follows: int
    live_streams: int
    live_viewers: int


def coverage(start: float, end: float, duration: float | None) -> int:
    """The retention points inside [start, end] as a bit mask (bit k: k * 5 % of the video)."""
    if not duration:
        return 0
    mask = 0
    for point in range(POINTS):
        at = point * duration / POINTS
        if start - 1e-9 <= at <= end + 1e-9:
            mask |= 1 << point
    return mask


def viewer_key(claims: AccessClaims | None, client_id: str | None) -> str:
    """Signed-in viewers count as themselves; anonymous ones by the client id they send."""
    if claims is not None:
        return f"u:{claims.subject}"
    if client_id is None:
        raise BadUserInput("Signed-out viewers must send a clientId.", field="clientId")
    if not CLIENT_ID.match(client_id):
        raise BadUserInput(
            "clientId must be 16 to 64 letters, digits, '-' or '_'.", field="clientId"
        )
    return f"c:{client_id}"


class Views:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    # --- progress pings -----------------------------------------------------------------

    async def record(
        self,
        claims: AccessClaims | None,
        video_id: str,
        position: float,
        client_id: str | None = None,
        *,
        address: str,
    ) -> Progress:
        """A ping from `address` (the caller's client address). A signed-out client id past
        its address's allowance is answered like any other and counts toward nothing."""
        video_id = parse_id(video_id, "videoId")
        if not math.isfinite(position) or position < 0:
            raise BadUserInput("Position must be a number of seconds, 0 or more.", field="position")
        key = viewer_key(claims, client_id)
        async with self.parts.db.transaction() as session:
            # Locked: the user's deletion must not run between this and the history it writes.
            who = await optional_member(session, claims, lock=True)
            video = await visible_video(session, video_id, who)
            duration = video.duration_seconds
            limit = duration + END_TOLERANCE if duration else MAX_POSITION
            if position > limit:
                raise BadUserInput("Position is past the end of the video.", field="position")
            if duration:
                position = min(position, duration)
            now = self.parts.clock()
            if who is not None or await self._admit(session, video_id, key, address, now):
                await self._ping(session, video_id, key, position, duration, now)
            watched_at = self.parts.now()
            if who is not None:
                await self._remember(session, who.id, video_id, position, watched_at)
        return Progress(video_id, position, duration, watched_at)

    async def _admit(
        self, session: AsyncSession, video_id: str, key: str, address: str, now: float
    ) -> bool:
        """Whether a signed-out viewer's ping counts toward the video.

        One client address has at most `anonymous_viewers_per_ip` client ids counting toward
        a video at once; each keeps its place while it pings within `anonymous_viewer_window`.
        So a script making up client ids gets that many views per address and window, not
        one per two requests, while a household sharing an address still counts.
        """
        settings = self.parts.settings
        tag = address_tag(address)
        # One admission at a time per video and address, on every replica.
        await serialise(session, "anonymous-viewers", video_id, tag)
        cutoff = now - settings.anonymous_viewer_window
        same_address = (
            col(AnonymousViewer.video_id) == video_id,
            col(AnonymousViewer.address) == tag,
        )
        renewed = await session.execute(
            update(AnonymousViewer)
            .where(
                *same_address,
                col(AnonymousViewer.viewer_key) == key,
                col(AnonymousViewer.last_seen_at) > cutoff,
            )
            .values(last_seen_at=now)
        )
        if rowcount(renewed):
            return True
        counting = (
            await session.execute(
                select(func.count()).where(
                    *same_address, col(AnonymousViewer.last_seen_at) > cutoff
                )
            )
        ).scalar_one()
        if counting >= settings.anonymous_viewers_per_ip:
            return False
        await session.execute(
            insert(session, AnonymousViewer)
            .values(video_id=video_id, address=tag, viewer_key=key, last_seen_at=now)
            .on_conflict_do_update(
                index_elements=["video_id", "address", "viewer_key"], set_={"last_seen_at": now}
            )
        )
        return True

    async def forget_idle_viewers(self) -> int:
        """Delete signed-out viewers idle past the window: their addresses are not kept."""
        cutoff = self.parts.clock() - self.parts.settings.anonymous_viewer_window
        async with self.parts.db.transaction() as session:
            return rowcount(
                await session.execute(
                    delete(AnonymousViewer).where(col(AnonymousViewer.last_seen_at) <= cutoff)
                )
            )

    async def sweep(self, stop: asyncio.Event) -> None:
        """Each replica's sweep of idle signed-out viewers, until stopped."""
        while not stop.is_set():
            try:
                await self.forget_idle_viewers()
            except Exception:
                log.exception("sweeping idle anonymous viewers failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SWEEP_INTERVAL)

    async def _ping(
        self,
        session: AsyncSession,
        video_id: str,
        key: str,
        position: float,
        duration: float | None,
        now: float,
    ) -> None:
        settings = self.parts.settings
        fresh = {
            "session_started_at": now,
            "last_ping_at": now,
            "last_position": position,
            "session_watched": 0.0,
            "session_coverage": coverage(position, position, duration),
            "session_counted": False,
            "session_completed": False,
        }
        created = rowcount(
            await session.execute(
                insert(session, VideoViewer)
                .values(video_id=video_id, viewer_key=key, views=0, **fresh)
                .on_conflict_do_nothing()
            )
        )
        # Locks this viewer's row: their pings are applied one at a time, on every replica.
        viewer = (
            await session.execute(
                select(VideoViewer)
                .where(col(VideoViewer.video_id) == video_id, col(VideoViewer.viewer_key) == key)
                .with_for_update()
            )
        ).scalar_one()
        stats: dict[str, object] = {}
        new_points = 0
        if created or now - viewer.last_ping_at > settings.watch_session_idle:
            # A new visit: the first ping only says where it starts.
            if not created:
                for name, value in fresh.items():
                    setattr(viewer, name, value)
            stats["sessions"] = col(VideoStats.sessions) + 1
            new_points = viewer.session_coverage
            credited = 0.0
        else:
            elapsed = max(0.0, now - viewer.last_ping_at)
            credited = max(0.0, min(position - viewer.last_position, elapsed))
            # What was watched since the last ping ends at this position.
            reached = coverage(position - credited, position, duration)
            new_points = reached & ~viewer.session_coverage
            viewer.session_coverage |= reached
            viewer.session_watched += credited
            viewer.last_ping_at = now
            viewer.last_position = position
            if (
                credited > 0
                and duration
                and position >= COMPLETION * duration
                and not viewer.session_completed
            ):
                viewer.session_completed = True
                stats["completed_sessions"] = col(VideoStats.completed_sessions) + 1
        if credited > 0:
            stats["watch_seconds"] = col(VideoStats.watch_seconds) + credited
        threshold = min(settings.view_min_seconds, duration / 2) if duration else None
        threshold = settings.view_min_seconds if threshold is None else threshold
        window_open = (
            viewer.last_view_at is None or now - viewer.last_view_at >= settings.view_window
        )
        if not viewer.session_counted and viewer.session_watched >= threshold and window_open:
            viewer.session_counted = True
            viewer.last_view_at = now
            viewer.views += 1
            stats["view_count"] = col(VideoStats.view_count) + 1
            if viewer.views == 1:
                stats["unique_viewers"] = col(VideoStats.unique_viewers) + 1
            session.add(View(video_id=video_id, viewer_key=key, counted_at=now))
        session.add(viewer)
        if stats:
            await session.execute(
                update(VideoStats).where(col(VideoStats.video_id) == video_id).values(**stats)
            )
        for point in range(POINTS):
            if new_points & (1 << point):
                await session.execute(
                    insert(session, VideoRetention)
                    .values(video_id=video_id, point=point, sessions=1)
                    .on_conflict_do_update(
                        index_elements=["video_id", "point"],
                        set_={"sessions": VideoRetention.__table__.c.sessions + 1},  # type: ignore[attr-defined]
                    )
                )

    async def _remember(
        self,
        session: AsyncSession,
        user_id: str,
        video_id: str,
        position: float,
        watched_at: datetime,
    ) -> None:
        values = {"position_seconds": position, "watched_at": watched_at}
        await session.execute(
            insert(session, WatchHistory)
            .values(user_id=user_id, video_id=video_id, **values)
            .on_conflict_do_update(index_elements=["user_id", "video_id"], set_=values)
        )

    # --- analytics ----------------------------------------------------------------------

    async def analytics(self, claims: AccessClaims | None, video_id: str) -> Analytics:
        claims = require(claims)
        video_id = parse_id(video_id, "videoId")
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            video = await session.get(KnownVideo, video_id)
            if video is None or not may_see(video, who):
                raise NotFound("Video not found.")
            if not (who.is_admin or video.owner_id == who.id):
                raise Forbidden("Only the video's owner or an admin can see its analytics.")
            stats = await session.get(VideoStats, video_id) or VideoStats(video_id=video_id)
            points = dict(
                (
                    await session.execute(
                        select(col(VideoRetention.point), col(VideoRetention.sessions)).where(
                            col(VideoRetention.video_id) == video_id
                        )
                    )
                ).all()
            )
        sessions = stats.sessions
        retention = (
            [points.get(p, 0) / sessions if sessions else 0.0 for p in range(POINTS)]
            if video.duration_seconds
            else []
        )
        return Analytics(
            video_id=video_id,
            views=stats.view_count,
            unique_viewers=stats.unique_viewers,
            watch_time_seconds=stats.watch_seconds,
            average_view_duration_seconds=(
                stats.watch_seconds / stats.view_count if stats.view_count else 0.0
            ),
            completion_rate=stats.completed_sessions / sessions if sessions else 0.0,
            retention=retention,
        )

    async def top_videos(self, period: str, first: int) -> list[tuple[str, int]]:
        """The most viewed public videos in the period: (video id, views)."""
        if period not in PERIODS:
            raise BadUserInput("period must be DAY, WEEK, MONTH or ALL.", field="period")
        public = (
            col(KnownVideo.deleted).is_(False),
            col(KnownVideo.status) == "READY",
            col(KnownVideo.visibility) == "PUBLIC",
        )
        span = PERIODS[period]
        if span is None:
            count = col(VideoStats.view_count)
            query = (
                select(col(VideoStats.video_id), count)
                .join(KnownVideo, col(KnownVideo.id) == col(VideoStats.video_id))
                .where(*public, count > 0)
            )
        else:
            views = func.count(col(View.id))
            query = (
                select(col(View.video_id), views)
                .join(KnownVideo, col(KnownVideo.id) == col(View.video_id))
                .where(*public, col(View.counted_at) >= self.parts.clock() - span)
                .group_by(col(View.video_id))
            )
            count = views  # type: ignore[assignment]
        query = query.order_by(count.desc(), query.selected_columns[0]).limit(first)
        async with self.parts.db.transaction() as session:
            return [(video_id, int(n)) for video_id, n in (await session.execute(query)).all()]

    async def dashboard(self, claims: AccessClaims | None) -> Dashboard:
        claims = require(claims)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            mine = (col(KnownVideo.owner_id) == who.id, col(KnownVideo.deleted).is_(False))
            totals = (
                await session.execute(
                    select(
                        func.count(col(KnownVideo.id)),
                        func.coalesce(func.sum(col(VideoStats.view_count)), 0),
                        func.coalesce(func.sum(col(VideoStats.watch_seconds)), 0.0),
                        func.coalesce(func.sum(col(VideoStats.like_count)), 0),
                        func.coalesce(func.sum(col(VideoStats.dislike_count)), 0),
                        func.coalesce(func.sum(col(VideoStats.comment_count)), 0),
                    )
                    .select_from(KnownVideo)
                    .outerjoin(VideoStats, col(VideoStats.video_id) == col(KnownVideo.id))
                    .where(*mine)
                )
            ).one()
            unique = (
                await session.execute(
                    select(func.count(distinct(col(VideoViewer.viewer_key))))
                    .join(KnownVideo, col(KnownVideo.id) == col(VideoViewer.video_id))
                    .where(*mine, col(VideoViewer.views) > 0)
                )
            ).scalar_one()
            followers = await session.get(UserStats, who.id)
        return Dashboard(
            video_count=int(totals[0]),
            views=int(totals[1]),
            unique_viewers=int(unique),
            watch_time_seconds=float(totals[2]),
            likes=int(totals[3]),
            dislikes=int(totals[4]),
            comments=int(totals[5]),
            followers=followers.follower_count if followers else 0,
        )

    async def platform(self, claims: AccessClaims | None) -> PlatformStats:
        claims = require(claims)
        async with self.parts.db.transaction() as session:
            who = await member(session, claims)
            if not who.is_admin:
                raise Forbidden("Only admins can see platform statistics.")
            live = col(KnownVideo.deleted).is_(False)
            totals = (
                await session.execute(
                    select(
                        func.count(col(KnownVideo.id)),
                        func.coalesce(func.sum(col(VideoStats.view_count)), 0),
                        func.coalesce(func.sum(col(VideoStats.watch_seconds)), 0.0),
                        func.coalesce(func.sum(col(VideoStats.like_count)), 0),
                        func.coalesce(func.sum(col(VideoStats.dislike_count)), 0),
                    )
                    .select_from(KnownVideo)
                    .outerjoin(VideoStats, col(VideoStats.video_id) == col(KnownVideo.id))
                    .where(live)
                )
            ).one()
            users = await _count(
                session,
                select(func.count())
                .select_from(KnownUser)
                .where(col(KnownUser.deleted).is_(False)),
            )
            comments = await _count(
                session,
                select(func.count()).select_from(Comment).where(col(Comment.deleted_at).is_(None)),
            )
            follows = await _count(session, select(func.count()).select_from(Follow))
            streams = await _count(
                session,
                select(func.count())
                .select_from(ChatRoom)
                .where(col(ChatRoom.status) == "LIVE", col(ChatRoom.deleted).is_(False)),
            )
            viewers = await _count(
                session,
                select(func.count(distinct(col(Presence.viewer_key)))).where(
                    col(Presence.expires_at) > self.parts.clock()
                ),
            )
        return PlatformStats(
            users=users,
            videos=int(totals[0]),
            views=int(totals[1]),
            watch_time_seconds=float(totals[2]),
            likes=int(totals[3]),
            dislikes=int(totals[4]),
            comments=comments,
            follows=follows,
            live_streams=streams,
            live_viewers=viewers,
        )


async def _count(session: AsyncSession, query: object) -> int:
    return int((await session.execute(query)).scalar_one())  # type: ignore[call-overload]
