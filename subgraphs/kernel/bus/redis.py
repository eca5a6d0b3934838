"""`RedisBus`: the event bus on Redis Streams, shared by every process and replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from subgraphs.kernel.bus.base import Bus, Message

logger = logging.getLogger(__name__)

StreamId = tuple[int, int]

# Longest single blocking Redis call, so subscription readers notice when they became idle.
# A claim also re-runs XAUTOCLAIM between slices (at most a quarter of the visibility
# timeout long) so leases that expire while it waits are noticed promptly.
BLOCK_SLICE = 1.0
# Entries one subscription read fetches; a backlog is drained over consecutive reads.
FETCH_LIMIT = 1000
# XAUTOCLAIM scans at most 10 x count pending entries per call; bound the rounds per claim so
# a huge pending list cannot stall one claim.
AUTOCLAIM_ROUNDS = 5

# Renew leases only on entries `consumer` still owns: a plain XCLAIM would take back a message
# that already expired and went to another consumer. JUSTID keeps the delivery count as is.
EXTEND_SCRIPT = """
local renewed = 0
for i = 3, #ARGV do
    local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
    if #owned > 0 then
        redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
        renewed = renewed + 1
    end
end
return renewed
"""


def _parse_id(entry_id: bytes | str) -> StreamId:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _format_id(entry_id: StreamId) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def _message(
    topic: str, entry_id: bytes, fields: Mapping[bytes, bytes], attempt: int = 1
) -> Message:
    raw_time = fields.get(b"t")
    published_at = float(raw_time) if raw_time else _parse_id(entry_id)[0] / 1000
    return Message(
        id=entry_id.decode(),
        topic=topic,
        payload=orjson.loads(fields.get(b"p", b"{}")),
        published_at=published_at,
        attempt=attempt,
        headers=orjson.loads(fields.get(b"h", b"{}")),
    )


def _entries(response: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The entries of an XREAD/XREADGROUP reply for one stream (redis-py's typing is loose)."""
    return [
        (entry_id, fields) for _stream, entries in response or () for entry_id, fields in entries
    ]


def _is_nogroup(error: ResponseError) -> bool:
    return str(error).startswith("NOGROUP")


class _Subscriber:
    """One live subscription: its queue and the last entry id it has been given."""

    __slots__ = ("after", "queue")

    def __init__(self, after: StreamId) -> None:
        self.after = after
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()


class _Subscription:
    """The iterator a subscriber reads; ends when the bus closes."""

    def __init__(self, queue: asyncio.Queue[Message | None]) -> None:
        self._queue = queue

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> Message:
        item = await self._queue.get()
        if item is None:
            # Put the sentinel back so every later read ends too.
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        return item


