"""Applied directives as AST: `@join__type`, `@join__field`, … and the merged `@tag`,
`@inaccessible`, `@deprecated`, in the order the reference composition writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    ConstArgumentNode,
    ConstDirectiveNode,
    EnumValueNode,
    NameNode,
    StringValueNode,
)

from supergraph.compose.merge import MergedInterface, MergedObject
from supergraph.compose.model import Deprecation, SchemaElement
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
class Applied:
    """What `applied_directives` needs to know about any element of the supergraph: the
    element's own directives, tags and `@inaccessible`, and what composition adds."""

    element: SchemaElement
    join_types: Sequence[JoinType] = ()
    join_implements: Sequence[tuple[str, str]] = ()
    join_fields: Sequence[JoinField] = ()
    union_members: Sequence[tuple[str, str]] = ()
    enum_values: Sequence[str] = ()
    deprecated: Deprecation | None = None
    specified_by: str | None = None


def join_implements(composite: MergedObject | MergedInterface) -> list[tuple[str, str]]:
    """`(graph, interface)` for each `@join__implements` of an object type or interface."""
    if not composite.interfaces:
        return []
    return [
        (graph, interface)
        for graph, meta in composite.by_graph.items()
        for interface in meta.interfaces
    ]


def name_node(value: str) -> NameNode:
    return NameNode(value=value)


def description_node(text: str | None) -> StringValueNode | None:
    return StringValueNode(value=text, block=True) if text else None


def directive_node(name: str, *arguments: tuple[str, Any]) -> ConstDirectiveNode:
    return ConstDirectiveNode(
        name=name_node(name),
        arguments=tuple(ConstArgumentNode(name=name_node(n), value=v) for n, v in arguments),
    )


def string_node(value: str) -> StringValueNode:
    return StringValueNode(value=value, block=False)


def enum_node(value: str) -> EnumValueNode:
    return EnumValueNode(value=value)


def true_node() -> BooleanValueNode:
    return BooleanValueNode(value=True)


def join_type_node(join: JoinType) -> ConstDirectiveNode:
    arguments: list[tuple[str, Any]] = [("graph", enum_node(join.graph))]
    if join.key:
        arguments.append(("key", string_node(join.key)))
    if join.resolvable is False:
        arguments.append(("resolvable", BooleanValueNode(value=False)))
    if join.is_interface_object:
        arguments.append(("isInterfaceObject", true_node()))
    if join.extension:
        arguments.append(("extension", true_node()))
    return directive_node("join__type", *arguments)


def join_field_node(join: JoinField) -> ConstDirectiveNode:
    arguments: list[tuple[str, Any]] = []
    if join.graph:
        arguments.append(("graph", enum_node(join.graph)))
    if join.type:
        arguments.append(("type", string_node(join.type)))
    if join.override:
        arguments.append(("override", string_node(join.override)))
    if join.override_label:
        arguments.append(("overrideLabel", string_node(join.override_label)))
    if join.used_overridden:
        arguments.append(("usedOverridden", true_node()))
    if join.external:
        arguments.append(("external", true_node()))
    if join.provides:
        arguments.append(("provides", string_node(join.provides)))
    if join.requires:
        arguments.append(("requires", string_node(join.requires)))
    return directive_node("join__field", *arguments)


def applied_directives(applied: Applied) -> tuple[ConstDirectiveNode, ...]:
    """Every directive an element carries, in the reference's order."""
    unique: dict[str, ConstDirectiveNode] = {}
    for directive in applied.element.directives:
        unique.setdefault(print_node(directive), directive)
    result = list(unique.values())
    result.extend(join_type_node(join) for join in applied.join_types)
    result.extend(
        directive_node("join__implements", ("graph", enum_node(g)), ("interface", string_node(i)))
        for g, i in applied.join_implements
    )
    result.extend(join_field_node(join) for join in applied.join_fields)
    result.extend(
        directive_node("join__unionMember", ("graph", enum_node(g)), ("member", string_node(m)))
        for g, m in applied.union_members
    )
    result.extend(
        directive_node("join__enumValue", ("graph", enum_node(g))) for g in applied.enum_values
    )
    result.extend(directive_node("tag", ("name", string_node(tag))) for tag in applied.element.tags)
    if applied.element.inaccessible:
        result.append(directive_node("inaccessible"))
    if applied.deprecated is not None:
        reason = applied.deprecated.reason
        result.append(
            directive_node("deprecated", ("reason", string_node(reason)))
            if reason is not None
            else directive_node("deprecated")
        )
    if applied.specified_by is not None:
        result.append(directive_node("specifiedBy", ("url", string_node(applied.specified_by))))
    return tuple(result)
