"""Satisfiability, the practical part: every field a query can reach has a subgraph that can
resolve it, entered through a root field or a resolvable key (`SATISFIABILITY_ERROR`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from supergraph.compose import fieldset
from supergraph.compose.issues import CompositionIssue
from supergraph.compose.merge import MergedField, MergedSchema
from supergraph.compose.model import InterfaceTypeState, ObjectTypeState, Subgraph, UnionTypeState

# A place a query can be in: a type, as resolved by one subgraph.
_Position = tuple[str, str]


@dataclass(frozen=True)
class _Step:
    parent: _Position | None
    field: str | None
    # The field's required arguments, shown with placeholders in the example query.
    arguments: tuple[tuple[str, str], ...] = ()


def _composite(subgraph: Subgraph, name: str) -> ObjectTypeState | InterfaceTypeState | None:
    found = subgraph.types.get(name)
    return found if isinstance(found, ObjectTypeState | InterfaceTypeState) else None


def _resolvable_key_graphs(merged: MergedSchema, type_name: str) -> list[str]:
    graphs: list[str] = []
    for graph, subgraph in merged.subgraphs.items():
        state = _composite(subgraph, type_name)
        if state is not None and any(key.resolvable for key in state.keys):
            graphs.append(graph)
    return graphs


def _reached(merged: MergedSchema) -> dict[_Position, _Step]:
    """Every (subgraph, type) a query can get to, with the step that first got there."""
    steps: dict[_Position, _Step] = {}
    queue: deque[_Position] = deque()

    def reach(position: _Position, step: _Step) -> None:
        if position not in steps:
            steps[position] = step
            queue.append(position)

    for graph, subgraph in merged.subgraphs.items():
        for root in subgraph.roots.values():
            reach((graph, root), _Step(None, None))
    while queue:
        graph, type_name = position = queue.popleft()
        subgraph = merged.subgraphs[graph]
        for entry in _resolvable_key_graphs(merged, type_name):
            reach((entry, type_name), steps[position])
        state = subgraph.types.get(type_name)
        if isinstance(state, ObjectTypeState):
            for interface in state.interfaces:
                for entry in _resolvable_key_graphs(merged, interface):
                    if isinstance(merged.subgraphs[entry].types.get(interface), InterfaceTypeState):
                        reach((entry, interface), steps[position])
        if isinstance(state, UnionTypeState):
            for member in state.members:
                reach((graph, member), _Step(position, f"... on {member}"))
            continue
        if isinstance(state, InterfaceTypeState):
            for implementation in state.implemented_by:
                reach((graph, implementation), _Step(position, f"... on {implementation}"))
        if not isinstance(state, ObjectTypeState | InterfaceTypeState):
            continue
        for field in state.fields.values():
            if field.external:
                continue
            output = fieldset.named_type(field.type)
            arguments = tuple(
                (arg.name, fieldset.named_type(arg.type))
                for arg in field.args.values()
                if arg.type.endswith("!")
            )
            reach((graph, output), _Step(position, field.name, arguments))
    return steps


def _example_query(steps: dict[_Position, _Step], position: _Position, leaf: str) -> str:
    path: list[str] = []
    step = steps[position]
    while step.parent is not None and step.field is not None:
        arguments = ", ".join(f'{name}: "<any {kind.lower()}>"' for name, kind in step.arguments)
        path.append(f"{step.field}({arguments})" if arguments else step.field)
        step = steps[step.parent]
    path.reverse()
    lines = ["{"]
    for depth, selection in enumerate(path, start=1):
        lines.append("  " * depth + selection + " {")
    lines.append("  " * (len(path) + 1) + leaf)
    lines.extend("  " * depth + "}" for depth in range(len(path), -1, -1))
    return "\n".join(lines)


def _reasons(
    merged: MergedSchema, type_name: str, merged_field: MergedField, graph: str
) -> list[str]:
    coordinate = f"{type_name}.{merged_field.name}"
    reasons = [f'cannot find field "{coordinate}".']
    for other, meta in merged_field.by_graph.items():
        name = merged.name_of(other)
        if meta.external:
            reasons.append(f'field "{coordinate}" is not resolvable because marked @external.')
        elif other != graph:
            reasons.append(
                f'cannot move to subgraph "{name}", which has field "{coordinate}", because type '
                f'"{type_name}" has no @key defined in subgraph "{name}".'
            )
    return reasons


# Key fields are assumed fetchable wherever an entity is reached; the full query-graph analysis
# (`@requires` conditions, key-field availability per path) is not done here.
def satisfiable(merged: MergedSchema) -> list[CompositionIssue]:
    """Every field of every reachable object type is resolvable by a subgraph that is reached."""
    steps = _reached(merged)
    reached_types: dict[str, list[str]] = {}
    for graph, type_name in steps:
        reached_types.setdefault(type_name, []).append(graph)
    issues: list[CompositionIssue] = []
    for obj in merged.objects.values():
        graphs_here = reached_types.get(obj.name)
        if not graphs_here:
            continue
        for merged_field in obj.fields.values():
            resolvers = [
                graph
                for graph, meta in merged_field.by_graph.items()
                if not meta.external or meta.provided
            ]
            if any((graph, obj.name) in steps for graph in resolvers):
                continue
            origin = graphs_here[0]
            lines = [
                "The following supergraph API query:",
                _example_query(steps, (origin, obj.name), merged_field.name),
                "cannot be satisfied by the subgraphs because:",
            ]
            for graph in graphs_here:
                lines.append(f'- from subgraph "{merged.name_of(graph)}":')
                lines.extend(f"  - {r}" for r in _reasons(merged, obj.name, merged_field, graph))
            issues.append(
                CompositionIssue(
                    "SATISFIABILITY_ERROR",
                    "\n".join(lines),
                    tuple(merged.name_of(g) for g in merged_field.by_graph),
                    f"{obj.name}.{merged_field.name}",
                )
            )
    return issues
