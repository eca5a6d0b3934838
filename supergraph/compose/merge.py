"""Merge the subgraphs' types into one state that keeps, for every element, what each
subgraph said about it (`by_graph`): `build.py` writes that down, `validate.py` checks it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from supergraph.compose import specs
from supergraph.compose.graphs import ordered
from supergraph.compose.links import Link, LinkImport
from supergraph.compose.model import (
    Deprecation,
    DirectiveState,
    EnumTypeState,
    FieldState,
    InputObjectTypeState,
    InputTypeKind,
    InputValueState,
    InterfaceTypeState,
    Key,
    ObjectTypeState,
    ScalarTypeState,
    SchemaElement,
    Subgraph,
    UnionTypeState,
)


@dataclass
class InputValueInGraph:
    type: str
    default_value: str | None
    inaccessible: bool


@dataclass
class MergedInputValue(SchemaElement):
    """An argument (of a field or a directive) or an input object's field."""

    name: str
    type: str
    kind: InputTypeKind
    deprecated: Deprecation | None = None
    default_value: str | None = None
    by_graph: dict[str, InputValueInGraph] = field(default_factory=dict)


@dataclass
class FieldInGraph:
    type: str
    external: bool = False
    inaccessible: bool = False
    description: str | None = None
    override: str | None = None
    override_label: str | None = None
    provides: str | None = None
    requires: str | None = None
    provided: bool = False
    required: bool = False
    shareable: bool = False
    extension: bool = False
    used: bool = False
    used_as_key: bool = False


@dataclass
class MergedField(SchemaElement):
    name: str
    type: str
    is_leaf: bool = False
    used_as_key: bool = False
    override: str | None = None
    override_label: str | None = None
    deprecated: Deprecation | None = None
    args: dict[str, MergedInputValue] = field(default_factory=dict)
    by_graph: dict[str, FieldInGraph] = field(default_factory=dict)
    # Whether a subgraph that resolves the field itself has been merged yet.
    seen_non_external: bool = False


@dataclass
class ObjectInGraph:
    has_definition: bool
    extension: bool
    extension_type: str | None
    external: bool
    keys: list[Key]
    inaccessible: bool
    shareable: bool
    interfaces: dict[str, None]


@dataclass
class MergedObject(SchemaElement):
    name: str
    has_definition: bool = False
    is_entity: bool = False
    interfaces: dict[str, None] = field(default_factory=dict)
    by_graph: dict[str, ObjectInGraph] = field(default_factory=dict)
    fields: dict[str, MergedField] = field(default_factory=dict)


@dataclass
class InterfaceInGraph:
    extension: bool
    keys: list[Key]
    interfaces: dict[str, None]
    implemented_by: dict[str, None]
    is_interface_object: bool


@dataclass
class MergedInterface(SchemaElement):
    name: str
    has_definition: bool = False
    has_interface_object: bool = False
    is_entity: bool = False
    interfaces: dict[str, None] = field(default_factory=dict)
    implemented_by: dict[str, None] = field(default_factory=dict)
    by_graph: dict[str, InterfaceInGraph] = field(default_factory=dict)
    fields: dict[str, MergedField] = field(default_factory=dict)


@dataclass
class MergedInputObject(SchemaElement):
    name: str
    has_definition: bool = False
    by_graph: dict[str, bool] = field(default_factory=dict)
    fields: dict[str, MergedInputValue] = field(default_factory=dict)


@dataclass
class MergedEnumValue(SchemaElement):
    name: str
    deprecated: Deprecation | None = None
    by_graph: dict[str, bool] = field(default_factory=dict)


@dataclass
class MergedEnum(SchemaElement):
    name: str
    has_definition: bool = False
    input_references: dict[str, None] = field(default_factory=dict)
    output_references: dict[str, None] = field(default_factory=dict)
    by_graph: dict[str, bool] = field(default_factory=dict)
    values: dict[str, MergedEnumValue] = field(default_factory=dict)


