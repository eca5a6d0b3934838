"""Two small subgraphs for the router's failure tests: `stable` always behaves; `flaky`
misbehaves in the way its `--mode` says (slow, malformed JSON, HTTP 500, errors on some
entities), so each failure can be produced on demand by a real process. `forwardedFor` fields
answer with the X-Forwarded-For a request reached the subgraph with."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.types import Info

THINGS = {str(i): f"thing {i}" for i in range(1, 6)}
# Requests `forwardedFor(tag:)` received per tag: how many fetches the router really sent.
CALLS: Counter[str] = Counter()


def forwarded_header(info: Info) -> str | None:
    """Every X-Forwarded-For line of the request (HTTP, or a WebSocket's upgrade) as sent."""
    lines = info.context["request"].headers.getlist("x-forwarded-for")
    return " | ".join(lines) if lines else None


@strawberry.federation.type(keys=["id"], name="Thing")
class StableThing:
    id: strawberry.ID
    name: str
    forwarded_for: str | None = None

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, info: Info) -> StableThing:
        return StableThing(id=id, name=THINGS[str(id)], forwarded_for=forwarded_header(info))


@strawberry.type
class StableQuery:
    @strawberry.field
    def stable(self) -> str:
        return "stable"

    @strawberry.field
    async def forwarded_for(self, info: Info, tag: str = "", ms: int = 0) -> str | None:
        CALLS[tag] += 1
        await asyncio.sleep(ms / 1000)
        return forwarded_header(info)

    @strawberry.field
    def calls(self, tag: str) -> int:
        return CALLS[tag]

    @strawberry.field
    def things(self) -> list[StableThing]:
        return [StableThing(id=strawberry.ID(i), name=n) for i, n in THINGS.items()]


@strawberry.federation.type(keys=["id"], name="Thing")
class FlakyThing:
    id: strawberry.ID

    @strawberry.field
    def extra(self) -> str | None:
        if self.id == "3":
            raise ValueError("no extra for thing 3")
        return f"extra {self.id}"

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> FlakyThing:
        return FlakyThing(id=id)


@strawberry.type
class FlakyQuery:
    @strawberry.field
    def flaky(self) -> str | None:
        return "flaky"


stable_schema = strawberry.federation.Schema(
    query=StableQuery, types=[StableThing], federation_version="2.9"
)
flaky_schema = strawberry.federation.Schema(
    query=FlakyQuery, types=[FlakyThing], federation_version="2.9"
)


def create_app(name: str, mode: str = "ok") -> Any:
    from tests.supergraph.failing.events import events_schema

    schema = {"stable": stable_schema, "flaky": flaky_schema, "events": events_schema}[name]
    graphql = GraphQL(schema, graphql_ide=None, multipart_uploads_enabled=True)

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    health_app = Starlette(routes=[Route("/health", health)])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/graphql":
            await graphql(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] != "/graphql":
            await health_app(scope, receive, send)
            return
        if mode == "slow":
            await asyncio.sleep(3)
        elif mode == "malformed":
            response: Response = Response(
                b'{"data": {"flaky": "unterminated', media_type="application/json"
            )
            await response(scope, receive, send)
            return
        elif mode == "http500":
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            return
        await graphql(scope, receive, send)

    return app
