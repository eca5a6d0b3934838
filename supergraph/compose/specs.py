"""The specs composition speaks: federation v2.x directives in, link/join/tag/inaccessible out."""

from __future__ import annotations

FEDERATION_IDENTITY = "https://specs.apollo.dev/federation"
LINK_URL = "https://specs.apollo.dev/link/v1.0"
TAG_URL = "https://specs.apollo.dev/tag/v0.3"
INACCESSIBLE_URL = "https://specs.apollo.dev/inaccessible/v0.2"

FEDERATION_VERSIONS = tuple(f"v2.{minor}" for minor in range(10))

_FIELD_SET = "federation__FieldSet"

# Definitions of every federation directive, by the version that introduced it. Argument
# types are namespaced so one copy validates imported, renamed and `federation__` names alike.
_DIRECTIVES: dict[str, tuple[str, str]] = {
    "key": (
        "v2.0",
        f"(fields: {_FIELD_SET}!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE",
    ),
    "requires": ("v2.0", f"(fields: {_FIELD_SET}!) on FIELD_DEFINITION"),
    "provides": ("v2.0", f"(fields: {_FIELD_SET}!) on FIELD_DEFINITION"),
    "external": ("v2.0", " on OBJECT | FIELD_DEFINITION"),
    "shareable": ("v2.0", " repeatable on FIELD_DEFINITION | OBJECT"),
    "extends": ("v2.0", " on OBJECT | INTERFACE"),
    "override": ("v2.0", "(from: String!, label: String) on FIELD_DEFINITION"),
    "inaccessible": (
        "v2.0",
        " on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ENUM | ENUM_VALUE | SCALAR"
        " | INPUT_OBJECT | INPUT_FIELD_DEFINITION | ARGUMENT_DEFINITION",
    ),
    "tag": (
        "v2.0",
        "(name: String!) repeatable on FIELD_DEFINITION | INTERFACE | OBJECT | UNION"
        " | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT"
        " | INPUT_FIELD_DEFINITION",
    ),
    "composeDirective": ("v2.1", "(name: String!) repeatable on SCHEMA"),
    "interfaceObject": ("v2.3", " on OBJECT"),
    "authenticated": ("v2.5", " on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM"),
    "requiresScopes": (
        "v2.5",
        "(scopes: [[federation__Scope!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE"
        " | SCALAR | ENUM",
    ),
    "policy": (
        "v2.6",
        "(policies: [[federation__Policy!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE"
        " | SCALAR | ENUM",
    ),
    "cost": (
        "v2.8",
        "(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION"
        " | INPUT_FIELD_DEFINITION | OBJECT | SCALAR",
    ),
    "listSize": (
        "v2.8",
        "(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!],"
        " requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION",
    ),
    "context": ("v2.8", "(name: String!) repeatable on INTERFACE | OBJECT | UNION"),
    "fromContext": ("v2.8", "(field: federation__ContextFieldValue) on ARGUMENT_DEFINITION"),
}

_TYPES: dict[str, str] = {
    "FieldSet": "v2.0",
    "Scope": "v2.5",
    "Policy": "v2.6",
    "ContextFieldValue": "v2.8",
}

# Directives we recognise but do not compose yet; using one is reported, not silently dropped.
UNSUPPORTED_DIRECTIVES = frozenset(
    {"authenticated", "requiresScopes", "policy", "cost", "listSize", "context", "fromContext"}
)

# The federation and link types a subgraph SDL may carry along (besides the ones it imports
# by name); they never reach the supergraph.
FEDERATION_TYPE_NAMES = frozenset(
    {
        "_FieldSet",
        "federation__FieldSet",
        "federation__Policy",
        "federation__Scope",
        "federation__ContextFieldValue",
        "link__Import",
        "link__Purpose",
        "link",
    }
)


def version_number(version: str) -> float:
    return float(version.lstrip("v"))


def directives_in(version: str) -> dict[str, str]:
    """The federation directives a `federation/<version>` link offers, with their signature."""
    offered = {
        name: signature
        for name, (since, signature) in _DIRECTIVES.items()
        if version_number(since) <= version_number(version)
    }
    if version_number(version) < 2.7:
        offered["override"] = "(from: String!) on FIELD_DEFINITION"
    return offered


def types_in(version: str) -> frozenset[str]:
    return frozenset(
        name for name, since in _TYPES.items() if version_number(since) <= version_number(version)
    )


def federation_definitions_sdl(version: str, local_names: dict[str, str]) -> str:
    """SDL defining the federation directives under the names a subgraph uses for them.

    `local_names` maps each local name (an import, its rename, or `federation__x`) to `x`.
    """
    offered = directives_in(version)
    lines = [
        f"scalar {_FIELD_SET}",
        "scalar federation__Scope",
        "scalar federation__Policy",
        "scalar federation__ContextFieldValue",
    ]
    lines.extend(
        f"directive @{local}{offered[canonical]}"
        for local, canonical in local_names.items()
        if canonical in offered
    )
    return "\n".join(lines)


LINK_DEFINITIONS_SDL = """
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) \
repeatable on SCHEMA
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }
"""


def join_version(federation_version: str) -> str:
    """The join spec version The Guild's composition pairs with a federation version."""
    minor = version_number(federation_version)
    if minor >= 2.8:
        return "v0.5"
    if minor >= 2.7:
        return "v0.4"
    return "v0.3"


def join_definitions_sdl(federation_version: str) -> str:
    minor = version_number(federation_version)
    override_label = "overrideLabel: String" if minor >= 2.7 else ""
    context = minor >= 2.8
    context_arguments = "contextArguments: [join__ContextArgument!]" if context else ""
    context_input = (
        """
    input join__ContextArgument {
      name: String!
      type: String!
      context: String!
      selection: join__FieldValue!
    }
    """
        if context
        else ""
    )
    field_value = "scalar join__FieldValue" if context else ""
    return f"""
    directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE

    directive @join__graph(name: String!, url: String!) on ENUM_VALUE

    directive @join__field(
      graph: join__Graph
      requires: join__FieldSet
      provides: join__FieldSet
      type: String
      external: Boolean
      override: String
      usedOverridden: Boolean
      {override_label}
      {context_arguments}
    ) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
    {context_input}
    directive @join__implements(
      graph: join__Graph!
      interface: String!
    ) repeatable on OBJECT | INTERFACE

    directive @join__type(
      graph: join__Graph!
      key: join__FieldSet
      extension: Boolean! = false
      resolvable: Boolean! = true
      isInterfaceObject: Boolean! = false
    ) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR

    directive @join__unionMember(
      graph: join__Graph!
      member: String!
    ) repeatable on UNION

    scalar join__FieldSet
    {field_value}
    """


SUPERGRAPH_LINK_SDL = '''
  directive @link(
    url: String
    as: String
    for: link__Purpose
    import: [link__Import]
  ) repeatable on SCHEMA

  scalar link__Import

  enum link__Purpose {
    """
    `SECURITY` features provide metadata necessary to securely resolve fields.
    """
    SECURITY

    """
    `EXECUTION` features provide metadata necessary for operation execution.
    """
    EXECUTION
  }
'''

SUPERGRAPH_TAG_SDL = """
  directive @tag(
    name: String!
  ) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR \
| ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA
"""

SUPERGRAPH_INACCESSIBLE_SDL = """
  directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ENUM | ENUM_VALUE \
| SCALAR | INPUT_OBJECT | INPUT_FIELD_DEFINITION | ARGUMENT_DEFINITION
"""
