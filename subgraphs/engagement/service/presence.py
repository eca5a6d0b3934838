"""Who is watching a live stream, correct across replicas: each open `viewerCountChanged`
subscription is a row its replica renews; a row whose replica stopped renewing it (the
process died) expires. Every change publishes the new count with a per-room version, so a
subscriber on any replica can drop counts that arrive out of order. Signed-out viewers count
per connection, at most `anonymous_presence_per_ip` per client address and stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.engagement import events
from subgraphs.engagement.models import ChatRoom, Presence
from subgraphs.engagement.service.base import (
    Parts,
    address_tag,
    is_id,
    live_room,
    parse_id,
    rowcount,
)
from subgraphs.kernel.tokens import AccessClaims

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Joined:
    connection_id: str
    stream_id: str
    viewer_count: int
    version: int


class LivePresence:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.replica_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"

    async def join(self, claims: AccessClaims | None, stream_id: str, *, address: str) -> Joined:
        """Count the caller (from client `address`) as a viewer until `leave`."""
        stream_id = parse_id(stream_id, "streamId")
        connection_id = str(uuid.uuid4())
        async with self.parts.db.transaction() as session:
            await live_room(session, stream_id)
            version = await self._lock_room(session, stream_id)
            # Signed-in viewers count once however many tabs they open.
            key = (
                f"u:{claims.subject}"
                if claims is not None
                else await self._anonymous_key(session, stream_id, address)
            )
            session.add(
                Presence(
                    connection_id=connection_id,
                    stream_id=stream_id,
                    viewer_key=key,
                    replica_id=self.replica_id,
                    expires_at=self.parts.clock() + self.parts.settings.presence_ttl,
                )
            )
            await session.flush()
            count = await self._publish(session, stream_id, version)
        return Joined(connection_id, stream_id, count, version)

    async def _anonymous_key(self, session: AsyncSession, stream_id: str, address: str) -> str:
        """A signed-out connection's key: one of the address's `anonymous_presence_per_ip`
        places in the room (`a:<address digest>:<n>`), the first free one, else the one
        fewest connections share. Each tab counts, up to that many per address: opening
        sockets from one machine does not make a crowd. The room's lock is held."""
        prefix = f"a:{address_tag(address)}:"
        sharing = await self._places(session, stream_id, prefix)
        places = [f"{prefix}{n}" for n in range(self.parts.settings.anonymous_presence_per_ip)]
        return min(places, key=lambda place: sharing.get(place, 0))

    async def _places(self, session: AsyncSession, stream_id: str, prefix: str) -> dict[str, int]:
        """How many live connections share each key starting with `prefix`."""
        rows = await session.execute(
            select(col(Presence.viewer_key), func.count())
            .where(
                col(Presence.stream_id) == stream_id,
                col(Presence.viewer_key).startswith(prefix, autoescape=True),
                col(Presence.expires_at) > self.parts.clock(),
            )
            .group_by(col(Presence.viewer_key))
        )
        return {key: int(n) for key, n in rows.all()}

    async def _refill(self, session: AsyncSession, stream_id: str, freed: str) -> None:
        """After a signed-out connection left its place, move one that shares another place
        of the same address into it, so an address counts as min(connections, allowance)."""
        sharing = await self._places(session, stream_id, freed.rsplit(":", 1)[0] + ":")
        crowded = [key for key, n in sharing.items() if n > 1]
        if sharing.get(freed) or not crowded:
            return
        mover = (
            await session.execute(
                select(col(Presence.connection_id))
                .where(col(Presence.stream_id) == stream_id, col(Presence.viewer_key) == crowded[0])
                .limit(1)
            )
        ).scalar_one()
        await session.execute(
            update(Presence).where(col(Presence.connection_id) == mover).values(viewer_key=freed)
        )

    async def leave(self, connection_id: str) -> None:
        async with self.parts.db.transaction() as session:
            row = await session.get(Presence, connection_id)
            if row is None:
                return
            version = await self._lock_room(session, row.stream_id)
            await session.execute(
                delete(Presence).where(col(Presence.connection_id) == connection_id)
            )
            if row.viewer_key.startswith("a:"):
                await self._refill(session, row.stream_id, row.viewer_key)
            await self._publish(session, row.stream_id, version)

    async def counts(self, stream_ids: Sequence[str]) -> dict[str, int]:
        valid = [s for s in stream_ids if is_id(s)]
        async with self.parts.db.transaction() as session:
            rows = await session.execute(
                select(col(Presence.stream_id), func.count(distinct(col(Presence.viewer_key))))
                .where(
                    col(Presence.stream_id).in_(valid),
                    col(Presence.expires_at) > self.parts.clock(),
                )
                .group_by(col(Presence.stream_id))
            )
            return {stream_id: int(n) for stream_id, n in rows.all()}

    async def renew(self) -> None:
        """Keep this replica's viewers alive, and drop those of replicas that stopped."""
        async with self.parts.db.transaction() as session:
            await session.execute(
                update(Presence)
                .where(col(Presence.replica_id) == self.replica_id)
                .values(expires_at=self.parts.clock() + self.parts.settings.presence_ttl)
            )
        await self._drop(col(Presence.expires_at) <= self.parts.clock())

    async def run(self, stop: asyncio.Event) -> None:
        """The replica's heartbeat; on stop its viewers are removed at once."""
        interval = self.parts.settings.presence_ttl / 3
        while not stop.is_set():
            try:
                await self.renew()
            except Exception:
                log.exception("presence heartbeat failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        try:
            await self._drop(col(Presence.replica_id) == self.replica_id)
        except Exception:
            log.exception("could not remove this replica's viewers; they expire instead")

    async def _drop(self, condition: object) -> None:
        async with self.parts.db.transaction() as session:
            streams = (
                (await session.execute(select(col(Presence.stream_id)).distinct().where(condition)))  # type: ignore[arg-type]
                .scalars()
                .all()
            )
        for stream_id in streams:
            async with self.parts.db.transaction() as session:
                version = await self._lock_room(session, stream_id)
                dropped = await session.execute(
                    delete(Presence).where(col(Presence.stream_id) == stream_id, condition)  # type: ignore[arg-type]
                )
                if rowcount(dropped):
                    await self._publish(session, stream_id, version)

    @staticmethod
    async def _lock_room(session: AsyncSession, stream_id: str) -> int:
        """Serialise presence changes of one room and number them."""
        await session.execute(
            update(ChatRoom)
            .where(col(ChatRoom.id) == stream_id)
            .values(presence_version=col(ChatRoom.presence_version) + 1)
        )
        version = (
            await session.execute(
                select(col(ChatRoom.presence_version)).where(col(ChatRoom.id) == stream_id)
            )
        ).scalar_one_or_none()
        return int(version or 0)

    async def _publish(self, session: AsyncSession, stream_id: str, version: int) -> int:
        count = int(
            (
                await session.execute(
                    select(func.count(distinct(col(Presence.viewer_key)))).where(
                        col(Presence.stream_id) == stream_id,
                        col(Presence.expires_at) > self.parts.clock(),
                    )
                )
            ).scalar_one()
        )
        await events.chat_viewers(session, stream_id=stream_id, viewer_count=count, version=version)
        return count