@dataclass
class MergedUnion(SchemaElement):
    name: str
    has_definition: bool = False
    members: dict[str, None] = field(default_factory=dict)
    by_graph: dict[str, dict[str, None]] = field(default_factory=dict)


@dataclass
class MergedScalar(SchemaElement):
    name: str
    specified_by: str | None = None
    by_graph: dict[str, bool] = field(default_factory=dict)


@dataclass
class MergedDirective:
    name: str
    repeatable: bool = False
    is_executable: bool = False
    composed: bool = False
    locations: dict[str, None] = field(default_factory=dict)
    args: dict[str, MergedInputValue] = field(default_factory=dict)
    by_graph: dict[str, DirectiveState] = field(default_factory=dict)


@dataclass
class MergedSchema:
    """The supergraph before it is written down: every type with its per-subgraph views."""

    # Subgraphs by `join__Graph` value, in the enum's order.
    subgraphs: dict[str, Subgraph]
    directives: dict[str, MergedDirective] = field(default_factory=dict)
    scalars: dict[str, MergedScalar] = field(default_factory=dict)
    objects: dict[str, MergedObject] = field(default_factory=dict)
    interfaces: dict[str, MergedInterface] = field(default_factory=dict)
    unions: dict[str, MergedUnion] = field(default_factory=dict)
    enums: dict[str, MergedEnum] = field(default_factory=dict)
    inputs: dict[str, MergedInputObject] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    uses_tag: bool = False
    uses_inaccessible: bool = False

    def graph_of(self, subgraph_name: str) -> str | None:
        """The `join__Graph` value of the subgraph called `subgraph_name`."""
        return next((g for g, s in self.subgraphs.items() if s.name == subgraph_name), None)

    def name_of(self, graph: str) -> str:
        return self.subgraphs[graph].name

    @property
    def federation_version(self) -> str:
        return max(
            (s.version for s in self.subgraphs.values()),
            key=specs.version_number,
            default="v2.0",
        )


def merge(subgraphs: Sequence[Subgraph]) -> MergedSchema:
    merged = MergedSchema({s.graph_id: s for s in ordered(subgraphs)})
    for subgraph in merged.subgraphs.values():
        merged.uses_tag = merged.uses_tag or subgraph.uses_tag
        merged.uses_inaccessible = merged.uses_inaccessible or subgraph.uses_inaccessible
        skipped = specs.FEDERATION_TYPE_NAMES | subgraph.names.types
        for name, state in subgraph.types.items():
            if name in skipped:
                continue
            graph = subgraph.graph_id
            if isinstance(state, ObjectTypeState):
                _merge_object(merged, subgraph, state)
            elif isinstance(state, InterfaceTypeState):
                _merge_interface(merged, graph, state)
            elif isinstance(state, UnionTypeState):
                _merge_union(merged, graph, state)
            elif isinstance(state, EnumTypeState):
                _merge_enum(merged, graph, state)
            elif isinstance(state, InputObjectTypeState):
                _merge_input(merged, graph, state)
            elif isinstance(state, ScalarTypeState):
                _merge_scalar(merged, graph, state)
            elif isinstance(state, DirectiveState):
                _merge_directive(merged, graph, state)
    merged.links = merge_links([link for s in merged.subgraphs.values() for link in s.links])
    return merged


def _merge_element(target: SchemaElement, source: SchemaElement) -> None:
    """The first description stays; tags and composed directives add up; inaccessible in one
    subgraph is inaccessible in the supergraph."""
    target.description = target.description or source.description
    target.inaccessible = target.inaccessible or source.inaccessible
    target.tags.update(source.tags)
    target.directives.extend(source.directives)


