"""Composition rules across subgraphs, one function per rule, each returning its issues: Apollo's
error codes, worded as The Guild's composition words them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from supergraph.compose import fieldset
from supergraph.compose.issues import CompositionIssue
from supergraph.compose.merge import (
    FieldInGraph,
    MergedField,
    MergedInputValue,
    MergedInterface,
    MergedObject,
    MergedSchema,
)
from supergraph.compose.model import (
    DirectiveState,
    EnumTypeState,
    InputObjectTypeState,
    InterfaceTypeState,
    ObjectTypeState,
    ScalarTypeState,
    Subgraph,
    UnionTypeState,
)

SubgraphsRule = Callable[[Sequence[Subgraph]], list[CompositionIssue]]
SupergraphRule = Callable[[MergedSchema], list[CompositionIssue]]

_ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})


def and_list(items: Sequence[str], comma: bool = True, quote: str = "") -> str:
    """`"a"`, `"a" and "b"`, `"a", "b", and "c"`."""
    quoted = [f"{quote}{item}{quote}" for item in items]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + (", " if comma else " ") + "and " + quoted[-1]


def _plural(items: Sequence[object]) -> str:
    return "s" if len(items) > 1 else ""


def _names(merged: MergedSchema, graphs: Iterable[str]) -> tuple[str, ...]:
    return tuple(merged.name_of(graph) for graph in graphs)


def _groups(merged: MergedSchema, by_type: dict[str, list[str]]) -> list[str]:
    return [
        f'type "{type_}" in subgraph{_plural(graphs)} "' + '", "'.join(_names(merged, graphs)) + '"'
        for type_, graphs in by_type.items()
    ]


def _but(groups: Sequence[str], lead: str = "it has") -> str:
    first, second, *rest = groups
    return f"{lead} {first} but {second}" + (f" and {' and '.join(rest)}" if rest else "")


def _type_mismatch(
    merged: MergedSchema,
    code: str,
    coordinate: str,
    by_type: dict[str, list[str]],
    graphs: Iterable[str],
    element: str = "field",
) -> CompositionIssue:
    return CompositionIssue(
        code,
        f'Type of {element} "{coordinate}" is incompatible across subgraphs: '
        + _but(_groups(merged, by_type)),
        _names(merged, graphs),
        coordinate,
    )


# -- before merging --------------------------------------------------------------------------------


def has_query(subgraphs: Sequence[Subgraph]) -> list[CompositionIssue]:
    if any("query" in subgraph.roots for subgraph in subgraphs):
        return []
    return [
        CompositionIssue(
            "NO_QUERIES",
            "No queries found in any subgraph: a supergraph must have a query root type.",
            tuple(s.name for s in subgraphs),
        )
    ]


_KIND_NAMES: dict[type, str] = {
    ObjectTypeState: "Object",
    InterfaceTypeState: "Interface",
    UnionTypeState: "Union",
    EnumTypeState: "Enum",
    InputObjectTypeState: "InputObject",
    ScalarTypeState: "Scalar",
    DirectiveState: "Directive",
}


def same_type_kinds(subgraphs: Sequence[Subgraph]) -> list[CompositionIssue]:
    """A type name means the same kind of type everywhere (`@interfaceObject` aside)."""
    kinds: dict[str, dict[str, list[str]]] = {}
    interface_objects: set[str] = set()
    for subgraph in subgraphs:
        for name, state in subgraph.types.items():
            kind = _KIND_NAMES[type(state)]
            kinds.setdefault(name, {}).setdefault(kind, []).append(subgraph.name)
            if isinstance(state, InterfaceTypeState) and state.is_interface_object:
                interface_objects.add(name)
    issues: list[CompositionIssue] = []
    for name, by_kind in kinds.items():
        if len(by_kind) < 2 or name in interface_objects:
            continue
        groups = [
            f'{kind} Type in subgraph{_plural(graphs)} "' + '", "'.join(graphs) + '"'
            for kind, graphs in by_kind.items()
        ]
        issues.append(
            CompositionIssue(
                "TYPE_KIND_MISMATCH",
                f'Type "{name}" has mismatched kind: ' + _but(groups, "it is defined as"),
                tuple(g for graphs in by_kind.values() for g in graphs),
                name,
            )
        )
    return issues


SUBGRAPHS_RULES: Sequence[SubgraphsRule] = (has_query, same_type_kinds)


# -- types agree -----------------------------------------------------------------------------------


def _strip_non_null(type_: str) -> str:
    return type_.removesuffix("!")


def _strip_list(type_: str) -> str:
    return type_[type_.find("[") + 1 : type_.rfind("]")]


def _normalized_output(supergraph_type: str, local_type: str) -> str:
    """The subgraph's type, read with the supergraph's (more nullable) nullability."""
    merged, local = supergraph_type, local_type
    if not merged.endswith("!"):
        local = _strip_non_null(local)
    if merged.startswith("[") and local.startswith("["):
        inner_merged, inner_local = _strip_list(merged), _strip_list(local)
        if not inner_merged.endswith("!"):
            inner_local = _strip_non_null(inner_local)
        merged = f"[{inner_merged}]" + ("!" if merged.endswith("!") else "")
        local = f"[{inner_local}]" + ("!" if local.endswith("!") else "")
    return local if merged == local else local_type


def _normalized_input(supergraph_type: str, local_type: str) -> str:
    if _strip_non_null(supergraph_type) != _strip_non_null(local_type):
        return local_type
    if supergraph_type.endswith("!") and not local_type.endswith("!"):
        return local_type + "!"
    return local_type


def _output_field_types(
    merged: MergedSchema, type_name: str, merged_field: MergedField
) -> list[CompositionIssue]:
    by_type: dict[str, list[str]] = {}
    possible: dict[str, set[str]] = {}
    for graph, meta in merged_field.by_graph.items():
        named = fieldset.named_type(meta.type)
        state = merged.subgraphs[graph].types.get(named)
        if isinstance(state, UnionTypeState):
            possible.setdefault(named, set()).update(state.members)
        elif isinstance(state, InterfaceTypeState):
            possible.setdefault(named, set()).update(state.implemented_by)
        normalized = _normalized_output(merged_field.type, meta.type)
        by_type.setdefault(normalized, []).append(graph)
    if len(by_type) < 2:
        return []
    if len(possible) == 1:
        # A union or interface in one subgraph and one of its members in another is fine.
        ((abstract, members),) = possible.items()
        allowed = {abstract, *members}
        if all(fieldset.named_type(t) in allowed for t in by_type):
            return []
    coordinate = f"{type_name}.{merged_field.name}"
    return [
        _type_mismatch(merged, "FIELD_TYPE_MISMATCH", coordinate, by_type, merged_field.by_graph)
    ]


def _object_arguments(merged: MergedSchema) -> Iterator[tuple[str, MergedInputValue, list[str]]]:
    """Every argument of an object type's field: coordinate, argument, the field's subgraphs."""
    for obj in merged.objects.values():
        for merged_field in obj.fields.values():
            for arg in merged_field.args.values():
                coordinate = f"{obj.name}.{merged_field.name}({arg.name}:)"
                yield coordinate, arg, list(merged_field.by_graph)


def _input_fields(merged: MergedSchema) -> Iterator[tuple[str, MergedInputValue, list[str]]]:
    """Every input object field: coordinate, field, the input object's subgraphs."""
    for input_object in merged.inputs.values():
        for input_field in input_object.fields.values():
            coordinate = f"{input_object.name}.{input_field.name}"
            yield coordinate, input_field, list(input_object.by_graph)


