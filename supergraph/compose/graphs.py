"""The `join__Graph` enum: each subgraph's value (`inventoryV2` → `INVENTORY_V2`) and order."""

from __future__ import annotations

import re
from collections.abc import Sequence

from supergraph.compose.issues import CompositionError, CompositionIssue
from supergraph.compose.model import Subgraph
from supergraph.compose.source import SubgraphSource


def graph_id(name: str) -> str:
    """The `join__Graph` enum value for a subgraph name: `inventoryV2` → `INVENTORY_V2`.

    A port of the `constant-case` package as The Guild's composition calls it.
    """
    words = re.sub(r"[^A-Za-z0-9]", "_", name)
    words = re.sub(r"([a-z0-9])([A-Z])", "\\1\0\\2", words)
    words = re.sub(r"([A-Z])([A-Z][a-z])", "\\1\0\\2", words)
    words = re.sub(r"[^A-Za-z0-9_]+", "\0", words)
    proposed = "_".join(part.upper() for part in words.strip("\0").split("\0"))
    return f"_{proposed}_" if name[:1].isdigit() else proposed


def graph_ids(subgraphs: Sequence[SubgraphSource]) -> dict[str, str]:
    """Each subgraph's `join__Graph` value; names that clash get `_1`, `_2`, … suffixes."""
    ids: dict[str, str] = {}
    counts: dict[str, int] = {}
    for source in subgraphs:
        if source.name in ids:
            issue = CompositionIssue(
                "INVALID_SUBGRAPH_NAME",
                f"A subgraph named {source.name} already exists",
                (source.name,),
            )
            raise CompositionError([issue])
        proposed = graph_id(source.name)
        count = counts.get(proposed, 0)
        if count == 1:
            first = next(name for name, value in ids.items() if value == proposed)
            ids[first] = f"{proposed}_1"
        ids[source.name] = f"{proposed}_{count + 1}" if count else proposed
        counts[proposed] = count + 1
    return ids


def ordered(subgraphs: Sequence[Subgraph]) -> list[Subgraph]:
    """The `join__Graph` order: by enum value, with `_` before letters and digits (ICU)."""
    return sorted(subgraphs, key=lambda s: s.graph_id.replace("_", " "))
