"""Streams one pass-through exchange: request body chunks go upstream as they arrive and
response chunks come back as they arrive; nothing is held whole in memory, and a client that
leaves takes its upstream connection with it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote_from_bytes

import aiohttp
import orjson
from multidict import CIMultiDict
from starlette.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from subgraphs.kernel.logging import request_id_var
from subgraphs.kernel.proxies import TrustedProxies
from supergraph.edge.telemetry import Telemetry
from supergraph.passthrough.headers import forwarding, request_headers, response_headers
from supergraph.passthrough.routes import Route, Upstream, match, unsafe_path

log = logging.getLogger("reelgraph.router.passthrough")

METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS")
# Bytes a path or query may carry as they are; anything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_READ_BUFFER = 256 * 1024
# Status recorded for a client that left before any response was sent (as nginx does).
CLIENT_CLOSED = 499


class ClientGone(Exception):
    """The client disconnected while its request body was still coming."""


@dataclass
class _Exchange:
    status: int | None = None
    sent_up: int = 0
    sent_down: int = 0
    started: bool = False
    finished: bool = False
    client_gone: bool = False
    body_done: asyncio.Event = field(default_factory=asyncio.Event)


class PassThrough:
    """ASGI: a request under a route's prefix is proxied to the route's upstream; anything
    else goes on to `app`. `upstreams` gives the current targets (a supergraph reload may
    move a subgraph)."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[Route],
        upstreams: Callable[[], Mapping[str, Upstream]],
        *,
        telemetry: Telemetry,
        trusted_proxies: TrustedProxies,
        timeout: float,
        max_connections: int = 512,
    ) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.upstreams = upstreams
        self.telemetry = telemetry
        self.trusted_proxies = trusted_proxies
        self.max_connections = max_connections
        # Connect, response headers once the request body is sent, and silence between
        # response chunks; never a total, which would cut off a long upload or download.
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Its own pool, living as long as the process: media traffic does not compete with
        # subgraph fetches, and a supergraph reload (which retires the fetcher's pool after a
        # minute) does not cut off a download in progress.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=30, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Bytes pass as they are (Content-Encoding and Content-Length stay true),
                # and no cookie learned from one client's response reaches another's request.
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                read_bufsize=_READ_BUFFER,
                timeout=self.timeout,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = match(self.routes, scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        exchange = _Exchange()
        try:
            await self._pass(route, scope, receive, send, exchange)
        finally:
            status = exchange.status or (CLIENT_CLOSED if exchange.client_gone else 500)
            self.telemetry.record_passthrough(
                route.prefix, status, exchange.sent_up, exchange.sent_down
            )

    async def _pass(
        self, route: Route, scope: Scope, receive: Receive, send: Send, exchange: _Exchange
    ) -> None:
        reason = unsafe_path(scope.get("raw_path") or scope["path"].encode())
        if reason is not None:
            await _problem(send, exchange, 400, "BAD_REQUEST", reason)
            return
        if scope["method"] not in METHODS:
            await _problem(
                send,
                exchange,
                405,
                "METHOD_NOT_ALLOWED",
                f"{scope['method']} is not passed through.",
                [(b"allow", ", ".join(METHODS).encode())],
            )
            return
        upstream = self.upstreams()[route.prefix]
        stream = asyncio.ensure_future(
            self._stream(route, upstream, scope, receive, send, exchange)
        )
        watch = asyncio.ensure_future(_watch_disconnect(receive, exchange))
        try:
            await asyncio.wait({stream, watch}, return_when=asyncio.FIRST_COMPLETED)
            if watch.done() and not stream.done() and not exchange.finished:
                # The client left mid-response: closing the upstream response releases
                # (closes) its connection instead of reading the rest for nobody.
                stream.cancel()
            await asyncio.gather(stream, return_exceptions=exchange.client_gone)
        finally:
            for task in (stream, watch):
                task.cancel()
            await asyncio.gather(stream, watch, return_exceptions=True)

    async def _stream(
        self,
        route: Route,
        upstream: Upstream,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: _Exchange,
    ) -> None:
        method: str = scope["method"]
        via = forwarding(scope, self.trusted_proxies)
        headers = request_headers(scope["headers"], via, request_id_var.get() or uuid.uuid4().hex)
        body = _request_body(receive, exchange) if _has_body(scope["headers"]) else None
        if body is None:
            exchange.body_done.set()
        url = URL(upstream.origin + upstream.base_path + _target(scope), encoded=True)
        try:
            async with self._client().request(
                method, url, headers=CIMultiDict(headers), data=body, allow_redirects=False
            ) as response:
                exchange.status = response.status
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status,
                        "headers": response_headers(response.raw_headers, upstream, via),
                    }
                )
                exchange.started = True
                if method != "HEAD":
                    async for chunk in response.content.iter_any():
                        exchange.sent_down += len(chunk)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                exchange.finished = True
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
            if exchange.client_gone:
                return
            context = {"route": route.prefix, "upstream": upstream.label, "error": repr(error)}
            if exchange.started:
                # Too late for a status: returning unfinished makes the server close the
                # connection, so the client sees a cut-off body rather than a short one.
                log.warning("pass-through response cut off", extra=context)
                return
            if isinstance(error, TimeoutError):
                log.warning("pass-through upstream timed out", extra=context)
                await _problem(
                    send,
                    exchange,
                    504,
                    "UPSTREAM_TIMEOUT",
                    f"The upstream of {route.prefix} did not answer in time.",
                )
            else:
                log.warning("pass-through upstream unavailable", extra=context)
                await _problem(
                    send,
                    exchange,
                    502,
                    "UPSTREAM_UNAVAILABLE",
                    f"The upstream of {route.prefix} could not be reached.",
                )


async def _request_body(receive: Receive, exchange: _Exchange) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            exchange.client_gone = True
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        if chunk:
            exchange.sent_up += len(chunk)
            yield chunk
        if not message.get("more_body", False):
            break
    exchange.body_done.set()


async def _watch_disconnect(receive: Receive, exchange: _Exchange) -> None:
    """Once the request body is read, the next thing the server can tell is a disconnect."""
    await exchange.body_done.wait()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            exchange.client_gone = not exchange.finished
            return


def _has_body(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return True
        if name == b"content-length" and value.strip() not in (b"", b"0"):
            return True
    return False


def _target(scope: Scope) -> str:
    """The path and query exactly as the client sent them, so signatures over them hold."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    target = quote_from_bytes(raw_path, safe=_PATH_SAFE)
    query: bytes = scope.get("query_string", b"")
    if query:
        target += "?" + quote_from_bytes(query, safe=_QUERY_SAFE)
    return target


async def _problem(
    send: Send,
    exchange: _Exchange,
    status: int,
    code: str,
    message: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    exchange.status = status
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
