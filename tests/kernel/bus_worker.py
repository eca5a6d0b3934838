"""A separate process for the bus tests: publishes, claims, or runs a crashable consumer.

Reads its bus settings from `REELGRAPH_*` variables, like a service does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import orjson

from subgraphs.kernel.bus import Message, open_bus
from subgraphs.kernel.bus.consumer import run_consumer
from subgraphs.kernel.settings import Settings


async def publish(args: argparse.Namespace) -> None:
    bus = open_bus(Settings())
    try:
        ids = [await bus.publish(args.topic, {"i": i}) for i in range(args.count)]
    finally:
        await bus.close()
    sys.stdout.write(orjson.dumps(ids).decode())


async def consume(args: argparse.Namespace) -> None:
    """Claim and ack exactly `count` messages, then print their ids in claim order."""
    bus = open_bus(Settings())
    ids: list[str] = []
    try:
        async with asyncio.timeout(20):
            while len(ids) < args.count:
                for message in await bus.claim(
                    args.topic, args.group, f"worker-{os.getpid()}", count=args.count - len(ids)
                ):
                    await bus.ack(args.topic, args.group, message.id)
                    ids.append(message.id)
    finally:
        await bus.close()
    sys.stdout.write(orjson.dumps(ids).decode())


async def effects(args: argparse.Namespace) -> None:
    """Run `run_consumer` with an idempotent handler until SIGTERM, optionally hanging mid-message.

    The handler's effect and its idempotency record commit in one SQLite transaction. With
    `--hang-at K` the K-th message this process handles writes `--marker` and hangs (before or
    after its commit, per `--hang-point`) so the test can SIGKILL it there.
    """
    settings = Settings()
    bus = open_bus(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    handled = 0

    async def handle(message: Message) -> None:
        nonlocal handled
        handled += 1
        conn = sqlite3.connect(args.effects, timeout=10, isolation_level=None)
        try:
            # Outside the transaction: a record of every delivery, which survives the kill.
            conn.execute(
                "INSERT INTO deliveries (id, attempt, pid) VALUES (?, ?, ?)",
                (message.id, message.attempt, os.getpid()),
            )
            hang = handled == args.hang_at
            conn.execute("BEGIN IMMEDIATE")
            inserted = conn.execute(
                "INSERT OR IGNORE INTO processed (id) VALUES (?)", (message.id,)
            ).rowcount
            if inserted:
                conn.execute("UPDATE effect SET n = n + 1")
            if hang and args.hang_point == "before-commit":
                Path(args.marker).write_text(message.id)
                await asyncio.sleep(3600)
            conn.execute("COMMIT")
            if hang and args.hang_point == "after-commit":
                Path(args.marker).write_text(message.id)
                await asyncio.sleep(3600)
        finally:
            conn.close()

    try:
        await run_consumer(
            bus,
            args.topic,
            args.group,
            handle,
            stop=stop,
            visibility_timeout=settings.bus_visibility_timeout,
            batch=args.batch,
        )
    finally:
        await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("publish")
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    c = commands.add_parser("consume")
    c.add_argument("--topic", required=True)
    c.add_argument("--group", required=True)
    c.add_argument("--count", type=int, required=True)
    e = commands.add_parser("effects")
    e.add_argument("--topic", required=True)
    e.add_argument("--group", required=True)
    e.add_argument("--effects", required=True)
    e.add_argument("--batch", type=int, default=10)
    e.add_argument("--hang-at", type=int, default=0)
    e.add_argument("--hang-point", choices=["before-commit", "after-commit"])
    e.add_argument("--marker")
    args = parser.parse_args()
    asyncio.run({"publish": publish, "consume": consume, "effects": effects}[args.command](args))


if __name__ == "__main__":
    main()
