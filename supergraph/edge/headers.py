"""CORS for an allow-list of origins, and the security headers every response carries."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def with_edge_headers(app: ASGIApp, environ: Mapping[str, str]) -> ASGIApp:
    origins = allowed_origins(environ)
    wrapped: ASGIApp = app
    if origins:
        wrapped = CORSMiddleware(
            wrapped,
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
    return SecurityHeaders(wrapped, hsts=environ.get("REELGRAPH_HSTS", "") == "1")
