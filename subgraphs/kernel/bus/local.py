"""`LocalBus`: the event bus in one SQLite file (WAL mode), shared by the processes of a machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from subgraphs.kernel.bus.base import Bus, Message

logger = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT = 10.0
# Claim polling backs off from CLAIM_POLL_MIN to CLAIM_POLL_MAX while a topic stays idle.
CLAIM_POLL_MIN = 0.02
CLAIM_POLL_MAX = 0.2
SUBSCRIBE_POLL = 0.025
# Rows one subscription poll reads per topic; a backlog is drained over consecutive ticks.
FETCH_LIMIT = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    published_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_topic_seq ON messages (topic, seq);
CREATE TABLE IF NOT EXISTS groups (
    topic TEXT NOT NULL,
    grp TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (topic, grp)
);
CREATE TABLE IF NOT EXISTS pending (
    topic TEXT NOT NULL,
    grp TEXT NOT NULL,
    seq INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    lease_until REAL NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (topic, grp, seq)
);
CREATE INDEX IF NOT EXISTS pending_topic_seq ON pending (topic, seq);
"""

# Keep the `retention` newest messages of a topic, but never one some group still holds:
# trimming it would turn a crash of its consumer into silent loss.
TRIM_SQL = """
DELETE FROM messages
WHERE topic = ?1
  AND seq <= (SELECT seq FROM messages WHERE topic = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)
  AND NOT EXISTS (SELECT 1 FROM pending p WHERE p.topic = ?1 AND p.seq = messages.seq)
"""


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a claim takes the write
    # lock up front instead of upgrading a read transaction (which can fail with SQLITE_BUSY).
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        # Switching to WAL needs an exclusive lock and does not wait on the busy handler, so
        # several processes opening a fresh file at once may need a few tries.
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # In WAL mode NORMAL still survives any process crash; only an OS crash or power loss
        # can lose the last commits, and it saves an fsync on every publish, claim and ack.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except BaseException:
        conn.close()
        raise
    return conn


class _Worker:
    """One SQLite connection owned by one thread, so blocking calls stay off the event loop."""

    def __init__(self, path: Path, name: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = _connect(self._path)
        return fn(self._conn)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)


