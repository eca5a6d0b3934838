"""The graphql-transport-ws server the router offers clients (browsers, GraphiQL, apps)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from supergraph.edge.errors import EdgeError
from supergraph.pipeline import RequestError, Router
from supergraph.subscriptions.limits import SubscriptionLimits
from supergraph.subscriptions.protocols import graphql_transport_ws as gtws
from supergraph.subscriptions.upstream import UpstreamError

log = logging.getLogger("reelgraph.subscriptions")


# Turns a request's `query`/`extensions` into the text to run (persisted queries, safelists).
ResolveQuery = Callable[[Mapping[str, Any], str | None], Awaitable[str]]


class RouterSource(Protocol):
    router: Router


# Resolves connection_init's payload (and the upgrade request) to the headers forwarded to
# subgraphs and the user the subscriptions count against; raises PermissionError to refuse.
Authenticate = Callable[
    [WebSocket, Mapping[str, Any]], Awaitable[tuple[dict[str, str], str | None]]
]


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        source: RouterSource,
        authenticate: Authenticate,
        resolve_query: ResolveQuery,
        limits: SubscriptionLimits,
        *,
        init_timeout: float,
        keep_alive: float,
    ) -> None:
        self.websocket = websocket
        self.source = source
        self.authenticate = authenticate
        self.resolve_query = resolve_query
        self.limits = limits
        self.init_timeout = init_timeout
        self.keep_alive = keep_alive
        self.headers: dict[str, str] = {}
        self.user: str | None = None
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                await self.websocket.send_text(orjson.dumps(message).decode())

    async def receive(self) -> dict[str, Any]:
        raw = await self.websocket.receive_text()
        try:
            return gtws.parse_message(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise gtws.ProtocolError(gtws.BAD_REQUEST, "Invalid message received") from None

    async def run(self) -> None:
        if gtws.SUBPROTOCOL not in self.websocket.scope.get("subprotocols", []):
            await self.websocket.close(code=4406, reason="Subprotocol not acceptable")
            return
        await self.websocket.accept(subprotocol=gtws.SUBPROTOCOL)
        pinger: asyncio.Task[None] | None = None
        try:
            await self._initialise()
            pinger = asyncio.create_task(self._ping())
            while True:
                await self._handle(await self.receive())
        except gtws.ProtocolError as error:
            await self._close(error.code, error.reason)
        except WebSocketDisconnect:
            pass
        finally:
            if pinger is not None:
                pinger.cancel()
            for task in list(self.operations.values()):
                task.cancel()
            await asyncio.gather(*self.operations.values(), return_exceptions=True)

    async def _initialise(self) -> None:
        try:
            message = await asyncio.wait_for(self.receive(), self.init_timeout)
        except TimeoutError:
            raise gtws.ProtocolError(
                gtws.INIT_TIMEOUT, "Connection initialisation timeout"
            ) from None
        if message["type"] != gtws.CONNECTION_INIT:
            raise gtws.ProtocolError(gtws.UNAUTHORIZED, "Unauthorized")
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            raise gtws.ProtocolError(gtws.BAD_REQUEST, "connection_init payload must be an object")
        try:
            self.headers, self.user = await self.authenticate(self.websocket, payload)
        except PermissionError as error:
            raise gtws.ProtocolError(gtws.FORBIDDEN, str(error) or "Forbidden") from None
        await self.send({"type": gtws.CONNECTION_ACK})

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == gtws.PING:
            await self.send({"type": gtws.PONG})
        elif kind == gtws.PONG:
            return
        elif kind == gtws.CONNECTION_INIT:
            raise gtws.ProtocolError(
                gtws.TOO_MANY_INIT_REQUESTS, "Too many initialisation requests"
            )
        elif kind == gtws.SUBSCRIBE:
            subscribe = gtws.parse_subscribe(message)
            if subscribe.id in self.operations:
                raise gtws.ProtocolError(
                    gtws.SUBSCRIBER_ALREADY_EXISTS, f"Subscriber for {subscribe.id} already exists"
                )
            refused = self.limits.acquire(self.user, len(self.operations))
            if refused is not None:
                await self.send(
                    gtws.error_message(
                        subscribe.id,
                        [{"message": refused, "extensions": {"code": "SUBSCRIPTION_LIMIT"}}],
                    )
                )
                return
            self.operations[subscribe.id] = asyncio.create_task(self._operate(subscribe))
        elif kind == gtws.COMPLETE:
            operation_id = message.get("id")
            task = self.operations.get(operation_id) if isinstance(operation_id, str) else None
            if task is not None:
                task.cancel()
        else:
            raise gtws.ProtocolError(gtws.BAD_REQUEST, f"Unexpected message type {kind}")

    async def _operate(self, subscribe: gtws.Subscribe) -> None:
        completed = True
        try:
            # Persisted queries and safelists apply here as on HTTP.
            query = await self.resolve_query(
                {"query": subscribe.query or None, "extensions": subscribe.extensions},
                self.headers.get("apollographql-client-name"),
            )
            # The router at subscribe time serves this subscription to its end, across reloads.
            results = self.source.router.subscribe(
                query, subscribe.variables, subscribe.operation_name, headers=self.headers
            )
            async for result in results:
                await self.send(gtws.next_message(subscribe.id, result))
        except RequestError as error:
            completed = False
            await self.send(gtws.error_message(subscribe.id, error.errors))
        except EdgeError as error:
            completed = False
            await self.send(gtws.error_message(subscribe.id, error.body()["errors"]))
        except UpstreamError as error:
            completed = False
            await self.send(
                gtws.error_message(
                    subscribe.id, [{"message": error.message, "extensions": {"code": error.code}}]
                )
            )
        except asyncio.CancelledError:
            completed = False  # the client completed it or went away: say nothing more
            raise
        except Exception:
            completed = False
            log.exception("subscription failed")
            await self.send(
                gtws.error_message(
                    subscribe.id,
                    [{"message": "Internal server error.", "extensions": {"code": "INTERNAL"}}],
                )
            )
        finally:
            self.operations.pop(subscribe.id, None)
            self.limits.release(self.user)
            if completed:
                with contextlib.suppress(Exception):
                    await self.send(gtws.complete_message(subscribe.id))

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.keep_alive)
            await self.send({"type": gtws.PING})

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code=code, reason=reason)
