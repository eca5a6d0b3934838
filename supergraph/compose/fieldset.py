"""Field sets (`@key`, `@requires`, `@provides`): parsing them and walking them over a subgraph."""

from __future__ import annotations

from enum import Enum

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    strip_ignored_characters,
)

from supergraph.compose.model import CompositeDefinition, SubgraphDefinitions
from supergraph.compose.printer import print_node


def parse_field_set(fields: str) -> SelectionSetNode:
    """Parse a field set; raises `GraphQLError` when it is not a valid selection."""
    text = fields.strip()
    document = parse(f"query {text}" if text.startswith("{") else f"query {{ {text} }}")
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation.selection_set


def print_field_set(selection_set: SelectionSetNode) -> str:
    """The compact form the supergraph carries: `weight dims{w h}`."""
    printed = strip_ignored_characters(print_node(selection_set))
    return printed.removeprefix("{").removesuffix("}")


def named_type(type_string: str) -> str:
    return type_string.replace("!", "").replace("[", "").replace("]", "")


class FieldSetVisitor:
    """Callbacks for `walk_field_set`; each default does nothing."""

    # Whether a field with arguments ends the walk there (`@requires` keeps going).
    stops_at_arguments = True

    def used(self, parent: CompositeDefinition, field_name: str) -> None:
        """A field the set selects, at any depth (also inside inline fragments)."""

    def selected(self, parent: CompositeDefinition, field_name: str) -> None:
        """A field the set selects, outside inline fragments."""

    def unknown_field(self, parent: CompositeDefinition, field_name: str) -> None: ...

    def directive(self, name: str, known: bool) -> None: ...

    def has_arguments(self, parent: CompositeDefinition, field_name: str) -> None: ...

    def interface_field(self, parent: CompositeDefinition, field_name: str) -> None: ...

    def external_leaf(self, parent: CompositeDefinition, field_name: str) -> None: ...

    def local_leaf(self, parent: CompositeDefinition, field_name: str) -> None:
        """A leaf the set selects at its top level that this subgraph resolves itself."""

    def missing_selection(
        self, parent: CompositeDefinition, field_name: str, output_type: str
    ) -> None: ...


class _Depth(Enum):
    TOP = "top"
    NESTED = "nested"
    FRAGMENT = "fragment"


def walk_field_set(
    selection_set: SelectionSetNode,
    parent: CompositeDefinition,
    definitions: SubgraphDefinitions,
    visitor: FieldSetVisitor,
    external_directive_names: frozenset[str],
) -> None:
    """Visit a field set against `parent` the way The Guild's composition does.

    Unknown fields stop the walk of their selection set; only the top level reports leaves
    this subgraph resolves itself; inside inline fragments only use, arguments and unknown
    fields are reported.
    """
    _walk(selection_set, parent, definitions, visitor, external_directive_names, _Depth.TOP)


def _walk(
    selection_set: SelectionSetNode,
    parent: CompositeDefinition,
    definitions: SubgraphDefinitions,
    visitor: FieldSetVisitor,
    externals: frozenset[str],
    depth: _Depth,
) -> None:
    in_fragment = depth is _Depth.FRAGMENT
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            continue
        if isinstance(selection, InlineFragmentNode):
            if selection.type_condition is None:
                continue
            target = definitions.composites.get(selection.type_condition.name.value)
            if target is not None:
                _walk(
                    selection.selection_set,
                    target,
                    definitions,
                    visitor,
                    externals,
                    _Depth.FRAGMENT,
                )
            continue
        assert isinstance(selection, FieldNode)
        name = selection.name.value
        if name == "__typename":
            continue
        definition = parent.field(name)
        if definition is None:
            visitor.unknown_field(parent, name)
            break
        if not in_fragment:
            for directive in selection.directives or ():
                visitor.directive(
                    directive.name.value, directive.name.value in definitions.directive_names
                )
        visitor.used(parent, name)
        if not in_fragment:
            visitor.selected(parent, name)
        if definition.arguments:
            visitor.has_arguments(parent, name)
            if visitor.stops_at_arguments:
                continue
        output = named_type(print_node(definition.type))
        if not in_fragment and output in definitions.leaf_types:
            external = any(
                d.name.value in externals
                for d in (*(definition.directives or ()), *parent.directives)
            )
            if external:
                visitor.external_leaf(parent, name)
            elif depth is _Depth.TOP:
                visitor.local_leaf(parent, name)
        for target in definitions.composites_of(output):
            if target.is_interface:
                visitor.interface_field(parent, name)
            if selection.selection_set is None:
                if not in_fragment:
                    visitor.missing_selection(parent, name, print_node(definition.type))
                continue
            _walk(
                selection.selection_set,
                target,
                definitions,
                visitor,
                externals,
                _Depth.FRAGMENT if in_fragment else _Depth.NESTED,
            )
