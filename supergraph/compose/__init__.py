"""Composition: subgraph SDLs in, one Federation 2 supergraph SDL out (`@link` + `join__*`).

read each subgraph (`subgraph.py`) → check it (`validate.py`) → merge (`merge.py`) → check the
whole (`validate.py`, `satisfiability.py`) → write `join__*` (`build.py`) → print (`printer.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from supergraph.compose.build import build_supergraph
from supergraph.compose.issues import CompositionError, CompositionIssue
from supergraph.compose.merge import merge
from supergraph.compose.model import Subgraph
from supergraph.compose.printer import print_node
from supergraph.compose.source import SubgraphSource
from supergraph.compose.subgraph import graph_id, read_subgraph

__all__ = ["CompositionError", "CompositionIssue", "SubgraphSource", "compose"]


def compose(subgraphs: Sequence[SubgraphSource]) -> str:
    """The supergraph SDL of `subgraphs`; raises `CompositionError` listing every issue."""
    issues: list[CompositionIssue] = []
    read: list[Subgraph] = []
    ids = _graph_ids(subgraphs)
    for source in subgraphs:
        try:
            read.append(read_subgraph(source, ids[source.name]))
        except CompositionError as error:
            issues.extend(error.issues)
    if issues:
        raise CompositionError(issues)
    merged = merge(read)
    return print_node(build_supergraph(merged))


def _graph_ids(subgraphs: Sequence[SubgraphSource]) -> dict[str, str]:
    """Each subgraph's `join__Graph` value; clashing names get `_1`, `_2`, … suffixes."""
    ids: dict[str, str] = {}
    counts: dict[str, int] = {}
    for source in subgraphs:
        if source.name in ids:
            raise CompositionError(
                [
                    CompositionIssue(
                        "INVALID_SUBGRAPH_NAME",
                        f"A subgraph named {source.name} already exists",
                        (source.name,),
                    )
                ]
            )
        proposed = graph_id(source.name)
        count = counts.get(proposed, 0)
        if count == 1:
            first = next(name for name, value in ids.items() if value == proposed)
            ids[first] = f"{proposed}_1"
        ids[source.name] = f"{proposed}_{count + 1}" if count else proposed
        counts[proposed] = count + 1
    return ids