def _input_value_types(
    merged: MergedSchema, value: MergedInputValue, code: str, coordinate: str, element: str
) -> list[CompositionIssue]:
    """An argument or input field has one type everywhere, but for the non-null merge took."""
    by_type: dict[str, list[str]] = {}
    for graph, meta in value.by_graph.items():
        by_type.setdefault(_normalized_input(value.type, meta.type), []).append(graph)
    if len(by_type) < 2:
        return []
    return [_type_mismatch(merged, code, coordinate, by_type, value.by_graph, element)]


def field_types_match(merged: MergedSchema) -> list[CompositionIssue]:
    """A field has one type everywhere; outputs may differ in nullability, inputs too."""
    issues: list[CompositionIssue] = []
    composites: list[MergedObject | MergedInterface] = [
        *merged.objects.values(),
        *merged.interfaces.values(),
    ]
    for composite in composites:
        for merged_field in composite.fields.values():
            issues.extend(_output_field_types(merged, composite.name, merged_field))
    for coordinate, input_field, _ in _input_fields(merged):
        issues.extend(
            _input_value_types(merged, input_field, "FIELD_TYPE_MISMATCH", coordinate, "field")
        )
    return issues


def argument_types_match(merged: MergedSchema) -> list[CompositionIssue]:
    issues: list[CompositionIssue] = []
    for coordinate, arg, _ in _object_arguments(merged):
        issues.extend(
            _input_value_types(merged, arg, "FIELD_ARGUMENT_TYPE_MISMATCH", coordinate, "argument")
        )
    return issues


