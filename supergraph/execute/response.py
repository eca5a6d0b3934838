"""Shapes the merged subgraph data into exactly what the client asked for: aliases kept, no
extra fields, `@skip`/`@include` applied, and nulls in non-null positions propagated up to
the nearest nullable parent. The operation is compiled once and cached with its plan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
)

from supergraph.execute.merge import ResponsePath
from supergraph.plan.planner import INTROSPECTION_ROOT_FIELDS
from supergraph.selections import Field, InlineFragment, Selection

Condition = tuple[bool, ValueNode]  # (is_skip, the `if:` value)


@dataclass(slots=True)
class OutField:
    key: str
    name: str
    parent: str
    type: GraphQLOutputType
    kind: str  # typename | local | leaf | enum | composite
    conditions: tuple[Condition, ...] = ()
    enum_values: frozenset[str] | None = None
    selection: OutSelection | None = None


@dataclass(slots=True)
class OutFragment:
    types: frozenset[str] | None
    conditions: tuple[Condition, ...]
    items: list[OutField | OutFragment]


@dataclass(slots=True)
class OutSelection:
    items: list[OutField | OutFragment]
    # No fragments, conditions or repeated keys: fields can be read off directly.
    simple: bool = False
    by_key: dict[str, list[OutField]] = field(default_factory=dict)


def _conditions(directives: tuple[DirectiveNode, ...]) -> tuple[Condition, ...]:
    result: list[Condition] = []
    for directive in directives:
        name = directive.name.value
        if name in ("skip", "include"):
            for argument in directive.arguments or ():
                if argument.name.value == "if":
                    result.append((name == "skip", argument.value))
    return tuple(result)


def compile_selection(
    schema: GraphQLSchema, parent: str, selections: list[Selection]
) -> OutSelection:
    parent_type = schema.type_map[parent]
    items: list[OutField | OutFragment] = []
    for selection in selections:
        if isinstance(selection, Field):
            items.append(_compile_field(schema, parent, parent_type, selection))
        else:
            items.append(_compile_fragment(schema, parent, selection))
    result = OutSelection(items)
    keys = [i.key for i in items if isinstance(i, OutField)]
    if all(isinstance(i, OutField) and not i.conditions for i in items) and len(keys) == len(
        set(keys)
    ):
        result.simple = True
        result.by_key = {i.key: [i] for i in items if isinstance(i, OutField)}
    return result


def _compile_field(
    schema: GraphQLSchema, parent: str, parent_type: Any, selection: Field
) -> OutField:
    conditions = _conditions(selection.directives)
    if selection.name == "__typename":
        return OutField(
            selection.response_key,
            "__typename",
            parent,
            GraphQLNonNull(GraphQLString),
            "typename",
            conditions,
        )
    if selection.name in INTROSPECTION_ROOT_FIELDS:
        return OutField(
            selection.response_key,
            selection.name,
            parent,
            GraphQLString,
            "local",
            conditions,
        )
    definition = parent_type.fields[selection.name]
    named = get_named_type(definition.type)
    if is_composite_type(named):
        sub = compile_selection(schema, named.name, selection.selections or [])
        return OutField(
            selection.response_key,
            selection.name,
            parent,
            definition.type,
            "composite",
            conditions,
            selection=sub,
        )
    if isinstance(named, GraphQLEnumType):
        return OutField(
            selection.response_key,
            selection.name,
            parent,
            definition.type,
            "enum",
            conditions,
            enum_values=frozenset(named.values),
        )
    return OutField(
        selection.response_key, selection.name, parent, definition.type, "leaf", conditions
    )


def _compile_fragment(schema: GraphQLSchema, parent: str, fragment: InlineFragment) -> OutFragment:
    condition = fragment.type_condition or parent
    condition_type = schema.type_map[condition]
    if fragment.type_condition is None:
        types = None
    elif is_abstract_type(condition_type):
        types = frozenset(t.name for t in schema.get_possible_types(condition_type))
    else:
        types = frozenset({condition})
    inner = compile_selection(schema, condition, fragment.selections)
    return OutFragment(types, _conditions(fragment.directives), inner.items)


def compile_operation(
    schema: GraphQLSchema, operation: OperationDefinitionNode, selections: list[Selection]
) -> OutSelection:
    root = schema.get_root_type(operation.operation)
    assert root is not None
    return compile_selection(schema, root.name, selections)


_INVALID = object()


class ResponseShaper:
    def __init__(
        self,
        variables: Mapping[str, Any],
        error_paths: list[ResponsePath],
        local: Mapping[str, Any],
        *,
        suppress_null_errors: bool = False,
    ) -> None:
        self.variables = variables
        self.error_paths = error_paths
        self.local = local
        self.errors: list[dict[str, Any]] = []
        self.suppress_null_errors = suppress_null_errors

    def shape(
        self, data: Mapping[str, Any] | None, root: OutSelection, root_type: str
    ) -> dict[str, Any] | None:
        result = self._object(data or {}, root, root_type, [])
        return None if result is _INVALID else result

    def _passes(self, conditions: tuple[Condition, ...]) -> bool:
        for is_skip, value in conditions:
            if isinstance(value, BooleanValueNode):
                flag = value.value
            elif isinstance(value, VariableNode):
                flag = bool(self.variables.get(value.name.value))
            else:
                flag = False
            if flag == is_skip:
                return False
        return True

    def _collect(self, selection: OutSelection, typename: str) -> dict[str, list[OutField]]:
        if selection.simple:
            return selection.by_key
        fields: dict[str, list[OutField]] = {}

        def visit(items: list[OutField | OutFragment]) -> None:
            for item in items:
                if item.conditions and not self._passes(item.conditions):
                    continue
                if isinstance(item, OutField):
                    fields.setdefault(item.key, []).append(item)
                elif item.types is None or typename in item.types:
                    visit(item.items)

        visit(selection.items)
        return fields

    def _object(
        self, obj: Mapping[str, Any], selection: OutSelection, typename: str, path: ResponsePath
    ) -> Any:
        out: dict[str, Any] = {}
        for key, fields in self._collect(selection, typename).items():
            first = fields[0]
            if first.kind == "typename":
                out[key] = typename
                continue
            if first.kind == "local":
                out[key] = self.local.get(key)
                continue
            sub = first.selection
            if len(fields) > 1 and sub is not None:
                sub = OutSelection(
                    [item for f in fields if f.selection for item in f.selection.items]
                )
            value = self._value(obj.get(key), first.type, first, sub, [*path, key])
            if value is _INVALID:
                return _INVALID
            out[key] = value
        return out

    def _value(
        self,
        value: Any,
        type_: GraphQLOutputType,
        spec: OutField,
        sub: OutSelection | None,
        path: ResponsePath,
    ) -> Any:
        if isinstance(type_, GraphQLNonNull):
            completed = self._value(value, type_.of_type, spec, sub, path)
            if completed is None or completed is _INVALID:
                if completed is None:
                    self._null_error(spec, path)
                return _INVALID
            return completed
        if value is None:
            return None
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                self._error(f"Expected a list for {spec.parent}.{spec.name}.", path)
                return None
            items = []
            for i, item in enumerate(value):
                completed = self._value(item, type_.of_type, spec, sub, [*path, i])
                if completed is _INVALID:
                    return None
                items.append(completed)
            return items
        if spec.kind == "enum":
            if spec.enum_values is not None and value not in spec.enum_values:
                self._error(
                    f"Enum '{get_named_type(type_).name}' cannot represent value: {value!r}", path
                )
                return None
            return value
        if spec.kind == "leaf":
            return value
        if not isinstance(value, dict) or sub is None:
            self._error(f"Expected an object for {spec.parent}.{spec.name}.", path)
            return None
        named = get_named_type(type_)
        typename = (
            value.get("__typename") if not isinstance(named, GraphQLObjectType) else named.name
        )
        if not isinstance(typename, str):
            typename = named.name
        completed = self._object(value, sub, typename, path)
        return None if completed is _INVALID else completed

    def _covered(self, path: ResponsePath) -> bool:
        for error_path in self.error_paths:
            shorter = min(len(error_path), len(path))
            if error_path[:shorter] == path[:shorter]:
                return True
        return False

    def _null_error(self, spec: OutField, path: ResponsePath) -> None:
        if self.suppress_null_errors or self._covered(path):
            return
        self._error(f"Cannot return null for non-nullable field {spec.parent}.{spec.name}.", path)

    def _error(self, message: str, path: ResponsePath) -> None:
        self.errors.append({"message": message, "path": path})
