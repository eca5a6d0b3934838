"""Builds the engagement service's ASGI app: GraphQL (with subscriptions over the bus), the
consumers of auth's and video's events, and the live-presence heartbeat."""

from __future__ import annotations

import asyncio

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from subgraphs.engagement import events
from subgraphs.engagement.models import outbox
from subgraphs.engagement.schema import EngagementContext, schema
from subgraphs.engagement.service import EngagementService
from subgraphs.kernel.bus.consumer import run_consumer
from subgraphs.kernel.graphql import build_context
from subgraphs.kernel.http import GraphQLEndpoint, service_app
from subgraphs.kernel.runtime import ServiceRuntime
from subgraphs.kernel.settings import Settings


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    runtime = ServiceRuntime("engagement", settings, outbox=outbox)
    service = EngagementService(runtime.db, settings)
    proxies = settings.trusted_proxy_set()

    for topic, handler in service.projection.handlers().items():

        async def consume(
            stop: asyncio.Event, topic: str = topic, handler: events.Handler = handler
        ) -> None:
            await run_consumer(
                runtime.bus,
                topic,
                events.GROUP,
                handler,
                stop=stop,
                visibility_timeout=settings.bus_visibility_timeout,
            )

        runtime.add_background(consume)
    runtime.add_background(service.presence.run)
    runtime.add_background(service.views.sweep)

    async def context(connection: HTTPConnection) -> EngagementContext:
        return await build_context(
            EngagementContext,
            connection,
            runtime.verifier,
            proxies,
            service=service,
            bus=runtime.bus,
        )

    return service_app(graphql=GraphQLEndpoint(schema, context), lifespan=runtime.lifespan)