def external_types_match(merged: MergedSchema) -> list[CompositionIssue]:
    issues: list[CompositionIssue] = []
    for obj in merged.objects.values():
        for merged_field in obj.fields.values():
            if merged_field.used_as_key:
                continue
            by_type: dict[str, list[str]] = {}
            equal: list[str] = []
            for graph, meta in merged_field.by_graph.items():
                if not meta.external or meta.type == merged_field.type:
                    equal.append(graph)
                else:
                    by_type.setdefault(meta.type, []).append(graph)
            if not by_type or not equal:
                continue
            coordinate = f"{obj.name}.{merged_field.name}"
            groups = [
                f'type "{t}" in subgraph{_plural(g)} {and_list(_names(merged, g), True, chr(34))}'
                for t, g in by_type.items()
            ]
            base = (
                f'type "{merged_field.type}" in subgraph{_plural(equal)} '
                f"{and_list(_names(merged, equal), True, chr(34))}"
            )
            issues.append(
                CompositionIssue(
                    "EXTERNAL_TYPE_MISMATCH",
                    f'Type of field "{coordinate}" is incompatible across subgraphs (where marked '
                    f"@external): it has {base} but " + " and ".join(groups),
                    _names(merged, merged_field.by_graph),
                    coordinate,
                )
            )
    return issues


def enum_values_match(merged: MergedSchema) -> list[CompositionIssue]:
    """Input-and-output enums agree on every value; input-only enums share at least one."""
    issues: list[CompositionIssue] = []
    for enum in merged.enums.values():
        total = len(enum.by_graph)
        if enum.input_references and enum.output_references:
            input_example = next(iter(enum.input_references))
            output_example = next(iter(enum.output_references))
            for value in enum.values.values():
                if len(value.by_graph) == total or value.inaccessible:
                    continue
                defined = _names(merged, value.by_graph)
                missing = _names(merged, (g for g in enum.by_graph if g not in value.by_graph))
                issues.append(
                    CompositionIssue(
                        "ENUM_VALUE_MISMATCH",
                        f'Enum type "{enum.name}" is used as both input type (for example, as '
                        f'type of "{input_example}") and output type (for example, as type of '
                        f'"{output_example}"), but value "{value.name}" is not defined in all the '
                        f'subgraphs defining "{enum.name}": "{value.name}" is defined in '
                        f'subgraph{_plural(defined)} "' + '", "'.join(defined) + '" but not in '
                        f'subgraph{_plural(missing)} "' + '", "'.join(missing) + '"',
                        _names(merged, enum.by_graph),
                        f"{enum.name}.{value.name}",
                    )
                )
        elif enum.input_references and not any(
            len(v.by_graph) == total for v in enum.values.values()
        ):
            issues.append(
                CompositionIssue(
                    "EMPTY_MERGED_ENUM_TYPE",
                    f'None of the values of enum type "{enum.name}" are defined consistently in '
                    "all the subgraphs defining that type. As only values common to all "
                    "subgraphs are merged, this would result in an empty type.",
                    _names(merged, enum.by_graph),
                    enum.name,
                )
            )
    return issues


def input_objects_not_empty(merged: MergedSchema) -> list[CompositionIssue]:
    return [
        CompositionIssue(
            "EMPTY_MERGED_INPUT_TYPE",
            f'None of the fields of input object type "{input_object.name}" are consistently '
            "defined in all the subgraphs defining that type. As only fields common to all "
            "subgraphs are merged, this would result in an empty type.",
            _names(merged, input_object.by_graph),
            input_object.name,
        )
        for input_object in merged.inputs.values()
        if not any(
            len(f.by_graph) == len(input_object.by_graph) for f in input_object.fields.values()
        )
    ]


