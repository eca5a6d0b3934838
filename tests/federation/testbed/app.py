"""The ASGI app that serves one test-bed subgraph.

Besides `/graphql` (HTTP and WebSocket, both graphql-transport-ws and graphql-ws) each
subgraph answers:
- `GET /health`: 200 once it is up;
- `POST /reset`: back to the fixture state, and the request log emptied;
- `GET /requests`: every GraphQL operation this process executed since the last reset, as
  `{"query", "variables", "operationName", "transport"}` objects (transport: "http" or
  "ws"), so tests can see what a router sent (batching, dedupe, `@provides` saving a
  fetch...).

A request carrying `x-testbed-delay-ms: N` is answered N milliseconds late (0..10000).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.federation import Schema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from . import SUBGRAPHS
from .recording import REQUEST_LOG

DELAY_HEADER = b"x-testbed-delay-ms"
MAX_DELAY_MS = 10_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SubgraphModule(Protocol):
    schema: Schema

    def reset(self) -> None: ...


def load(name: str) -> SubgraphModule:
    if name not in SUBGRAPHS:
        raise ValueError(f"unknown test-bed subgraph {name!r}; choose from {SUBGRAPHS}")
    return cast("SubgraphModule", importlib.import_module(f"{__package__}.{name}"))


def _delay_ms(scope: Scope) -> int:
    for key, value in scope.get("headers", []):
        if key.lower() == DELAY_HEADER:
            try:
                return max(0, min(int(value), MAX_DELAY_MS))
            except ValueError:
                return 0
    return 0


def with_delay(app: ASGIApp) -> ASGIApp:
    async def delayed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (ms := _delay_ms(scope)):
            await asyncio.sleep(ms / 1000)
        await app(scope, receive, send)

    return delayed


def create_app(name: str) -> ASGIApp:
    module = load(name)
    graphql = GraphQL(
        module.schema,
        graphql_ide=None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
    )

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def reset(_: Request) -> Response:
        module.reset()
        REQUEST_LOG.clear()
        return JSONResponse({"reset": name})

    async def requests(_: Request) -> Response:
        return JSONResponse(REQUEST_LOG)

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
            Route("/reset", reset, methods=["POST"]),
            Route("/requests", requests),
        ]
    )
    return with_delay(app)
