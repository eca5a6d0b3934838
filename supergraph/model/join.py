"""Reads the `join__*` directives of a supergraph into per-graph ownership of types and fields."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ScalarTypeDefinitionNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    build_ast_schema,
    parse,
)
from graphql.error import GraphQLError
from graphql.utilities import value_from_ast_untyped

from supergraph.model.links import Feature, linked_features
from supergraph.selections import Selection, parse_field_set


class SupergraphError(ValueError):
    """The SDL is not a supergraph this router can run."""


@dataclass(frozen=True)
class Graph:
    enum_value: str
    name: str
    url: str


@dataclass(frozen=True)
class Key:
    text: str
    selections: tuple[Selection, ...]
    resolvable: bool


@dataclass
class TypeInGraph:
    graph: str
    keys: list[Key] = field(default_factory=list)
    extension: bool = False
    is_interface_object: bool = False


@dataclass(frozen=True)
class FieldInGraph:
    graph: str
    requires: tuple[Selection, ...] | None = None
    provides: tuple[Selection, ...] | None = None
    external: bool = False
    used_overridden: bool = False
    override_label: str | None = None
    type: str | None = None


@dataclass
class FieldMeta:
    name: str
    # Explicit `@join__field(graph: …)` entries; empty means "every graph of the type".
    sources: dict[str, FieldInGraph] = field(default_factory=dict)
    # A bare `@join__field` (no graph): resolvable only through an @interfaceObject.
    bare: bool = False


@dataclass
class TypeMeta:
    name: str
    kind: str  # object | interface | union | enum | input | scalar
    graphs: dict[str, TypeInGraph] = field(default_factory=dict)
    fields: dict[str, FieldMeta] = field(default_factory=dict)
    implements: dict[str, set[str]] = field(default_factory=dict)
    union_members: dict[str, set[str]] = field(default_factory=dict)

    def field_graphs(self, name: str) -> list[str]:
        """Graphs that resolve `name` on this type themselves (not external, not overridden)."""
        meta = self.fields.get(name)
        if meta is None:
            return []
        if meta.bare and not meta.sources:
            return []
        if not meta.sources:
            return list(self.graphs)
        return [g for g, s in meta.sources.items() if not s.external and not s.used_overridden]

    def source(self, name: str, graph: str) -> FieldInGraph | None:
        meta = self.fields.get(name)
        if meta is None:
            return None
        return meta.sources.get(graph)

    def resolvable_keys(self, graph: str) -> list[Key]:
        info = self.graphs.get(graph)
        return [k for k in info.keys if k.resolvable] if info else []


@dataclass
class Supergraph:
    """Everything the planner needs to know about a supergraph."""

    sdl: str
    schema: GraphQLSchema
    graphs: dict[str, Graph]
    types: dict[str, TypeMeta]
    features: dict[str, Feature]

    def graph_by_name(self, name: str) -> Graph:
        for graph in self.graphs.values():
            if graph.name == name:
                return graph
        raise KeyError(name)

    def possible_types(self, abstract: str, graph: str | None = None) -> list[str]:
        """Concrete types behind an interface or union (as `graph` knows them, if given)."""
        meta = self.types[abstract]
        all_types = [t.name for t in self.schema.get_possible_types(self.schema.type_map[abstract])]  # type: ignore[arg-type]
        if graph is None:
            return all_types
        if meta.kind == "union":
            members = meta.union_members.get(graph)
            return [t for t in all_types if t in members] if members is not None else all_types
        return [
            t
            for t in all_types
            if graph in self.types[t].graphs
            and (abstract in self.types[t].implements.get(graph, {abstract}))
        ]

    @cached_property
    def entity_interfaces(self) -> set[str]:
        return {
            t.name
            for t in self.types.values()
            if t.kind == "interface" and any(g.keys for g in t.graphs.values())
        }


def load_supergraph(sdl: str) -> Supergraph:
    try:
        document = parse(sdl)
    except GraphQLError as error:
        raise SupergraphError(f"supergraph does not parse: {error.message}") from None
    features = linked_features(document)
    join = features.get("join")
    if join is None:
        raise SupergraphError("not a supergraph: no @link to https://specs.apollo.dev/join")
    if join.version < (0, 2):
        raise SupergraphError(f"join v{join.version[0]}.{join.version[1]} is not supported")
    try:
        schema = build_ast_schema(document, assume_valid_sdl=True)
    except (GraphQLError, TypeError) as error:
        raise SupergraphError(f"supergraph does not build: {error}") from None
    graphs = _graphs(document, join)
    types = {
        name: meta
        for node in document.definitions
        if isinstance(node, TypeDefinitionNode) and (meta := _type_meta(node, join)) is not None
        for name in (meta.name,)
    }
    _merge_extensions(document, join, types)
    return Supergraph(sdl=sdl, schema=schema, graphs=graphs, types=types, features=features)


def _args(directive: DirectiveNode) -> dict[str, Any]:
    return {a.name.value: value_from_ast_untyped(a.value) for a in directive.arguments or ()}


def _named(directives: Iterable[DirectiveNode] | None, name: str) -> list[dict[str, Any]]:
    return [_args(d) for d in directives or () if d.name.value == name]


def _graphs(document: DocumentNode, join: Feature) -> dict[str, Graph]:
    for node in document.definitions:
        if isinstance(node, EnumTypeDefinitionNode) and node.name.value == f"{join.prefix}__Graph":
            graphs = {}
            for value in node.values or ():
                for args in _named(value.directives, join.directive("graph")):
                    graphs[value.name.value] = Graph(value.name.value, args["name"], args["url"])
            return graphs
    raise SupergraphError(f"supergraph has no {join.prefix}__Graph enum")


_KINDS: dict[type, str] = {
    ObjectTypeDefinitionNode: "object",
    ObjectTypeExtensionNode: "object",
    InterfaceTypeDefinitionNode: "interface",
    InterfaceTypeExtensionNode: "interface",
    UnionTypeDefinitionNode: "union",
    UnionTypeExtensionNode: "union",
    EnumTypeDefinitionNode: "enum",
    EnumTypeExtensionNode: "enum",
    InputObjectTypeDefinitionNode: "input",
    ScalarTypeDefinitionNode: "scalar",
}


def _type_meta(node: TypeDefinitionNode, join: Feature) -> TypeMeta | None:
    kind = _KINDS.get(type(node))
    if kind is None or join.owns_name(node.name.value):
        return None
    meta = TypeMeta(node.name.value, kind)
    _apply(meta, node, join)
    return meta


def _merge_extensions(document: DocumentNode, join: Feature, types: dict[str, TypeMeta]) -> None:
    for node in document.definitions:
        if isinstance(
            node, ObjectTypeExtensionNode | InterfaceTypeExtensionNode | UnionTypeExtensionNode
        ):
            meta = types.get(node.name.value)
            if meta is not None:
                _apply(meta, node, join)


def _apply(meta: TypeMeta, node: Any, join: Feature) -> None:
    for args in _named(node.directives, join.directive("type")):
        graph = args["graph"]
        info = meta.graphs.setdefault(graph, TypeInGraph(graph))
        info.extension = info.extension or bool(args.get("extension", False))
        info.is_interface_object = info.is_interface_object or bool(
            args.get("isInterfaceObject", False)
        )
        if args.get("key"):
            info.keys.append(
                Key(
                    args["key"],
                    tuple(parse_field_set(args["key"])),
                    bool(args.get("resolvable", True)),
                )
            )
    for args in _named(node.directives, join.directive("implements")):
        meta.implements.setdefault(args["graph"], set()).add(args["interface"])
    for args in _named(node.directives, join.directive("unionMember")):
        meta.union_members.setdefault(args["graph"], set()).add(args["member"])
    for field_node in getattr(node, "fields", None) or ():
        field_meta = meta.fields.setdefault(field_node.name.value, FieldMeta(field_node.name.value))
        for directive in field_node.directives or ():
            if directive.name.value != join.directive("field"):
                continue
            args = _args(directive)
            graph = args.get("graph")
            if graph is None:
                field_meta.bare = True
                continue
            field_meta.sources[graph] = FieldInGraph(
                graph=graph,
                requires=tuple(parse_field_set(args["requires"])) if args.get("requires") else None,
                provides=tuple(parse_field_set(args["provides"])) if args.get("provides") else None,
                external=bool(args.get("external", False)),
                used_overridden=bool(args.get("usedOverridden", False)),
                override_label=args.get("overrideLabel"),
                type=args.get("type"),
            )