def _required_everywhere(
    merged: MergedSchema,
    value: MergedInputValue,
    owner_graphs: Sequence[str],
    code: str,
    coordinate: str,
    element: str,
) -> list[CompositionIssue]:
    """A required argument or input field is in every subgraph that has its field or type."""
    if not value.type.endswith("!") or len(value.by_graph) == len(owner_graphs):
        return []
    required = [g for g, meta in value.by_graph.items() if meta.type.endswith("!")]
    missing = [g for g in owner_graphs if g not in value.by_graph]
    return [
        CompositionIssue(
            code,
            f'{element} "{coordinate}" is required in some subgraphs but does not appear in all '
            f'subgraphs: it is required in subgraph{_plural(required)} "'
            + '", "'.join(_names(merged, required))
            + f'" but does not appear in subgraph{_plural(missing)} "'
            + '", "'.join(_names(merged, missing))
            + '"',
            _names(merged, missing),
            coordinate,
        )
    ]


def required_input_values_everywhere(merged: MergedSchema) -> list[CompositionIssue]:
    issues: list[CompositionIssue] = []
    for coordinate, arg, graphs in _object_arguments(merged):
        code = "REQUIRED_ARGUMENT_MISSING_IN_SOME_SUBGRAPH"
        issues.extend(_required_everywhere(merged, arg, graphs, code, coordinate, "Argument"))
    for coordinate, input_field, graphs in _input_fields(merged):
        code = "REQUIRED_INPUT_FIELD_MISSING_IN_SOME_SUBGRAPH"
        element = "Input object field"
        issues.extend(_required_everywhere(merged, input_field, graphs, code, coordinate, element))
    return issues


# -- who resolves what ----------------------------------------------------------------------


def _interface_object_resolves(merged: MergedSchema, obj: MergedObject, field_name: str) -> bool:
    """Some `@interfaceObject` for an interface of `obj` resolves `field_name` itself."""
    for interface_name in obj.interfaces:
        interface = merged.interfaces.get(interface_name)
        if interface is None or not interface.has_interface_object:
            continue
        interface_field = interface.fields.get(field_name)
        for graph, in_graph in interface.by_graph.items():
            if not in_graph.is_interface_object or interface_field is None:
                continue
            meta = interface_field.by_graph.get(graph)
            if meta is not None and not meta.external:
                return True
    return False


def external_has_base(merged: MergedSchema) -> list[CompositionIssue]:
    """Some subgraph resolves every field others mark `@external`."""
    issues: list[CompositionIssue] = []
    for obj in merged.objects.values():
        for merged_field in obj.fields.values():
            everywhere_external = all(
                (meta.external and not obj.by_graph[graph].extension)
                if meta.used_as_key
                else meta.external
                for graph, meta in merged_field.by_graph.items()
            )
            if not everywhere_external or _interface_object_resolves(
                merged, obj, merged_field.name
            ):
                continue
            graphs = list(merged_field.by_graph)
            coordinate = f"{obj.name}.{merged_field.name}"
            issues.append(
                CompositionIssue(
                    "EXTERNAL_MISSING_ON_BASE",
                    f'Field "{coordinate}" is marked @external on all the subgraphs in which it '
                    f"is listed (subgraph{_plural(graphs)} "
                    f"{and_list(_names(merged, graphs), True, chr(34))}).",
                    _names(merged, graphs),
                    coordinate,
                )
            )
    return issues


def _resolving_graph(
    merged: MergedSchema, merged_field: MergedField, graph: str, meta: FieldInGraph
) -> bool:
    if meta.external:
        return False
    if meta.override:
        source = merged.graph_of(meta.override)
        if source is not None and source in merged_field.by_graph:
            return False
    return True


