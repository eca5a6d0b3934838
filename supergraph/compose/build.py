"""Write the merged state down as a supergraph document: types plus `@join__*` directives.

The rules for when a field needs `@join__field`, and with which arguments, follow The Guild's
composition (`@theguild/federation-composition`), so both routers read the same supergraph.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    ConstDirectiveNode,
    DirectiveDefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueDefinitionNode,
    EnumValueNode,
    FieldDefinitionNode,
    FieldNode,
    GraphQLError,
    InlineFragmentNode,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    NamedTypeNode,
    NameNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    parse,
    parse_const_value,
    parse_type,
)

from supergraph.compose import fieldset, specs
from supergraph.compose.merge import (
    FieldInGraph,
    MergedArgument,
    MergedDirective,
    MergedEnum,
    MergedField,
    MergedInputObject,
    MergedInterface,
    MergedObject,
    MergedSchema,
    MergedScalar,
    MergedUnion,
    ObjectInGraph,
)
from supergraph.compose.model import EXECUTABLE_LOCATIONS, ArgKind, Deprecation
from supergraph.compose.printer import print_node


@dataclass(frozen=True)
class JoinType:
    graph: str
    key: str | None = None
    extension: bool = False
    resolvable: bool = True
    is_interface_object: bool = False


@dataclass(frozen=True)
class JoinField:
    graph: str | None = None
    type: str | None = None
    override: str | None = None
    override_label: str | None = None
    used_overridden: bool = False
    external: bool = False
    provides: str | None = None
    requires: str | None = None

    @property
    def is_plain(self) -> bool:
        return not (
            self.external
            or self.override
            or self.override_label
            or self.provides
            or self.requires
            or self.used_overridden
            or self.type
        )


@dataclass
class _Element:
    """What `_directives` needs to know about any element of the supergraph."""

    directives: Sequence[ConstDirectiveNode] = ()
    join_types: Sequence[JoinType] = ()
    join_implements: Sequence[tuple[str, str]] = ()
    join_fields: Sequence[JoinField] = ()
    union_members: Sequence[tuple[str, str]] = ()
    enum_values: Sequence[str] = ()
    tags: Iterable[str] = ()
    inaccessible: bool = False
    deprecated: Deprecation | None = None
    specified_by: str | None = None


def build_supergraph(merged: MergedSchema) -> DocumentNode:
    """The supergraph document: the link/join core, then every merged type."""
    definitions: list[Any] = [_join_graph_enum(merged)]
    definitions.extend(_directive_node(d) for d in _kept_directives(merged))
    definitions.extend(_scalar_node(s) for s in merged.scalars.values())
    pruned = _pruned_field_sets(merged)
    usage = _RequiresUsage.build(merged, pruned)
    definitions.extend(
        _ObjectBuilder(merged, o, pruned, usage).node() for o in merged.objects.values()
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


# -- AST helpers ------------------------------------------------------------------------------


def _name(value: str) -> NameNode:
    return NameNode(value=value)


def _description(text: str | None) -> StringValueNode | None:
    return StringValueNode(value=text, block=True) if text else None


def _directive(name: str, *arguments: tuple[str, Any]) -> ConstDirectiveNode:
    return ConstDirectiveNode(
        name=_name(name),
        arguments=tuple(ArgumentNode(name=_name(n), value=v) for n, v in arguments),
    )


def _string(value: str) -> StringValueNode:
    return StringValueNode(value=value, block=False)


def _enum(value: str) -> EnumValueNode:
    return EnumValueNode(value=value)


def _true() -> BooleanValueNode:
    return BooleanValueNode(value=True)


def _join_type(join: JoinType) -> ConstDirectiveNode:
    arguments: list[tuple[str, Any]] = [("graph", _enum(join.graph))]
    if join.key:
        arguments.append(("key", _string(join.key)))
    if join.resolvable is False:
        arguments.append(("resolvable", BooleanValueNode(value=False)))
    if join.is_interface_object:
        arguments.append(("isInterfaceObject", _true()))
    if join.extension:
        arguments.append(("extension", _true()))
    return _directive("join__type", *arguments)


def _join_field(join: JoinField) -> ConstDirectiveNode:
    arguments: list[tuple[str, Any]] = []
    if join.graph:
        arguments.append(("graph", _enum(join.graph)))
    if join.type:
        arguments.append(("type", _string(join.type)))
    if join.override:
        arguments.append(("override", _string(join.override)))
    if join.override_label:
        arguments.append(("overrideLabel", _string(join.override_label)))
    if join.used_overridden:
        arguments.append(("usedOverridden", _true()))
    if join.external:
        arguments.append(("external", _true()))
    if join.provides:
        arguments.append(("provides", _string(join.provides)))
    if join.requires:
        arguments.append(("requires", _string(join.requires)))
    return _directive("join__field", *arguments)


def _directives(element: _Element) -> tuple[ConstDirectiveNode, ...]:
    """Every directive an element carries, in the reference's order."""
    unique: dict[str, ConstDirectiveNode] = {}
    for directive in element.directives:
        unique.setdefault(print_node(directive), directive)
    result = list(unique.values())
    result.extend(_join_type(join) for join in element.join_types)
    result.extend(
        _directive("join__implements", ("graph", _enum(g)), ("interface", _string(i)))
        for g, i in element.join_implements
    )
    result.extend(_join_field(join) for join in element.join_fields)
    result.extend(
        _directive("join__unionMember", ("graph", _enum(g)), ("member", _string(m)))
        for g, m in element.union_members
    )
    result.extend(_directive("join__enumValue", ("graph", _enum(g))) for g in element.enum_values)
    result.extend(_directive("tag", ("name", _string(tag))) for tag in element.tags)
    if element.inaccessible:
        result.append(_directive("inaccessible"))
    if element.deprecated is not None:
        reason = element.deprecated.reason
        result.append(
            _directive("deprecated", ("reason", _string(reason)))
            if reason is not None
            else _directive("deprecated")
        )
    if element.specified_by is not None:
        result.append(_directive("specifiedBy", ("url", _string(element.specified_by))))
    return tuple(result)


