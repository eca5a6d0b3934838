"""The transactional outbox and inbox on real databases (SQLite file, PostgreSQL) and real buses
(SQLite-file local bus, Redis): events publish only when their transaction commits, exactly
once per flush cycle, and consumers detect redeliveries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import make_url

from subgraphs.kernel.bus import Bus, Message, open_bus
from subgraphs.kernel.db import Database, ensure_database
from subgraphs.kernel.logging import request_id_var
from subgraphs.kernel.outbox import (
    OutboxRelay,
    define_inbox,
    define_outbox,
    enqueue,
    first_delivery,
)
from subgraphs.kernel.settings import Settings

TOPIC = "user.updated"


@dataclass
class Store:
    db: Database
    outbox: Table
    inbox: Table


@pytest.fixture(scope="module")
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """One fresh PostgreSQL database for this module; each test creates and drops its tables."""
    name = f"rgtest_outbox_{uuid.uuid4().hex[:10]}"
    url = (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )
    await ensure_database(url)
    try:
        yield url
    finally:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str
) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    else:
        url = postgres_database
    metadata = MetaData()
    outbox = define_outbox(metadata)
    inbox = define_inbox(metadata)
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield Store(db, outbox, inbox)
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
    finally:
        await db.dispose()


@pytest.fixture(params=["local", "redis"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> AsyncIterator[Bus]:
    namespace = f"test-outbox-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        data_dir=tmp_path / "bus", bus=request.param, redis_url=redis_url, bus_namespace=namespace
    )
    (tmp_path / "bus").mkdir()
    opened = open_bus(settings)
    try:
        yield opened
    finally:
        await opened.close()
        if request.param == "redis":
            client = Redis.from_url(redis_url)
            try:
                keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()


async def claim_all(bus: Bus, topic: str = TOPIC, *, block: float = 0.15) -> list[Message]:
    """Everything a brand-new consumer group sees on `topic`."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    messages: list[Message] = []
    while batch := await bus.claim(topic, group, "c1", count=50, block=block):
        messages.extend(batch)
        block = 0.05
    return messages


async def pending(store: Store) -> int:
    async with store.db.transaction() as session:
        query = select(func.count()).where(store.outbox.c.published_at.is_(None))
        return int((await session.execute(query)).scalar_one())


async def test_an_event_enqueued_in_a_committed_transaction_is_published_by_flush(
    store: Store, bus: Bus
) -> None:
    relay = OutboxRelay(store.db, store.outbox, bus)
    async with store.db.transaction() as session:
        await enqueue(session, store.outbox, TOPIC, {"id": "u1", "role": "ADMIN"})

    # Committed, not yet relayed: nothing on the bus.
    assert await claim_all(bus, block=0.05) == []
    assert await relay.flush() == 1

    (message,) = await claim_all(bus)
    assert message.topic == TOPIC
    assert message.payload == {"id": "u1", "role": "ADMIN"}
    assert "request_id" not in message.headers
    assert await pending(store) == 0


async def test_the_request_id_travels_as_a_header(store: Store, bus: Bus) -> None:
    relay = OutboxRelay(store.db, store.outbox, bus)
    token = request_id_var.set("req-7f3a")
    try:
        async with store.db.transaction() as session:
            await enqueue(session, store.outbox, TOPIC, {"id": "u2"})
    finally:
        request_id_var.reset(token)

    await relay.flush()

    (message,) = await claim_all(bus)
    assert message.headers == {"request_id": "req-7f3a"}


async def test_a_rolled_back_transaction_publishes_nothing(store: Store, bus: Bus) -> None:
    relay = OutboxRelay(store.db, store.outbox, bus)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with store.db.transaction() as session:
            await enqueue(session, store.outbox, TOPIC, {"id": "ghost"})
            raise Abort

    assert await relay.flush() == 0
    assert await claim_all(bus) == []
    assert await pending(store) == 0


