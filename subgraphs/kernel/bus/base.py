"""The event bus contract shared by every backend.

Two ways to read a topic:

- **Consumer groups** (`claim`/`ack`): durable, at-least-once work distribution. Every group
  sees every message published to the topic since the group was created (a new group starts
  at the beginning of the retained stream); inside one group each message goes to one
  consumer at a time. A claimed message that is not acknowledged within the visibility
  timeout (the consumer died, or stopped renewing its lease) is handed out again.
- **Live subscriptions** (`subscribe`): fan-out of every message published after the
  subscription opened, in publish order, to every subscriber in every process. This is what
  GraphQL subscriptions ride on across replicas.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """One published event. `id` is unique within its topic and stable across redeliveries."""

    id: str
    topic: str
    payload: dict[str, Any]
    published_at: float
    # How many times this message has been handed to a consumer of the claiming group
    # (1 on first delivery). Always 1 for live subscriptions.
    attempt: int = 1
    headers: dict[str, str] = field(default_factory=dict)


class Bus(abc.ABC):
    """A topic-based event bus. Implementations must be safe to share across asyncio tasks."""

    @abc.abstractmethod
    async def publish(
        self, topic: str, payload: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> str:
        """Append a message to `topic` durably and return its id."""

    @abc.abstractmethod
    async def claim(
        self, topic: str, group: str, consumer: str, *, count: int = 1, block: float = 1.0
    ) -> list[Message]:
        """Hand up to `count` messages to `consumer` of `group`, waiting up to `block` seconds.

        Expired claims of other consumers in the group come first, then new messages in
        publish order. Creates the group on first use.
        """

    @abc.abstractmethod
    async def ack(self, topic: str, group: str, message_id: str) -> None:
        """Mark a claimed message as done for `group`. Acknowledging twice is harmless."""

    @abc.abstractmethod
    async def extend(self, topic: str, group: str, consumer: str, message_ids: list[str]) -> None:
        """Renew the lease on messages `consumer` still holds, so they are not handed out again."""

    @abc.abstractmethod
    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        """Open a live subscription. Every message published after entry is yielded, in order."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and background tasks."""
