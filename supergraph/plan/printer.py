"""Prints a query plan in the shape Apollo's tools use, for `reelgraph plan`, the
`extensions.queryPlan` of dev-mode responses, and golden tests."""

from __future__ import annotations

from graphql import parse, print_ast

from supergraph.plan.nodes import (
    FetchNode,
    FlattenNode,
    ParallelNode,
    PlanNode,
    QueryPlan,
    SequenceNode,
)
from supergraph.selections import print_selections


def print_plan(plan: QueryPlan) -> str:
    lines = ["QueryPlan {"]
    if plan.node is not None:
        lines += _node(plan.node, 1)
    lines.append("}")
    return "\n".join(lines)


def _indent(level: int) -> str:
    return "  " * level


def _pretty(operation: str, level: int) -> list[str]:
    """A subgraph operation printed as indented GraphQL, without the operation header."""
    document = parse(operation, no_location=True)
    printed = print_ast(document.definitions[0].selection_set)  # type: ignore[attr-defined]
    return [_indent(level) + line for line in printed.splitlines()]


def _node(node: PlanNode, level: int) -> list[str]:
    pad = _indent(level)
    if isinstance(node, SequenceNode):
        return [
            f"{pad}Sequence {{",
            *[line for n in node.nodes for line in _node(n, level + 1)],
            f"{pad}}},",
        ]
    if isinstance(node, ParallelNode):
        return [
            f"{pad}Parallel {{",
            *[line for n in node.nodes for line in _node(n, level + 1)],
            f"{pad}}},",
        ]
    if isinstance(node, FlattenNode):
        path = _path(node.path)
        return [f'{pad}Flatten(path: "{path}") {{', *_node(node.node, level + 1), f"{pad}}},"]
    return _fetch(node, level)


def _path(path: tuple[str, ...]) -> str:
    """`("search", "@", "|Book")` prints as Apollo writes it: `search.@|[Book]`."""
    text = ""
    for segment in path:
        if segment.startswith("|"):
            text += f"|[{segment[1:]}]"
        else:
            text += ("." if text else "") + segment
    return text


def _fetch(node: FetchNode, level: int) -> list[str]:
    pad = _indent(level)
    lines = [f'{pad}Fetch(service: "{node.service}") {{']
    if node.requires is not None:
        typename = node.representation_typename or node.entity_type
        lines += [_indent(level + 1) + line for line in _requires(node, typename).splitlines()]
        lines.append(f"{_indent(level + 1)}}} =>")
        lines.append(f"{_indent(level + 1)}{{")
        document = parse(node.operation, no_location=True)
        entities = document.definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
        body = print_ast(entities.selection_set)
        lines += [_indent(level + 1) + line for line in body.splitlines()[1:-1]]
        lines.append(f"{_indent(level + 1)}}}")
    else:
        lines += _pretty(node.operation, level + 1)
    lines.append(f"{pad}}},")
    return lines


def _requires(node: FetchNode, typename: str | None) -> str:
    assert node.requires is not None
    definition = parse(print_selections(node.requires), no_location=True).definitions[0]
    printed = print_ast(definition.selection_set)  # type: ignore[attr-defined]
    inner = printed.splitlines()[1:-1]
    header = f"... on {typename}" if typename else "..."
    return "{\n" + f"  {header} {{\n" + "\n".join("  " + line for line in inner) + "\n  }"
