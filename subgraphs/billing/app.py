"""Builds the billing service's ASGI app: GraphQL, the playback-token keys, health, and the
consumers that keep billing's projection of videos current."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from subgraphs.billing import events
from subgraphs.billing.models import outbox
from subgraphs.billing.payments import payment_provider
from subgraphs.billing.schema import BillingContext, schema
from subgraphs.billing.service import BillingService
from subgraphs.kernel.graphql import build_context
from subgraphs.kernel.http import GraphQLEndpoint, service_app
from subgraphs.kernel.playback import PLAYBACK_KEYS_PATH, PLAYBACK_TOKEN_TYPE
from subgraphs.kernel.runtime import ServiceRuntime
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.signing_keys import KeyStore

log = logging.getLogger(__name__)


def playback_key_store(settings: Settings) -> KeyStore:
    return KeyStore(
        settings.data_dir / "billing" / "playback-keys",
        token_ttl=settings.billing_session_ttl_seconds,
        token_type=PLAYBACK_TOKEN_TYPE,
    )


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    keys = playback_key_store(settings)
    keys.ensure()
    runtime = ServiceRuntime("billing", settings, outbox=outbox)
    service = BillingService(
        runtime.db,
        settings,
        provider=payment_provider(settings),
        playback_keys=keys,
    )
    for consumer in events.consumers(runtime.bus, settings, service.apply_event):
        runtime.add_background(consumer)
    # Often enough that a stopped session ends well within one more TTL.
    sweep_every = max(0.5, min(10.0, settings.billing_session_ttl_seconds / 3))

    async def expire_sessions(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await service.expire_sessions() > 0:
                    pass
            except Exception:
                log.exception("expiring playback sessions failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), sweep_every)

    runtime.add_background(expire_sessions)
    proxies = settings.trusted_proxy_set()

    async def context(connection: HTTPConnection) -> BillingContext:
        return await build_context(
            BillingContext, connection, runtime.verifier, proxies, service=service
        )

    async def playback_keys(_: Request) -> Response:
        # Short cache: verifiers refetch on an unknown kid anyway, so rotation is seen fast.
        return JSONResponse(keys.jwks(), headers={"cache-control": "public, max-age=60"})

    return service_app(
        graphql=GraphQLEndpoint(schema, context),
        routes=[Route(PLAYBACK_KEYS_PATH, playback_keys, methods=["GET"])],
        lifespan=runtime.lifespan,
    )
