"""Rules for field sets: `@key`, `@requires` and `@provides` parse, select existing fields,
and select only what each directive allows."""

from __future__ import annotations

from graphql import (
    FieldDefinitionNode,
    GraphQLError,
    ListTypeNode,
    NonNullTypeNode,
    StringValueNode,
)

from supergraph.compose import fieldset, specs
from supergraph.compose.applications import (
    Application,
    applications,
    argument,
    issue,
)
from supergraph.compose.issues import CompositionIssue
from supergraph.compose.model import CompositeDefinition, Subgraph
from supergraph.compose.printer import print_node

# -- field sets ----------------------------------------------------------------------------------


class _Problems(fieldset.FieldSetVisitor):
    """Collects what is wrong with one field set, worded like the reference does."""

    def __init__(self, directive: str, prefix: str, subgraph: Subgraph, code: str) -> None:
        self.directive_name = directive
        self.prefix = prefix
        self.subgraph = subgraph
        self.code = code
        self.messages: list[tuple[str, str]] = []

    def report(self, code: str, message: str) -> None:
        self.messages.append((code, f"{self.prefix}: {message}"))

    def unknown_field(self, parent: CompositeDefinition, field_name: str) -> None:
        advice = (
            "the field should either be added to this subgraph or, if it should not be "
            "resolved by this subgraph, you need to add it to this subgraph with @external"
            if self.directive_name == "key"
            else "if the field is defined in another subgraph, you need to add it to this "
            "subgraph with @external"
        )
        self.report(
            self.code, f'Cannot query field "{field_name}" on type "{parent.name}" ({advice}).'
        )

    def directive(self, name: str, known: bool) -> None:
        if known:
            self.report(
                f"{self.directive_name.upper()}_DIRECTIVE_IN_FIELDS_ARG",
                f"cannot have directive applications in the @{self.directive_name}(fields:) "
                f"argument but found @{name}.",
            )
        else:
            self.report(self.code, f'Unknown directive "@{name}"')

    def has_arguments(self, parent: CompositeDefinition, field_name: str) -> None:
        # `@requires` may select fields with arguments (its walk goes on); the others may not.
        if self.stops_at_arguments:
            self.report(
                f"{self.directive_name.upper()}_FIELDS_HAS_ARGS",
                f"field {parent.name}.{field_name} cannot be included because it has arguments "
                f"(fields with argument are not allowed in @{self.directive_name})",
            )


class _ExternalProblems(_Problems):
    """`@requires` and `@provides`: the fields they select are resolved by other subgraphs."""

    def local_leaf(self, parent: CompositeDefinition, field_name: str) -> None:
        self.report(
            f"{self.directive_name.upper()}_FIELDS_MISSING_EXTERNAL",
            f'field "{parent.name}.{field_name}" should not be part of a @{self.directive_name} '
            "since it is already provided by this subgraph (it is not marked @external)",
        )


class _KeyProblems(_Problems):
    def __init__(self, prefix: str, subgraph: Subgraph) -> None:
        super().__init__("key", prefix, subgraph, "KEY_INVALID_FIELDS")

    def interface_field(self, parent: CompositeDefinition, field_name: str) -> None:
        self._invalid_type(parent, field_name, "Interface")

    def selected(self, parent: CompositeDefinition, field_name: str) -> None:
        definition = parent.field(field_name)
        if definition is None:
            return
        type_node = definition.type
        if isinstance(type_node, NonNullTypeNode):
            type_node = type_node.type
        output = fieldset.named_type(print_node(type_node))
        if isinstance(type_node, ListTypeNode):
            self._invalid_type(parent, field_name, "List")
        elif output in self.subgraph.definitions.union_members:
            self._invalid_type(parent, field_name, "Union")

    def _invalid_type(self, parent: CompositeDefinition, field_name: str, kind: str) -> None:
        self.report(
            "KEY_FIELDS_SELECT_INVALID_TYPE",
            f'field "{parent.name}.{field_name}" is a {kind} type which is not allowed in @key',
        )


class _RequiresProblems(_ExternalProblems):
    stops_at_arguments = False

    def __init__(self, prefix: str, subgraph: Subgraph) -> None:
        super().__init__("requires", prefix, subgraph, "REQUIRES_INVALID_FIELDS")


