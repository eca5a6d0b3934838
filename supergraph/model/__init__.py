"""The loaded supergraph: which graph owns which type and field, and the API schema clients
see. Built once from any Federation 2 supergraph SDL (ours, Apollo's or The Guild's)."""

from supergraph.model.api_schema import build_api_schema
from supergraph.model.join import (
    FieldInGraph,
    FieldMeta,
    Graph,
    Key,
    Supergraph,
    SupergraphError,
    TypeInGraph,
    TypeMeta,
    load_supergraph,
)

__all__ = [
    "FieldInGraph",
    "FieldMeta",
    "Graph",
    "Key",
    "Supergraph",
    "SupergraphError",
    "TypeInGraph",
    "TypeMeta",
    "build_api_schema",
    "load_supergraph",
]
