"""The router's HTTP face. A GraphQL request passes the edge in a fixed order:

    request id → security headers / CORS → auth (JWT) → rate limits → persisted queries
    → limits (size and tokens, then depth, aliases, root fields, cost)
    → pipeline (parse → validate → plan → execute → shape)

Plus `/health`, `/ready`, `/metrics` and GraphiQL for browsers, and the pass-through routes
(plain HTTP under configured prefixes streamed to another origin; `supergraph/passthrough/`),
which keep the request id, security headers, CORS and metrics but skip the GraphQL edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from subgraphs.kernel.http import RequestIdMiddleware
from subgraphs.kernel.logging import request_id_var
from subgraphs.kernel.proxies import (
    DEFAULT_TRUSTED_PROXIES,
    TrustedProxies,
    client_ip,
    parse_trusted_proxies,
)
from supergraph.config import subgraph_endpoints
from supergraph.edge.auth import EdgeAuth
from supergraph.edge.errors import EdgeError
from supergraph.edge.headers import with_edge_headers
from supergraph.edge.limits import OperationLimits
from supergraph.edge.persisted import PersistedQueries
from supergraph.edge.ratelimit import RateLimits
from supergraph.edge.telemetry import CONTENT_TYPE as METRICS_CONTENT_TYPE
from supergraph.edge.telemetry import Telemetry
from supergraph.execute import Fetcher
from supergraph.execute.fetcher import CLIENT_ADDRESS_HEADER, UploadPart
from supergraph.graphiql import graphiql_page, static_mount, wants_graphiql
from supergraph.model import load_supergraph
from supergraph.passthrough import PassThrough, Upstream, parse_routes, resolve_routes
from supergraph.passthrough.routes import configured_routes, route_timeout
from supergraph.pipeline import RequestError, Router
from supergraph.subscriptions.limits import SubscriptionLimits
from supergraph.subscriptions.protocols import sse as sse_protocol
from supergraph.subscriptions.sse import stream_response
from supergraph.subscriptions.websocket import Connection

log = logging.getLogger("reelgraph.router")

FORWARDED_HEADERS = (
    "authorization",
    "accept-language",
    "apollographql-client-name",
    "apollographql-client-version",
)
QUERY_PLAN_HEADER = "x-reelgraph-query-plan"
CLIENT_NAME = "apollographql-client-name"
GRAPHQL_RESPONSE = "application/graphql-response+json"
READY_TIMEOUT = 2.0
UPLOAD_MAX_FILES = 20
PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name", "graphql-preflight")
# The router's own paths: no pass-through route may shadow them.
ROUTER_PATHS = ("/graphql", "/health", "/ready", "/metrics")


def _json(
    body: Any,
    status: int = 200,
    media_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


def _bad_request(message: str) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}, 400)


def _media_type(request: Request) -> str:
    accept = request.headers.get("accept", "")
    return GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else "application/json"


@dataclass
class Live:
    """The supergraph being served. A reload replaces the router; requests and subscriptions
    already running keep the one they started with."""

    router: Router
    fetcher: Fetcher
    # Pass-through prefix → where it goes now (a subgraph target follows its subgraph's URL).
    upstreams: Mapping[str, Upstream]
    path: str | None
    mtime: float | None


@dataclass
class Edge:
    """The router's edge configuration and long-lived parts."""

    auth: EdgeAuth
    telemetry: Telemetry
    subscription_limits: SubscriptionLimits
    trusted_proxies: TrustedProxies
    persisted: PersistedQueries
    rate_limits: RateLimits
    limits: OperationLimits
    dev: bool = False