def _transaction(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _message(topic: str, row: tuple[Any, ...], attempt: int = 1) -> Message:
    seq, payload, headers, published_at = row[:4]
    return Message(
        id=str(seq),
        topic=topic,
        payload=orjson.loads(payload),
        published_at=published_at,
        attempt=attempt,
        headers=orjson.loads(headers),
    )


def _seq(message_id: str) -> int:
    try:
        return int(message_id)
    except ValueError:
        raise ValueError(f"not a LocalBus message id: {message_id!r}") from None


class _Subscriber:
    """One live subscription: its queue and the last sequence number it has been given."""

    __slots__ = ("after", "queue")

    def __init__(self, after: int) -> None:
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


class LocalBus(Bus):
    """Durable topics in one SQLite file, safe to share between the processes of one machine."""

    def __init__(
        self, path: Path, *, visibility_timeout: float = 30.0, retention: int = 100_000
    ) -> None:
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        if retention < 1:
            raise ValueError("retention must be at least 1")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.visibility_timeout = visibility_timeout
        self.retention = retention
        # Trimming walks `retention` index entries, so it runs on about one publish in
        # retention/100 (at most 1000): a topic overshoots by about 1 %, like Redis's MAXLEN ~.
        self._trim_probability = 1.0 / max(1, min(1000, retention // 100))
        self._ops = _Worker(path, "localbus-ops")
        # Subscriptions read on their own connection so a slow claim never delays fan-out.
        self._reader = _Worker(path, "localbus-subscribe")
        self._known_groups: set[tuple[str, str]] = set()
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._poll_dirty = True
        self._closed = False

    # Publishing and consumer groups.

    async def publish(
        self, topic: str, payload: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> str:
        self._check_open()
        body = orjson.dumps(dict(payload)).decode()
        head = orjson.dumps(dict(headers or {})).decode()
        trim = random.random() < self._trim_probability
        seq = await self._ops.run(partial(self._publish, topic, body, head, time.time(), trim))
        return str(seq)

    def _publish(
        self, topic: str, body: str, head: str, now: float, trim: bool, conn: sqlite3.Connection
    ) -> int:
        def work() -> int:
            cur = conn.execute(
                "INSERT INTO messages (topic, payload, headers, published_at) VALUES (?, ?, ?, ?)",
                (topic, body, head, now),
            )
            if trim:
                conn.execute(TRIM_SQL, (topic, self.retention))
            assert cur.lastrowid is not None
            return cur.lastrowid

        return _transaction(conn, work)

    async def claim(
        self, topic: str, group: str, consumer: str, *, count: int = 1, block: float = 1.0
    ) -> list[Message]:
        self._check_open()
        if count < 1:
            raise ValueError("count must be at least 1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(block, 0.0)
        delay = CLAIM_POLL_MIN
        while True:
            probe = (topic, group) in self._known_groups
            claimed = await self._ops.run(
                partial(self._claim_once, topic, group, consumer, count, probe)
            )
            self._known_groups.add((topic, group))
            if claimed:
                return claimed
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, CLAIM_POLL_MAX)

    def _claim_once(
        self,
        topic: str,
        group: str,
        consumer: str,
        count: int,
        probe: bool,
        conn: sqlite3.Connection,
    ) -> list[Message]:
        if probe:
            # Idle polling should not take the write lock every few milliseconds, so look
            # first without a transaction; the claim below re-checks under the lock.
            (ready,) = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pending"
                "               WHERE topic = ?1 AND grp = ?2 AND lease_until <= ?3)"
                "    OR EXISTS (SELECT 1 FROM messages WHERE topic = ?1 AND seq >"
                "               (SELECT cursor FROM groups WHERE topic = ?1 AND grp = ?2))",
                (topic, group, time.time()),
            ).fetchone()
            if not ready:
                return []

        def work() -> list[Message]:
            now = time.time()
            lease_until = now + self.visibility_timeout
            conn.execute(
                "INSERT OR IGNORE INTO groups (topic, grp, cursor) VALUES (?, ?, 0)",
                (topic, group),
            )
            claimed: list[Message] = []
            expired = conn.execute(
                "SELECT m.seq, m.payload, m.headers, m.published_at, p.attempts"
                " FROM pending p JOIN messages m ON m.seq = p.seq"
                " WHERE p.topic = ? AND p.grp = ? AND p.lease_until <= ?"
                " ORDER BY p.seq LIMIT ?",
                (topic, group, now, count),
            ).fetchall()
            for row in expired:
                conn.execute(
                    "UPDATE pending SET consumer = ?, lease_until = ?, attempts = attempts + 1"
                    " WHERE topic = ? AND grp = ? AND seq = ?",
                    (consumer, lease_until, topic, group, row[0]),
                )
                claimed.append(_message(topic, row, attempt=row[4] + 1))
            if len(claimed) < count:
                fresh = conn.execute(
                    "SELECT seq, payload, headers, published_at FROM messages"
                    " WHERE topic = ?1 AND seq >"
                    "       (SELECT cursor FROM groups WHERE topic = ?1 AND grp = ?2)"
                    " ORDER BY seq LIMIT ?3",
                    (topic, group, count - len(claimed)),
                ).fetchall()
                if fresh:
                    conn.executemany(
                        "INSERT INTO pending (topic, grp, seq, consumer, lease_until, attempts)"
                        " VALUES (?, ?, ?, ?, ?, 1)",
                        [(topic, group, row[0], consumer, lease_until) for row in fresh],
                    )
                    conn.execute(
                        "UPDATE groups SET cursor = ? WHERE topic = ? AND grp = ?",
                        (fresh[-1][0], topic, group),
                    )
                    claimed.extend(_message(topic, row) for row in fresh)
            return claimed

        return _transaction(conn, work)

    async def ack(self, topic: str, group: str, message_id: str) -> None:
        self._check_open()
        seq = _seq(message_id)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM pending WHERE topic = ? AND grp = ? AND seq = ?", (topic, group, seq)
            )

        await self._ops.run(work)

    async def extend(self, topic: str, group: str, consumer: str, message_ids: list[str]) -> None:
        self._check_open()
        seqs = [_seq(message_id) for message_id in message_ids]
        if not seqs:
            return

        def work(conn: sqlite3.Connection) -> None:
            lease_until = time.time() + self.visibility_timeout

            def renew() -> None:
                # The consumer condition keeps a consumer whose lease already expired from
                # taking back a message another consumer has since claimed.
                conn.executemany(
                    "UPDATE pending SET lease_until = ?"
                    " WHERE topic = ? AND grp = ? AND consumer = ? AND seq = ?",
                    [(lease_until, topic, group, consumer, seq) for seq in seqs],
                )

            _transaction(conn, renew)

        await self._ops.run(work)

    # Live subscriptions.

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[Message]]:
        self._check_open()

        def last_seq(conn: sqlite3.Connection) -> int:
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE topic = ?", (topic,)
            ).fetchone()
            return int(seq)

        subscriber = _Subscriber(await self._reader.run(last_seq))
        self._subscribers.setdefault(topic, set()).add(subscriber)
        self._poll_dirty = True
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="localbus-subscribe")
        try:
            yield _Subscription(subscriber.queue)
        finally:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[topic]

    async def _poll(self) -> None:
        """Fan out new messages of every subscribed topic, with one reader for the instance."""
        version: int | None = None
        while self._subscribers:
            dirty = self._poll_dirty
            self._poll_dirty = False
            cursors = {
                topic: min(s.after for s in subscribers)
                for topic, subscribers in self._subscribers.items()
            }
            try:
                version, batches = await self._reader.run(
                    partial(self._fetch, cursors, None if dirty else version)
                )
            except Exception:
                logger.exception("bus subscription poll failed; retrying")
                self._poll_dirty = True
                await asyncio.sleep(1.0)
                continue
            for topic, rows in batches.items():
                if len(rows) == FETCH_LIMIT:
                    self._poll_dirty = True
                for subscriber in self._subscribers.get(topic, ()):
                    if subscriber.after < cursors[topic]:
                        # It joined while this read was in flight and this read does not
                        # cover all it needs; the next tick starts from its position.
                        self._poll_dirty = True
                        continue
                    for seq, message in rows:
                        if seq > subscriber.after:
                            subscriber.queue.put_nowait(message)
                            subscriber.after = seq
            if not self._poll_dirty:
                await asyncio.sleep(SUBSCRIBE_POLL)
            else:
                # Yield to the loop even when more is waiting, so consumers keep up.
                await asyncio.sleep(0)

    @staticmethod
    def _fetch(
        cursors: dict[str, int], last_version: int | None, conn: sqlite3.Connection
    ) -> tuple[int, dict[str, list[tuple[int, Message]]]]:
        # data_version changes only when another connection commits, so an idle tick costs
        # one pragma rather than one query per topic.
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        batches: dict[str, list[tuple[int, Message]]] = {}
        if version == last_version:
            return version, batches
        for topic, after in cursors.items():
            rows = conn.execute(
                "SELECT seq, payload, headers, published_at FROM messages"
                " WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?",
                (topic, after, FETCH_LIMIT),
            ).fetchall()
            batches[topic] = [(row[0], _message(topic, row)) for row in rows]
        return version, batches

    # Lifecycle.

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.queue.put_nowait(None)
        self._subscribers.clear()
        await self._ops.close()
        await self._reader.close()
