"""Builds the auth service's ASGI app: GraphQL, the JWKS endpoint and health."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from subgraphs.auth.keys import KeyStore
from subgraphs.auth.models import outbox
from subgraphs.auth.schema import AuthContext, schema
from subgraphs.auth.service import AuthService
from subgraphs.kernel.graphql import build_context
from subgraphs.kernel.http import GraphQLEndpoint, service_app
from subgraphs.kernel.runtime import ServiceRuntime
from subgraphs.kernel.settings import Settings


def key_store(settings: Settings) -> KeyStore:
    return KeyStore(settings.data_dir / "auth" / "keys", token_ttl=settings.access_token_ttl)


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    keys = key_store(settings)
    keys.ensure()
    runtime = ServiceRuntime("auth", settings, outbox=outbox, keys=keys)
    service = AuthService(runtime.db, keys, settings)
    proxies = settings.trusted_proxy_set()

    async def context(connection: HTTPConnection) -> AuthContext:
        return await build_context(
            AuthContext, connection, runtime.verifier, proxies, service=service
        )

    async def jwks(_: Request) -> Response:
        # Short cache: verifiers refetch on an unknown kid anyway, so rotation is seen fast.
        return JSONResponse(keys.jwks(), headers={"cache-control": "public, max-age=60"})

    return service_app(
        graphql=GraphQLEndpoint(schema, context),
        routes=[Route("/.well-known/jwks.json", jwks, methods=["GET"])],
        lifespan=runtime.lifespan,
    )
