"""`run_consumer`: the claim, handle, ack loop services run for each topic they consume."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable

from subgraphs.kernel.bus.base import Bus, Message

logger = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[None]]

# Longest a claim waits for work, which bounds how long `stop` takes to be noticed.
CLAIM_BLOCK = 0.5
# Backoff while the bus itself is failing (e.g. Redis restarting).
ERROR_BACKOFF_MIN = 0.5
ERROR_BACKOFF_MAX = 10.0
# Dead-letter headers carry at most this much of the error text.
MAX_ERROR_TEXT = 1000


def default_consumer_name() -> str:
    """A name unique to this process: leases are per consumer, so two must never share one."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


async def run_consumer(
    bus: Bus,
    topic: str,
    group: str,
    handler: Handler,
    *,
    consumer: str | None = None,
    stop: asyncio.Event,
    visibility_timeout: float,
    max_attempts: int = 10,
    batch: int = 10,
) -> None:
    """Handle every message of `topic` for `group` at least once, until `stop` is set.

    A message is acknowledged only after `handler` returns, so handlers must be idempotent
    (a crash between their effect and the ack means the message is handled again). A failing
    message is retried after its lease expires; once it has been handed out more than
    `max_attempts` times, or fails on its last allowed attempt, it is published to
    `<topic>.dead` with the error in its headers and acknowledged.
    """
    if visibility_timeout <= 0:
        raise ValueError("visibility_timeout must be positive")
    if max_attempts < 1 or batch < 1:
        raise ValueError("max_attempts and batch must be at least 1")
    name = consumer or default_consumer_name()
    backoff = ERROR_BACKOFF_MIN
    while not stop.is_set():
        try:
            messages = await bus.claim(topic, group, name, count=batch, block=CLAIM_BLOCK)
        except Exception:
            logger.exception("claim failed", extra={"topic": topic, "group": group})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
            continue
        backoff = ERROR_BACKOFF_MIN
        if not messages:
            continue
        held = {message.id for message in messages}
        renewer = asyncio.create_task(
            _renew_leases(bus, topic, group, name, held, visibility_timeout / 3)
        )
        try:
            for message in messages:
                if stop.is_set():
                    # Unhandled messages stay claimed and are handed out again once their
                    # lease expires; starting new work after stop would delay shutdown.
                    break
                try:
                    await _handle(bus, topic, group, name, handler, message, max_attempts)
                except Exception:
                    # The bus failed to ack or dead-letter; the lease lapses and it comes back.
                    logger.exception(
                        "settling %s message %s failed",
                        topic,
                        message.id,
                        extra={"topic": topic, "group": group, "message_id": message.id},
                    )
                # Stop renewing it either way: a failed message must come back after its lease.
                held.discard(message.id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer


async def _renew_leases(
    bus: Bus, topic: str, group: str, consumer: str, held: set[str], interval: float
) -> None:
    # Covers the message being handled and the rest of the batch waiting behind it.
    while True:
        await asyncio.sleep(interval)
        if not held:
            continue
        try:
            await bus.extend(topic, group, consumer, sorted(held))
        except Exception:
            logger.warning(
                "lease renewal failed", exc_info=True, extra={"topic": topic, "group": group}
            )


async def _handle(
    bus: Bus,
    topic: str,
    group: str,
    consumer: str,
    handler: Handler,
    message: Message,
    max_attempts: int,
) -> None:
    context = {"topic": topic, "group": group, "message_id": message.id, "attempt": message.attempt}
    if message.attempt > max_attempts:
        # Handed out too often without ever completing: most likely it crashes or hangs its
        # consumer, so do not run it again.
        await _dead_letter(bus, topic, group, consumer, message, None)
        return
    try:
        await handler(message)
    except Exception as error:
        # Payloads may hold personal data, so only identify the message.
        logger.exception(
            "handler failed for %s message %s (attempt %d)",
            topic,
            message.id,
            message.attempt,
            extra=context,
        )
        if message.attempt >= max_attempts:
            await _dead_letter(bus, topic, group, consumer, message, error)
        return
    await bus.ack(topic, group, message.id)


async def _dead_letter(
    bus: Bus,
    topic: str,
    group: str,
    consumer: str,
    message: Message,
    error: BaseException | None,
) -> None:
    headers = dict(message.headers)
    headers.update(
        {
            "dead-letter-topic": topic,
            "dead-letter-group": group,
            "dead-letter-consumer": consumer,
            "dead-letter-message-id": message.id,
            "dead-letter-attempts": str(message.attempt),
            "dead-letter-published-at": repr(message.published_at),
            "dead-letter-error-type": type(error).__name__ if error else "MaxAttemptsExceeded",
            "dead-letter-error": (
                str(error)[:MAX_ERROR_TEXT]
                if error
                else "handed out more times than allowed without being acknowledged"
            ),
        }
    )
    await bus.publish(f"{topic}.dead", message.payload, headers=headers)
    # Publish before ack: a crash in between duplicates the dead letter rather than losing it.
    await bus.ack(topic, group, message.id)
    logger.error(
        "dead-lettered %s message %s after %d attempts",
        topic,
        message.id,
        message.attempt,
        extra={"topic": topic, "group": group, "message_id": message.id},
    )