def _default_value(value: str | None, kind: ArgKind) -> Any:
    if value is None:
        return None
    if kind is ArgKind.ENUM:
        return _enum(value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value)
    return parse_const_value(value)


def _argument_node(arg: MergedArgument) -> InputValueDefinitionNode:
    return InputValueDefinitionNode(
        name=_name(arg.name),
        type=parse_type(arg.type),
        default_value=_default_value(arg.default_value, arg.kind),
        description=_description(arg.description),
        directives=_directives(
            _Element(
                directives=arg.directives,
                tags=arg.tags,
                inaccessible=arg.inaccessible,
                deprecated=arg.deprecated,
            )
        ),
    )


def _shared_arguments(merged_field: MergedField) -> tuple[InputValueDefinitionNode, ...]:
    """Arguments every subgraph defining the field agrees to have."""
    return tuple(
        _argument_node(arg)
        for arg in merged_field.args.values()
        if len(arg.by_graph) == len(merged_field.by_graph)
    )


# -- join__Graph, directives, scalars ----------------------------------------------------------


def _join_graph_enum(merged: MergedSchema) -> EnumTypeDefinitionNode:
    return EnumTypeDefinitionNode(
        name=_name("join__Graph"),
        directives=(),
        values=tuple(
            EnumValueDefinitionNode(
                name=_name(graph),
                directives=(
                    _directive(
                        "join__graph",
                        ("name", _string(subgraph.name)),
                        ("url", _string(subgraph.url)),
                    ),
                ),
            )
            for graph, subgraph in merged.subgraphs.items()
        ),
    )


def _kept_directives(merged: MergedSchema) -> list[MergedDirective]:
    """Composed directives, and executable ones every subgraph defines identically."""
    kept: list[MergedDirective] = []
    for directive in merged.directives.values():
        if directive.is_executable and directive.by_graph:
            identical = all(
                len(arg.by_graph) == len(merged.subgraphs)
                and all(a.type == arg.type for a in arg.by_graph.values())
                for arg in directive.args.values()
            )
            if not identical:
                continue
            for location in list(directive.locations):
                if location not in EXECUTABLE_LOCATIONS:
                    if not directive.composed:
                        del directive.locations[location]
                elif any(location not in s.locations for s in directive.by_graph.values()):
                    del directive.locations[location]
            if not directive.locations:
                continue
        kept.append(directive)
    return kept