def create_router_app(
    supergraph_sdl: str,
    *,
    environ: Mapping[str, str] | None = None,
    dev: bool = False,
    dedupe: bool = True,
    introspection: bool | None = None,
    supergraph_path: str | None = None,
    routes: Sequence[str] = (),
) -> ASGIApp:
    """`routes`: pass-through `PREFIX=TARGET` entries (else `REELGRAPH_ROUTER_ROUTES`). A
    configuration the router cannot serve raises `RouteConfigError`."""
    env = os.environ if environ is None else environ
    passthrough_routes = parse_routes(configured_routes(env, routes), ROUTER_PATHS)
    passthrough_timeout = route_timeout(env)
    if introspection is None:
        # Production deployments switch it off: REELGRAPH_ROUTER_INTROSPECTION=false.
        introspection = env.get("REELGRAPH_ROUTER_INTROSPECTION", "true").lower() not in (
            "0",
            "false",
            "no",
        )
    edge = Edge(
        auth=EdgeAuth.from_env(env),
        telemetry=Telemetry(),
        subscription_limits=SubscriptionLimits(
            per_connection=int(env.get("REELGRAPH_SUBSCRIPTIONS_PER_CONNECTION", "100")),
            per_user=int(env.get("REELGRAPH_SUBSCRIPTIONS_PER_USER", "500")),
        ),
        # The proxies in front of the router (a load balancer), never its clients' networks.
        trusted_proxies=parse_trusted_proxies(
            env.get("REELGRAPH_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES)
        ),
        persisted=PersistedQueries.from_env(env),
        rate_limits=RateLimits.from_env(env),
        limits=OperationLimits.from_env(env),
        dev=dev,
    )

    def build(sdl: str) -> tuple[Router, Fetcher, dict[str, Upstream]]:
        loaded = load_supergraph(sdl)
        endpoints = subgraph_endpoints(loaded, env)
        # A supergraph that loses a routed subgraph is refused like any bad one.
        upstreams = resolve_routes(passthrough_routes, endpoints)
        fetcher = Fetcher(endpoints, dedupe=dedupe, observer=edge.telemetry.record_fetch)
        router = Router(sdl, fetcher, introspection=introspection, limits=edge.limits)
        return router, fetcher, upstreams

    router, fetcher, upstreams = build(supergraph_sdl)
    live = Live(router, fetcher, upstreams, supergraph_path, _mtime(supergraph_path))
    edge.telemetry.watch_caches(
        lambda: {"documents": live.router.documents, "plans": live.router.plans}  # type: ignore[dict-item]
    )

    async def reload_when_changed() -> None:
        interval = float(env.get("REELGRAPH_SUPERGRAPH_POLL_SECONDS", "2"))
        while live.path is not None:
            await asyncio.sleep(interval)
            mtime = _mtime(live.path)
            if mtime is None or mtime == live.mtime:
                continue
            live.mtime = mtime
            try:
                text = await asyncio.to_thread(Path(live.path).read_text)
                router, fetcher, upstreams = build(text)
            except Exception:
                log.exception("supergraph reload failed; still serving the previous one")
                continue
            previous = live.fetcher
            live.router, live.fetcher, live.upstreams = router, fetcher, upstreams
            log.info("supergraph reloaded", extra={"path": live.path})
            # Requests in flight on the previous router finish on its connections; a late
            # subscription event reopens them on demand.
            asyncio.get_running_loop().call_later(60, _close_later, previous)

    async def admit(request: Request) -> None:
        """Auth, then the rate limit of the verified user (or, anonymous, of the address)."""
        claims = await edge.auth.authenticate(request.headers.get("authorization"))
        user = claims.subject if claims is not None else None
        await edge.rate_limits.check(client_ip(request, edge.trusted_proxies), user)

    async def forwarded(request: Request | WebSocket) -> dict[str, str]:
        """What every subgraph fetch of this request carries: the client's own headers above,
        the request id, and who the client is as the router determined it (the address its
        rate limits count). A client's X-Forwarded-For is replaced, never passed on: the
        router's answer already believes it when, and only as far as, the peer is trusted."""
        headers = {k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k))}
        headers["x-request-id"] = request_id_var.get() or uuid.uuid4().hex
        headers[CLIENT_ADDRESS_HEADER] = client_ip(request, edge.trusted_proxies)
        return headers

    # --- HTTP --------------------------------------------------------------------------

    async def run(
        request: Request, params: Mapping[str, Any], *, allow_mutations: bool
    ) -> Response:
        started = time.perf_counter()
        operation_name = params.get("operationName")
        outcome = "error"
        try:
            response = await _run(request, params, allow_mutations=allow_mutations)
            outcome = "success" if response.status_code < 400 else "rejected"
            return response
        finally:
            label = operation_name if isinstance(operation_name, str) else None
            edge.telemetry.record_request(label, outcome, time.perf_counter() - started)

    async def _run(
        request: Request, params: Mapping[str, Any], *, allow_mutations: bool
    ) -> Response:
        variables = params.get("variables")
        operation_name = params.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            return _bad_request("'variables' must be an object.")
        if operation_name is not None and not isinstance(operation_name, str):
            return _bad_request("'operationName' must be a string.")
        media_type = _media_type(request)
        try:
            await admit(request)
            query = await edge.persisted.resolve(params, request.headers.get(CLIENT_NAME))
        except EdgeError as error:
            return _json(error.body(), error.status, media_type, error.headers)
        headers = await forwarded(request)
        if sse_protocol.MEDIA_TYPE in request.headers.get("accept", ""):
            try:
                prepared = live.router.prepare(query, operation_name)
                live.router.check_limits(prepared, operation_name, variables)
            except RequestError as error:
                return _json({"errors": error.errors}, 400)
            return stream_response(live.router, query, variables, operation_name, headers=headers)
        try:
            body = await live.router.execute(
                query,
                variables,
                operation_name,
                headers=headers,
                allow_mutations=allow_mutations,
                include_plan=edge.dev and request.headers.get(QUERY_PLAN_HEADER) == "true",
            )
        except RequestError as error:
            status = error.status if media_type == GRAPHQL_RESPONSE else 200
            if error.status == 405:
                status = 405
            return _json({"errors": error.errors}, status, media_type)
        return _json(body, 200, media_type)

    async def graphql_upload(request: Request) -> Response:
        """The GraphQL multipart request spec: `operations`, `map`, then the files."""
        if not any(request.headers.get(h) for h in PREFLIGHT_HEADERS):
            # multipart/form-data is a "simple" request a foreign page can send: require a
            # header that forces a CORS preflight, as Apollo does.
            return _bad_request(
                "Multipart requests need an 'apollo-require-preflight' header (CSRF protection)."
            )
        try:
            await admit(request)
        except EdgeError as error:
            return _json(error.body(), error.status, _media_type(request), error.headers)
        # Starlette spools each file to a temporary file past 1 MiB, so memory stays bounded.
        async with request.form(max_files=UPLOAD_MAX_FILES, max_fields=32) as form:
            try:
                operations = orjson.loads(str(form.get("operations") or ""))
                mapping = orjson.loads(str(form.get("map") or "{}"))
            except orjson.JSONDecodeError:
                return _bad_request("'operations' and 'map' must be JSON.")
            if not isinstance(operations, dict) or not isinstance(mapping, dict):
                return _bad_request("'operations' must be an object and 'map' an object.")
            parts: list[UploadPart] = []
            for key, paths in mapping.items():
                upload = form.get(key)
                if not isinstance(upload, UploadFile) or not isinstance(paths, list):
                    return _bad_request(f"'map' names file {key!r}, which the request lacks.")
                parts.append(
                    UploadPart(
                        key=str(key),
                        paths=tuple(str(p) for p in paths),
                        filename=upload.filename or str(key),
                        content_type=upload.content_type or "application/octet-stream",
                        file=upload.file,
                    )
                )
            try:
                query = await edge.persisted.resolve(operations, request.headers.get(CLIENT_NAME))
            except EdgeError as error:
                return _json(error.body(), error.status, _media_type(request), error.headers)
            variables = operations.get("variables")
            if variables is not None and not isinstance(variables, dict):
                return _bad_request("'operations' variables must be an object.")
            operation_name = operations.get("operationName")
            try:
                body = await live.router.execute_upload(
                    query,
                    variables,
                    operation_name if isinstance(operation_name, str) else None,
                    parts,
                    headers=await forwarded(request),
                )
            except RequestError as error:
                return _json({"errors": error.errors}, 200, _media_type(request))
        return _json(body, 200, _media_type(request))

    async def graphql_post(request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await graphql_upload(request)
        try:
            params = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _bad_request("The request body is not valid JSON.")
        if not isinstance(params, dict):
            return _bad_request("The request body must be a JSON object.")
        return await run(request, params, allow_mutations=True)

    async def graphql_get(request: Request) -> Response:
        if wants_graphiql(request):
            return graphiql_page("/graphql", host=request.url.netloc)
        params: dict[str, Any] = dict(request.query_params)
        for key in ("variables", "extensions"):
            if key in params:
                try:
                    params[key] = orjson.loads(params[key])
                except orjson.JSONDecodeError:
                    return _bad_request(f"'{key}' is not valid JSON.")
        return await run(request, params, allow_mutations=False)

    # --- WebSocket ---------------------------------------------------------------------

    async def authenticate(
        websocket: WebSocket, payload: Mapping[str, Any]
    ) -> tuple[dict[str, str], str | None]:
        headers = await forwarded(websocket)
        token = payload.get("authorization") or payload.get("Authorization")
        if isinstance(token, str) and token:
            headers["authorization"] = token
        try:
            claims = await edge.auth.authenticate(headers.get("authorization"))
        except EdgeError as error:
            raise PermissionError(error.message) from None
        # Unverified routers count subscriptions per connection only.
        user = claims.subject if claims is not None else None
        return headers, user

    async def graphql_ws(websocket: WebSocket) -> None:
        connection = Connection(
            websocket,
            live,
            authenticate,
            edge.persisted.resolve,
            edge.subscription_limits,
            init_timeout=10,
            keep_alive=15,
        )
        await connection.run()

    # --- operations --------------------------------------------------------------------

    async def health(_: Request) -> Response:
        return _json({"status": "ok"})

    async def ready(_: Request) -> Response:
        """Ready when the supergraph is loaded and every subgraph answers `{ __typename }`."""
        names = sorted(live.fetcher.endpoints)
        probes = (live.fetcher.probe(name, READY_TIMEOUT) for name in names)
        results = await asyncio.gather(*probes)
        subgraphs = dict(zip(names, results, strict=True))
        ok = all(result == "ok" for result in results)
        body = {"status": "ready" if ok else "unavailable", "subgraphs": subgraphs}
        return _json(body, 200 if ok else 503)

    async def metrics(_: Request) -> Response:
        edge.telemetry.subscriptions.set(edge.subscription_limits.open)
        return Response(edge.telemetry.exposition(), media_type=METRICS_CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The supergraph, schemas and modules live as long as the process: keep the full
        # garbage-collection passes off them (they caused the latency tail).
        gc.collect()
        gc.freeze()
        watcher = asyncio.create_task(reload_when_changed())
        yield
        watcher.cancel()
        await passthrough.close()
        await live.fetcher.close()
        await edge.auth.close()
        await edge.persisted.close()
        await edge.rate_limits.close()

    starlette = Starlette(
        routes=[
            Route("/graphql", graphql_post, methods=["POST"]),
            Route("/graphql", graphql_get, methods=["GET"]),
            WebSocketRoute("/graphql", graphql_ws),
            static_mount("/graphql"),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    starlette.state.live = live
    starlette.state.edge = edge
    starlette.state.client_ip = lambda request: client_ip(request, edge.trusted_proxies)
    # Pass-through routes go around the GraphQL edge entirely: media playback fires many
    # segment requests a second, and upstream checks its own tokens.
    passthrough = PassThrough(
        starlette,
        passthrough_routes,
        lambda: live.upstreams,
        telemetry=edge.telemetry,
        trusted_proxies=edge.trusted_proxies,
        timeout=passthrough_timeout,
    )

    def log_path(path: str) -> str:
        # Paths under a pass-through route may carry credentials (signed media URLs); the
        # upstream logs its own, redacted, line under the same request id.
        for route in passthrough_routes:
            if route.matches(path):
                return route.prefix + "/…" if path != route.prefix else path
        return path

    return RequestIdMiddleware(
        with_edge_headers(passthrough, env, passthrough_routes), log_path=log_path
    )


def _mtime(path: str | None) -> float | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


_closing: set[asyncio.Task[None]] = set()


def _close_later(fetcher: Fetcher) -> None:
    task = asyncio.ensure_future(fetcher.close())
    _closing.add(task)  # keep a reference until it is done
    task.add_done_callback(_closing.discard)
