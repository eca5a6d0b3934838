"""Rules one subgraph must satisfy on its own; each takes the subgraph and returns its issues.
Codes and messages follow Apollo's composition errors as The Guild's composition words them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from graphql import (
    DirectiveDefinitionNode,
    DocumentNode,
    FieldDefinitionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    TypeNode,
    UnionTypeDefinitionNode,
    UnionTypeExtensionNode,
    parse,
)
from graphql.validation import KnownTypeNamesRule, PossibleTypeExtensionsRule
from graphql.validation.specified_rules import specified_sdl_rules
from graphql.validation.validate import validate_sdl

from supergraph.compose import fieldset, specs
from supergraph.compose.applications import (
    Rule,
    applications,
    argument,
    issue,
)
from supergraph.compose.fieldset_rules import key_fields, provides_fields, requires_fields
from supergraph.compose.issues import CompositionIssue
from supergraph.compose.model import Subgraph
from supergraph.compose.printer import print_node
from supergraph.compose.subgraph import SPECIFIED_SCALARS

# -- GraphQL validity --------------------------------------------------------------------------


def valid_graphql(subgraph: Subgraph) -> list[CompositionIssue]:
    """The SDL is valid GraphQL once the federation and link definitions are added."""
    injected = parse(
        specs.federation_definitions_sdl(subgraph.version, subgraph.names.directives)
        + specs.LINK_DEFINITIONS_SDL,
        no_location=True,
    )
    own = {
        getattr(d, "name").value  # noqa: B009
        for d in subgraph.document.definitions
        if getattr(d, "name", None) is not None
    }
    extra = tuple(
        d
        for d in injected.definitions
        if getattr(d, "name").value not in own  # noqa: B009
    )
    document = DocumentNode(definitions=(*subgraph.document.definitions, *extra))
    # Other subgraphs may define what this one extends; unknown types get their own rule.
    rules = [
        rule
        for rule in specified_sdl_rules
        if rule not in (PossibleTypeExtensionsRule, KnownTypeNamesRule)
    ]
    where = _coordinates_by_node(subgraph)
    return [
        issue(
            subgraph,
            "INVALID_GRAPHQL",
            error.message,
            next((where[id(n)] for n in error.nodes or () if id(n) in where), None),
        )
        for error in validate_sdl(document, rules=rules)
    ]


def _coordinates_by_node(subgraph: Subgraph) -> dict[int, str]:
    """Schema coordinates of the subgraph's definitions, fields and directive applications."""
    where: dict[int, str] = {}
    for definition in subgraph.document.definitions:
        name = getattr(getattr(definition, "name", None), "value", None)
        if name is None:
            continue
        where[id(definition)] = (
            f"@{name}" if isinstance(definition, DirectiveDefinitionNode) else name
        )
        for field in getattr(definition, "fields", None) or ():
            where[id(field)] = f"{name}.{field.name.value}"
    for application in applications(subgraph):
        where[id(application.directive)] = application.coordinate
    return where


def known_types(subgraph: Subgraph) -> list[CompositionIssue]:
    """Every type a field, argument, member or interface names is defined in the subgraph."""
    document = subgraph.document
    known = set(SPECIFIED_SCALARS)
    known.update(
        getattr(d, "name").value  # noqa: B009
        for d in document.definitions
        if getattr(d, "name", None) is not None and not isinstance(d, DirectiveDefinitionNode)
    )
    issues: list[CompositionIssue] = []

    def check(type_node: TypeNode, coordinate: str) -> None:
        name = fieldset.named_type(print_node(type_node))
        if name not in known:
            issues.append(issue(subgraph, "INVALID_GRAPHQL", f'Unknown type "{name}".', coordinate))

    for definition in document.definitions:
        if isinstance(definition, DirectiveDefinitionNode):
            continue
        type_name = getattr(getattr(definition, "name", None), "value", "")
        for interface in getattr(definition, "interfaces", None) or ():
            if interface.name.value not in known:
                issues.append(
                    issue(
                        subgraph,
                        "INVALID_GRAPHQL",
                        f'Unknown type "{interface.name.value}".',
                        type_name,
                    )
                )
        if isinstance(definition, UnionTypeDefinitionNode | UnionTypeExtensionNode):
            for member in definition.types or ():
                if member.name.value not in known:
                    issues.append(
                        issue(
                            subgraph,
                            "INVALID_GRAPHQL",
                            f'Unknown type "{member.name.value}".',
                            type_name,
                        )
                    )
        for field in getattr(definition, "fields", None) or ():
            coordinate = f"{type_name}.{field.name.value}"
            check(field.type, coordinate)
            for arg in getattr(field, "arguments", None) or ():
                check(arg.type, f"{coordinate}({arg.name.value}:)")
    return issues


