"""Read one subgraph SDL into the composition model (`model.Subgraph`), walking it in the
order graphql-js visits a document."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    BooleanValueNode,
    ConstDirectiveNode,
    DefinitionNode,
    DirectiveDefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    GraphQLError,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ScalarTypeDefinitionNode,
    ScalarTypeExtensionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    parse,
)

from supergraph.compose import fieldset, specs
from supergraph.compose.issues import CompositionError, CompositionIssue
from supergraph.compose.links import FederationNames, Link, LinkError, federation_names, links_of
from supergraph.compose.model import (
    CompositeDefinition,
    Deprecation,
    DirectiveState,
    EnumTypeState,
    EnumValueState,
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
    SubgraphDefinitions,
    TypeState,
    UnionTypeState,
)
from supergraph.compose.printer import print_node
from supergraph.compose.source import SubgraphSource

SPECIFIED_SCALARS = frozenset({"Int", "Float", "String", "Boolean", "ID"})
ROOT_NAMES = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}

# The subgraph protocol's own types, which a subgraph's `_service { sdl }` may include.
_PROTOCOL_TYPES = frozenset({"_Any", "_Entity", "_Service"})
_PROTOCOL_FIELDS = frozenset({"_service", "_entities"})


def read_subgraph(source: SubgraphSource, graph: str) -> Subgraph:
    """Read `source`; raises `CompositionError` when its SDL or `@link`s are unusable."""

    def fail(code: str, message: str) -> CompositionError:
        issue = CompositionIssue(code, f"[{source.name}] {message}", (source.name,))
        return CompositionError([issue])

    try:
        document = parse(source.sdl, no_location=True)
    except GraphQLError as error:
        raise fail("INVALID_GRAPHQL", error.message) from error
    try:
        links = links_of(document)
        names = federation_names(links)
    except LinkError as error:
        raise fail(error.code, str(error)) from error
    if names is None:
        raise fail(
            "UNSUPPORTED_FEATURE",
            "Only Federation 2 subgraphs are supported: add `extend schema @link(url: "
            '"https://specs.apollo.dev/federation/v2.9", import: [...])`.',
        )
    document = _without_protocol(document)
    definitions = index_definitions(document)
    subgraph = Subgraph(
        name=source.name,
        url=source.url,
        graph_id=graph,
        names=names,
        document=document,
        definitions=definitions,
        links=[
            link
            for link in links
            if link.identity != specs.FEDERATION_IDENTITY
            and any(imported.is_directive for imported in link.imports)
        ],
    )
    try:
        _Reader(subgraph).read()
    except _KindConflict as conflict:
        raise fail("INVALID_GRAPHQL", str(conflict)) from conflict
    return subgraph


def _without_protocol(document: DocumentNode) -> DocumentNode:
    """Drop `_Any`, `_Entity`, `_Service`, `_service` and `_entities`; put the schema and
    directive definitions first (stably), as the reference composition does."""
    query = "Query"
    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
            for operation in definition.operation_types or ():
                if operation.operation.value == "query":
                    query = operation.type.name.value
    kept: list[DefinitionNode] = []
    for definition in document.definitions:
        name = getattr(getattr(definition, "name", None), "value", None)
        if name in _PROTOCOL_TYPES and not isinstance(
            definition, DirectiveDefinitionNode | ObjectTypeExtensionNode
        ):
            continue
        if isinstance(definition, ObjectTypeDefinitionNode) and name == query:
            definition = ObjectTypeDefinitionNode(
                name=definition.name,
                description=definition.description,
                interfaces=definition.interfaces,
                directives=definition.directives,
                fields=_without_protocol_fields(definition.fields),
            )
        elif isinstance(definition, ObjectTypeExtensionNode) and name == query:
            definition = ObjectTypeExtensionNode(
                name=definition.name,
                interfaces=definition.interfaces,
                directives=definition.directives,
                fields=_without_protocol_fields(definition.fields),
            )
        kept.append(definition)

    def weight(definition: DefinitionNode) -> int:
        if isinstance(definition, SchemaDefinitionNode):
            return 0
        if isinstance(definition, SchemaExtensionNode):
            return 1
        return 2 if isinstance(definition, DirectiveDefinitionNode) else 3

    return DocumentNode(definitions=tuple(sorted(kept, key=weight)))


def _without_protocol_fields(
    fields: Sequence[FieldDefinitionNode] | None,
) -> tuple[FieldDefinitionNode, ...]:
    return tuple(f for f in fields or () if f.name.value not in _PROTOCOL_FIELDS)


def index_definitions(document: DocumentNode) -> SubgraphDefinitions:
    index = SubgraphDefinitions(leaf_types=set(SPECIFIED_SCALARS))
    for definition in document.definitions:
        if isinstance(definition, DirectiveDefinitionNode):
            index.directive_names.add(definition.name.value)
        elif isinstance(definition, UnionTypeDefinitionNode | UnionTypeExtensionNode):
            members = index.union_members.setdefault(definition.name.value, [])
            members.extend(t.name.value for t in definition.types or ())
        elif isinstance(
            definition,
            ScalarTypeDefinitionNode
            | ScalarTypeExtensionNode
            | EnumTypeDefinitionNode
            | EnumTypeExtensionNode,
        ):
            index.leaf_types.add(definition.name.value)
        elif isinstance(
            definition,
            ObjectTypeDefinitionNode
            | ObjectTypeExtensionNode
            | InterfaceTypeDefinitionNode
            | InterfaceTypeExtensionNode,
        ):
            is_extension = isinstance(
                definition, ObjectTypeExtensionNode | InterfaceTypeExtensionNode
            )
            found = index.composites.get(definition.name.value)
            if found is None:
                found = CompositeDefinition(
                    definition.name.value,
                    is_interface=isinstance(
                        definition, InterfaceTypeDefinitionNode | InterfaceTypeExtensionNode
                    ),
                    is_extension=is_extension,
                )
                index.composites[definition.name.value] = found
            elif not is_extension:
                found.is_extension = False
            found.fields.extend(definition.fields or ())
            found.directives.extend(definition.directives or ())
            found.interfaces.extend(i.name.value for i in definition.interfaces or ())
    return index


class _KindConflict(Exception):
    pass


def _argument(directive: ConstDirectiveNode, name: str) -> Any:
    return next((a.value for a in directive.arguments or () if a.name.value == name), None)


def _string_argument(directive: ConstDirectiveNode, name: str) -> str | None:
    value = _argument(directive, name)
    return value.value if isinstance(value, StringValueNode) else None


def _deprecation(directive: ConstDirectiveNode) -> Deprecation:
    return Deprecation(_string_argument(directive, "reason"))


def _type_string(node: Any) -> str:
    return print_node(node)


# Why the visiting order matters: the order in which types and fields are first met (a
# `@key` is met before the fields of its type, a `@provides` before the type it points
# into) decides the supergraph's order, and The Guild's composition records them that way.
class _Reader:
    """Fills `subgraph.types` by walking its document once, in visiting order."""

    def __init__(self, subgraph: Subgraph) -> None:
        self.subgraph = subgraph
        self.names: FederationNames = subgraph.names
        self.types: dict[str, TypeState] = subgraph.types
        self.definitions = subgraph.definitions
        document = subgraph.document
        self.enum_names = {
            d.name.value
            for d in document.definitions
            if isinstance(d, EnumTypeDefinitionNode | EnumTypeExtensionNode)
        }
        self.input_names = {
            d.name.value
            for d in document.definitions
            if isinstance(d, InputObjectTypeDefinitionNode | InputObjectTypeExtensionNode)
        }
        self.object_names = {
            d.name.value
            for d in document.definitions
            if isinstance(d, ObjectTypeDefinitionNode | ObjectTypeExtensionNode)
        }
        schema = next(
            (d for d in document.definitions if isinstance(d, SchemaDefinitionNode)), None
        )
        self.root_names = dict(ROOT_NAMES)
        for operation in schema.operation_types if schema else ():
            self.root_names[operation.operation.value] = operation.type.name.value
        self.renames = {local: ROOT_NAMES[op] for op, local in self.root_names.items()}
        self.composed: set[str] = set()
        self.key_fields: dict[tuple[str, str], None] = {}

    # -- state access, as The Guild's builders do it ---------------------------------------

    def _get(self, name: str, kind: type[Any]) -> Any:
        found = self.types.get(name)
        if found is None:
            found = kind(name)
            self.types[name] = found
        elif not isinstance(found, kind):
            raise _KindConflict(f'Type "{name}" is defined more than once with different kinds')
        return found

    def is_interface_object(self, name: str) -> bool:
        found = self.types.get(name)
        return isinstance(found, InterfaceTypeState) and found.is_interface_object

    def object_type(self, name: str) -> ObjectTypeState:
        state: ObjectTypeState = self._get(self.renames.get(name, name), ObjectTypeState)
        return state

    def interface_type(self, name: str) -> InterfaceTypeState:
        state: InterfaceTypeState = self._get(name, InterfaceTypeState)
        return state

    def composite(self, name: str) -> ObjectTypeState | InterfaceTypeState:
        """The object type, or the interface an `@interfaceObject` stands for."""
        if self.is_interface_object(name):
            return self.interface_type(name)
        return self.object_type(name)

    def composite_field(self, type_name: str, field_name: str) -> FieldState:
        return self._field_of(self.composite(type_name), field_name)

    def interface_field(self, type_name: str, field_name: str) -> FieldState:
        return self._field_of(self.interface_type(type_name), field_name)

    @staticmethod
    def _field_of(owner: ObjectTypeState | InterfaceTypeState, name: str) -> FieldState:
        found = owner.fields.get(name)
        if found is None:
            found = FieldState(name)
            owner.fields[name] = found
        return found

    def enum_type(self, name: str) -> EnumTypeState:
        state: EnumTypeState = self._get(name, EnumTypeState)
        return state

    def enum_value(self, type_name: str, value: str) -> EnumValueState:
        owner = self.enum_type(type_name)
        return owner.values.setdefault(value, EnumValueState(value))

    def input_type(self, name: str) -> InputObjectTypeState:
        state: InputObjectTypeState = self._get(name, InputObjectTypeState)
        return state

    def input_field(self, type_name: str, field_name: str) -> InputValueState:
        return self.input_type(type_name).fields.setdefault(field_name, InputValueState(field_name))

    def directive_state(self, name: str) -> DirectiveState:
        state: DirectiveState = self._get(name, DirectiveState)
        return state

    def canonical(self, directive: ConstDirectiveNode) -> str | None:
        return self.names.canonical(directive.name.value)

    def kind_of(self, type_name: str) -> InputTypeKind:
        if type_name in self.enum_names:
            return InputTypeKind.ENUM
        if type_name in self.input_names:
            return InputTypeKind.OBJECT
        return InputTypeKind.SCALAR

    # -- the walk ---------------------------------------------------------------------------

    def read(self) -> None:
        for definition in self.subgraph.document.definitions:
            self._definition(definition)
        for type_name, field_name in self.key_fields:
            if type_name in self.object_names and not self.is_interface_object(type_name):
                self.composite_field(type_name, field_name).shareable = True

    def _definition(self, node: DefinitionNode) -> None:
        if isinstance(node, SchemaDefinitionNode | SchemaExtensionNode):
            self._schema(node)
        elif isinstance(node, DirectiveDefinitionNode):
            self._directive_definition(node)
        elif isinstance(node, ScalarTypeDefinitionNode | ScalarTypeExtensionNode):
            self._scalar(node)
        elif isinstance(node, ObjectTypeDefinitionNode | ObjectTypeExtensionNode):
            self._object(node)
        elif isinstance(node, InterfaceTypeDefinitionNode | InterfaceTypeExtensionNode):
            self._interface(node)
        elif isinstance(node, UnionTypeDefinitionNode | UnionTypeExtensionNode):
            self._union(node)
        elif isinstance(node, EnumTypeDefinitionNode | EnumTypeExtensionNode):
            self._enum(node)
        elif isinstance(node, InputObjectTypeDefinitionNode | InputObjectTypeExtensionNode):
            self._input(node)

    def _schema(self, node: SchemaDefinitionNode | SchemaExtensionNode) -> None:
        for directive in node.directives or ():
            if self.canonical(directive) != "composeDirective":
                continue
            if specs.version_number(self.names.version) < 2.1:
                continue
            name = (_string_argument(directive, "name") or "").removeprefix("@")
            if name in self.definitions.directive_names and _imported_by_link(
                self.subgraph.links, name
            ):
                self.directive_state(name).composed = True
                self.composed.add(name)

    def _directive_definition(self, node: DirectiveDefinitionNode) -> None:
        state = self.directive_state(node.name.value)
        state.repeatable = state.repeatable or node.repeatable
        for location in node.locations:
            state.locations[location.value] = None
        for arg in node.arguments or ():
            self._input_value_type(
                arg, state.args.setdefault(arg.name.value, InputValueState(arg.name.value))
            )

    def _scalar(self, node: ScalarTypeDefinitionNode | ScalarTypeExtensionNode) -> None:
        name = node.name.value
        if isinstance(node, ScalarTypeDefinitionNode):
            if name in SPECIFIED_SCALARS:
                return
            state = self._get(name, ScalarTypeState)
            if node.description is not None:
                state.description = node.description.value
        for directive in node.directives or ():
            if directive.name.value == "specifiedBy":
                url = _string_argument(directive, "url")
                if url is not None:
                    self._get(name, ScalarTypeState).specified_by = url
            self._common_directive(directive, lambda: self._get(name, ScalarTypeState))

    def _common_directive(
        self, directive: ConstDirectiveNode, target: Callable[[], SchemaElement]
    ) -> None:
        """`@inaccessible`, `@tag` and composed directives, on whatever `target()` returns."""
        if directive.name.value in self.composed:
            target().directives.append(directive)
        canonical = self.canonical(directive)
        if canonical == "inaccessible":
            target().inaccessible = True
            self.subgraph.uses_inaccessible = True
        elif canonical == "tag":
            tag = _string_argument(directive, "name")
            if tag is not None:
                target().tags[tag] = None
                self.subgraph.uses_tag = True

    def _object(self, node: ObjectTypeDefinitionNode | ObjectTypeExtensionNode) -> None:
        name = node.name.value
        interface_object = any(
            self.canonical(d) == "interfaceObject" for d in node.directives or ()
        )
        if isinstance(node, ObjectTypeDefinitionNode) and interface_object:
            interface = self.interface_type(name)
            interface.is_definition = True
            interface.is_interface_object = True
            for implemented in node.interfaces or ():
                interface.interfaces[implemented.name.value] = None
        else:
            if isinstance(node, ObjectTypeDefinitionNode):
                if self.is_interface_object(name):
                    self.interface_type(name).is_definition = True
                else:
                    self.object_type(name).is_definition = True
            else:
                self._set_extension(name, "extend")
            for op, local in self.root_names.items():
                if local == name:
                    self.subgraph.roots[op] = ROOT_NAMES[op]
            for implemented in node.interfaces or ():
                owner = self.composite(name)
                owner.interfaces[implemented.name.value] = None
                if isinstance(owner, ObjectTypeState):
                    self.interface_type(implemented.name.value).implemented_by[owner.name] = None
        if isinstance(node, ObjectTypeDefinitionNode) and node.description is not None:
            self.composite(name).description = node.description.value
        for directive in node.directives or ():
            self._type_directive(directive, node, is_interface=False)
        for field in node.fields or ():
            self._field(field, name, is_interface=False, in_extension=_is_extension(node))

    def _set_extension(self, name: str, how: str) -> None:
        if self.is_interface_object(name):
            self.interface_type(name).extension = True
            return
        state = self.object_type(name)
        state.extension = True
        if state.extension_type != "@extends":
            state.extension_type = how

    def _interface(self, node: InterfaceTypeDefinitionNode | InterfaceTypeExtensionNode) -> None:
        name = node.name.value
        state = self.interface_type(name)
        if isinstance(node, InterfaceTypeDefinitionNode):
            state.is_definition = True
        else:
            state.extension = True
        for implemented in node.interfaces or ():
            state.interfaces[implemented.name.value] = None
        if isinstance(node, InterfaceTypeDefinitionNode) and node.description is not None:
            state.description = node.description.value
        for directive in node.directives or ():
            self._type_directive(directive, node, is_interface=True)
        for field in node.fields or ():
            self._field(field, name, is_interface=True, in_extension=False)

    def _type_directive(
        self,
        directive: ConstDirectiveNode,
        node: ObjectTypeDefinitionNode
        | ObjectTypeExtensionNode
        | InterfaceTypeDefinitionNode
        | InterfaceTypeExtensionNode,
        *,
        is_interface: bool,
    ) -> None:
        name = node.name.value

        def target() -> ObjectTypeState | InterfaceTypeState:
            return self.interface_type(name) if is_interface else self.composite(name)

        self._common_directive(directive, target)
        canonical = self.canonical(directive)
        if canonical == "key":
            self._key(directive, name)
        elif canonical == "shareable" and not is_interface and not self.is_interface_object(name):
            self.object_type(name).shareable = True
            for field in node.fields or ():
                self.composite_field(name, field.name.value).shareable = True
        elif canonical == "external" and not is_interface:
            for field in node.fields or ():
                if not _has_merged_directive(field, self.names):
                    self.composite_field(name, field.name.value).external = True
        elif canonical == "extends" and isinstance(
            node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode
        ):
            if is_interface:
                self.interface_type(name).extension = True
            else:
                self._set_extension(name, "@extends")

    def _key(self, directive: ConstDirectiveNode, type_name: str) -> None:
        fields_value = _argument(directive, "fields")
        if not isinstance(fields_value, StringValueNode):
            return
        parent = self.definitions.composites.get(type_name)
        if parent is None:
            return
        try:
            selection = fieldset.parse_field_set(fields_value.value)
        except GraphQLError:
            return
        marker = _KeyMarker(self, type_name)
        fieldset.walk_field_set(selection, parent, self.definitions, marker, self._external_names())
        resolvable = _argument(directive, "resolvable")
        key = Key(
            fields_value.value,
            resolvable.value if isinstance(resolvable, BooleanValueNode) else True,
        )
        owner = self.interface_type(type_name) if parent.is_interface else self.composite(type_name)
        owner.keys.append(key)
        owner.fields_used_as_keys.update(marker.top_level)

    def _external_names(self) -> frozenset[str]:
        return frozenset(
            local for local, canonical in self.names.directives.items() if canonical == "external"
        )

    def _field(
        self, node: FieldDefinitionNode, type_name: str, *, is_interface: bool, in_extension: bool
    ) -> None:
        field_name = node.name.value
        type_string = _type_string(node.type)
        output = fieldset.named_type(type_string)
        if output in self.enum_names:
            self.enum_type(output).output_references[f"{type_name}.{field_name}"] = None
        interface_like = is_interface or self.is_interface_object(type_name)
        field = (
            self.interface_field(type_name, field_name)
            if is_interface
            else self.composite_field(type_name, field_name)
        )
        field.type = type_string
        if output in self.definitions.leaf_types:
            field.is_leaf = True
        if interface_like:
            field.used = True
        elif in_extension:
            field.extension = True
        if node.description is not None:
            field.description = node.description.value
        for arg in node.arguments or ():
            coordinate = f"{type_name}.{field_name}({arg.name.value}:)"
            self._input_value(
                arg,
                field.args.setdefault(arg.name.value, InputValueState(arg.name.value)),
                # Interface arguments do not count as the enum's input references.
                enum_reference=None if is_interface else coordinate,
            )
        for directive in node.directives or ():
            self._field_directive(directive, node, field, type_name, is_interface=is_interface)

    def _input_value_type(self, node: InputValueDefinitionNode, value: InputValueState) -> str:
        """Read an input value's type, its kind and default value; return its named type."""
        value.type = _type_string(node.type)
        named = fieldset.named_type(value.type)
        value.kind = self.kind_of(named)
        if node.default_value is not None:
            value.default_value = print_node(node.default_value)
        return named

    def _input_value(
        self,
        node: InputValueDefinitionNode,
        value: InputValueState,
        *,
        enum_reference: str | None,
    ) -> None:
        """Read an argument or input field; an enum type it takes records `enum_reference`."""
        named = self._input_value_type(node, value)
        if enum_reference is not None and named in self.enum_names:
            self.enum_type(named).input_references[enum_reference] = None
        self._value_metadata(node, value)

    def _value_metadata(
        self,
        node: EnumValueDefinitionNode | InputValueDefinitionNode,
        value: EnumValueState | InputValueState,
    ) -> None:
        """An enum value's or input value's description, `@deprecated` and common directives."""
        if node.description is not None:
            value.description = node.description.value
        for directive in node.directives or ():
            if directive.name.value == "deprecated":
                value.deprecated = _deprecation(directive)
            self._common_directive(directive, lambda: value)

    def _field_directive(
        self,
        directive: ConstDirectiveNode,
        node: FieldDefinitionNode,
        field: FieldState,
        type_name: str,
        *,
        is_interface: bool,
    ) -> None:
        if directive.name.value == "deprecated":
            field.deprecated = _deprecation(directive)
        self._common_directive(directive, lambda: field)
        canonical = self.canonical(directive)
        interface_object = self.is_interface_object(type_name)
        if canonical == "shareable" and not is_interface and not interface_object:
            field.shareable = True
        elif canonical == "external" and not is_interface:
            if not _has_merged_directive(node, self.names):
                field.external = True
        elif canonical == "override" and not is_interface:
            origin = _string_argument(directive, "from")
            if origin is not None:
                field.override = origin
                field.override_label = _string_argument(directive, "label")
        elif canonical == "requires" and not is_interface:
            self._requires(directive, field, type_name)
        elif canonical == "provides" and not is_interface:
            self._provides(directive, node, field, record=not interface_object)

    def _requires(self, directive: ConstDirectiveNode, field: FieldState, type_name: str) -> None:
        fields_value = _argument(directive, "fields")
        parent = self.definitions.composites.get(type_name)
        if not isinstance(fields_value, StringValueNode) or parent is None:
            return
        try:
            selection = fieldset.parse_field_set(fields_value.value)
        except GraphQLError:
            return
        fieldset.walk_field_set(
            selection, parent, self.definitions, _RequiresMarker(self), self._external_names()
        )
        field.requires = fields_value.value

    def _provides(
        self,
        directive: ConstDirectiveNode,
        node: FieldDefinitionNode,
        field: FieldState,
        *,
        record: bool,
    ) -> None:
        fields_value = _argument(directive, "fields")
        if not isinstance(fields_value, StringValueNode):
            return
        output = fieldset.named_type(_type_string(node.type))
        for target in self.definitions.composites_of(output):
            try:
                selection = fieldset.parse_field_set(fields_value.value)
            except GraphQLError:
                return
            fieldset.walk_field_set(
                selection, target, self.definitions, _ProvidesMarker(self), self._external_names()
            )
            if record:
                field.provides = fields_value.value

    def _defined_type(
        self,
        node: UnionTypeDefinitionNode
        | UnionTypeExtensionNode
        | EnumTypeDefinitionNode
        | EnumTypeExtensionNode
        | InputObjectTypeDefinitionNode
        | InputObjectTypeExtensionNode,
        state: Callable[[], UnionTypeState | EnumTypeState | InputObjectTypeState],
    ) -> None:
        """A union, enum or input object: its definition (not an extension) marks it defined
        and brings its description; either brings `@tag`, `@inaccessible` and composed
        directives. `state()` finds or adds the type's state (only when needed)."""
        if isinstance(
            node, UnionTypeDefinitionNode | EnumTypeDefinitionNode | InputObjectTypeDefinitionNode
        ):
            found = state()
            found.is_definition = True
            if node.description is not None:
                found.description = node.description.value
        for directive in node.directives or ():
            self._common_directive(directive, state)

    def _union(self, node: UnionTypeDefinitionNode | UnionTypeExtensionNode) -> None:
        state: UnionTypeState = self._get(node.name.value, UnionTypeState)
        self._defined_type(node, lambda: state)
        for member in node.types or ():
            state.members[member.name.value] = None

    def _enum(self, node: EnumTypeDefinitionNode | EnumTypeExtensionNode) -> None:
        name = node.name.value
        self._defined_type(node, lambda: self.enum_type(name))
        for value in node.values or ():
            self._value_metadata(value, self.enum_value(name, value.name.value))

    def _input(self, node: InputObjectTypeDefinitionNode | InputObjectTypeExtensionNode) -> None:
        name = node.name.value
        self._defined_type(node, lambda: self.input_type(name))
        for field_node in node.fields or ():
            self._input_value(
                field_node,
                self.input_field(name, field_node.name.value),
                enum_reference=f"{name}.{field_node.name.value}",
            )


