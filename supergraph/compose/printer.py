"""Print supergraph SDL byte for byte as The Guild's composition does: block-string
descriptions, no blank line between fields, argument lists wrapped only past 80 columns."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from graphql import Node


def print_node(node: Node | None) -> str:
    if node is None:
        return ""
    printer = _PRINTERS.get(node.kind)
    return printer(node) if printer else ""


def _all(nodes: Iterable[Node] | None) -> list[str]:
    return [print_node(node) for node in nodes or ()]


def _join(parts: Sequence[str] | None, separator: str = "") -> str:
    return separator.join(part for part in parts or () if part)


def _wrap(start: str, text: str | None, end: str = "") -> str:
    return f"{start}{text}{end}" if text else ""


def _indent(text: str) -> str:
    return _wrap("  ", text.replace("\n", "\n  "))


def _block(parts: Sequence[str] | None) -> str:
    return _wrap("{\n", _indent(_join(parts, "\n")), "\n}")


def _args(nodes: Sequence[Node] | None) -> str:
    if not nodes:
        return ""
    printed = _all(nodes)
    line = "(" + ", ".join(printed) + ")"
    if len(line) > 80:
        return "(\n  " + "\n".join(printed).replace("\n", "\n  ") + "\n)"
    return line


def _directives(node: Any) -> str:
    return _join(_all(node.directives), " ")


def _description(node: Any) -> str:
    return _wrap("", print_node(node.description), "\n")


def _string(node: Any) -> str:
    value = str(node.value)
    if node.block:
        return '"""\n' + value.replace('"""', '\\"""') + '\n"""'
    return json.dumps(value, ensure_ascii=False)


def _operation(node: Any) -> str:
    operation = node.operation.value
    if (
        operation == "query"
        and not node.name
        and not node.variable_definitions
        and not node.directives
    ):
        return print_node(node.selection_set)
    head = _join(
        [
            operation,
            print_node(node.name) + _wrap("(", _join(_all(node.variable_definitions), ", "), ")"),
            _directives(node),
        ],
        " ",
    )
    return head + print_node(node.selection_set)


def _field(node: Any) -> str:
    alias = node.alias.value + ": " if node.alias else ""
    head = _join([alias + node.name.value + _args(node.arguments), _directives(node)], " ")
    return head + print_node(node.selection_set)


def _object_like(keyword: str) -> Callable[[Any], str]:
    def print_definition(node: Any) -> str:
        return _description(node) + _join(
            [
                keyword,
                print_node(node.name),
                _wrap("implements ", _join(_all(node.interfaces), " & ")),
                _directives(node),
                _block(_all(node.fields)),
            ],
            " ",
        )

    return print_definition


def _input_object(node: Any) -> str:
    return _description(node) + _join(
        ["input", print_node(node.name), _directives(node), _block(_all(node.fields))], " "
    )


def _union(node: Any) -> str:
    return _description(node) + _join(
        [
            "union",
            print_node(node.name),
            _directives(node),
            _wrap("= ", _join(_all(node.types), " | ")),
        ],
        " ",
    )


def _enum(node: Any) -> str:
    return _description(node) + _join(
        ["enum", print_node(node.name), _directives(node), _block(_all(node.values))], " "
    )


def _scalar(node: Any) -> str:
    return _description(node) + _join(["scalar", print_node(node.name), _directives(node)], " ")


def _enum_value(node: Any) -> str:
    return _description(node) + _join([print_node(node.name), _directives(node)], " ")


def _field_definition(node: Any) -> str:
    return (
        _description(node)
        + print_node(node.name)
        + _args(node.arguments)
        + ": "
        + print_node(node.type)
        + _wrap(" ", _directives(node))
    )


def _input_value(node: Any) -> str:
    return _description(node) + _join(
        [
            print_node(node.name) + ": " + print_node(node.type),
            _wrap("= ", print_node(node.default_value)),
            _directives(node),
        ],
        " ",
    )


def _directive_definition(node: Any) -> str:
    return (
        _description(node)
        + "directive @"
        + print_node(node.name)
        + _args(node.arguments)
        + (" repeatable" if node.repeatable else "")
        + " on "
        + _join(_all(node.locations), " | ")
    )


def _schema(node: Any) -> str:
    return _join(["schema", _directives(node), _block(_all(node.operation_types))], " ")


def _inline_fragment(node: Any) -> str:
    return _join(
        [
            "...",
            "on " + node.type_condition.name.value if node.type_condition else "",
            _directives(node),
            print_node(node.selection_set),
        ],
        " ",
    )


_PRINTERS: dict[str, Callable[[Any], str]] = {
    "document": lambda node: "\n\n".join(_all(node.definitions)),
    "operation_definition": _operation,
    "variable_definition": lambda node: " ".join(
        [
            print_node(node.variable),
            ":",
            print_node(node.type),
            _wrap(" = ", print_node(node.default_value)),
            _directives(node),
        ]
    ),
    "field": _field,
    "string_value": _string,
    "boolean_value": lambda node: "true" if node.value else "false",
    "null_value": lambda node: "null",
    "int_value": lambda node: str(node.value),
    "float_value": lambda node: str(node.value),
    "enum_value": lambda node: str(node.value),
    "name": lambda node: str(node.value),
    "variable": lambda node: "$" + node.name.value,
    "list_value": lambda node: "[" + ", ".join(_all(node.values)) + "]",
    "object_value": lambda node: "{" + ", ".join(_all(node.fields)) + "}",
    "object_field": lambda node: node.name.value + ": " + print_node(node.value),
    "selection_set": lambda node: _block(_all(node.selections)),
    "argument": lambda node: node.name.value + ": " + print_node(node.value),
    "fragment_spread": lambda node: _join(["...", print_node(node.name), _directives(node)], " "),
    "inline_fragment": _inline_fragment,
    "directive": lambda node: "@" + node.name.value + _args(node.arguments),
    "named_type": lambda node: str(node.name.value),
    "list_type": lambda node: "[" + print_node(node.type) + "]",
    "non_null_type": lambda node: print_node(node.type) + "!",
    "schema_definition": _schema,
    "operation_type_definition": lambda node: node.operation.value + ": " + print_node(node.type),
    "scalar_type_definition": _scalar,
    "object_type_definition": _object_like("type"),
    "interface_type_definition": _object_like("interface"),
    "input_object_type_definition": _input_object,
    "union_type_definition": _union,
    "enum_type_definition": _enum,
    "enum_value_definition": _enum_value,
    "field_definition": _field_definition,
    "input_value_definition": _input_value,
    "directive_definition": _directive_definition,
}