def federation_2(subgraph: Subgraph) -> list[CompositionIssue]:
    """Federation directives we know but do not compose yet are reported, not dropped."""
    return [
        issue(
            subgraph,
            "UNSUPPORTED_FEATURE",
            f"@{application.directive.name.value} is not supported by this composition yet.",
            application.coordinate,
        )
        for application in applications(subgraph)
        if application.canonical in specs.UNSUPPORTED_DIRECTIVES
    ]


# -- other federation directives -------------------------------------------------------------------

_LABEL = re.compile(r"^[a-zA-Z][a-zA-Z0-9_\-:./]*$")
_PERCENT = re.compile(r"^percent\(((\d{1,2}(\.\d{1,8})?)|100(\.[0]{1,8})?)\)$")


def _valid_label(label: str) -> bool:
    if label.startswith("percent("):
        return _PERCENT.match(label) is not None
    return _LABEL.match(label) is not None


def override_usage(subgraph: Subgraph) -> list[CompositionIssue]:
    """`@override` is on an object field, not from its own subgraph, not with `@external`."""
    issues: list[CompositionIssue] = []
    where = f'on subgraph "{subgraph.name}"'
    for app in applications(subgraph):
        if app.canonical != "override" or not isinstance(app.field, FieldDefinitionNode):
            continue
        coordinate = app.coordinate
        if app.on_interface:
            issues.append(
                issue(
                    subgraph,
                    "OVERRIDE_ON_INTERFACE",
                    f'@override cannot be used on field "{coordinate}" {where}: @override is not '
                    "supported on interface type fields.",
                    coordinate,
                )
            )
            continue
        label = argument(app.directive, "label")
        labels_checked = specs.version_number(subgraph.version) >= 2.7
        if label is not None and labels_checked:  # noqa: SIM102
            if not isinstance(label, StringValueNode) or not _valid_label(label.value):
                issues.append(
                    issue(
                        subgraph,
                        "OVERRIDE_LABEL_INVALID",
                        f"Invalid @override label {print_node(label)} on field "  # type: ignore[arg-type]
                        f'"{coordinate}" {where}: labels must start with a letter and after that '
                        "may contain alphanumerics, underscores, minuses, colons, periods, or "
                        'slashes. Alternatively, labels may be of the form "percent(x)" where x '
                        "is a float between 0-100 inclusive.",
                        coordinate,
                    )
                )
                continue
        origin = argument(app.directive, "from")
        if not isinstance(origin, StringValueNode):
            continue
        for directive in app.field.directives or ():
            if subgraph.names.canonical(directive.name.value) == "external":
                issues.append(
                    issue(
                        subgraph,
                        "OVERRIDE_COLLISION_WITH_ANOTHER_DIRECTIVE",
                        f'@override cannot be used on field "{coordinate}" {where} since '
                        f'"{coordinate}" on "{subgraph.name}" is marked with directive '
                        f'"@{directive.name.value}"',
                        coordinate,
                    )
                )
        if origin.value == subgraph.name:
            issues.append(
                issue(
                    subgraph,
                    "OVERRIDE_FROM_SELF_ERROR",
                    f'Source and destination subgraphs "{origin.value}" are the same for '
                    f'overridden field "{coordinate}"',
                    coordinate,
                )
            )
    return issues


