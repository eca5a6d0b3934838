"""The router's HTTP face: `POST /graphql` and `GET /graphql` over the pipeline, plus health."""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from subgraphs.kernel.http import RequestIdMiddleware
from subgraphs.kernel.logging import request_id_var
from supergraph.config import subgraph_endpoints
from supergraph.execute import Fetcher
from supergraph.model import load_supergraph
from supergraph.pipeline import RequestError, Router
from supergraph.subscriptions.limits import SubscriptionLimits
from supergraph.subscriptions.protocols import sse as sse_protocol
from supergraph.subscriptions.sse import stream_response
from supergraph.subscriptions.websocket import Connection

FORWARDED_HEADERS = (
    "authorization",
    "accept-language",
    "apollographql-client-name",
    "apollographql-client-version",
)
QUERY_PLAN_HEADER = "x-reelgraph-query-plan"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def _json(body: Any, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type)


def _bad_request(message: str) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}, 400)


def _media_type(request: Request) -> str:
    return (
        GRAPHQL_RESPONSE
        if GRAPHQL_RESPONSE in request.headers.get("accept", "")
        else "application/json"
    )


def create_router_app(
    supergraph_sdl: str,
    *,
    environ: Mapping[str, str] | None = None,
    dev: bool = False,
    dedupe: bool = True,
    introspection: bool = True,
) -> RequestIdMiddleware:
    supergraph = load_supergraph(supergraph_sdl)
    fetcher = Fetcher(subgraph_endpoints(supergraph, environ), dedupe=dedupe)
    router = Router(supergraph_sdl, fetcher, introspection=introspection)

    limits = SubscriptionLimits()

    async def authenticate(
        websocket: WebSocket, payload: Mapping[str, Any]
    ) -> tuple[dict[str, str], str | None]:
        headers = {k: v for k in FORWARDED_HEADERS if (v := websocket.headers.get(k))}
        token = payload.get("authorization") or payload.get("Authorization")
        if isinstance(token, str) and token:
            headers["authorization"] = token
        headers["x-request-id"] = uuid.uuid4().hex
        return headers, None

    async def graphql_ws(websocket: WebSocket) -> None:
        connection = Connection(
            websocket, router, authenticate, limits, init_timeout=10, keep_alive=15
        )
        await connection.run()

    async def run(
        request: Request, params: Mapping[str, Any], *, allow_mutations: bool
    ) -> Response:
        query = params.get("query")
        variables = params.get("variables")
        operation_name = params.get("operationName")
        if not isinstance(query, str) or not query.strip():
            return _bad_request("A GraphQL request needs a 'query' string.")
        if variables is not None and not isinstance(variables, dict):
            return _bad_request("'variables' must be an object.")
        if operation_name is not None and not isinstance(operation_name, str):
            return _bad_request("'operationName' must be a string.")
        headers = {k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k))}
        headers["x-request-id"] = request_id_var.get() or uuid.uuid4().hex
        if sse_protocol.MEDIA_TYPE in request.headers.get("accept", ""):
            try:
                router.prepare(query, operation_name)
            except RequestError as error:
                return _json({"errors": error.errors}, 400)
            return stream_response(router, query, variables, operation_name, headers=headers)
        media_type = _media_type(request)
        try:
            body = await router.execute(
                query,
                variables,
                operation_name,
                headers=headers,
                allow_mutations=allow_mutations,
                include_plan=dev and request.headers.get(QUERY_PLAN_HEADER) == "true",
            )
        except RequestError as error:
            status = error.status if media_type == GRAPHQL_RESPONSE or error.status >= 405 else 200
            if error.status == 405:
                status = 405
            return _json({"errors": error.errors}, status, media_type)
        return _json(body, 200, media_type)

    async def graphql_post(request: Request) -> Response:
        try:
            params = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _bad_request("The request body is not valid JSON.")
        if not isinstance(params, dict):
            return _bad_request("The request body must be a JSON object.")
        return await run(request, params, allow_mutations=True)

    async def graphql_get(request: Request) -> Response:
        params: dict[str, Any] = dict(request.query_params)
        if "variables" in params:
            try:
                params["variables"] = orjson.loads(params["variables"])
            except orjson.JSONDecodeError:
                return _bad_request("'variables' is not valid JSON.")
        return await run(request, params, allow_mutations=False)

    async def health(_: Request) -> Response:
        return _json({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The supergraph, schemas and modules live as long as the process: keep the full
        # garbage-collection passes off them (they caused the latency tail).
        gc.collect()
        gc.freeze()
        yield
        await fetcher.close()

    app = Starlette(
        routes=[
            Route("/graphql", graphql_post, methods=["POST"]),
            Route("/graphql", graphql_get, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            WebSocketRoute("/graphql", graphql_ws),
        ],
        lifespan=lifespan,
    )
    app.state.router = router
    return RequestIdMiddleware(app)
