"""The processes that make up Reelgraph, and how each is started."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    # An ASGI app factory `module:function(settings) -> app`, for HTTP services.
    app_factory: str | None
    has_database: bool


SERVICES: dict[str, ServiceSpec] = {
    "auth": ServiceSpec("auth", "subgraphs.auth.app:create_app", has_database=True),
}


def service_names() -> list[str]:
    return list(SERVICES)
