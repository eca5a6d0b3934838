"""Composition: subgraph SDLs in, one Federation 2 supergraph SDL out (`@link` + `join__*`),
the same one The Guild's composition prints."""

from __future__ import annotations

from collections.abc import Sequence

from supergraph.compose.build import build_supergraph
from supergraph.compose.graphs import graph_ids
from supergraph.compose.issues import CompositionError, CompositionIssue
from supergraph.compose.merge import merge
from supergraph.compose.model import Subgraph
from supergraph.compose.printer import print_node
from supergraph.compose.satisfiability import satisfiable
from supergraph.compose.source import SubgraphSource
from supergraph.compose.subgraph import read_subgraph
from supergraph.compose.subgraph_rules import SUBGRAPH_RULES
from supergraph.compose.validate import SUBGRAPHS_RULES, SUPERGRAPH_RULES

__all__ = ["CompositionError", "CompositionIssue", "SubgraphSource", "compose"]


def compose(subgraphs: Sequence[SubgraphSource]) -> str:
    """The supergraph SDL of `subgraphs`; raises `CompositionError` listing every issue."""
    # read → check each → merge → check the whole → write `join__*` → print. A stage that finds
    # issues stops composition and reports all of them.
    read = _read(subgraphs)
    _stop_on([issue for subgraph in read for rule in SUBGRAPH_RULES for issue in rule(subgraph)])
    _stop_on([issue for rule in SUBGRAPHS_RULES for issue in rule(read)])
    merged = merge(read)
    _stop_on([issue for rule in SUPERGRAPH_RULES for issue in rule(merged)])
    _stop_on(satisfiable(merged))
    return print_node(build_supergraph(merged))


def _stop_on(issues: list[CompositionIssue]) -> None:
    if issues:
        raise CompositionError(issues)


def _read(subgraphs: Sequence[SubgraphSource]) -> list[Subgraph]:
    ids = graph_ids(subgraphs)
    issues: list[CompositionIssue] = []
    read: list[Subgraph] = []
    for source in subgraphs:
        try:
            read.append(read_subgraph(source, ids[source.name]))
        except CompositionError as error:
            issues.extend(error.issues)
    _stop_on(issues)
    return read