def field_sharing(merged: MergedSchema) -> list[CompositionIssue]:
    """A field resolved by several subgraphs is `@shareable` in each (or a key, or overridden)."""
    issues: list[CompositionIssue] = []
    for obj in merged.objects.values():
        subscription = any(
            merged.subgraphs[graph].roots.get("subscription") == obj.name for graph in obj.by_graph
        )
        for merged_field in obj.fields.values():
            coordinate = f"{obj.name}.{merged_field.name}"
            if subscription:
                if len(merged_field.by_graph) > 1:
                    issues.append(
                        CompositionIssue(
                            "INVALID_FIELD_SHARING",
                            "Fields on root level subscription object cannot be marked as "
                            "shareable",
                            _names(merged, merged_field.by_graph),
                            coordinate,
                        )
                    )
                continue
            if merged_field.used_as_key and all(
                m.used_as_key for m in merged_field.by_graph.values()
            ):
                continue
            resolving: list[str] = []
            non_shareable: list[str] = []
            via_interface_object: dict[str, str] = {}
            for graph, meta in merged_field.by_graph.items():
                if not _resolving_graph(merged, merged_field, graph, meta):
                    continue
                resolving.append(graph)
                if not (meta.shareable or meta.used_as_key):
                    non_shareable.append(graph)
            if non_shareable:
                for interface_name in obj.interfaces:
                    interface = merged.interfaces.get(interface_name)
                    if interface is None or not interface.has_interface_object:
                        continue
                    interface_field = interface.fields.get(merged_field.name)
                    if interface_field is None or interface_field.used_as_key:
                        continue
                    for graph, meta in interface_field.by_graph.items():
                        in_graph = interface.by_graph.get(graph)
                        if in_graph is None or not in_graph.is_interface_object:
                            continue
                        if not _resolving_graph(merged, merged_field, graph, meta):
                            continue
                        via_interface_object[graph] = interface_name
                        resolving.append(graph)
                        if not (meta.shareable or meta.used_as_key):
                            non_shareable.append(graph)
            if not non_shareable or len(resolving) < 2:
                continue
            described = [
                f'"{merged.name_of(g)}"'
                + (
                    f' (through @interfaceObject field "{via_interface_object[g]}.'
                    f'{merged_field.name}")'
                    if g in via_interface_object
                    else ""
                )
                for g in resolving
            ]
            where = (
                "all of them"
                if all(g in non_shareable for g in resolving)
                else f"subgraph{_plural(non_shareable)} "
                + and_list(_names(merged, non_shareable), True, '"')
            )
            issues.append(
                CompositionIssue(
                    "INVALID_FIELD_SHARING",
                    f'Non-shareable field "{coordinate}" is resolved from multiple subgraphs: it '
                    f"is resolved from subgraphs {and_list(described, False)} and defined as "
                    f"non-shareable in {where}",
                    _names(merged, resolving),
                    coordinate,
                )
            )
    return issues


def single_override(merged: MergedSchema) -> list[CompositionIssue]:
    """A field overridden from a subgraph is not itself overridden there."""
    issues: list[CompositionIssue] = []
    for obj in merged.objects.values():
        for merged_field in obj.fields.values():
            overriding = [(g, m) for g, m in merged_field.by_graph.items() if m.override]
            if len(overriding) < 2:
                continue
            for graph, meta in overriding:
                seen: set[str] = set()
                source = merged.graph_of(meta.override or "")
                while source is not None:
                    if source in seen:
                        issues.append(
                            CompositionIssue(
                                "OVERRIDE_SOURCE_HAS_OVERRIDE",
                                f'Field "{obj.name}.{merged_field.name}" on subgraph '
                                f'"{merged.name_of(graph)}" is also marked with directive '
                                f'@override in subgraph "{merged.name_of(source)}". Only one '
                                "@override directive is allowed per field.",
                                _names(merged, (graph, source)),
                                f"{obj.name}.{merged_field.name}",
                            )
                        )
                        break
                    seen.add(source)
                    in_source = merged_field.by_graph.get(source)
                    if in_source is None or not in_source.override:
                        break
                    source = merged.graph_of(in_source.override)
    return issues


