"""GraphQL types every subgraph shares; `@shareable` so composition accepts them in each."""

from __future__ import annotations

import strawberry


@strawberry.federation.type(shareable=True, description="Relay pagination state of a connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None