def external_usage(subgraph: Subgraph) -> list[CompositionIssue]:
    """An `@external` field carries no merged directive and is used by some field set."""
    issues: list[CompositionIssue] = []
    for app in applications(subgraph):
        if app.canonical != "external" or app.on_interface:
            continue
        fields = [app.field] if app.field is not None else getattr(app.type_node, "fields", ())
        for field in fields or ():
            for directive in field.directives or ():
                if subgraph.names.canonical(directive.name.value) in {"tag", "inaccessible"}:
                    issues.append(
                        issue(
                            subgraph,
                            "MERGED_DIRECTIVE_APPLICATION_ON_EXTERNAL",
                            f"Cannot apply merged directive {print_node(directive)} to external "
                            f'field "{app.type_name}.{field.name.value}"',
                            f"{app.type_name}.{field.name.value}",
                        )
                    )
    for type_state in subgraph.types.values():
        if not hasattr(type_state, "fields") or subgraph.interface_type(type_state.name):
            continue
        if getattr(type_state, "extension_type", None) == "@extends":
            continue
        for field_state in getattr(type_state, "fields", {}).values():
            if not getattr(field_state, "external", False) or field_state.used:
                continue
            if _satisfies_interface_or_shareable(subgraph, type_state.name, field_state.name):
                continue
            coordinate = f"{type_state.name}.{field_state.name}"
            issues.append(
                issue(
                    subgraph,
                    "EXTERNAL_UNUSED",
                    f'Field "{coordinate}" is marked @external but is not used in any federation '
                    "directive (@key, @provides, @requires) or to satisfy an interface; the field "
                    "declaration has no use and should be removed (or the field should not be "
                    "@external).",
                    coordinate,
                )
            )
    return issues


def _satisfies_interface_or_shareable(subgraph: Subgraph, type_name: str, field_name: str) -> bool:
    owner = subgraph.object_type(type_name)
    if owner is None:
        return False
    output = subgraph.object_type(fieldset.named_type(owner.fields[field_name].type))
    if output is not None and output.shareable:
        return True
    return any(
        (interface := subgraph.interface_type(name)) is not None and field_name in interface.fields
        for name in owner.interfaces
    )


def shareable_usage(subgraph: Subgraph) -> list[CompositionIssue]:
    return [
        issue(
            subgraph,
            "INVALID_SHAREABLE_USAGE",
            f'Invalid use of @shareable on field "{app.coordinate}": only object type fields can '
            "be marked with @shareable",
            app.coordinate,
        )
        for app in applications(subgraph)
        if app.canonical == "shareable" and app.field is not None and app.on_interface
    ]


def interface_object_usage(subgraph: Subgraph) -> list[CompositionIssue]:
    issues: list[CompositionIssue] = []
    for app in applications(subgraph):
        if app.canonical != "interfaceObject" or app.field is not None:
            continue
        if specs.version_number(subgraph.version) < 2.3:
            issues.append(
                issue(
                    subgraph,
                    "UNSUPPORTED_FEATURE",
                    "@interfaceObject needs federation v2.3 or later.",
                    app.type_name,
                )
            )
            continue
        directives = getattr(app.type_node, "directives", None) or ()
        if not any(subgraph.names.canonical(d.name.value) == "key" for d in directives):
            issues.append(
                issue(
                    subgraph,
                    "INTERFACE_OBJECT_USAGE_ERROR",
                    "The @interfaceObject directive can only be applied to entity types but type "
                    f'"{app.type_name}" has no @key in this subgraph.',
                    app.type_name,
                )
            )
    return issues


def compose_directive_usage(subgraph: Subgraph) -> list[CompositionIssue]:
    """`@composeDirective` names a directive the subgraph defines and imports from a spec."""
    issues: list[CompositionIssue] = []
    for definition in subgraph.document.definitions:
        if not isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
            continue
        for directive in definition.directives or ():
            if subgraph.names.canonical(directive.name.value) != "composeDirective":
                continue
            value = argument(directive, "name")
            if not isinstance(value, StringValueNode):
                continue
            name = value.value.removeprefix("@")
            if name not in subgraph.definitions.directive_names:
                message = (
                    "Could not find matching directive definition for argument to "
                    f'@composeDirective "@{name}" in subgraph "{subgraph.name}".'
                )
            elif not any(
                imported.is_directive and imported.local_name.removeprefix("@") == name
                for link in subgraph.links
                for imported in link.imports
            ):
                message = (
                    f'Directive "@{name}" in subgraph "{subgraph.name}" cannot be composed '
                    "because it is not a member of a core feature"
                )
            else:
                continue
            issues.append(issue(subgraph, "DIRECTIVE_COMPOSITION_ERROR", message, f"@{name}"))
    return issues


SUBGRAPH_RULES: Sequence[Rule] = (
    valid_graphql,
    known_types,
    federation_2,
    key_fields,
    requires_fields,
    provides_fields,
    override_usage,
    external_usage,
    shareable_usage,
    interface_object_usage,
    compose_directive_usage,
)
