"""media: covers and download counts for every `Media`, seen as an `@interfaceObject`.

Features here: `Media @key(fields: "id") @interfaceObject` (this subgraph does not know the
concrete types Book and Magazine: a router must ask catalog for `__typename` and for
type-specific fields); a root field returning interface objects (`featuredMedia`, with a
repeat); field arguments with defaults (`coverUrl(size:)`); a slow field (`slow(ms:)`;
every subgraph also honours the `x-testbed-delay-ms` header); fields that error
(`boom: String`, `boomNonNull: String!`); mutation `recordDownload`.
"""

from __future__ import annotations

import asyncio

import strawberry

from . import fixtures
from .recording import RecordOperations

_downloads: dict[str, int] = {}


def reset() -> None:
    _downloads.clear()
    _downloads.update(fixtures.DOWNLOADS)


reset()


@strawberry.federation.interface_object(keys=["id"])
class Media:
    id: strawberry.ID

    @strawberry.field
    def cover_url(self, size: int = 100) -> str:
        return f"https://covers.testbed.invalid/{self.id}/{size}.png"

    @strawberry.field
    def downloads(self) -> int:
        return _downloads[self.id]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Media | None:
        return Media(id=id) if id in _downloads else None


@strawberry.type
class Query:
    @strawberry.field
    def featured_media(self) -> list[Media]:
        return [Media(id=strawberry.ID(m)) for m in fixtures.FEATURED_MEDIA]

    @strawberry.field(description="Answers `ms` after waiting `ms` milliseconds (0..10000).")
    async def slow(self, ms: int) -> int:
        await asyncio.sleep(max(0, min(ms, 10_000)) / 1000)
        return ms

    @strawberry.field
    def boom(self) -> str | None:
        raise ValueError("boom: this field always fails")

    @strawberry.field
    def boom_non_null(self) -> str:
        raise ValueError("boomNonNull: this non-null field always fails")

    @strawberry.field
    def ping(self) -> str:
        return "pong"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def record_download(self, id: strawberry.ID) -> Media:
        if id not in _downloads:
            raise ValueError(f"no media {id}")
        _downloads[id] += 1
        return Media(id=id)


schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[RecordOperations],
    federation_version="2.9",
)
