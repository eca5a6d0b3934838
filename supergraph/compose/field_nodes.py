"""Fields and arguments of object types, interfaces and directives as supergraph AST."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import (
    FieldDefinitionNode,
    InputValueDefinitionNode,
    parse_const_value,
    parse_type,
)

from supergraph.compose.applied import (
    Applied,
    JoinField,
    applied_directives,
    description_node,
    enum_node,
    name_node,
)
from supergraph.compose.merge import MergedField, MergedInputValue
from supergraph.compose.model import InputTypeKind


def field_node(
    merged_field: MergedField, join_fields: Sequence[JoinField], description: str | None
) -> FieldDefinitionNode:
    """An object type's or interface's field, with the arguments every subgraph has."""
    return FieldDefinitionNode(
        name=name_node(merged_field.name),
        type=parse_type(merged_field.type),
        description=description_node(description),
        arguments=_shared_arguments(merged_field),
        directives=applied_directives(
            Applied(merged_field, join_fields=join_fields, deprecated=merged_field.deprecated)
        ),
    )


def _default_value_node(value: str | None, kind: InputTypeKind) -> Any:
    if value is None:
        return None
    if kind is InputTypeKind.ENUM:
        return enum_node(value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value)
    return parse_const_value(value)


def argument_node(arg: MergedInputValue) -> InputValueDefinitionNode:
    return InputValueDefinitionNode(
        name=name_node(arg.name),
        type=parse_type(arg.type),
        default_value=_default_value_node(arg.default_value, arg.kind),
        description=description_node(arg.description),
        directives=applied_directives(Applied(arg, deprecated=arg.deprecated)),
    )


def _shared_arguments(merged_field: MergedField) -> tuple[InputValueDefinitionNode, ...]:
    """Arguments every subgraph defining the field agrees to have."""
    return tuple(
        argument_node(arg)
        for arg in merged_field.args.values()
        if len(arg.by_graph) == len(merged_field.by_graph)
    )
