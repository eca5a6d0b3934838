"""A query plan is data: Fetch, Flatten, Sequence and Parallel nodes that can be printed,
cached, compared in golden tests and shown to developers."""

from __future__ import annotations

from dataclasses import dataclass, field

from supergraph.selections import Selection

# A response path: field response keys, "@" for every list item, and "|A,B" to keep only
# objects whose __typename is A or B.
Path = tuple[str, ...]


@dataclass(frozen=True)
class FetchNode:
    service: str
    operation: str
    operation_kind: str  # query | mutation
    variable_names: tuple[str, ...]
    # Entity fetches: the selection that builds each representation from the data at the
    # flatten path. Root fetches have none.
    requires: tuple[Selection, ...] | None = None
    # For @interfaceObject graphs the representation names the interface, not the object.
    representation_typename: str | None = None
    # The type the `_entities` selection is written against.
    entity_type: str | None = None
    # The subgraph answers with an interface name as `__typename`: drop it when merging.
    drops_typename: bool = False
    id: int = 0


@dataclass(frozen=True)
class FlattenNode:
    path: Path
    node: FetchNode


@dataclass(frozen=True)
class SequenceNode:
    nodes: tuple[PlanNode, ...]


@dataclass(frozen=True)
class ParallelNode:
    nodes: tuple[PlanNode, ...]


PlanNode = FetchNode | FlattenNode | SequenceNode | ParallelNode


@dataclass(frozen=True)
class QueryPlan:
    node: PlanNode | None
    operation_kind: str = "query"
    # Root fields the router answers itself (introspection and __typename).
    local_root_fields: tuple[str, ...] = field(default_factory=tuple)