class _ProvidesProblems(_ExternalProblems):
    def __init__(self, prefix: str, subgraph: Subgraph) -> None:
        super().__init__("provides", prefix, subgraph, "PROVIDES_INVALID_FIELDS")

    def missing_selection(
        self, parent: CompositeDefinition, field_name: str, output_type: str
    ) -> None:
        self.report(
            self.code,
            f'Invalid empty selection set for field "{parent.name}.{field_name}" of non-leaf '
            f"type {output_type}",
        )

    def external_leaf(self, parent: CompositeDefinition, field_name: str) -> None:
        if _is_key_of_extension(self.subgraph, parent, field_name):
            self.report(
                "PROVIDES_FIELDS_MISSING_EXTERNAL",
                f'field "{parent.name}.{field_name}" should not be part of a @provides since it '
                'is already "effectively" provided by this subgraph (while it is marked '
                "@external, it is a @key field of an extension type, which are not internally "
                "considered external for historical/backward compatibility reasons)",
            )


def _is_key_of_extension(subgraph: Subgraph, parent: CompositeDefinition, field_name: str) -> bool:
    if parent.is_interface:
        return False
    extension = parent.is_extension or any(
        subgraph.names.canonical(d.name.value) == "extends" for d in parent.directives
    )
    if not extension:
        return False
    for directive in parent.directives:
        if subgraph.names.canonical(directive.name.value) != "key":
            continue
        fields = argument(directive, "fields")
        if not isinstance(fields, StringValueNode):
            continue
        try:
            selection = fieldset.parse_field_set(fields.value)
        except GraphQLError:
            continue
        top = {
            getattr(s, "name").value  # noqa: B009
            for s in selection.selections
            if getattr(s, "name", None) is not None
        }
        if field_name in top:
            return True
    return False


def _field_set_issues(
    subgraph: Subgraph,
    fields: str,
    parent: CompositeDefinition,
    problems: _Problems,
    coordinate: str,
) -> list[CompositionIssue]:
    """What is wrong with the field set `fields` selected on `parent`."""
    externals = frozenset(
        local for local, name in subgraph.names.directives.items() if name == "external"
    )
    try:
        selection = fieldset.parse_field_set(fields)
    except GraphQLError as error:
        problems.report(problems.code, error.message)
    else:
        fieldset.walk_field_set(selection, parent, subgraph.definitions, problems, externals)
    return [issue(subgraph, code, message, coordinate) for code, message in problems.messages]


def _fields_argument(app: Application, directive: str, where: str) -> tuple[object, str, str]:
    """The `fields:` value of a `@key`, `@requires` or `@provides`, printed, and the prefix of
    the issues about it."""
    value = argument(app.directive, "fields")
    printed = print_node(value) if value is not None else ""  # type: ignore[arg-type]
    return value, printed, f"On {where}, for @{directive}(fields: {printed})"


def _invalid_fields_type(
    subgraph: Subgraph, directive: str, prefix: str, coordinate: str
) -> CompositionIssue:
    return issue(
        subgraph,
        f"{directive.upper()}_INVALID_FIELDS_TYPE",
        f'{prefix}: Invalid value for argument "fields": must be a string.',
        coordinate,
    )


def _unsupported_on_interface(
    subgraph: Subgraph, app: Application, directive: str
) -> CompositionIssue:
    return issue(
        subgraph,
        f"{directive.upper()}_UNSUPPORTED_ON_INTERFACE",
        f'Cannot use @{directive} on field "{app.coordinate}" of parent type '
        f'"{app.type_name}": @{directive} is not yet supported within interfaces',
        app.coordinate,
    )


