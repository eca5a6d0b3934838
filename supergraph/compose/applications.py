"""Where a subgraph applies each directive, by schema coordinate, for the per-subgraph rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import (
    ConstDirectiveNode,
    DirectiveDefinitionNode,
    FieldDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
)

from supergraph.compose.issues import CompositionIssue
from supergraph.compose.model import Subgraph

# A rule over one subgraph.
Rule = Callable[[Subgraph], list[CompositionIssue]]


def issue(
    subgraph: Subgraph, code: str, message: str, coordinate: str | None = None
) -> CompositionIssue:
    return CompositionIssue(code, f"[{subgraph.name}] {message}", (subgraph.name,), coordinate)


@dataclass(frozen=True)
class Application:
    """A directive applied somewhere in the subgraph, and where."""

    canonical: str | None
    directive: ConstDirectiveNode
    type_node: object
    field: FieldDefinitionNode | InputValueDefinitionNode | None
    coordinate: str

    @property
    def on_interface(self) -> bool:
        return isinstance(self.type_node, InterfaceTypeDefinitionNode | InterfaceTypeExtensionNode)

    @property
    def type_name(self) -> str:
        name: str = getattr(self.type_node, "name").value  # noqa: B009
        return name


def applications(subgraph: Subgraph) -> Iterator[Application]:
    names = subgraph.names
    for definition in subgraph.document.definitions:
        name_node = getattr(definition, "name", None)
        if name_node is None or isinstance(definition, DirectiveDefinitionNode):
            continue
        type_name = name_node.value
        for directive in getattr(definition, "directives", None) or ():
            yield Application(
                names.canonical(directive.name.value), directive, definition, None, type_name
            )
        for field in getattr(definition, "fields", None) or ():
            coordinate = f"{type_name}.{field.name.value}"
            for directive in field.directives or ():
                yield Application(
                    names.canonical(directive.name.value), directive, definition, field, coordinate
                )
            for arg in getattr(field, "arguments", None) or ():
                for directive in arg.directives or ():
                    yield Application(
                        names.canonical(directive.name.value),
                        directive,
                        definition,
                        field,
                        f"{coordinate}({arg.name.value}:)",
                    )


def argument(directive: ConstDirectiveNode, name: str) -> object:
    return next((a.value for a in directive.arguments or () if a.name.value == name), None)
