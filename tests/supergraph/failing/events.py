"""A subgraph with topic subscriptions, for the router's subscription tests: `publish` fans a
message out to every subscriber of a topic in order, `activeSubscribers` says how many
upstream subscriptions are open, and each message's `thing` is an entity another subgraph
(`stable`) resolves. `forwardedFor` is the X-Forwarded-For the subscription's upgrade request or
the upload arrived with."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import AsyncGenerator

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.file_uploads import Upload
from strawberry.types import Info

from tests.supergraph.failing.apps import forwarded_header

_subscribers: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)
_sequence: dict[str, int] = defaultdict(int)


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)], name="Thing")
class ThingRef:
    id: strawberry.ID


@strawberry.type
class Message:
    topic: str
    seq: int
    body: str
    thing: ThingRef
    forwarded_for: str | None = None


@strawberry.type
class Query:
    @strawberry.field
    def active_subscribers(self, topic: str) -> int:
        return len(_subscribers[topic])


@strawberry.type
class Stored:
    """What the subgraph received: proof the bytes arrived whole."""

    filename: str
    size: int
    sha256: str
    thing: ThingRef
    forwarded_for: str | None = None


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def store(self, info: Info, file: Upload, note: str = "") -> Stored:
        digest = hashlib.sha256()
        size = 0
        while chunk := await file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return Stored(
            filename=file.filename or "",
            size=size,
            sha256=digest.hexdigest(),
            thing=ThingRef(id=strawberry.ID("1")),
            forwarded_for=forwarded_header(info),
        )

    @strawberry.mutation
    def publish(self, topic: str, body: str, count: int = 1) -> int:
        for _ in range(count):
            _sequence[topic] += 1
            seq = _sequence[topic]
            message = Message(
                topic=topic, seq=seq, body=body, thing=ThingRef(id=strawberry.ID(str(seq % 5 + 1)))
            )
            for queue in _subscribers[topic]:
                queue.put_nowait(message)
        return _sequence[topic]


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def messages(self, info: Info, topic: str) -> AsyncGenerator[Message, None]:
        seen = forwarded_header(info)
        queue: asyncio.Queue[Message] = asyncio.Queue()
        _subscribers[topic].add(queue)
        try:
            while True:
                yield dataclasses.replace(await queue.get(), forwarded_for=seen)
        finally:
            _subscribers[topic].discard(queue)


events_schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[ThingRef],
    federation_version="2.9",
)
