"""The bus contract, run against both backends: a real SQLite file and a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from uuid import uuid4

import orjson
import pytest
from redis.asyncio import Redis

from subgraphs.kernel.bus import Bus, Message, open_bus
from subgraphs.kernel.bus.consumer import run_consumer
from subgraphs.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "video.uploaded"
VT = 0.5  # visibility timeout for the lease tests


@dataclass
class Backend:
    """Settings for one test's bus, and every bus opened on them, closed at teardown."""

    name: Literal["local", "redis"]
    data_dir: Path
    redis_url: str
    namespace: str
    buses: list[Bus]

    def settings(self, *, visibility_timeout: float = 2.0, retention: int = 100_000) -> Settings:
        return Settings(
            bus=self.name,
            data_dir=self.data_dir,
            redis_url=self.redis_url,
            bus_namespace=self.namespace,
            bus_visibility_timeout=visibility_timeout,
            bus_retention=retention,
        )

    def open(self, *, visibility_timeout: float = 2.0, retention: int = 100_000) -> Bus:
        bus = open_bus(self.settings(visibility_timeout=visibility_timeout, retention=retention))
        self.buses.append(bus)
        return bus

    def env(self, *, visibility_timeout: float = 2.0) -> dict[str, str]:
        return {
            **os.environ,
            "REELGRAPH_BUS": self.name,
            "REELGRAPH_DATA_DIR": str(self.data_dir),
            "REELGRAPH_REDIS_URL": self.redis_url,
            "REELGRAPH_BUS_NAMESPACE": self.namespace,
            "REELGRAPH_BUS_VISIBILITY_TIMEOUT": str(visibility_timeout),
        }