def _directive_node(directive: MergedDirective) -> DirectiveDefinitionNode:
    return DirectiveDefinitionNode(
        name=_name(directive.name),
        locations=tuple(_name(location) for location in directive.locations),
        repeatable=directive.repeatable,
        arguments=tuple(_argument_node(arg) for arg in directive.args.values()),
    )


def _scalar_node(scalar: MergedScalar) -> ScalarTypeDefinitionNode:
    return ScalarTypeDefinitionNode(
        name=_name(scalar.name),
        description=_description(scalar.description),
        directives=_directives(
            _Element(
                directives=scalar.directives,
                join_types=[JoinType(graph) for graph in scalar.by_graph],
                tags=scalar.tags,
                inaccessible=scalar.inaccessible,
                specified_by=scalar.specified_by,
            )
        ),
    )


# -- requires / provides: key fields are implied, so the supergraph leaves them out -----------


def _leaf_paths(selection_set: SelectionSetNode, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            path = f"{prefix}.{selection.name.value}" if prefix else selection.name.value
            if selection.selection_set is not None:
                paths |= _leaf_paths(selection.selection_set, path)
            else:
                paths.add(path)
    return paths


def _common_key_paths(keys: Iterable[str]) -> set[str]:
    common: set[str] | None = None
    for key in keys:
        try:
            paths = _leaf_paths(fieldset.parse_field_set(key))
        except GraphQLError:
            continue
        common = paths if common is None else common & paths
    return common or set()


def _without_paths(
    selection_set: SelectionSetNode, removable: set[str], prefix: str
) -> SelectionSetNode:
    kept: list[Any] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode) and selection.selection_set is not None:
            inner = _without_paths(
                selection.selection_set, removable, f"{prefix}.{selection.name.value}"
            )
            kept.append(
                FieldNode(
                    alias=selection.alias,
                    name=selection.name,
                    arguments=selection.arguments,
                    directives=selection.directives,
                    selection_set=inner,
                )
            )
        elif isinstance(selection, FieldNode):
            path = f"{prefix}.{selection.name.value}" if prefix else selection.name.value
            if path not in removable:
                kept.append(selection)
        else:
            kept.append(selection)
    return SelectionSetNode(selections=tuple(kept))


def _prune(fields: str, removable: set[str]) -> str:
    try:
        selection = fieldset.parse_field_set(fields)
    except GraphQLError:
        return fields
    return fieldset.print_field_set(_without_paths(selection, removable, ""))


@dataclass
class _PrunedFieldSets:
    """Per object, field and graph: `@requires`/`@provides` with implied key fields removed."""

    requires: dict[tuple[str, str, str], str | None] = field(default_factory=dict)
    provides: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def of(self, type_name: str, field_name: str, graph: str, meta: FieldInGraph) -> FieldInGraph:
        coordinate = (type_name, field_name, graph)
        if coordinate not in self.requires and coordinate not in self.provides:
            return meta
        return FieldInGraph(
            **{
                **meta.__dict__,
                "requires": self.requires.get(coordinate, meta.requires),
                "provides": self.provides.get(coordinate, meta.provides),
            }
        )


def _pruned_field_sets(merged: MergedSchema) -> _PrunedFieldSets:
    pruned = _PrunedFieldSets()
    for obj in merged.objects.values():
        for merged_field in obj.fields.values():
            for graph, meta in merged_field.by_graph.items():
                coordinate = (obj.name, merged_field.name, graph)
                if meta.requires:
                    keys = _common_key_paths(k.fields for k in obj.by_graph[graph].keys)
                    requires = _prune(meta.requires, keys)
                    pruned.requires[coordinate] = requires if requires.strip() else None
                if meta.provides:
                    target_name = fieldset.named_type(merged_field.type)
                    target: MergedObject | MergedInterface | None = merged.objects.get(
                        target_name
                    ) or merged.interfaces.get(target_name)
                    if target is None:
                        continue
                    in_graph = target.by_graph.get(graph)
                    keys = (
                        _common_key_paths(k.fields for k in in_graph.keys)
                        if in_graph is not None and in_graph.extension
                        else set()
                    )
                    pruned.provides[coordinate] = _prune(meta.provides, keys)
    return pruned


@dataclass
class _Usage:
    actively_required: bool = False
    only_overridden_required: bool = False


