"""A graphql-transport-ws client for tests: one subscription per socket, messages read with
generous deadlines, pings answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect


class Subscription:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    async def next(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next event's payload (`data`, maybe `errors`); fails on anything else."""
        message = await self.message(timeout)
        assert message["type"] == "next", message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def message(self, timeout: float = 30.0) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(
                await asyncio.wait_for(self.socket.recv(), timeout)
            )
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def nothing_within(self, seconds: float) -> None:
        """Assert no event arrives for a while (only where absence is the point)."""
        with contextlib.suppress(TimeoutError):
            message = await self.message(seconds)
            raise AssertionError(f"unexpected message: {message}")


@contextlib.asynccontextmanager
async def subscribe(
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    via: Literal["init", "header", "both"] = "both",
) -> AsyncIterator[Subscription]:
    """Open a socket to `url` (a router or a subgraph) and start one subscription on it. The
    token travels in `connection_init` (as browsers must send it), the upgrade's header, or both."""
    bearer = {"authorization": f"Bearer {token}"} if token else {}
    headers = bearer if via in ("header", "both") else {}
    init = bearer if via in ("init", "both") else {}
    async with connect(
        url.replace("http://", "ws://"),
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=30,
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": init}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), 30))
        assert ack["type"] == "connection_ack", ack
        await socket.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": "1",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        yield Subscription(socket)