def extensions_have_base(merged: MergedSchema) -> list[CompositionIssue]:
    return [
        CompositionIssue(
            "EXTENSION_WITH_NO_BASE",
            f'[{merged.name_of(graph)}] Type "{obj.name}" is an extension type, but there is no '
            f'type definition for "{obj.name}" in any subgraph.',
            (merged.name_of(graph),),
            obj.name,
        )
        for obj in merged.objects.values()
        if obj.name not in _ROOT_TYPES and not obj.has_definition
        for graph in obj.by_graph
    ]


def interface_fields_implemented(merged: MergedSchema) -> list[CompositionIssue]:
    issues: list[CompositionIssue] = []
    for obj in merged.objects.values():
        for interface_name in obj.interfaces:
            interface = merged.interfaces.get(interface_name)
            if interface is None:
                continue
            from_objects = {
                name
                for graph, in_graph in interface.by_graph.items()
                if in_graph.is_interface_object
                for name, interface_field in interface.fields.items()
                if (meta := interface_field.by_graph.get(graph)) is not None and not meta.external
            }
            for name, interface_field in interface.fields.items():
                if name in from_objects or name in obj.fields:
                    continue
                for graph, in_graph in obj.by_graph.items():
                    if interface_name not in in_graph.interfaces:
                        continue
                    declared = _names(merged, interface_field.by_graph)
                    where = (
                        f'subgraph "{declared[0]}"'
                        if len(declared) == 1
                        else "subgraphs " + ", ".join(f'"{g}"' for g in declared)
                    )
                    issues.append(
                        CompositionIssue(
                            "INTERFACE_FIELD_NO_IMPLEM",
                            f'Interface field "{interface_name}.{name}" is declared in {where} but '
                            f'type "{obj.name}", which implements "{interface_name}" in subgraph '
                            f'"{merged.name_of(graph)}" does not have field "{name}".',
                            (merged.name_of(graph),),
                            f"{obj.name}.{name}",
                        )
                    )
    return issues


def entity_interfaces_implemented(merged: MergedSchema) -> list[CompositionIssue]:
    """A subgraph with a resolvable key on an interface defines all its implementations."""
    issues: list[CompositionIssue] = []
    for interface in merged.interfaces.values():
        if not interface.is_entity or interface.has_interface_object:
            continue
        incomplete = any(
            in_graph.keys and not in_graph.implemented_by and not in_graph.is_interface_object
            for in_graph in interface.by_graph.values()
        )
        if not incomplete:
            continue
        for graph, in_graph in interface.by_graph.items():
            if not in_graph.keys:
                continue
            name = merged.name_of(graph)
            missing = sorted(
                t for t in interface.implemented_by if t not in in_graph.implemented_by
            )
            quoted = (
                and_list(missing, False, '"')
                if len(missing) > 2
                else " and ".join(f'"{t}"' for t in missing)
            )
            issues.append(
                CompositionIssue(
                    "INTERFACE_KEY_MISSING_IMPLEMENTATION_TYPE",
                    f'[{name}] Interface type "{interface.name}" has a resolvable key '
                    f'(@key(fields: "{in_graph.keys[0].fields}")) in subgraph "{name}" but that '
                    "subgraph is missing some of the supergraph implementation types of "
                    f'"{interface.name}". '
                    f'Subgraph "{name}" should define type{_plural(missing)} {quoted} (and have '
                    f'{"them" if len(missing) > 1 else "it"} implement "{interface.name}").',
                    (name,),
                    interface.name,
                )
            )
    return issues


def interface_object_has_interface(merged: MergedSchema) -> list[CompositionIssue]:
    return [
        CompositionIssue(
            "INTERFACE_OBJECT_USAGE_ERROR",
            f'Type "{interface.name}" is declared with @interfaceObject in all the subgraphs in '
            "which is is defined",
            _names(merged, interface.by_graph),
            interface.name,
        )
        for interface in merged.interfaces.values()
        if interface.has_interface_object
        and all(in_graph.is_interface_object for in_graph in interface.by_graph.values())
    ]


SUPERGRAPH_RULES: Sequence[SupergraphRule] = (
    interface_fields_implemented,
    extensions_have_base,
    field_types_match,
    argument_types_match,
    enum_values_match,
    single_override,
    external_has_base,
    input_objects_not_empty,
    required_input_values_everywhere,
    interface_object_has_interface,
    entity_interfaces_implemented,
    external_types_match,
    field_sharing,
)