class RedisBus(Bus):
    """Topics as Redis Streams (`<namespace>:stream:<topic>`), groups as consumer groups."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "reelgraph",
        visibility_timeout: float = 30.0,
        retention: int = 100_000,
    ) -> None:
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        if retention < 1:
            raise ValueError("retention must be at least 1")
        self.namespace = namespace
        self.visibility_timeout = visibility_timeout
        self.retention = retention
        self._redis: Redis = Redis.from_url(url)
        self._extend_script = self._redis.register_script(EXTEND_SCRIPT)
        self._claim_slice = min(BLOCK_SLICE, visibility_timeout / 4)
        self._known_groups: set[tuple[str, str]] = set()
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def key(self, topic: str) -> str:
        return f"{self.namespace}:stream:{topic}"

    # Publishing and consumer groups.

    async def publish(
        self, topic: str, payload: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> str:
        self._check_open()
        fields: dict[FieldT, EncodableT] = {
            b"p": orjson.dumps(dict(payload)),
            b"h": orjson.dumps(dict(headers or {})),
            b"t": repr(time.time()),
        }
        entry_id = await self._redis.xadd(
            self.key(topic), fields, maxlen=self.retention, approximate=True
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def _ensure_group(self, topic: str, group: str) -> None:
        if (topic, group) in self._known_groups:
            return
        try:
            # "0", not "$": a new group starts at the beginning of the retained stream.
            await self._redis.xgroup_create(self.key(topic), group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._known_groups.add((topic, group))

    async def claim(
        self, topic: str, group: str, consumer: str, *, count: int = 1, block: float = 1.0
    ) -> list[Message]:
        self._check_open()
        if count < 1:
            raise ValueError("count must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(block, 0.0)
        recreated = False
        while True:
            await self._ensure_group(topic, group)
            try:
                claimed = await self._reclaim(topic, group, consumer, count)
                if len(claimed) < count:
                    wait = 0.0 if claimed else min(deadline - loop.time(), self._claim_slice)
                    claimed += await self._read_new(
                        topic, group, consumer, count - len(claimed), wait
                    )
            except ResponseError as error:
                if recreated or not _is_nogroup(error):
                    raise
                # The stream was deleted under us (e.g. by an operator); recreate the group.
                self._known_groups.discard((topic, group))
                recreated = True
                continue
            if claimed or loop.time() >= deadline:
                return claimed

    async def _reclaim(self, topic: str, group: str, consumer: str, count: int) -> list[Message]:
        key = self.key(topic)
        min_idle = int(self.visibility_timeout * 1000)
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        cursor: bytes | str = "0-0"
        for _ in range(AUTOCLAIM_ROUNDS):
            cursor, found, *_deleted = await self._redis.xautoclaim(
                key, group, consumer, min_idle, start_id=cursor, count=count - len(entries)
            )
            # Entries trimmed away while pending come back without fields (or in the deleted
            # list on Redis 7); nothing can be redelivered for them.
            entries.extend((entry_id, fields) for entry_id, fields in found if fields is not None)
            if len(entries) >= count or cursor in (b"0-0", "0-0"):
                break
        if not entries:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for entry_id, _fields in entries:
            pipe.xpending_range(key, group, min=entry_id, max=entry_id, count=1)
        pending = await pipe.execute()
        messages = []
        for (entry_id, fields), info in zip(entries, pending, strict=True):
            # XAUTOCLAIM already counted this delivery; 2 is the floor for a redelivery.
            attempt = max(int(info[0]["times_delivered"]), 2) if info else 2
            messages.append(_message(topic, entry_id, fields, attempt))
        return messages

    async def _read_new(
        self, topic: str, group: str, consumer: str, count: int, wait: float
    ) -> list[Message]:
        # BLOCK 0 means "forever" to Redis, so a wait under a millisecond must not block at all.
        block_ms = int(wait * 1000)
        response = await self._redis.xreadgroup(
            group,
            consumer,
            {self.key(topic): ">"},
            count=count,
            block=block_ms if block_ms > 0 else None,
        )
        return [_message(topic, entry_id, fields) for entry_id, fields in _entries(response)]

    async def ack(self, topic: str, group: str, message_id: str) -> None:
        self._check_open()
        await self._redis.xack(self.key(topic), group, message_id)

    async def extend(self, topic: str, group: str, consumer: str, message_ids: list[str]) -> None:
        self._check_open()
        if message_ids:
            await self._extend_script(keys=[self.key(topic)], args=[group, consumer, *message_ids])

    # Live subscriptions.

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[Message]]:
        self._check_open()
        # Resolve "$" to a concrete id now: every later read continues from the last id
        # delivered, so nothing published between two reads is skipped.
        last = await self._redis.xrevrange(self.key(topic), "+", "-", count=1)
        last_id = last[0][0] if last else None
        subscriber = _Subscriber(_parse_id(last_id) if last_id is not None else (0, 0))
        self._subscribers.setdefault(topic, set()).add(subscriber)
        reader = self._readers.get(topic)
        if reader is None or reader.done():
            self._readers[topic] = asyncio.create_task(
                self._read_topic(topic), name=f"redisbus-subscribe-{topic}"
            )
        try:
            yield _Subscription(subscriber.queue)
        finally:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[topic]

    async def _read_topic(self, topic: str) -> None:
        """Fan out one topic to this instance's subscribers with a single blocking reader."""
        key = self.key(topic)
        try:
            while subscribers := self._subscribers.get(topic):
                start = min(s.after for s in subscribers)
                try:
                    response = await self._redis.xread(
                        {key: _format_id(start)}, count=FETCH_LIMIT, block=int(BLOCK_SLICE * 1000)
                    )
                except Exception:
                    logger.exception("bus subscription read failed; retrying")
                    await asyncio.sleep(1.0)
                    continue
                rows = [
                    (_parse_id(entry_id), _message(topic, entry_id, fields))
                    for entry_id, fields in _entries(response)
                ]
                for subscriber in self._subscribers.get(topic, ()):
                    if subscriber.after < start:
                        # It joined while this read was in flight and the read does not cover
                        # all it needs; the next read starts from its position.
                        continue
                    for entry_id, message in rows:
                        if entry_id > subscriber.after:
                            subscriber.queue.put_nowait(message)
                            subscriber.after = entry_id
        finally:
            if self._readers.get(topic) is asyncio.current_task():
                del self._readers[topic]

    # Lifecycle.

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        readers = list(self._readers.values())
        for reader in readers:
            reader.cancel()
        for reader in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.queue.put_nowait(None)
        self._subscribers.clear()
        await self._redis.aclose()