@pytest.fixture(params=["local", "redis"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> AsyncIterator[Backend]:
    b = Backend(request.param, tmp_path / "data", redis_url, f"test-{uuid4().hex}", [])
    yield b
    for bus in b.buses:
        await bus.close()
    if b.name == "redis":
        client = Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{b.namespace}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


@pytest.fixture
def bus(backend: Backend) -> Bus:
    return backend.open()


async def take(stream: AsyncIterator[Message], n: int, timeout: float = 5.0) -> list[Message]:
    out: list[Message] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await anext(stream))
    return out


async def drain(bus: Bus, group: str, consumer: str, *, block: float = 0.3) -> list[Message]:
    """Claim and ack until the group has nothing left for a while."""
    out: list[Message] = []
    while batch := await bus.claim(TOPIC, group, consumer, count=10, block=block):
        for message in batch:
            await bus.ack(TOPIC, group, message.id)
        out.extend(batch)
    return out


async def worker(backend: Backend, *args: str, visibility_timeout: float = 2.0) -> Any:
    """Run tests/kernel/bus_worker.py to completion and return its JSON output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.kernel.bus_worker",
        *args,
        cwd=ROOT,
        env=backend.env(visibility_timeout=visibility_timeout),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return orjson.loads(out)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# Consumer groups.


async def test_round_trip_keeps_payload_and_headers(bus: Bus) -> None:
    payload = {"video": "v1", "size": 12, "tags": ["a", "é"], "nested": {"ok": True, "x": None}}
    before = time.time()
    message_id = await bus.publish(TOPIC, payload, headers={"trace-id": "t-1", "origin": "test"})

    [message] = await bus.claim(TOPIC, "g", "c1", block=2)

    assert message.id == message_id
    assert message.topic == TOPIC
    assert message.payload == payload
    assert message.headers == {"trace-id": "t-1", "origin": "test"}
    assert message.attempt == 1
    assert before - 1 <= message.published_at <= time.time() + 1
    await bus.ack(TOPIC, "g", message.id)
    assert await bus.claim(TOPIC, "g", "c1", block=0.2) == []


async def test_claim_returns_messages_in_publish_order(bus: Bus) -> None:
    ids = [await bus.publish(TOPIC, {"i": i}) for i in range(30)]
    claimed: list[Message] = []
    while len(claimed) < 30:
        batch = await bus.claim(TOPIC, "g", "c1", count=7, block=1)
        assert batch, "ran out of messages"
        claimed.extend(batch)
    assert [m.id for m in claimed] == ids
    assert [m.payload["i"] for m in claimed] == list(range(30))


async def test_claim_blocks_until_a_message_arrives(bus: Bus) -> None:
    claim = asyncio.create_task(bus.claim(TOPIC, "g", "c1", block=5))
    await asyncio.sleep(0.3)
    assert not claim.done()
    message_id = await bus.publish(TOPIC, {"late": True})
    [message] = await asyncio.wait_for(claim, 3)
    assert message.id == message_id


async def test_every_group_gets_every_message(bus: Bus) -> None:
    ids = [await bus.publish(TOPIC, {"i": i}) for i in range(10)]
    billing = await drain(bus, "billing", "b1")
    search = await drain(bus, "search", "s1")
    assert [m.id for m in billing] == ids
    assert [m.id for m in search] == ids


async def test_consumers_of_one_group_split_the_messages(backend: Backend) -> None:
    a, b = backend.open(), backend.open()
    ids = [await a.publish(TOPIC, {"i": i}) for i in range(10)]

    # Claims held by one consumer are not handed to another.
    first = await a.claim(TOPIC, "g", "a", count=4)
    rest = await b.claim(TOPIC, "g", "b", count=10)
    assert [m.id for m in first] == ids[:4]
    assert [m.id for m in rest] == ids[4:]
    assert await b.claim(TOPIC, "g", "b", block=0.2) == []
    for m in first:
        await a.ack(TOPIC, "g", m.id)
    for m in rest:
        await b.ack(TOPIC, "g", m.id)

    # Concurrently claiming consumers see each message exactly once between them.
    ids = [await a.publish(TOPIC, {"i": i}) for i in range(60)]
    seen: dict[str, list[str]] = {"a": [], "b": []}

    async def consume(bus: Bus, name: str) -> None:
        while batch := await bus.claim(TOPIC, "g", name, count=3, block=0.5):
            for message in batch:
                seen[name].append(message.id)
                await bus.ack(TOPIC, "g", message.id)
            await asyncio.sleep(0.01)

    await asyncio.gather(consume(a, "a"), consume(b, "b"))
    both = seen["a"] + seen["b"]
    assert len(both) == len(set(both)) == 60
    assert set(both) == set(ids)
    assert seen["a"] and seen["b"]


async def test_unacked_message_is_redelivered_after_the_visibility_timeout(
    backend: Backend,
) -> None:
    bus = backend.open(visibility_timeout=VT)
    message_id = await bus.publish(TOPIC, {"x": 1}, headers={"h": "v"})
    [first] = await bus.claim(TOPIC, "g", "crashed")
    assert first.attempt == 1
    assert await bus.claim(TOPIC, "g", "other", block=0.1) == []

    [again] = await bus.claim(TOPIC, "g", "other", block=VT * 4)

    assert again.id == message_id
    assert again.attempt == 2
    assert again.payload == {"x": 1}
    assert again.headers == {"h": "v"}
    await bus.ack(TOPIC, "g", again.id)
    assert await bus.claim(TOPIC, "g", "third", block=VT * 2) == []


async def test_expired_claims_come_before_new_messages(backend: Backend) -> None:
    bus = backend.open(visibility_timeout=VT)
    old = await bus.publish(TOPIC, {"i": 0})
    await bus.claim(TOPIC, "g", "crashed")
    new = await bus.publish(TOPIC, {"i": 1})
    await asyncio.sleep(VT + 0.2)
    claimed = await bus.claim(TOPIC, "g", "other", count=2)
    assert [(m.id, m.attempt) for m in claimed] == [(old, 2), (new, 1)]


async def test_extend_prevents_redelivery(backend: Backend) -> None:
    bus = backend.open(visibility_timeout=VT)
    await bus.publish(TOPIC, {"x": 1})
    [message] = await bus.claim(TOPIC, "g", "slow")
    deadline = time.monotonic() + VT * 3
    while time.monotonic() < deadline:
        await bus.extend(TOPIC, "g", "slow", [message.id])
        assert await bus.claim(TOPIC, "g", "other", block=VT / 3) == []
    # Once renewals stop, the lease runs out and the message comes back.
    [again] = await bus.claim(TOPIC, "g", "other", block=VT * 4)
    assert again.id == message.id
    assert again.attempt == 2


async def test_extend_does_not_take_back_a_reassigned_message(backend: Backend) -> None:
    bus = backend.open(visibility_timeout=VT)
    await bus.publish(TOPIC, {"x": 1})
    [message] = await bus.claim(TOPIC, "g", "stale")
    [taken] = await bus.claim(TOPIC, "g", "second", block=VT * 4)
    assert taken.id == message.id
    # The stale consumer keeps renewing; that must not renew the second consumer's lease.
    deadline = time.monotonic() + VT * 2
    while time.monotonic() < deadline:
        await bus.extend(TOPIC, "g", "stale", [message.id])
        await asyncio.sleep(VT / 5)
    [third] = await bus.claim(TOPIC, "g", "third", block=VT * 2)
    assert third.id == message.id
    assert third.attempt == 3


async def test_ack_twice_is_harmless(backend: Backend) -> None:
    bus = backend.open(visibility_timeout=VT)
    first = await bus.publish(TOPIC, {"i": 1})
    second = await bus.publish(TOPIC, {"i": 2})
    [message] = await bus.claim(TOPIC, "g", "c1")
    await bus.ack(TOPIC, "g", message.id)
    await bus.ack(TOPIC, "g", message.id)
    [nxt] = await bus.claim(TOPIC, "g", "c1")
    assert (message.id, nxt.id) == (first, second)
    await bus.ack(TOPIC, "g", nxt.id)
    assert await bus.claim(TOPIC, "g", "c1", block=VT * 2) == []


async def test_retention_keeps_the_newest_messages(backend: Backend) -> None:
    bus = backend.open(visibility_timeout=VT, retention=20)
    held = await bus.publish(TOPIC, {"i": 0})
    assert [m.id for m in await bus.claim(TOPIC, "held", "c1")] == [held]
    ids = [held] + [await bus.publish(TOPIC, {"i": i}) for i in range(1, 301)]

    fresh = [m.id for m in await bus.claim(TOPIC, "fresh", "c1", count=1000)]

    if backend.name == "local":
        # Exactly `retention`, plus the message a group still holds.
        assert fresh == [held, *ids[-20:]]
        await asyncio.sleep(VT + 0.2)
        [again] = await bus.claim(TOPIC, "held", "c2")
        assert (again.id, again.attempt) == (held, 2)
    else:
        # MAXLEN ~ trims whole stream nodes, so Redis keeps at least `retention`.
        assert 20 <= len(fresh) < len(ids)
        assert fresh == ids[-len(fresh) :]


# Live subscriptions.


async def test_subscribe_yields_only_later_messages_in_order(bus: Bus) -> None:
    await bus.publish(TOPIC, {"when": "before"})
    await bus.publish("other.topic", {"when": "during"})
    async with bus.subscribe(TOPIC) as stream:
        ids = [await bus.publish(TOPIC, {"i": i}) for i in range(5)]
        await bus.publish("other.topic", {"when": "during"})
        received = await take(stream, 5)
        assert [m.id for m in received] == ids
        assert [m.payload for m in received] == [{"i": i} for i in range(5)]
        assert all(m.topic == TOPIC and m.attempt == 1 for m in received)
        with pytest.raises(TimeoutError):
            await take(stream, 1, timeout=0.3)


async def test_subscription_ends_when_the_bus_closes(backend: Backend) -> None:
    bus = backend.open()
    async with bus.subscribe(TOPIC) as stream:
        reader = asyncio.create_task(take(stream, 1))
        await asyncio.sleep(0.1)
        await bus.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 3)


async def test_fan_out_to_200_subscribers(bus: Bus) -> None:
    n = 20
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(bus.subscribe(TOPIC)) for _ in range(200)]
        readers = [asyncio.create_task(take(s, n, timeout=15)) for s in streams]
        ids = [await bus.publish(TOPIC, {"i": i}) for i in range(n)]
        results = await asyncio.gather(*readers)
    assert all([m.id for m in received] == ids for received in results)


async def test_publish_from_another_process_reaches_a_live_subscriber(
    backend: Backend, bus: Bus
) -> None:
    async with bus.subscribe(TOPIC) as stream:
        reader = asyncio.create_task(take(stream, 5, timeout=30))
        ids = await worker(backend, "publish", "--topic", TOPIC, "--count", "5")
        received = await reader
    assert [m.id for m in received] == ids
    assert [m.payload for m in received] == [{"i": i} for i in range(5)]


async def test_consumer_in_another_process_claims_what_we_published(
    backend: Backend, bus: Bus
) -> None:
    ids = [await bus.publish(TOPIC, {"i": i}) for i in range(5)]
    claimed = await worker(
        backend, "consume", "--topic", TOPIC, "--group", "g", "--count", "5", visibility_timeout=VT
    )
    assert claimed == ids
    # It acked them all: nothing comes back even after the lease would have run out.
    checker = backend.open(visibility_timeout=VT)
    assert await checker.claim(TOPIC, "g", "c1", block=VT * 2) == []


# Crash safety: a consumer SIGKILLed in the middle of a message.


def _effects_db(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE processed (id TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE effect (n INTEGER NOT NULL)")
        conn.execute("CREATE TABLE deliveries (id TEXT, attempt INTEGER, pid INTEGER)")
        conn.execute("INSERT INTO effect (n) VALUES (0)")
        conn.commit()


def _query(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("hang_point", ["before-commit", "after-commit"])
async def test_consumer_killed_mid_message_processes_everything_exactly_once(
    backend: Backend, bus: Bus, tmp_path: Path, hang_point: str
) -> None:
    vt = 0.6
    effects = tmp_path / "effects.db"
    marker = tmp_path / "hanging"
    _effects_db(effects)
    ids = [await bus.publish(TOPIC, {"i": i}) for i in range(20)]
    base = ["effects", "--topic", TOPIC, "--group", "g", "--effects", str(effects)]

    async def start(*extra: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.kernel.bus_worker",
            *base,
            *extra,
            cwd=ROOT,
            env=backend.env(visibility_timeout=vt),
        )

    first = await start("--hang-at", "5", "--hang-point", hang_point, "--marker", str(marker))
    try:
        await eventually(marker.exists, timeout=20)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    hung_id = marker.read_text()
    (done_before,) = _query(effects, "SELECT n FROM effect")[0]
    assert done_before == (4 if hang_point == "before-commit" else 5)

    second = await start()
    try:
        await eventually(lambda: _query(effects, "SELECT n FROM effect")[0][0] >= 20, 20)
        second.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await second.wait() == 0
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()

    assert _query(effects, "SELECT n FROM effect") == [(20,)]
    assert sorted(row[0] for row in _query(effects, "SELECT id FROM processed")) == sorted(ids)
    # The hung message really was handed out again, to the second process, as a redelivery.
    deliveries = _query(effects, "SELECT attempt, pid FROM deliveries WHERE id = ?", hung_id)
    assert [attempt for attempt, _pid in deliveries] == [1, 2]
    assert deliveries[0][1] == first.pid and deliveries[1][1] == second.pid
    # Everything was acknowledged.
    checker = backend.open(visibility_timeout=vt)
    assert await checker.claim(TOPIC, "g", "checker", block=vt * 2) == []


# run_consumer.


async def _start_consumer(
    bus: Bus,
    handler: Callable[[Message], Awaitable[None]],
    stop: asyncio.Event,
    **options: Any,
) -> asyncio.Task[None]:
    return asyncio.create_task(
        run_consumer(bus, TOPIC, "g", handler, stop=stop, visibility_timeout=VT, **options)
    )


async def test_run_consumer_acks_handled_messages_and_returns_on_stop(backend: Backend) -> None:
    bus = backend.open(visibility_timeout=VT)
    handled: list[str] = []
    slow_started = asyncio.Event()

    async def handler(message: Message) -> None:
        if not handled:
            # Slower than the lease: only run_consumer's renewals keep the batch its own.
            slow_started.set()
            await asyncio.sleep(VT * 2.5)
        handled.append(message.id)

    ids = [await bus.publish(TOPIC, {"i": i}) for i in range(3)]
    stop = asyncio.Event()
    task = await _start_consumer(bus, handler, stop)
    await asyncio.wait_for(slow_started.wait(), 5)
    assert await bus.claim(TOPIC, "g", "rival", count=3, block=VT * 2) == []
    await eventually(lambda: len(handled) >= 3)
    stop.set()
    await asyncio.wait_for(task, 3)
    assert handled == ids
    assert await bus.claim(TOPIC, "g", "checker", block=VT * 2) == []


async def test_run_consumer_retries_a_failed_message(backend: Backend) -> None:
    bus = backend.open(visibility_timeout=VT)
    attempts: list[int] = []

    async def handler(message: Message) -> None:
        attempts.append(message.attempt)
        if message.attempt == 1:
            raise RuntimeError("transient")

    await bus.publish(TOPIC, {"i": 0})
    stop = asyncio.Event()
    task = await _start_consumer(bus, handler, stop)
    await eventually(lambda: attempts == [1, 2])
    stop.set()
    await asyncio.wait_for(task, 3)
    assert attempts == [1, 2]
    assert await bus.claim(TOPIC, "g", "checker", block=VT * 2) == []


async def test_run_consumer_dead_letters_after_max_attempts(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    bus = backend.open(visibility_timeout=VT)
    attempts: list[int] = []

    async def handler(message: Message) -> None:
        attempts.append(message.attempt)
        raise ValueError("cannot transcode")

    message_id = await bus.publish(TOPIC, {"secret": "hunter2"}, headers={"trace-id": "t-9"})
    stop = asyncio.Event()
    caplog.set_level(logging.INFO)
    task = await _start_consumer(bus, handler, stop, max_attempts=3)

    [dead] = await bus.claim(f"{TOPIC}.dead", "ops", "o1", block=15)

    stop.set()
    await asyncio.wait_for(task, 3)
    assert attempts == [1, 2, 3]
    assert dead.payload == {"secret": "hunter2"}
    assert dead.headers["trace-id"] == "t-9"
    assert dead.headers["dead-letter-message-id"] == message_id
    assert dead.headers["dead-letter-attempts"] == "3"
    assert dead.headers["dead-letter-error-type"] == "ValueError"
    assert dead.headers["dead-letter-error"] == "cannot transcode"
    assert dead.headers["dead-letter-group"] == "g"
    assert "cannot transcode" in caplog.text
    assert "hunter2" not in caplog.text
    # The original was acknowledged, so it is not retried any more.
    assert await bus.claim(TOPIC, "g", "checker", block=VT * 2) == []


async def test_run_consumer_dead_letters_a_message_that_keeps_killing_consumers(
    backend: Backend,
) -> None:
    bus = backend.open(visibility_timeout=VT)
    await bus.publish(TOPIC, {"poison": True})
    # Two consumers "die" holding it, so the next delivery is attempt 3.
    for name in ("dies-1", "dies-2"):
        assert await bus.claim(TOPIC, "g", name, block=VT * 4)
    called: list[Message] = []

    async def handler(message: Message) -> None:
        called.append(message)

    stop = asyncio.Event()
    task = await _start_consumer(bus, handler, stop, max_attempts=2)
    [dead] = await bus.claim(f"{TOPIC}.dead", "ops", "o1", block=10)
    stop.set()
    await asyncio.wait_for(task, 3)
    assert called == []
    assert dead.payload == {"poison": True}
    assert dead.headers["dead-letter-attempts"] == "3"
    assert dead.headers["dead-letter-error-type"] == "MaxAttemptsExceeded"


async def test_run_consumer_returns_promptly_when_idle(bus: Bus) -> None:
    async def handler(message: Message) -> None:
        raise AssertionError("no messages were published")

    stop = asyncio.Event()
    task = await _start_consumer(bus, handler, stop)
    await asyncio.sleep(0.3)
    assert not task.done()
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 3)
    assert time.monotonic() - started < 1.5