def _is_extension(node: ObjectTypeDefinitionNode | ObjectTypeExtensionNode) -> bool:
    return isinstance(node, ObjectTypeExtensionNode)


def _has_merged_directive(field: FieldDefinitionNode, names: FederationNames) -> bool:
    """`@external` fields may not carry `@tag`/`@inaccessible`; such a field is not marked."""
    return any(
        names.canonical(d.name.value) in {"tag", "inaccessible"} for d in field.directives or ()
    )


def _imported_by_link(links: Sequence[Link], directive_name: str) -> bool:
    return any(
        imported.is_directive and imported.local_name.removeprefix("@") == directive_name
        for link in links
        for imported in link.imports
    )


class _UsedMarker(fieldset.FieldSetVisitor):
    """Every field a field set selects counts as used (and, being met, takes its place)."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def used(self, parent: CompositeDefinition, field_name: str) -> None:
        if parent.is_interface:
            self.reader.interface_field(parent.name, field_name).used = True
        else:
            self.reader.composite_field(parent.name, field_name).used = True


class _KeyMarker(_UsedMarker):
    def __init__(self, reader: _Reader, type_name: str) -> None:
        super().__init__(reader)
        self.type_name = type_name
        self.top_level: list[str] = []

    def selected(self, parent: CompositeDefinition, field_name: str) -> None:
        if parent.name == self.type_name:
            self.top_level.append(field_name)
        self.reader.key_fields[(parent.name, field_name)] = None


class _RequiresMarker(_UsedMarker):
    stops_at_arguments = False

    def selected(self, parent: CompositeDefinition, field_name: str) -> None:
        if not parent.is_interface and not self.reader.is_interface_object(parent.name):
            self.reader.composite_field(parent.name, field_name).required = True


class _ProvidesMarker(_UsedMarker):
    def selected(self, parent: CompositeDefinition, field_name: str) -> None:
        if not parent.is_interface and not self.reader.is_interface_object(parent.name):
            self.reader.composite_field(parent.name, field_name).provided = True