def key_fields(subgraph: Subgraph) -> list[CompositionIssue]:
    """`@key(fields:)` parses, names existing fields, and selects no argument, list, union or
    interface fields; an interface's key is repeated on its implementations."""
    issues: list[CompositionIssue] = []
    for app in applications(subgraph):
        if app.canonical != "key" or app.field is not None:
            continue
        type_name = app.type_name
        interface = subgraph.interface_type(type_name)
        on_interface = app.on_interface or (interface is not None and interface.is_interface_object)
        if on_interface and specs.version_number(subgraph.version) < 2.3:
            issues.append(
                issue(
                    subgraph,
                    "KEY_UNSUPPORTED_ON_INTERFACE",
                    f'Cannot use @key on interface "{type_name}": @key is not yet supported on '
                    "interfaces",
                    type_name,
                )
            )
            continue
        value, printed, prefix = _fields_argument(app, "key", f'type "{type_name}"')
        if not isinstance(value, StringValueNode):
            issues.append(_invalid_fields_type(subgraph, "key", prefix, type_name))
            continue
        parent = subgraph.definitions.composites.get(type_name)
        if parent is None:
            continue
        problems = _KeyProblems(prefix, subgraph)
        issues.extend(_field_set_issues(subgraph, value.value, parent, problems, type_name))
        if app.on_interface:
            issues.extend(_interface_key_on_implementations(subgraph, type_name, value, printed))
    return issues


def _interface_key_on_implementations(
    subgraph: Subgraph, interface: str, fields: StringValueNode, printed: str
) -> list[CompositionIssue]:
    issues: list[CompositionIssue] = []
    for composite in subgraph.definitions.composites.values():
        if composite.is_interface or interface not in composite.interfaces:
            continue
        has_key = any(
            subgraph.names.canonical(d.name.value) == "key"
            and isinstance(argument(d, "fields"), StringValueNode)
            and getattr(argument(d, "fields"), "value", None) == fields.value
            for d in composite.directives
        )
        if not has_key:
            issues.append(
                issue(
                    subgraph,
                    "INTERFACE_KEY_NOT_ON_IMPLEMENTATION",
                    f'Key @key(fields: {printed}) on interface type "{interface}" is missing on '
                    f'implementation type "{composite.name}".',
                    composite.name,
                )
            )
    return issues


def requires_fields(subgraph: Subgraph) -> list[CompositionIssue]:
    """`@requires(fields:)` parses and selects only `@external` fields of the type."""
    issues: list[CompositionIssue] = []
    for app in applications(subgraph):
        if app.canonical != "requires" or not isinstance(app.field, FieldDefinitionNode):
            continue
        if app.on_interface:
            issues.append(_unsupported_on_interface(subgraph, app, "requires"))
            continue
        value, _, prefix = _fields_argument(app, "requires", f'field "{app.coordinate}"')
        if not isinstance(value, StringValueNode):
            issues.append(_invalid_fields_type(subgraph, "requires", prefix, app.coordinate))
            continue
        parent = subgraph.definitions.composites.get(app.type_name)
        if parent is None:
            continue
        problems = _RequiresProblems(prefix, subgraph)
        issues.extend(_field_set_issues(subgraph, value.value, parent, problems, app.coordinate))
    return issues


def provides_fields(subgraph: Subgraph) -> list[CompositionIssue]:
    """`@provides(fields:)` is on a composite field and selects `@external` fields of it."""
    issues: list[CompositionIssue] = []
    for app in applications(subgraph):
        if app.canonical != "provides" or not isinstance(app.field, FieldDefinitionNode):
            continue
        targets = subgraph.definitions.composites_of(
            fieldset.named_type(print_node(app.field.type))
        )
        if not targets:
            issues.append(
                issue(
                    subgraph,
                    "PROVIDES_ON_NON_OBJECT_FIELD",
                    f'Invalid @provides directive on field "{app.coordinate}": field has type '
                    f'"{print_node(app.field.type)}" which is not a Composite Type',
                    app.coordinate,
                )
            )
            continue
        if app.on_interface:
            issues.append(_unsupported_on_interface(subgraph, app, "provides"))
            continue
        value, _, prefix = _fields_argument(app, "provides", f'field "{app.coordinate}"')
        if not isinstance(value, StringValueNode):
            issues.append(_invalid_fields_type(subgraph, "provides", prefix, app.coordinate))
            continue
        for target in targets:
            problems = _ProvidesProblems(prefix, subgraph)
            issues.extend(
                _field_set_issues(subgraph, value.value, target, problems, app.coordinate)
            )
    return issues