@dataclass
class _RequiresUsage:
    """Which fields some `@requires` needs, per graph, and whether only from overridden ones."""

    by_coordinate: dict[str, dict[str, _Usage]] = field(default_factory=dict)

    @classmethod
    def build(cls, merged: MergedSchema, pruned: _PrunedFieldSets) -> _RequiresUsage:
        usage = cls()
        # The reference builds this index while writing its first object type, the only one
        # whose field sets it has pruned by then; the others still count their key fields.
        first = next(iter(merged.objects), None)
        for obj in merged.objects.values():
            for merged_field in obj.fields.values():
                overridden = {
                    merged.graph_of(meta.override)
                    for meta in merged_field.by_graph.values()
                    if meta.override
                }
                for graph, meta in merged_field.by_graph.items():
                    requires = meta.requires
                    if obj.name == first:
                        requires = pruned.requires.get((obj.name, merged_field.name, graph))
                    if not requires:
                        continue
                    try:
                        selection = fieldset.parse_field_set(requires)
                    except GraphQLError:
                        continue
                    usage._mark(merged, obj, selection, graph, graph in overridden)
        return usage

    def _mark(
        self,
        merged: MergedSchema,
        current: MergedObject | MergedInterface,
        selection_set: SelectionSetNode,
        graph: str,
        from_overridden: bool,
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found = current.fields.get(selection.name.value)
                if found is None:
                    continue
                usage = self.by_coordinate.setdefault(
                    f"{current.name}.{found.name}", {}
                ).setdefault(graph, _Usage())
                if from_overridden:
                    usage.only_overridden_required = True
                else:
                    usage.actively_required = True
                if selection.selection_set is None:
                    continue
                output = fieldset.named_type(found.type)
                nested = merged.objects.get(output) or merged.interfaces.get(output)
                if nested is not None:
                    self._mark(merged, nested, selection.selection_set, graph, from_overridden)
            elif isinstance(selection, InlineFragmentNode):
                target: MergedObject | MergedInterface | None = current
                if selection.type_condition is not None:
                    condition = selection.type_condition.name.value
                    target = merged.objects.get(condition) or merged.interfaces.get(condition)
                if target is not None:
                    self._mark(merged, target, selection.selection_set, graph, from_overridden)

    def _in(self, coordinate: str, graph: str) -> _Usage | None:
        return self.by_coordinate.get(coordinate, {}).get(graph)

    def is_required(self, coordinate: str, graph: str, fallback: bool) -> bool:
        usage = self._in(coordinate, graph)
        if usage is not None and usage.actively_required:
            return True
        if usage is not None and usage.only_overridden_required:
            return False
        return fallback

    def only_overridden(self, coordinate: str, graph: str) -> bool:
        usage = self._in(coordinate, graph)
        return usage is not None and usage.only_overridden_required and not usage.actively_required


# -- object types --------------------------------------------------------------------------------


def is_federation_extension(meta: ObjectInGraph) -> bool:
    if not meta.extension:
        return False
    if meta.extension_type == "@extends":
        return True
    return not meta.has_definition


@dataclass
class _GraphJoinState:
    is_required: bool
    external: bool
    used_overridden: bool


class _ObjectBuilder:
    """One object type's node; the per-field rules are long, so they get a small class."""

    def __init__(
        self,
        merged: MergedSchema,
        obj: MergedObject,
        pruned: _PrunedFieldSets,
        usage: _RequiresUsage,
    ) -> None:
        self.merged = merged
        self.obj = obj
        self.pruned = pruned
        self.usage = usage
        self.is_query = obj.name == "Query"
        self.interface_field_graphs: dict[str, set[str]] = {}
        self.from_interface_objects: list[MergedField] = []
        for interface_name in obj.interfaces:
            interface = merged.interfaces.get(interface_name)
            if interface is None:
                continue
            for name, interface_field in interface.fields.items():
                self.interface_field_graphs.setdefault(name, set()).update(interface_field.by_graph)
                if interface.has_interface_object and not any(
                    f.name == name for f in self.from_interface_objects
                ):
                    self.from_interface_objects.append(interface_field)
        self.join_types = self._join_types()

    def _join_types(self) -> list[JoinType]:
        if self.is_query:
            return [JoinType(graph) for graph in self.merged.subgraphs]
        joins: list[JoinType] = []
        for graph, meta in self.obj.by_graph.items():
            if not self._keeps_graph(graph, meta):
                continue
            if meta.keys:
                extension = is_federation_extension(meta)
                joins.extend(
                    JoinType(graph, key.fields, extension, key.resolvable) for key in meta.keys
                )
            else:
                joins.append(JoinType(graph))
        return joins

    def _keeps_graph(self, graph: str, meta: ObjectInGraph) -> bool:
        """A subgraph that only mentions the type through unused `@external` fields drops out."""
        if meta.keys or meta.has_definition:
            return True
        for merged_field in self.obj.fields.values():
            in_graph = merged_field.by_graph.get(graph)
            if in_graph is None:
                continue
            coordinate = f"{self.obj.name}.{merged_field.name}"
            if (
                not in_graph.external
                or in_graph.provided
                or self.usage.is_required(coordinate, graph, in_graph.required)
                or (meta.extension and not self.usage.only_overridden(coordinate, graph))
                or self._used_overridden(merged_field, in_graph, graph)
            ):
                return True
        return False

    def _used_overridden(self, merged_field: MergedField, meta: FieldInGraph, graph: str) -> bool:
        in_interface = graph in self.interface_field_graphs.get(merged_field.name, set())
        non_external_key = meta.used_as_key and not meta.external
        overridden = bool(merged_field.override) and (
            self.merged.graph_of(merged_field.override or "") == graph
        )
        return overridden and (non_external_key or in_interface)

    def _external_on_join(
        self, meta: FieldInGraph, graph: str, only_overridden_requires: bool
    ) -> bool:
        if not meta.external or only_overridden_requires:
            return False
        if meta.provided:
            return True
        return not (meta.used_as_key and self.obj.by_graph[graph].extension)

    def node(self) -> ObjectTypeDefinitionNode:
        obj = self.obj
        if obj.is_entity:
            # An overriding, non-shareable definition brings its own description along.
            for merged_field in obj.fields.values():
                if not merged_field.description or not merged_field.override:
                    continue
                for in_graph in merged_field.by_graph.values():
                    if in_graph.override and not in_graph.shareable:
                        merged_field.description = in_graph.description
        fields = [self._field_node(f) for f in obj.fields.values()]
        fields.extend(
            self._interface_object_field_node(f)
            for f in self.from_interface_objects
            if f.name not in obj.fields
        )
        implements = (
            [
                (graph, interface)
                for graph, meta in obj.by_graph.items()
                for interface in meta.interfaces
            ]
            if obj.interfaces
            else []
        )
        return ObjectTypeDefinitionNode(
            name=_name(obj.name),
            description=_description(obj.description),
            interfaces=tuple(NamedTypeNode(name=_name(i)) for i in obj.interfaces),
            directives=_directives(
                _Element(
                    directives=obj.directives,
                    join_types=self.join_types,
                    join_implements=implements,
                    tags=obj.tags,
                    inaccessible=obj.inaccessible,
                )
            ),
            fields=tuple(fields),
        )

    def _interface_object_field_node(self, merged_field: MergedField) -> FieldDefinitionNode:
        return FieldDefinitionNode(
            name=_name(merged_field.name),
            type=parse_type(merged_field.type),
            description=_description(merged_field.description),
            arguments=_shared_arguments(merged_field),
            directives=_directives(
                _Element(
                    directives=merged_field.directives,
                    join_fields=[JoinField()],
                    tags=merged_field.tags,
                    inaccessible=merged_field.inaccessible,
                    deprecated=merged_field.deprecated,
                )
            ),
        )

    def _field_node(self, merged_field: MergedField) -> FieldDefinitionNode:
        joins = self._join_fields(merged_field)
        if len(joins) == 1 and len(self.join_types) == 1 and joins[0].is_plain:
            joins = []
        return FieldDefinitionNode(
            name=_name(merged_field.name),
            type=parse_type(merged_field.type),
            description=_description(merged_field.description),
            arguments=_shared_arguments(merged_field),
            directives=_directives(
                _Element(
                    directives=merged_field.directives,
                    join_fields=joins,
                    tags=merged_field.tags,
                    inaccessible=merged_field.inaccessible,
                    deprecated=merged_field.deprecated,
                )
            ),
        )

    def _join_fields(self, merged_field: MergedField) -> list[JoinField]:
        obj, merged = self.obj, self.merged
        coordinate = f"{obj.name}.{merged_field.name}"
        in_graphs = [
            (graph, self.pruned.of(obj.name, merged_field.name, graph, meta))
            for graph, meta in merged_field.by_graph.items()
        ]
        defined_everywhere = len(merged_field.by_graph) == (
            len(merged.subgraphs) if self.is_query else len(obj.by_graph)
        )
        differs_external = differs_override = differs_label = False
        differs_provides = differs_requires = differs_type = False
        for graph, meta in in_graphs:
            if meta.external:
                # Deliberately assigned, not or-ed: the last such subgraph decides.
                differs_external = (
                    obj.by_graph[graph].extension is not True if merged_field.used_as_key else True
                )
            differs_override = differs_override or meta.override is not None
            differs_label = differs_label or meta.override_label is not None
            differs_provides = differs_provides or meta.provides is not None
            differs_requires = differs_requires or meta.requires is not None
            differs_type = differs_type or meta.type != merged_field.type
        any_difference = (
            differs_external
            or differs_override
            or differs_label
            or differs_provides
            or differs_requires
            or differs_type
        )
        labels: dict[str, str] = {}
        overridden: set[str] | None = None
        if differs_override:
            overridden = set()
            for to_graph, meta in in_graphs:
                if not meta.override:
                    continue
                from_graph = merged.graph_of(meta.override)
                if from_graph is None:
                    continue
                overridden.add(from_graph)
                if meta.override_label:
                    labels[from_graph] = meta.override_label
                    labels[to_graph] = meta.override_label
        states: dict[str, _GraphJoinState] = {}
        for graph, meta in in_graphs:
            only = self.usage.only_overridden(coordinate, graph)
            states[graph] = _GraphJoinState(
                is_required=self.usage.is_required(coordinate, graph, meta.required),
                external=self._external_on_join(meta, graph, only),
                used_overridden=self._used_overridden(merged_field, meta, graph),
            )

        def emits(graph: str, meta: FieldInGraph, query: bool) -> bool:
            label = labels.get(graph)
            if query:
                shareable_source = (
                    meta.shareable and overridden is not None and (graph not in overridden)
                )
                return meta.override is not None or bool(label) or shareable_source
            state = states[graph]
            overridden_source = overridden is not None and graph in overridden
            return (
                (state.external and state.is_required)
                or meta.override_label is not None
                or bool(label)
                or state.used_overridden
                or (overridden_source and state.is_required and not state.external)
                or not overridden_source
            )

        def override_joins(query: bool) -> list[JoinField]:
            joins: list[JoinField] = []
            for graph, meta in in_graphs:
                if not emits(graph, meta, query):
                    continue
                state = states[graph]
                if query:
                    used = self._used_overridden(merged_field, meta, graph)
                    label, external = meta.override_label, meta.external
                else:
                    overridden_source = overridden is not None and graph in overridden
                    used = state.used_overridden or (
                        overridden_source and state.is_required and not state.external
                    )
                    label, external = labels.get(graph), state.external
                joins.append(
                    JoinField(
                        graph=graph,
                        type=meta.type if differs_type else None,
                        override=meta.override,
                        override_label=label,
                        used_overridden=used,
                        external=external,
                        provides=meta.provides,
                        requires=meta.requires,
                    )
                )
            return joins

        if self.is_query:
            if differs_override and len(merged.subgraphs) > 1:
                return override_joins(query=True)
            if len(merged.subgraphs) > 1 and not defined_everywhere:
                return [
                    JoinField(graph=graph, provides=meta.provides if differs_provides else None)
                    for graph, meta in in_graphs
                ]
            return []
        if differs_override:
            joins = override_joins(query=False)
            if (
                defined_everywhere
                and len(joins) == 1
                and len(self.join_types) == 1
                and self.join_types[0].graph == joins[0].graph
            ):
                return []
            return joins
        if defined_everywhere and not any_difference:
            return []
        return self._plain_joins(merged_field, in_graphs, states, differs_type)

    def _plain_joins(
        self,
        merged_field: MergedField,
        in_graphs: Sequence[tuple[str, FieldInGraph]],
        states: dict[str, _GraphJoinState],
        differs_type: bool,
    ) -> list[JoinField]:
        coordinate = f"{self.obj.name}.{merged_field.name}"
        joins: list[JoinField] = []
        for graph, meta in in_graphs:
            state = states[graph]
            in_interface = graph in self.interface_field_graphs.get(merged_field.name, set())
            join = JoinField(
                graph=graph,
                type=meta.type if differs_type else None,
                override=meta.override,
                override_label=meta.override_label,
                used_overridden=state.used_overridden,
                external=state.external,
                provides=meta.provides,
                requires=meta.requires,
            )
            has_metadata = bool(
                join.type or join.override or join.provides or join.requires or join.used_overridden
            )
            required_or_provided = meta.provided or state.is_required
            extension = self.obj.by_graph[graph].extension is True
            quiet = not has_metadata and not required_or_provided and not in_interface
            if state.external and extension and quiet:
                continue
            if (
                meta.external
                and not state.external
                and self.usage.only_overridden(coordinate, graph)
                and quiet
            ):
                continue
            joins.append(join)
        return joins


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
        fields.append(
            FieldDefinitionNode(
                name=_name(merged_field.name),
                type=parse_type(merged_field.type),
                description=_description(merged_field.description),
                arguments=_shared_arguments(merged_field),
                directives=_directives(
                    _Element(
                        directives=merged_field.directives,
                        join_fields=joins,
                        tags=merged_field.tags,
                        inaccessible=merged_field.inaccessible,
                        deprecated=merged_field.deprecated,
                    )
                ),
            )
        )
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
    implements = (
        [(graph, i) for graph, meta in interface.by_graph.items() for i in meta.interfaces]
        if interface.interfaces
        else []
    )
    return InterfaceTypeDefinitionNode(
        name=_name(interface.name),
        description=_description(interface.description),
        interfaces=tuple(NamedTypeNode(name=_name(i)) for i in interface.interfaces),
        directives=_directives(
            _Element(
                directives=interface.directives,
                join_types=join_types,
                join_implements=implements,
                tags=interface.tags,
                inaccessible=interface.inaccessible,
            )
        ),
        fields=tuple(fields),
    )


def _union_node(union: MergedUnion) -> UnionTypeDefinitionNode:
    return UnionTypeDefinitionNode(
        name=_name(union.name),
        description=_description(union.description),
        directives=_directives(
            _Element(
                directives=union.directives,
                join_types=[JoinType(graph) for graph in union.by_graph],
                union_members=[
                    (graph, member)
                    for graph, members in union.by_graph.items()
                    for member in members
                ],
                tags=union.tags,
                inaccessible=union.inaccessible,
            )
        ),
        types=tuple(NamedTypeNode(name=_name(m)) for m in union.members),
    )


def _enum_node(enum: MergedEnum) -> EnumTypeDefinitionNode:
    input_only = bool(enum.input_references) and not enum.output_references
    values = [
        value
        for value in enum.values.values()
        if not input_only or len(value.by_graph) == len(enum.by_graph)
    ]
    return EnumTypeDefinitionNode(
        name=_name(enum.name),
        description=_description(enum.description),
        directives=_directives(
            _Element(
                directives=enum.directives,
                join_types=[JoinType(graph) for graph in enum.by_graph],
                tags=enum.tags,
                inaccessible=enum.inaccessible,
            )
        ),
        values=tuple(
            EnumValueDefinitionNode(
                name=_name(value.name),
                description=_description(value.description),
                directives=_directives(
                    _Element(
                        directives=value.directives,
                        enum_values=list(value.by_graph),
                        tags=value.tags,
                        inaccessible=value.inaccessible,
                        deprecated=value.deprecated,
                    )
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
                name=_name(merged_field.name),
                type=parse_type(merged_field.type),
                description=_description(merged_field.description),
                default_value=parse_const_value(default) if default is not None else None,
                directives=_directives(
                    _Element(
                        directives=merged_field.directives,
                        join_fields=[JoinField(graph=g, type=m.type) for g, m in in_graphs]
                        if different
                        else [],
                        tags=merged_field.tags,
                        inaccessible=merged_field.inaccessible,
                        deprecated=merged_field.deprecated,
                    )
                ),
            )
        )
    return InputObjectTypeDefinitionNode(
        name=_name(input_object.name),
        description=_description(input_object.description),
        directives=_directives(
            _Element(
                directives=input_object.directives,
                join_types=[JoinType(graph) for graph in input_object.by_graph],
                tags=input_object.tags,
                inaccessible=input_object.inaccessible,
            )
        ),
        fields=tuple(fields),
    )


def type_definitions(document: DocumentNode) -> list[TypeDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, TypeDefinitionNode)]
