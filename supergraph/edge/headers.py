"""CORS for an allow-list of origins (GraphQL's policy, and the pass-through routes' own), and
the security headers every response carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supergraph.passthrough.routes import Route, match

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS)
        if hsts:
            self.headers.append(
                (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def allowed_origins(environ: Mapping[str, str]) -> list[str]:
    """`REELGRAPH_CORS_ORIGINS`: comma-separated origins allowed to call the router from a
    browser (none by default: same-origin only)."""
    return [o.strip() for o in environ.get("REELGRAPH_CORS_ORIGINS", "").split(",") if o.strip()]


# What tus uploads and ranged media playback need from a browser.
PASSTHROUGH_METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS")
PASSTHROUGH_HEADERS = (
    "authorization",
    "content-type",
    "range",
    "tus-resumable",
    "upload-length",
    "upload-offset",
    "upload-metadata",
    "upload-defer-length",
    "upload-concat",
    "x-http-method-override",
    "x-request-id",
)
PASSTHROUGH_EXPOSED = (
    "location",
    "upload-offset",
    "upload-length",
    "upload-expires",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "content-range",
    "content-length",
    "accept-ranges",
    "etag",
    "x-request-id",
)
_MAX_AGE = b"600"


class PassThroughCors:
    """CORS on pass-through routes, decided by the router alone: preflights are answered here
    and never reach upstream, and an origin not on the list gets no CORS header at all
    (upstream's own `Access-Control-*` headers are dropped by the proxy)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.allowed_headers = frozenset(PASSTHROUGH_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins
        if (
            scope["method"] == "OPTIONS"
            and origin is not None
            and "access-control-request-method" in headers
        ):
            await self.preflight(headers, allowed, send)
            return
        cors = [
            (b"access-control-allow-origin", (origin or "").encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", ", ".join(PASSTHROUGH_EXPOSED).encode()),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")
                ]
                if allowed:
                    sent += cors
                if self.origins:
                    sent = _vary_origin(sent)
                message = {**message, "headers": sent}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def preflight(self, headers: Headers, allowed: bool, send: Send) -> None:
        method = headers["access-control-request-method"].strip().upper()
        requested = {
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        }
        if not allowed or method not in PASSTHROUGH_METHODS or requested - self.allowed_headers:
            message = "This cross-origin request is not allowed."
            body = orjson.dumps({"error": {"code": "FORBIDDEN", "message": message}})
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": _vary_origin(
                        [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ]
                    ),
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": _vary_origin(
                    [
                        (b"access-control-allow-origin", headers["origin"].encode("latin-1")),
                        (b"access-control-allow-credentials", b"true"),
                        (b"access-control-allow-methods", ", ".join(PASSTHROUGH_METHODS).encode()),
                        (b"access-control-allow-headers", ", ".join(PASSTHROUGH_HEADERS).encode()),
                        (b"access-control-max-age", _MAX_AGE),
                    ]
                ),
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The answer depends on `Origin`: say so, so no cache hands one origin's to another."""
    varies = [v for k, v in headers if k.lower() == b"vary"]
    if any(b"*" in v or b"origin" in v.lower() for v in varies):
        return headers
    if not varies:
        return [*headers, (b"vary", b"Origin")]
    return [(k, v + b", Origin" if k.lower() == b"vary" else v) for k, v in headers]


class _ByPrefix:
    """Pass-through paths to one app, everything else to the other."""

    def __init__(self, routes: Sequence[Route], passthrough: ASGIApp, other: ASGIApp) -> None:
        self.routes = tuple(routes)
        self.passthrough = passthrough
        self.other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and match(self.routes, scope["path"]) is not None:
            await self.passthrough(scope, receive, send)
        else:
            await self.other(scope, receive, send)


def with_edge_headers(
    app: ASGIApp, environ: Mapping[str, str], passthrough: Sequence[Route] = ()
) -> ASGIApp:
    origins = allowed_origins(environ)
    graphql: ASGIApp = app
    if origins:
        graphql = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "authorization",
                "content-type",
                "apollographql-client-name",
                "apollographql-client-version",
                "x-request-id",
            ],
            expose_headers=["x-request-id", "retry-after"],
            allow_credentials=True,
            max_age=600,
        )
    wrapped = graphql
    if passthrough:
        wrapped = _ByPrefix(passthrough, PassThroughCors(app, origins), graphql)
    return SecurityHeaders(wrapped, hsts=environ.get("REELGRAPH_HSTS", "") == "1")