async def test_flushing_twice_publishes_once(store: Store, bus: Bus) -> None:
    relay = OutboxRelay(store.db, store.outbox, bus)
    async with store.db.transaction() as session:
        for n in range(3):
            await enqueue(session, store.outbox, TOPIC, {"n": n})

    assert await relay.flush() == 3
    assert await relay.flush() == 0

    messages = await claim_all(bus)
    assert [m.payload for m in messages] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_flush_publishes_in_commit_order_across_batches(store: Store, bus: Bus) -> None:
    relay = OutboxRelay(store.db, store.outbox, bus)
    for n in range(7):
        async with store.db.transaction() as session:
            await enqueue(session, store.outbox, TOPIC, {"n": n})

    assert await relay.flush(batch=3) == 7

    assert [m.payload["n"] for m in await claim_all(bus)] == list(range(7))


async def test_two_relays_flushing_at_once_publish_each_event_once_in_order(
    store: Store, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Replicas share the outbox table; each has its own engine and relay. A slow publish keeps
    # one relay busy with its batch while the other flushes: the bus must still see commit
    # order (a progress event must never overtake the event before it).
    publish = bus.publish

    async def slow_publish(*args: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0.01)
        return await publish(*args, **kwargs)

    monkeypatch.setattr(bus, "publish", slow_publish)
    other = Database(store.db.url)
    try:
        relays = [
            OutboxRelay(store.db, store.outbox, bus),
            OutboxRelay(other, store.outbox, bus),
        ]
        async with store.db.transaction() as session:
            for n in range(20):
                await enqueue(session, store.outbox, TOPIC, {"n": n})

        counts = await asyncio.gather(*(relay.flush(batch=4) for relay in relays))
    finally:
        await other.dispose()

    assert sum(counts) == 20
    assert [m.payload["n"] for m in await claim_all(bus)] == list(range(20))
    assert await pending(store) == 0


async def test_only_committed_events_are_published_when_mixed_with_rollbacks(
    store: Store, bus: Bus
) -> None:
    relay = OutboxRelay(store.db, store.outbox, bus)
    async with store.db.transaction() as session:
        await enqueue(session, store.outbox, TOPIC, {"n": "kept-1"})
    with pytest.raises(ValueError, match="boom"):
        async with store.db.transaction() as session:
            await enqueue(session, store.outbox, TOPIC, {"n": "dropped"})
            raise ValueError("boom")
    async with store.db.transaction() as session:
        await enqueue(session, store.outbox, "user.deleted", {"n": "kept-2"})

    assert await relay.flush() == 2

    assert [m.payload for m in await claim_all(bus)] == [{"n": "kept-1"}]
    assert [m.payload for m in await claim_all(bus, "user.deleted")] == [{"n": "kept-2"}]


async def test_first_delivery_is_true_once_per_group_topic_and_message(store: Store) -> None:
    async def claim(group: str, topic: str, message_id: str) -> bool:
        async with store.db.transaction() as session:
            return await first_delivery(session, store.inbox, group, topic, message_id)

    assert await claim("billing", TOPIC, "1-0") is True
    assert await claim("billing", TOPIC, "1-0") is False
    assert await claim("video", TOPIC, "1-0") is True
    assert await claim("billing", "user.deleted", "1-0") is True
    assert await claim("billing", TOPIC, "2-0") is True
    assert await claim("video", TOPIC, "1-0") is False


async def test_first_delivery_claimed_in_a_rolled_back_transaction_can_be_claimed_again(
    store: Store,
) -> None:
    with pytest.raises(RuntimeError):
        async with store.db.transaction() as session:
            assert await first_delivery(session, store.inbox, "video", TOPIC, "9-0") is True
            raise RuntimeError("handler failed after claiming")

    async with store.db.transaction() as session:
        assert await first_delivery(session, store.inbox, "video", TOPIC, "9-0") is True


async def test_a_commit_that_wrote_events_wakes_a_running_relay(store: Store, bus: Bus) -> None:
    # A tick far longer than the wait below: only the commit's wake-up can publish in time.
    relay = OutboxRelay(store.db, store.outbox, bus, interval=60.0)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.2)  # the first round has run and the relay is waiting
        async with store.db.transaction() as session:
            await enqueue(session, store.outbox, TOPIC, {"n": "woken"})
        async with asyncio.timeout(10):
            while await pending(store):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
    assert [m.payload for m in await claim_all(bus)] == [{"n": "woken"}]
