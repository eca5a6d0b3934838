"""The selection sets the router works with: a small typed tree that the planner builds and
merges, the printer turns into subgraph operations, and the executor walks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from graphql import (
    ArgumentNode,
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
    parse,
    print_ast,
    visit,
)
from graphql.language import Visitor


@dataclass(slots=True)
class Field:
    name: str
    alias: str | None = None
    arguments: tuple[ArgumentNode, ...] = ()
    directives: tuple[DirectiveNode, ...] = ()
    selections: list[Selection] | None = None

    @property
    def response_key(self) -> str:
        return self.alias or self.name

    def same_field(self, other: Field) -> bool:
        """Whether two fields under one response key ask for the same thing."""
        return (
            self.name == other.name
            and _print_all(self.arguments) == _print_all(other.arguments)
            and _print_all(self.directives) == _print_all(other.directives)
        )


@dataclass(slots=True)
class InlineFragment:
    type_condition: str | None
    selections: list[Selection] = field(default_factory=list)
    directives: tuple[DirectiveNode, ...] = ()


Selection = Field | InlineFragment


def _print_all(nodes: Iterable[ArgumentNode | DirectiveNode]) -> str:
    return " ".join(print_ast(n) for n in nodes)


def merge_into(target: list[Selection], additions: Iterable[Selection]) -> None:
    """Add selections to a set, merging fields with one response key and equal fragments."""
    for selection in additions:
        if isinstance(selection, Field):
            existing = next(
                (
                    s
                    for s in target
                    if isinstance(s, Field)
                    and s.response_key == selection.response_key
                    and s.same_field(selection)
                ),
                None,
            )
            if existing is None:
                target.append(copy_selection(selection))
            elif selection.selections is not None:
                if existing.selections is None:
                    existing.selections = []
                merge_into(existing.selections, selection.selections)
        else:
            fragment = next(
                (
                    s
                    for s in target
                    if isinstance(s, InlineFragment)
                    and s.type_condition == selection.type_condition
                    and _print_all(s.directives) == _print_all(selection.directives)
                ),
                None,
            )
            if fragment is None:
                target.append(copy_selection(selection))
            else:
                merge_into(fragment.selections, selection.selections)


def copy_selection(selection: Selection) -> Selection:
    if isinstance(selection, Field):
        return Field(
            selection.name,
            selection.alias,
            selection.arguments,
            selection.directives,
            [copy_selection(s) for s in selection.selections]
            if selection.selections is not None
            else None,
        )
    return InlineFragment(
        selection.type_condition,
        [copy_selection(s) for s in selection.selections],
        selection.directives,
    )


def from_ast(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
) -> list[Selection]:
    """Convert a graphql-core selection set, inlining named fragments."""
    if selection_set is None:
        return []
    result: list[Selection] = []
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            result.append(
                Field(
                    node.name.value,
                    node.alias.value if node.alias else None,
                    tuple(node.arguments or ()),
                    tuple(node.directives or ()),
                    from_ast(node.selection_set, fragments) if node.selection_set else None,
                )
            )
        elif isinstance(node, InlineFragmentNode):
            result.append(
                InlineFragment(
                    node.type_condition.name.value if node.type_condition else None,
                    from_ast(node.selection_set, fragments),
                    tuple(node.directives or ()),
                )
            )
        elif isinstance(node, FragmentSpreadNode):
            definition = fragments[node.name.value]
            result.append(
                InlineFragment(
                    definition.type_condition.name.value,
                    from_ast(definition.selection_set, fragments),
                    tuple(node.directives or ()),
                )
            )
    return result


def parse_field_set(text: str) -> list[Selection]:
    """A federation field set (`"id organization { id }"`) as selections."""
    document = parse("{" + text + "}", no_location=True)
    operation = document.definitions[0]
    return from_ast(operation.selection_set, {})  # type: ignore[attr-defined]


def print_selections(selections: Iterable[Selection]) -> str:
    return "{" + " ".join(_print_selection(s) for s in selections) + "}"


def _print_selection(selection: Selection) -> str:
    if isinstance(selection, Field):
        text = f"{selection.alias}:{selection.name}" if selection.alias else selection.name
        if selection.arguments:
            text += "(" + ",".join(print_ast(a) for a in selection.arguments) + ")"
        if selection.directives:
            text += " " + " ".join(print_ast(d) for d in selection.directives)
        if selection.selections is not None:
            text += print_selections(selection.selections)
        return text
    text = f"...on {selection.type_condition}" if selection.type_condition else "..."
    if selection.directives:
        text += " " + " ".join(print_ast(d) for d in selection.directives)
    return text + print_selections(selection.selections)


def variables_in(selections: Iterable[Selection]) -> set[str]:
    """Names of the variables the selections' arguments and directives use."""
    names: set[str] = set()

    class _Collect(Visitor):
        def enter_variable(self, node: VariableNode, *_: object) -> None:
            names.add(node.name.value)

    collector = _Collect()
    for selection in walk(selections):
        for node in (
            *selection.directives,
            *(selection.arguments if isinstance(selection, Field) else ()),
        ):
            visit(node, collector)
    return names


def walk(selections: Iterable[Selection]) -> Iterator[Selection]:
    for selection in selections:
        yield selection
        children = selection.selections
        if children:
            yield from walk(children)
