"""The processes that make up Reelgraph, and how each is started."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The checked-in supergraph `reelgraph up` routes over (written by `reelgraph compose`).
SUPERGRAPH = Path(__file__).resolve().parent.parent / "schema" / "supergraph.graphql"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    # An ASGI app factory `module:function(settings) -> app`, for HTTP services.
    app_factory: str | None
    has_database: bool


SERVICES: dict[str, ServiceSpec] = {
    "auth": ServiceSpec("auth", "subgraphs.auth.app:create_app", has_database=True),
    "video": ServiceSpec("video", "subgraphs.video.app:create_app", has_database=True),
    "engagement": ServiceSpec(
        "engagement", "subgraphs.engagement.app:create_app", has_database=True
    ),
    "billing": ServiceSpec("billing", "subgraphs.billing.app:create_app", has_database=True),
}


def service_names() -> list[str]:
    return list(SERVICES)


def up_processes() -> list[tuple[str, list[str]]]:
    """What `reelgraph up` runs: every service, the media worker, then the router."""
    processes = [(name, ["serve", name]) for name in SERVICES]
    processes.append(("media-worker", ["media-worker"]))
    processes.append(("router", ["router", "--supergraph", str(SUPERGRAPH)]))
    return processes