def _merge_input_values(
    targets: dict[str, MergedInputValue],
    sources: dict[str, InputValueState],
    graph: str,
    *,
    first_non_null: bool,
) -> None:
    """Merge one subgraph's arguments or input fields into `targets`. Inputs: the strictest
    (non-null) type wins; for input fields the first non-null type stays, for arguments each
    non-null type replaces it, as in the reference."""
    for source in sources.values():
        target = targets.get(source.name)
        if target is None:
            target = targets[source.name] = MergedInputValue(source.name, source.type, source.kind)
        _merge_element(target, source)
        if source.type.endswith("!") and not (first_non_null and target.type.endswith("!")):
            target.type = source.type
        target.deprecated = target.deprecated or source.deprecated
        if source.default_value is not None:
            target.default_value = source.default_value
        target.kind = source.kind
        target.by_graph[graph] = InputValueInGraph(
            source.type, source.default_value, source.inaccessible
        )


def _merge_field(
    fields: dict[str, MergedField], source: FieldState, graph: str, used_as_key: bool
) -> MergedField:
    """Merge what object and interface fields merge alike; the caller merges the type (the
    rules differ) and records the subgraph's view."""
    merged_field = fields.get(source.name)
    if merged_field is None:
        merged_field = fields[source.name] = MergedField(source.name, source.type)
    _merge_element(merged_field, source)
    merged_field.is_leaf = merged_field.is_leaf or source.is_leaf
    merged_field.deprecated = merged_field.deprecated or source.deprecated
    merged_field.used_as_key = merged_field.used_as_key or used_as_key
    _merge_input_values(merged_field.args, source.args, graph, first_non_null=False)
    return merged_field


def _merge_object(merged: MergedSchema, subgraph: Subgraph, state: ObjectTypeState) -> None:
    graph = subgraph.graph_id
    target = merged.objects.get(state.name)
    if target is None:
        target = merged.objects[state.name] = MergedObject(state.name)
    _merge_element(target, state)
    target.has_definition = target.has_definition or state.is_definition
    target.interfaces.update(state.interfaces)
    target.is_entity = target.is_entity or bool(state.keys)
    target.by_graph[graph] = ObjectInGraph(
        has_definition=state.is_definition,
        extension=state.extension,
        extension_type=state.extension_type,
        external=state.external,
        keys=state.keys,
        inaccessible=state.inaccessible,
        shareable=state.shareable,
        interfaces=state.interfaces,
    )
    for source in state.fields.values():
        used_as_key = source.name in state.fields_used_as_keys
        merged_field = _merge_field(target.fields, source, graph, used_as_key)
        # Outputs: the first subgraph resolving the field sets its type, then nullable wins.
        force = not used_as_key and not source.external and not merged_field.seen_non_external
        if force or (not source.external and merged_field.type.rfind("!") > source.type.rfind("!")):
            merged_field.type = source.type
        if not source.external:
            merged_field.seen_non_external = True
        merged_field.override = source.override or merged_field.override
        merged_field.override_label = source.override_label or merged_field.override_label
        merged_field.by_graph[graph] = FieldInGraph(
            type=source.type,
            external=source.external,
            inaccessible=source.inaccessible,
            description=source.description,
            override=source.override,
            override_label=source.override_label,
            provides=source.provides,
            requires=source.requires,
            provided=source.provided,
            required=source.required,
            shareable=source.shareable,
            extension=source.extension,
            used=source.used,
            used_as_key=used_as_key,
        )


def _merge_interface(merged: MergedSchema, graph: str, state: InterfaceTypeState) -> None:
    target = merged.interfaces.get(state.name)
    if target is None:
        target = merged.interfaces[state.name] = MergedInterface(state.name)
    _merge_element(target, state)
    target.has_definition = target.has_definition or state.is_definition
    target.has_interface_object = target.has_interface_object or state.is_interface_object
    target.interfaces.update(state.interfaces)
    target.implemented_by.update(state.implemented_by)
    target.is_entity = target.is_entity or bool(state.keys)
    target.by_graph[graph] = InterfaceInGraph(
        extension=state.extension,
        keys=state.keys,
        interfaces=state.interfaces,
        implemented_by=state.implemented_by,
        is_interface_object=state.is_interface_object,
    )
    for source in state.fields.values():
        used_as_key = source.name in state.fields_used_as_keys
        merged_field = _merge_field(target.fields, source, graph, used_as_key)
        if not source.type.endswith("!") and merged_field.type.endswith("!"):
            merged_field.type = source.type
        merged_field.by_graph[graph] = FieldInGraph(
            type=source.type,
            external=source.external,
            override=source.override,
            override_label=source.override_label,
            provides=source.provides,
            requires=source.requires,
            shareable=source.shareable,
            used_as_key=used_as_key,
        )


