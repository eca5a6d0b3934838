"""The ASGI shell every service shares: request ids, access logs, `/health`, and `/graphql`."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema

from subgraphs.kernel.logging import request_id_var

access_log = logging.getLogger("reelgraph.access")

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes the caller's `x-request-id` (or makes one), exposes it to logs, echoes it back,
    and writes one access-log line per HTTP request. Query strings are never logged, and
    `log_path` masks secrets a service carries in paths (signed URL tokens)."""

    def __init__(self, app: ASGIApp, *, log_path: Callable[[str], str] | None = None) -> None:
        self.app = app
        self.log_path = log_path or (lambda path: path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = HTTPConnection(scope).headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http" and scope.get("path") != "/health":
                access_log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": self.log_path(str(scope.get("path", ""))),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)


ContextFactory = Callable[[HTTPConnection], Awaitable[Any]]


class GraphQLEndpoint(GraphQL[Any, None]):
    """Strawberry's ASGI view with our context and no CDN-hosted IDE (the router serves one)."""

    def __init__(self, schema: BaseSchema, context_factory: ContextFactory, **kwargs: Any) -> None:
        super().__init__(schema, graphql_ide=None, **kwargs)
        self._context_factory = context_factory

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Any:
        return await self._context_factory(request)


# How much of a refused request's body is read and dropped before answering.
DRAIN_MAX = 64 * 1024 * 1024


async def drain(receive: Receive, limit: int = DRAIN_MAX) -> None:
    """Read and drop the rest of a refused request's body (up to `limit` bytes), so the client
    reads the answer instead of a connection reset; past the limit the connection is closed
    on it. Only for a body not yet read to its end: a finished one would block here."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def service_app(
    *,
    graphql: GraphQLEndpoint,
    routes: Sequence[BaseRoute] = (),
    lifespan: Any = None,
    log_path: Callable[[str], str] | None = None,
) -> ASGIApp:
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *routes,
        ],
        lifespan=lifespan,
    )
    return RequestIdMiddleware(app, log_path=log_path)
