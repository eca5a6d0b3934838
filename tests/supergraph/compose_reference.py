"""The reference composition (`@theguild/federation-composition`, MIT) and a semantic view of a
supergraph, to compare ours with it.

The npm install is shared with the federation test bed (`/tmp/reelgraph-npm-cache`); without
node or the registry these helpers raise, so the reference tests fail rather than skip.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    ConstDirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    SchemaDefinitionNode,
    UnionTypeDefinitionNode,
    parse,
    print_ast,
    strip_ignored_characters,
)

from tests.federation import npm
from tests.federation.testbed.compose import composition_dir

SCRIPT = Path(__file__).with_name("compose_reference.mjs")


@dataclass(frozen=True)
class ReferenceResult:
    supergraph: str | None
    errors: tuple[tuple[str | None, str], ...] = ()


def url_of(name: str) -> str:
    return f"http://{name}.example/graphql"


def reference_compose(sets: Sequence[Mapping[str, str]]) -> list[ReferenceResult]:
    """Compose each set of `{subgraph name: SDL}` with The Guild's composition."""
    payload = [[{"name": n, "url": url_of(n), "sdl": sdl} for n, sdl in s.items()] for s in sets]
    done = subprocess.run(
        [npm.node(), str(SCRIPT), str(composition_dir())],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [
        ReferenceResult(
            result.get("supergraphSdl"),
            tuple((e["code"], e["message"]) for e in result.get("errors", ())),
        )
        for result in json.loads(done.stdout)
    ]


# -- semantic view ---------------------------------------------------------------------------------

# Arguments whose value is the directive's default say nothing; drop them before comparing.
_DEFAULTS = {
    "join__type": {"extension": "false", "resolvable": "true", "isInterfaceObject": "false"},
    "join__field": {"external": "false", "usedOverridden": "false"},
}
_FIELD_SETS = {"key", "requires", "provides"}


def _field_set(value: str) -> str:
    text = value.strip()
    return strip_ignored_characters(text if text.startswith("{") else "{" + text + "}")


def _directive(node: ConstDirectiveNode) -> str:
    name = node.name.value
    arguments: list[str] = []
    for argument in node.arguments or ():
        value = print_ast(argument.value)
        if _DEFAULTS.get(name, {}).get(argument.name.value) == value:
            continue
        if name.startswith("join__") and argument.name.value in _FIELD_SETS:
            value = _field_set(json.loads(value))
        arguments.append(f"{argument.name.value}: {value}")
    return f"@{name}({', '.join(sorted(arguments))})"


def _directives(coordinate: str, node: object) -> list[str]:
    return [f"{coordinate} {_directive(d)}" for d in getattr(node, "directives", None) or ()]


def _description(coordinate: str, node: object) -> list[str]:
    description = getattr(node, "description", None)
    return [f"{coordinate} described {description.value!r}"] if description else []


def supergraph_facts(sdl: str) -> list[str]:
    """Everything a router reads from a supergraph, as sorted one-line facts: types, fields
    with types and arguments, every directive application (defaults dropped, field sets
    normalised), descriptions, members, values, and the schema's links."""
    document: DocumentNode = parse(sdl)
    facts: list[str] = []
    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode):
            facts.extend(_directives("schema", definition))
            facts.extend(
                f"schema {op.operation.value}: {op.type.name.value}"
                for op in definition.operation_types
            )
            continue
        name = definition.name.value  # type: ignore[attr-defined]
        facts.append(f"{name} is {definition.kind}")
        facts.extend(_description(name, definition))
        facts.extend(_directives(name, definition))
        for interface in getattr(definition, "interfaces", None) or ():
            facts.append(f"{name} implements {interface.name.value}")
        if isinstance(definition, UnionTypeDefinitionNode):
            facts.extend(f"{name} has member {m.name.value}" for m in definition.types or ())
        if isinstance(definition, EnumTypeDefinitionNode):
            for value in definition.values or ():
                coordinate = f"{name}.{value.name.value}"
                facts.append(f"{coordinate} is a value")
                facts.extend(_description(coordinate, value) + _directives(coordinate, value))
        if isinstance(
            definition,
            ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode | InputObjectTypeDefinitionNode,
        ):
            for field in definition.fields or ():
                coordinate = f"{name}.{field.name.value}"
                facts.append(f"{coordinate}: {print_ast(field.type)}")
                facts.extend(_description(coordinate, field) + _directives(coordinate, field))
                default = getattr(field, "default_value", None)
                if default is not None:
                    facts.append(f"{coordinate} = {print_ast(default)}")
                for arg in getattr(field, "arguments", None) or ():
                    arg_coordinate = f"{coordinate}({arg.name.value}:)"
                    facts.append(f"{arg_coordinate}: {print_ast(arg.type)}")
                    if arg.default_value is not None:
                        facts.append(f"{arg_coordinate} = {print_ast(arg.default_value)}")
                    facts.extend(_directives(arg_coordinate, arg))
        if definition.kind == "directive_definition":
            facts.append(f"@{name} is {print_ast(definition)}")
    return sorted(facts)
