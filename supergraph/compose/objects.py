"""Object types: which subgraphs each one is in (`@join__type`) and, field by field, which
subgraphs resolve it and how (`@join__field`), following The Guild's composition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graphql import (
    FieldDefinitionNode,
    NamedTypeNode,
    ObjectTypeDefinitionNode,
)

from supergraph.compose.applied import (
    Applied,
    JoinField,
    JoinType,
    applied_directives,
    description_node,
    join_implements,
    name_node,
)
from supergraph.compose.field_nodes import field_node
from supergraph.compose.field_usage import PrunedFieldSets, RequiresUsage
from supergraph.compose.merge import (
    FieldInGraph,
    MergedField,
    MergedObject,
    MergedSchema,
    ObjectInGraph,
)


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


class ObjectBuilder:
    """One object type's node; the per-field rules are long, so they get a small class."""

    def __init__(
        self,
        merged: MergedSchema,
        obj: MergedObject,
        pruned: PrunedFieldSets,
        usage: RequiresUsage,
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

    def _description_of(self, merged_field: MergedField) -> str | None:
        """An overriding, non-shareable definition of an entity field brings its description."""
        description = merged_field.description
        if self.obj.is_entity and description and merged_field.override:
            for in_graph in merged_field.by_graph.values():
                if in_graph.override and not in_graph.shareable:
                    description = in_graph.description
        return description

    def node(self) -> ObjectTypeDefinitionNode:
        obj = self.obj
        fields = [self._field_node(f) for f in obj.fields.values()]
        fields.extend(
            self._interface_object_field_node(f)
            for f in self.from_interface_objects
            if f.name not in obj.fields
        )
        return ObjectTypeDefinitionNode(
            name=name_node(obj.name),
            description=description_node(obj.description),
            interfaces=tuple(NamedTypeNode(name=name_node(i)) for i in obj.interfaces),
            directives=applied_directives(
                Applied(obj, join_types=self.join_types, join_implements=join_implements(obj))
            ),
            fields=tuple(fields),
        )

    def _interface_object_field_node(self, merged_field: MergedField) -> FieldDefinitionNode:
        return field_node(merged_field, [JoinField()], merged_field.description)

    def _field_node(self, merged_field: MergedField) -> FieldDefinitionNode:
        joins = self._join_fields(merged_field)
        if len(joins) == 1 and len(self.join_types) == 1 and joins[0].is_plain:
            joins = []
        return field_node(merged_field, joins, self._description_of(merged_field))

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
