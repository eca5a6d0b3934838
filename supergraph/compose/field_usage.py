"""What the object rules need to know about field sets: `@requires`/`@provides` minus the key
fields they may leave out, and which fields some `@requires` depends on, per subgraph."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
)

from supergraph.compose import fieldset
from supergraph.compose.merge import (
    FieldInGraph,
    MergedInterface,
    MergedObject,
    MergedSchema,
)


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
class PrunedFieldSets:
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


def pruned_field_sets(merged: MergedSchema) -> PrunedFieldSets:
    pruned = PrunedFieldSets()
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
class RequiresUsage:
    """Which fields some `@requires` needs, per graph, and whether only from overridden ones."""

    by_coordinate: dict[str, dict[str, _Usage]] = field(default_factory=dict)

    @classmethod
    def build(cls, merged: MergedSchema, pruned: PrunedFieldSets) -> RequiresUsage:
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
