"""The API schema: the supergraph as clients see it, without link/join machinery and without
anything marked `@inaccessible`."""

from __future__ import annotations

from typing import Any

from graphql import (
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    GraphQLSchema,
    InputValueDefinitionNode,
    NamedTypeNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    TypeDefinitionNode,
    build_ast_schema,
    parse,
)
from graphql.language import REMOVE, Visitor, visit

from supergraph.model.links import Feature, linked_features

# Linked features whose elements never reach clients.
_MACHINERY = {
    "link",
    "join",
    "inaccessible",
    "tag",
    "core",
    "authenticated",
    "requiresScopes",
    "policy",
    "cost",
    "listSize",
    "context",
}


def build_api_schema(sdl: str) -> GraphQLSchema:
    document = parse(sdl)
    features = linked_features(document)
    machinery = [f for name, f in features.items() if name in _MACHINERY]
    inaccessible = features.get("inaccessible")
    inaccessible_name = inaccessible.directive("inaccessible") if inaccessible else None
    hidden_types = _inaccessible_types(document, inaccessible_name)
    filtered = visit(document, _ApiFilter(machinery, inaccessible_name, hidden_types))
    return build_api_from_document(filtered)


def build_api_from_document(document: DocumentNode) -> GraphQLSchema:
    return build_ast_schema(document, assume_valid_sdl=True)


def _is_machinery(name: str, machinery: list[Feature]) -> bool:
    return any(f.owns_name(name) for f in machinery)


def _inaccessible_types(document: DocumentNode, inaccessible: str | None) -> set[str]:
    if inaccessible is None:
        return set()
    return {
        node.name.value
        for node in document.definitions
        if isinstance(node, TypeDefinitionNode)
        and any(d.name.value == inaccessible for d in node.directives or ())
    }


class _ApiFilter(Visitor):
    def __init__(
        self, machinery: list[Feature], inaccessible: str | None, hidden: set[str]
    ) -> None:
        super().__init__()
        self.machinery = machinery
        self.inaccessible = inaccessible
        self.hidden = hidden

    def _hidden_by_directive(self, node: Any) -> bool:
        return self.inaccessible is not None and any(
            d.name.value == self.inaccessible for d in node.directives or ()
        )

    def enter_schema_definition(self, node: SchemaDefinitionNode, *_: Any) -> Any:
        return SchemaDefinitionNode(
            description=node.description,
            directives=(),
            operation_types=node.operation_types,
        )

    def enter_schema_extension(self, node: SchemaExtensionNode, *_: Any) -> Any:
        return REMOVE if not node.operation_types else None

    def enter_directive_definition(self, node: DirectiveDefinitionNode, *_: Any) -> Any:
        return REMOVE if _is_machinery(node.name.value, self.machinery) else None

    def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
        return REMOVE if _is_machinery(node.name.value, self.machinery) else None

    def _enter_type(self, node: Any) -> Any:
        name = node.name.value
        if name in self.hidden or _is_machinery(name, self.machinery):
            return REMOVE
        return None

    def enter_object_type_definition(self, node: Any, *_: Any) -> Any:
        return self._enter_type(node)

    enter_interface_type_definition = enter_object_type_definition
    enter_union_type_definition = enter_object_type_definition
    enter_enum_type_definition = enter_object_type_definition
    enter_input_object_type_definition = enter_object_type_definition
    enter_scalar_type_definition = enter_object_type_definition
    enter_object_type_extension = enter_object_type_definition
    enter_interface_type_extension = enter_object_type_definition
    enter_union_type_extension = enter_object_type_definition
    enter_enum_type_extension = enter_object_type_definition
    enter_input_object_type_extension = enter_object_type_definition

    def enter_field_definition(self, node: FieldDefinitionNode, *_: Any) -> Any:
        if self._hidden_by_directive(node) or _base_name(node.type) in self.hidden:
            return REMOVE
        return None

    def enter_input_value_definition(self, node: InputValueDefinitionNode, *_: Any) -> Any:
        if self._hidden_by_directive(node) or _base_name(node.type) in self.hidden:
            return REMOVE
        return None

    def enter_enum_value_definition(self, node: EnumValueDefinitionNode, *_: Any) -> Any:
        return REMOVE if self._hidden_by_directive(node) else None

    def enter_named_type(self, node: NamedTypeNode, key: Any, parent: Any, *_: Any) -> Any:
        # Hidden members of unions and hidden interfaces in `implements` lists disappear.
        if node.name.value in self.hidden and isinstance(parent, tuple | list):
            return REMOVE
        return None


def _base_name(type_node: Any) -> str:
    while not isinstance(type_node, NamedTypeNode):
        type_node = type_node.type
    return type_node.name.value


__all__ = ["build_api_schema"]
