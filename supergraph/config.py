"""Router settings: where each subgraph lives (the supergraph's `join__graph(url:)`, or an
override per subgraph from the environment) and how long to wait for it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from supergraph.execute import SubgraphEndpoint
from supergraph.model import Supergraph


def env_name(subgraph: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", subgraph).upper()


def subgraph_endpoints(
    supergraph: Supergraph, environ: Mapping[str, str] | None = None
) -> dict[str, SubgraphEndpoint]:
    """`REELGRAPH_SUBGRAPH_<NAME>_URL` and `_TIMEOUT` override one subgraph;
    `REELGRAPH_SUBGRAPH_TIMEOUT` sets the default timeout (seconds, default 30);
    `REELGRAPH_SUBGRAPH_<NAME>_DEDUPE_PER_ADDRESS=true` merges identical fetches to it only
    from one client address."""
    env = os.environ if environ is None else environ
    default_timeout = float(env.get("REELGRAPH_SUBGRAPH_TIMEOUT", "30"))
    endpoints = {}
    for graph in supergraph.graphs.values():
        prefix = f"REELGRAPH_SUBGRAPH_{env_name(graph.name)}_"
        endpoints[graph.name] = SubgraphEndpoint(
            name=graph.name,
            url=env.get(prefix + "URL", graph.url),
            timeout=float(env.get(prefix + "TIMEOUT", default_timeout)),
            dedupe_per_address=_flag(env, prefix + "DEDUPE_PER_ADDRESS"),
        )
    return endpoints


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false, not {value!r}")
