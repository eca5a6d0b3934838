"""Engagement's domain logic, one part per concern, with no GraphQL in here.

`EngagementService` holds the parts: reactions, comments, the viewer's library, views and
analytics, follows and notifications, live chat and presence, and the projection of other
services' events.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import col

from subgraphs.engagement.models import KnownVideo, VideoStats
from subgraphs.engagement.service.base import Clock, Parts, is_id, may_see, optional_member
from subgraphs.engagement.service.chat import Chat
from subgraphs.engagement.service.comments import Comments
from subgraphs.engagement.service.follows import Follows
from subgraphs.engagement.service.library import Library
from subgraphs.engagement.service.presence import LivePresence
from subgraphs.engagement.service.projection import Projection
from subgraphs.engagement.service.reactions import Reactions
from subgraphs.engagement.service.views import Views
from subgraphs.kernel.db import Database
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import AccessClaims

__all__ = ["EngagementService", "VideoFacts"]


@dataclass(frozen=True)
class VideoFacts:
    """What engagement knows of a video the caller may see."""

    video: KnownVideo
    stats: VideoStats


class EngagementService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.parts = Parts(db, settings, clock)
        self.reactions = Reactions(self.parts)
        self.comments = Comments(self.parts)
        self.library = Library(self.parts)
        self.views = Views(self.parts)
        self.follows = Follows(self.parts)
        self.chat = Chat(self.parts)
        self.presence = LivePresence(self.parts)
        self.projection = Projection(self.parts, self.follows)

    async def videos_seen_by(
        self, claims: AccessClaims | None, video_ids: Sequence[str]
    ) -> list[VideoFacts | None]:
        """Each video with its counters, or None where the caller may not see it (or it is
        not known yet): a video's engagement is as visible as the video."""
        valid = [v for v in video_ids if is_id(v)]
        async with self.parts.db.transaction() as session:
            who = await optional_member(session, claims)
            rows = (
                await session.execute(
                    select(KnownVideo, VideoStats)
                    .outerjoin(VideoStats, col(VideoStats.video_id) == col(KnownVideo.id))
                    .where(col(KnownVideo.id).in_(valid))
                )
            ).all()
        found = {
            video.id: VideoFacts(video, stats or VideoStats(video_id=video.id))
            for video, stats in rows
            if may_see(video, who)
        }
        return [found.get(v) for v in video_ids]
