"""Engagement in this process, on a real database (a SQLite file, PostgreSQL), with a scripted
clock: users, videos and streams told to it through its real event handlers, so histories
spanning hours give hand-computed figures without the test waiting for them."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from subgraphs.engagement.service import EngagementService
from subgraphs.kernel.bus import Message
from subgraphs.kernel.db import Database
from subgraphs.kernel.migrations import upgrade
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import AccessClaims

T0 = 2_000_000_000.0  # the scripted "now" starts here
DAY = 86400.0
# The address signed-out pings come from unless a test says otherwise (TEST-NET-1).
ADDRESS = "192.0.2.1"

_ids = itertools.count(1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class World:
    """Users and videos told to engagement through its real event handlers."""

    def __init__(self, service: EngagementService, clock: Clock, db: Database) -> None:
        self.service = service
        self.clock = clock
        self.db = db
        self.handlers = service.projection.handlers()

    async def event(self, topic: str, payload: dict[str, Any]) -> None:
        message = Message(str(next(_ids)), topic, payload, published_at=time.time())
        await self.handlers[topic](message)

    async def user(self, role: str = "VIEWER") -> AccessClaims:
        user_id = str(uuid.uuid4())
        await self.event(
            "auth.user.registered", {"userId": user_id, "role": role, "suspended": False}
        )
        return AccessClaims(user_id, role, uuid.uuid4().hex, 0, 2**40)

    async def video(
        self, owner: AccessClaims, duration: float = 100.0, visibility: str = "PUBLIC"
    ) -> str:
        video_id = str(uuid.uuid4())
        await self.event(
            "video.ready",
            {
                "videoId": video_id,
                "ownerId": owner.subject,
                "title": "t",
                "visibility": visibility,
                "durationSeconds": duration,
            },
        )
        return video_id

    async def stream(self, owner: AccessClaims) -> str:
        stream_id = str(uuid.uuid4())
        await self.event(
            "video.stream.created", {"streamId": stream_id, "ownerId": owner.subject, "title": "t"}
        )
        return stream_id

    async def ping(
        self,
        at: float,
        video: str,
        position: float,
        who: AccessClaims | None = None,
        client: str | None = None,
        address: str = ADDRESS,
    ) -> None:
        self.clock.now = T0 + at
        await self.service.views.record(who, video, position, client, address=address)


@asynccontextmanager
async def open_world(database_url: str, data_dir: Path, **settings: Any) -> AsyncIterator[World]:
    """A migrated engagement database and the service on it, with `settings` overridden."""
    await upgrade("engagement", database_url)
    db = Database(database_url)
    clock = Clock()
    try:
        service = EngagementService(db, Settings(data_dir=data_dir, **settings), clock=clock)
        yield World(service, clock, db)
    finally:
        await db.dispose()
