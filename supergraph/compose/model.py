"""One subgraph as composition sees it: its types and fields with their federation metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from graphql import (
    ConstDirectiveNode,
    DocumentNode,
    FieldDefinitionNode,
)

from supergraph.compose.links import FederationNames, Link

# A field or argument whose type has not been seen yet (only referenced by a field set).
MISSING = "MISSING"


class InputTypeKind(Enum):
    """What an input value's named type is: a scalar, an input object or an enum."""

    SCALAR = "SCALAR"
    OBJECT = "OBJECT"
    ENUM = "ENUM"


@dataclass(frozen=True)
class Deprecation:
    reason: str | None


@dataclass(frozen=True)
class Key:
    fields: str
    resolvable: bool


@dataclass(kw_only=True)
class SchemaElement:
    """What composition keeps of any type, field, argument or enum value besides its shape:
    its description, `@tag`s, `@inaccessible` and the composed directives applied to it."""

    description: str | None = None
    inaccessible: bool = False
    tags: dict[str, None] = field(default_factory=dict)
    directives: list[ConstDirectiveNode] = field(default_factory=list)


@dataclass
class InputValueState(SchemaElement):
    """An input value: an argument (of a field or a directive) or a field of an input object."""

    name: str
    type: str = MISSING
    kind: InputTypeKind = InputTypeKind.SCALAR
    default_value: str | None = None
    deprecated: Deprecation | None = None


@dataclass
class FieldState(SchemaElement):
    """A field of an object type or an interface (or of an `@interfaceObject`)."""

    name: str
    type: str = MISSING
    is_leaf: bool = False
    external: bool = False
    extension: bool = False
    used: bool = False
    required: bool = False
    provided: bool = False
    shareable: bool = False
    override: str | None = None
    override_label: str | None = None
    provides: str | None = None
    requires: str | None = None
    deprecated: Deprecation | None = None
    args: dict[str, InputValueState] = field(default_factory=dict)


@dataclass
class ObjectTypeState(SchemaElement):
    name: str
    fields: dict[str, FieldState] = field(default_factory=dict)
    fields_used_as_keys: set[str] = field(default_factory=set)
    keys: list[Key] = field(default_factory=list)
    interfaces: dict[str, None] = field(default_factory=dict)
    is_definition: bool = False
    extension: bool = False
    # "extend" for `extend type`, "@extends" for the directive.
    extension_type: str | None = None
    external: bool = False
    shareable: bool = False


@dataclass
class InterfaceTypeState(SchemaElement):
    name: str
    fields: dict[str, FieldState] = field(default_factory=dict)
    fields_used_as_keys: set[str] = field(default_factory=set)
    keys: list[Key] = field(default_factory=list)
    interfaces: dict[str, None] = field(default_factory=dict)
    implemented_by: dict[str, None] = field(default_factory=dict)
    is_definition: bool = False
    is_interface_object: bool = False
    extension: bool = False


@dataclass
class InputObjectTypeState(SchemaElement):
    name: str
    fields: dict[str, InputValueState] = field(default_factory=dict)
    is_definition: bool = False


@dataclass
class EnumValueState(SchemaElement):
    name: str
    deprecated: Deprecation | None = None


@dataclass
class EnumTypeState(SchemaElement):
    name: str
    values: dict[str, EnumValueState] = field(default_factory=dict)
    is_definition: bool = False
    # Schema coordinates using the enum as an input / output type, first one first.
    input_references: dict[str, None] = field(default_factory=dict)
    output_references: dict[str, None] = field(default_factory=dict)


@dataclass
class UnionTypeState(SchemaElement):
    name: str
    members: dict[str, None] = field(default_factory=dict)
    is_definition: bool = False


@dataclass
class ScalarTypeState(SchemaElement):
    name: str
    specified_by: str | None = None


EXECUTABLE_LOCATIONS = frozenset(
    {
        "QUERY",
        "MUTATION",
        "SUBSCRIPTION",
        "FIELD",
        "FRAGMENT_DEFINITION",
        "FRAGMENT_SPREAD",
        "INLINE_FRAGMENT",
        "VARIABLE_DEFINITION",
    }
)


@dataclass
class DirectiveState:
    name: str
    locations: dict[str, None] = field(default_factory=dict)
    repeatable: bool = False
    # Kept in the supergraph through `@composeDirective`.
    composed: bool = False
    args: dict[str, InputValueState] = field(default_factory=dict)

    @property
    def is_executable(self) -> bool:
        return any(location in EXECUTABLE_LOCATIONS for location in self.locations)


TypeState = (
    ObjectTypeState
    | InterfaceTypeState
    | InputObjectTypeState
    | EnumTypeState
    | UnionTypeState
    | ScalarTypeState
    | DirectiveState
)


@dataclass
class CompositeDefinition:
    """An object type or interface with all its extensions in this subgraph folded in."""

    name: str
    is_interface: bool
    is_extension: bool
    fields: list[FieldDefinitionNode] = field(default_factory=list)
    directives: list[ConstDirectiveNode] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)

    def field(self, name: str) -> FieldDefinitionNode | None:
        return next((f for f in self.fields if f.name.value == name), None)


@dataclass
class SubgraphDefinitions:
    """The subgraph's own definitions, indexed for walking field sets."""

    composites: dict[str, CompositeDefinition] = field(default_factory=dict)
    union_members: dict[str, list[str]] = field(default_factory=dict)
    leaf_types: set[str] = field(default_factory=set)
    directive_names: set[str] = field(default_factory=set)

    def composites_of(self, type_name: str) -> list[CompositeDefinition]:
        """What a selection on a field of type `type_name` selects from: the object type or
        interface itself, or the members of a union."""
        if type_name in self.composites:
            return [self.composites[type_name]]
        members = self.union_members.get(type_name, ())
        return [self.composites[member] for member in members if member in self.composites]


# Every dict keeps the order The Guild's composition first meets its elements in (see
# `subgraph.py`): that order decides the order of the supergraph.


@dataclass
class Subgraph:
    name: str
    url: str
    # The subgraph's value in the `join__Graph` enum.
    graph_id: str
    names: FederationNames
    document: DocumentNode
    definitions: SubgraphDefinitions
    types: dict[str, TypeState] = field(default_factory=dict)
    # Operation ("query", …) → the root type's name in this subgraph's SDL.
    roots: dict[str, str] = field(default_factory=dict)
    # Links to non-federation specs that import directives (for `@composeDirective`).
    links: list[Link] = field(default_factory=list)
    uses_tag: bool = False
    uses_inaccessible: bool = False

    @property
    def version(self) -> str:
        return self.names.version

    def object_type(self, name: str) -> ObjectTypeState | None:
        found = self.types.get(name)
        return found if isinstance(found, ObjectTypeState) else None

    def interface_type(self, name: str) -> InterfaceTypeState | None:
        found = self.types.get(name)
        return found if isinstance(found, InterfaceTypeState) else None
