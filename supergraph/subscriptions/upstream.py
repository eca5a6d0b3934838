"""The router's side of a subscription to a subgraph: a graphql-transport-ws client that yields
each event's payload, and ends with an error if the subgraph goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from supergraph.subscriptions.protocols import graphql_transport_ws as gtws


class UpstreamError(Exception):
    """The subgraph subscription failed or ended abnormally."""

    def __init__(self, message: str, code: str = "SUBGRAPH_UNAVAILABLE") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def websocket_url(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://") :]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://") :]
    return http_url


async def subscribe_upstream(
    url: str,
    operation: str,
    variables: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    service: str,
    connect_timeout: float = 10.0,
) -> AsyncIterator[dict[str, Any]]:
    """Yield every `next` payload of one subscription; return on `complete`."""
    init_payload: dict[str, Any] = {}
    if "authorization" in headers:
        # Subgraphs read the token from the init payload, as browsers cannot set headers.
        init_payload["authorization"] = headers["authorization"]
    try:
        socket_cm = connect(
            websocket_url(url),
            subprotocols=[gtws.SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=dict(headers),
            open_timeout=connect_timeout,
            max_size=16 * 1024 * 1024,
            ping_interval=20,
        )
        socket = await socket_cm.__aenter__()
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
        raise UpstreamError(f"Subgraph '{service}' refused the subscription connection.") from error
    try:
        await _handshake(socket, init_payload, service, connect_timeout)
        await socket.send(
            orjson.dumps(
                {
                    "id": "1",
                    "type": gtws.SUBSCRIBE,
                    "payload": {"query": operation, "variables": dict(variables)},
                }
            ).decode()
        )
        async for raw in socket:
            message = orjson.loads(raw)
            kind = message.get("type")
            if kind == gtws.NEXT:
                payload = message.get("payload")
                if isinstance(payload, dict):
                    yield payload
            elif kind == gtws.ERROR:
                errors = message.get("payload")
                yield {
                    "data": None,
                    "errors": errors
                    if isinstance(errors, list)
                    else [{"message": "Subscription failed."}],
                }
                return
            elif kind == gtws.COMPLETE:
                return
            elif kind == gtws.PING:
                await socket.send(orjson.dumps({"type": gtws.PONG}).decode())
        raise UpstreamError(f"Subgraph '{service}' closed the subscription.")
    except ConnectionClosed as error:
        raise UpstreamError(f"Subgraph '{service}' closed the subscription.") from error
    finally:
        with contextlib.suppress(Exception):
            if socket.state.name == "OPEN":
                await socket.send(orjson.dumps({"id": "1", "type": gtws.COMPLETE}).decode())
        with contextlib.suppress(Exception):
            await socket_cm.__aexit__(None, None, None)


async def _handshake(
    socket: ClientConnection, payload: dict[str, Any], service: str, wait: float
) -> None:
    await socket.send(orjson.dumps({"type": gtws.CONNECTION_INIT, "payload": payload}).decode())
    try:
        raw = await asyncio.wait_for(socket.recv(), wait)
    except (TimeoutError, ConnectionClosed) as error:
        raise UpstreamError(
            f"Subgraph '{service}' did not acknowledge the subscription connection."
        ) from error
    message = orjson.loads(raw)
    if message.get("type") != gtws.CONNECTION_ACK:
        raise UpstreamError(f"Subgraph '{service}' rejected the subscription connection.")
