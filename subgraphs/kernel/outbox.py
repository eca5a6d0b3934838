"""Transactional outbox and inbox: events commit with the data they describe, and are
published and consumed at least once without being lost or applied twice.

A service writes events into its own `outbox` table inside the same transaction as its data
change; `OutboxRelay` publishes them to the bus afterwards. Consumers record handled message
ids in `inbox` in the same transaction as their effect, so a redelivery is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from subgraphs.kernel.bus import Bus
from subgraphs.kernel.db import Database
from subgraphs.kernel.logging import request_id_var

log = logging.getLogger(__name__)


_ENQUEUED = "reelgraph.outbox.enqueued"


def define_outbox(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("topic", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", Text, nullable=False, default="{}"),
        Column("created_at", Float, nullable=False),
        Column("published_at", Float, nullable=True, index=True),
    )


def define_inbox(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer_group", String(200), primary_key=True),
        Column("topic", String(200), primary_key=True),
        Column("message_id", String(100), primary_key=True),
        Column("handled_at", Float, nullable=False),
    )


async def enqueue(
    session: AsyncSession, outbox: Table, topic: str, payload: Mapping[str, Any]
) -> None:
    """Record an event in the caller's transaction; it is published once that commits."""
    session.info[_ENQUEUED] = True
    headers = {"request_id": rid} if (rid := request_id_var.get()) else {}
    await session.execute(
        insert(outbox).values(
            topic=topic,
            payload=orjson.dumps(dict(payload)).decode(),
            headers=orjson.dumps(headers).decode(),
            created_at=time.time(),
        )
    )


async def first_delivery(
    session: AsyncSession, inbox: Table, group: str, topic: str, message_id: str
) -> bool:
    """Claim a message for `group` inside the caller's transaction.

    True the first time; False when the effect was already committed for this message.
    """
    values = {
        "consumer_group": group,
        "topic": topic,
        "message_id": message_id,
        "handled_at": time.time(),
    }
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(inbox).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(inbox).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


class OutboxRelay:
    """Publishes committed outbox rows to the bus, in order, and marks them published."""

    def __init__(self, db: Database, outbox: Table, bus: Bus, *, interval: float = 1.0) -> None:
        self.db = db
        self.outbox = outbox
        self.bus = bus
        self.interval = interval
        self._wake = asyncio.Event()
        # Wake as soon as a transaction that wrote events commits, rather than at the next tick.
        db.after_commit(self._committed)
        self._lock_key = zlib.crc32(f"reelgraph.outbox.{outbox.fullname}".encode())

    def _committed(self, session: AsyncSession) -> None:
        if session.info.pop(_ENQUEUED, False):
            self._wake.set()

    async def flush(self, batch: int = 100) -> int:
        """Publish every pending row; return how many were published."""
        total = 0
        while True:
            async with self.db.transaction() as session:
                query = (
                    select(self.outbox)
                    .where(self.outbox.c.published_at.is_(None))
                    .order_by(self.outbox.c.id)
                    .limit(batch)
                )
                if not self.db.is_sqlite:
                    # Replicas share the table. One relay publishes at a time, so rows reach
                    # the bus in commit order (skipping locked rows instead would let one
                    # replica publish a later event while another still holds an earlier one).
                    # SQLite's BEGIN IMMEDIATE serialises relays already.
                    await session.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._lock_key}
                    )
                rows = (await session.execute(query)).mappings().all()
                for row in rows:
                    await self.bus.publish(
                        row["topic"],
                        orjson.loads(row["payload"]),
                        headers=orjson.loads(row["headers"]),
                    )
                    await session.execute(
                        update(self.outbox)
                        .where(self.outbox.c.id == row["id"])
                        .values(published_at=time.time())
                    )
            total += len(rows)
            if len(rows) < batch:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before flushing: a commit during the flush wakes the next round at once.
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("outbox relay failed; retrying")
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