def _merge_union(merged: MergedSchema, graph: str, state: UnionTypeState) -> None:
    target = merged.unions.get(state.name)
    if target is None:
        target = merged.unions[state.name] = MergedUnion(state.name)
    _merge_element(target, state)
    target.has_definition = target.has_definition or state.is_definition
    target.by_graph[graph] = state.members
    target.members.update(state.members)


def _merge_enum(merged: MergedSchema, graph: str, state: EnumTypeState) -> None:
    target = merged.enums.get(state.name)
    if target is None:
        target = merged.enums[state.name] = MergedEnum(state.name)
    _merge_element(target, state)
    target.has_definition = target.has_definition or state.is_definition
    target.input_references.update(state.input_references)
    target.output_references.update(state.output_references)
    target.by_graph[graph] = state.inaccessible
    for value in state.values.values():
        merged_value = target.values.get(value.name)
        if merged_value is None:
            merged_value = target.values[value.name] = MergedEnumValue(value.name)
        _merge_element(merged_value, value)
        merged_value.deprecated = merged_value.deprecated or value.deprecated
        merged_value.by_graph[graph] = value.inaccessible


def _merge_input(merged: MergedSchema, graph: str, state: InputObjectTypeState) -> None:
    target = merged.inputs.get(state.name)
    if target is None:
        target = merged.inputs[state.name] = MergedInputObject(state.name)
    _merge_element(target, state)
    target.has_definition = target.has_definition or state.is_definition
    target.by_graph[graph] = state.inaccessible
    _merge_input_values(target.fields, state.fields, graph, first_non_null=True)


def _merge_scalar(merged: MergedSchema, graph: str, state: ScalarTypeState) -> None:
    target = merged.scalars.get(state.name)
    if target is None:
        target = merged.scalars[state.name] = MergedScalar(state.name)
    _merge_element(target, state)
    target.specified_by = target.specified_by or state.specified_by
    target.by_graph[graph] = state.inaccessible


def _merge_directive(merged: MergedSchema, graph: str, state: DirectiveState) -> None:
    # Only executable directives and `@composeDirective`d ones reach the supergraph.
    if not state.composed and not state.is_executable:
        return
    target = merged.directives.get(state.name)
    if target is None:
        target = merged.directives[state.name] = MergedDirective(state.name)
    target.locations.update(state.locations)
    target.repeatable = target.repeatable or state.repeatable
    target.is_executable = target.is_executable or state.is_executable
    target.composed = target.composed or state.composed
    _merge_input_values(target.args, state.args, graph, first_non_null=False)
    target.by_graph[graph] = state


def merge_links(links: Sequence[Link]) -> list[Link]:
    """One link per spec: its highest version and every directive any subgraph imports."""
    grouped: dict[str, tuple[str | None, str, list[LinkImport]]] = {}
    for link in links:
        directives = [imported for imported in link.imports if imported.is_directive]
        existing = grouped.get(link.identity)
        if existing is None:
            if directives:
                grouped[link.identity] = (link.name, link.version or "", directives)
            continue
        name, version, imports = existing
        if link.version and specs.version_number(link.version) > specs.version_number(
            version or "v0"
        ):
            version = link.version
        for imported in directives:
            if not any(known.name == imported.name for known in imports):
                imports.append(imported)
        grouped[link.identity] = (link.name or name, version, imports)
    return [
        Link(identity, name, version or None, tuple(imports))
        for identity, (name, version, imports) in grouped.items()
    ]
