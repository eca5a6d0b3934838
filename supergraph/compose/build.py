"""Write the merged state down as the supergraph document: the link/join core, then every
type with its `@join__*` directives (object types in `objects.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import (
    DirectiveDefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    NamedTypeNode,
    ScalarTypeDefinitionNode,
    UnionTypeDefinitionNode,
    parse,
    parse_const_value,
    parse_type,
)

from supergraph.compose import specs
from supergraph.compose.applied import (
    Applied,
    JoinField,
    JoinType,
    applied_directives,
    description_node,
    directive_node,
    join_implements,
    name_node,
    string_node,
)
from supergraph.compose.field_nodes import argument_node, field_node
from supergraph.compose.field_usage import RequiresUsage, pruned_field_sets
from supergraph.compose.merge import (
    MergedDirective,
    MergedEnum,
    MergedInputObject,
    MergedInterface,
    MergedScalar,
    MergedSchema,
    MergedUnion,
)
from supergraph.compose.model import EXECUTABLE_LOCATIONS
from supergraph.compose.objects import ObjectBuilder


def build_supergraph(merged: MergedSchema) -> DocumentNode:
    """The supergraph document: the link/join core, then every merged type."""
    definitions: list[Any] = [_join_graph_enum(merged)]
    definitions.extend(_directive_definition(d, locs) for d, locs in _kept_directives(merged))
    definitions.extend(_scalar_node(s) for s in merged.scalars.values())
    pruned = pruned_field_sets(merged)
    usage = RequiresUsage.build(merged, pruned)
    definitions.extend(
        ObjectBuilder(merged, o, pruned, usage).node() for o in merged.objects.values()
    )
    definitions.extend(_interface_node(merged, i) for i in merged.interfaces.values())
    definitions.extend(_union_node(u) for u in merged.unions.values())
    definitions.extend(_enum_node(e) for e in merged.enums.values())
    definitions.extend(_input_node(i) for i in merged.inputs.values())
    core = parse(_core_sdl(merged, definitions), no_location=True)
    return DocumentNode(definitions=(*core.definitions, *definitions))


def _core_sdl(merged: MergedSchema, definitions: Sequence[Any]) -> str:
    version = merged.federation_version
    names = {getattr(d.name, "value", None) for d in definitions}
    links = [
        f'@link(url: "{specs.LINK_URL}")',
        f'@link(url: "https://specs.apollo.dev/join/{specs.join_version(version)}", '
        "for: EXECUTION)",
    ]
    if merged.uses_tag:
        links.append(f'@link(url: "{specs.TAG_URL}")')
    if merged.uses_inaccessible:
        links.append(f'@link(url: "{specs.INACCESSIBLE_URL}", for: SECURITY)')
    for link in merged.links:
        imports = ", ".join(
            f'{{name: "{i.name}", as: "{i.alias}"}}' if i.alias else f'"{i.name}"'
            for i in link.imports
        )
        links.append(f'@link(url: "{link.url}", import: [{imports}])')
    roots = [f"{op}: {name}" for op, name in _ROOTS if name in names]
    return "\n".join(
        [
            "schema",
            *links,
            "{",
            *roots,
            "}",
            specs.join_definitions_sdl(version),
            specs.SUPERGRAPH_LINK_SDL,
            specs.SUPERGRAPH_TAG_SDL if merged.uses_tag else "",
            specs.SUPERGRAPH_INACCESSIBLE_SDL if merged.uses_inaccessible else "",
        ]
    )


_ROOTS = (("query", "Query"), ("mutation", "Mutation"), ("subscription", "Subscription"))


# -- join__Graph, directives, scalars ----------------------------------------------------------


def _join_graph_enum(merged: MergedSchema) -> EnumTypeDefinitionNode:
    return EnumTypeDefinitionNode(
        name=name_node("join__Graph"),
        directives=(),
        values=tuple(
            EnumValueDefinitionNode(
                name=name_node(graph),
                directives=(
                    directive_node(
                        "join__graph",
                        ("name", string_node(subgraph.name)),
                        ("url", string_node(subgraph.url)),
                    ),
                ),
            )
            for graph, subgraph in merged.subgraphs.items()
        ),
    )


def _kept_directives(merged: MergedSchema) -> list[tuple[MergedDirective, list[str]]]:
    """Composed directives, and executable ones every subgraph defines identically, each with
    the locations the supergraph keeps."""
    kept: list[tuple[MergedDirective, list[str]]] = []
    for directive in merged.directives.values():
        locations = list(directive.locations)
        if directive.is_executable and directive.by_graph:
            identical = all(
                len(arg.by_graph) == len(merged.subgraphs)
                and all(a.type == arg.type for a in arg.by_graph.values())
                for arg in directive.args.values()
            )
            if not identical:
                continue
            locations = [
                location
                for location in locations
                if (location not in EXECUTABLE_LOCATIONS and directive.composed)
                or (
                    location in EXECUTABLE_LOCATIONS
                    and all(location in s.locations for s in directive.by_graph.values())
                )
            ]
            if not locations:
                continue
        kept.append((directive, locations))
    return kept


def _directive_definition(
    directive: MergedDirective, locations: Sequence[str]
) -> DirectiveDefinitionNode:
    return DirectiveDefinitionNode(
        name=name_node(directive.name),
        locations=tuple(name_node(location) for location in locations),
        repeatable=directive.repeatable,
        arguments=tuple(argument_node(arg) for arg in directive.args.values()),
    )


def _scalar_node(scalar: MergedScalar) -> ScalarTypeDefinitionNode:
    return ScalarTypeDefinitionNode(
        name=name_node(scalar.name),
        description=description_node(scalar.description),
        directives=applied_directives(
            Applied(
                scalar,
                join_types=[JoinType(graph) for graph in scalar.by_graph],
                specified_by=scalar.specified_by,
            )
        ),
    )


# -- interfaces, unions, enums, inputs -------------------------------------------------------------


def _interface_node(
    merged: MergedSchema, interface: MergedInterface
) -> InterfaceTypeDefinitionNode:
    fields: list[FieldDefinitionNode] = []
    for merged_field in interface.fields.values():
        joins: list[JoinField] = []
        if len(merged_field.by_graph) != len(interface.by_graph):
            joins = [
                JoinField(
                    graph=graph,
                    type=meta.type if meta.type != merged_field.type else None,
                    override=meta.override,
                    provides=meta.provides,
                    requires=meta.requires,
                    external=meta.external,
                )
                for graph, meta in merged_field.by_graph.items()
            ]
        fields.append(field_node(merged_field, joins, merged_field.description))
    join_types: list[JoinType] = []
    for graph, meta in interface.by_graph.items():
        if meta.keys:
            join_types.extend(
                JoinType(
                    graph,
                    key.fields,
                    extension=meta.extension,
                    resolvable=key.resolvable,
                    is_interface_object=meta.is_interface_object,
                )
                for key in meta.keys
            )
        else:
            join_types.append(JoinType(graph))
    return InterfaceTypeDefinitionNode(
        name=name_node(interface.name),
        description=description_node(interface.description),
        interfaces=tuple(NamedTypeNode(name=name_node(i)) for i in interface.interfaces),
        directives=applied_directives(
            Applied(interface, join_types=join_types, join_implements=join_implements(interface))
        ),
        fields=tuple(fields),
    )


def _union_node(union: MergedUnion) -> UnionTypeDefinitionNode:
    return UnionTypeDefinitionNode(
        name=name_node(union.name),
        description=description_node(union.description),
        directives=applied_directives(
            Applied(
                union,
                join_types=[JoinType(graph) for graph in union.by_graph],
                union_members=[
                    (graph, member)
                    for graph, members in union.by_graph.items()
                    for member in members
                ],
            )
        ),
        types=tuple(NamedTypeNode(name=name_node(m)) for m in union.members),
    )


def _enum_node(enum: MergedEnum) -> EnumTypeDefinitionNode:
    input_only = bool(enum.input_references) and not enum.output_references
    values = [
        value
        for value in enum.values.values()
        if not input_only or len(value.by_graph) == len(enum.by_graph)
    ]
    return EnumTypeDefinitionNode(
        name=name_node(enum.name),
        description=description_node(enum.description),
        directives=applied_directives(
            Applied(enum, join_types=[JoinType(graph) for graph in enum.by_graph])
        ),
        values=tuple(
            EnumValueDefinitionNode(
                name=name_node(value.name),
                description=description_node(value.description),
                directives=applied_directives(
                    Applied(value, enum_values=list(value.by_graph), deprecated=value.deprecated)
                ),
            )
            for value in values
        ),
    )


def _input_node(input_object: MergedInputObject) -> InputObjectTypeDefinitionNode:
    fields: list[InputValueDefinitionNode] = []
    for merged_field in input_object.fields.values():
        # Inputs: only the fields every subgraph accepts.
        if len(merged_field.by_graph) != len(input_object.by_graph):
            continue
        in_graphs = merged_field.by_graph.items()
        different = any(meta.type != merged_field.type for _, meta in in_graphs)
        every_default = all(meta.default_value is not None for _, meta in in_graphs)
        default = merged_field.default_value if every_default else None
        fields.append(
            InputValueDefinitionNode(
                name=name_node(merged_field.name),
                type=parse_type(merged_field.type),
                description=description_node(merged_field.description),
                default_value=parse_const_value(default) if default is not None else None,
                directives=applied_directives(
                    Applied(
                        merged_field,
                        join_fields=[JoinField(graph=g, type=m.type) for g, m in in_graphs]
                        if different
                        else [],
                        deprecated=merged_field.deprecated,
                    )
                ),
            )
        )
    return InputObjectTypeDefinitionNode(
        name=name_node(input_object.name),
        description=description_node(input_object.description),
        directives=applied_directives(
            Applied(input_object, join_types=[JoinType(graph) for graph in input_object.by_graph])
        ),
        fields=tuple(fields),
    )
