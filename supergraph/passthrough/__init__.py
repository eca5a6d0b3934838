"""Pass-through HTTP routes: plain HTTP under configured path prefixes (`/uploads`, `/media`)
streamed to another origin, so browsers reach GraphQL and media on the router's one origin.

`routes.py` reads and checks the configuration, `headers.py` decides what crosses each way,
`proxy.py` streams the exchange. CORS for these routes is an edge feature
(`supergraph/edge/headers.py`)."""

from supergraph.passthrough.proxy import PassThrough
from supergraph.passthrough.routes import (
    Route,
    RouteConfigError,
    Upstream,
    parse_routes,
    resolve_routes,
)

__all__ = [
    "PassThrough",
    "Route",
    "RouteConfigError",
    "Upstream",
    "parse_routes",
    "resolve_routes",
]
