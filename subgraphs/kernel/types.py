"""GraphQL types every subgraph shares; `@shareable` so composition accepts them in each,
and scalars defined identically wherever they are used."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, StringValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

# 64-bit signed range: what every backend stores in a BIGINT.
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1


def _parse_long(value: Any) -> int:
    # JSON numbers are exact only to 2^53, so clients may send larger values as strings.
    if isinstance(value, bool):
        raise ValueError("Long cannot represent a boolean.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise ValueError(f"Long cannot represent {value!r}.")
    if not LONG_MIN <= number <= LONG_MAX:
        raise ValueError("Long is outside the 64-bit range.")
    return number


def _parse_long_literal(node: ValueNode, _variables: Any = None) -> int:
    if isinstance(node, IntValueNode | StringValueNode):
        return _parse_long(node.value)
    raise ValueError("Long must be an integer.")


# Annotate fields with `Long`; `SCALARS` (passed by `subgraph_schema`) tells Strawberry how
# it reads and writes.
Long = NewType("Long", int)

LONG_SCALAR = strawberry.scalar(
    name="Long",
    description="A 64-bit signed integer (sizes in bytes). Serialised as a JSON number; "
    "inputs may also be decimal strings, as JSON numbers are exact only to 2^53.",
    serialize=int,
    parse_value=_parse_long,
    parse_literal=_parse_long_literal,
)

SCALARS: dict[object, ScalarDefinition] = {Long: LONG_SCALAR}


@strawberry.federation.type(shareable=True, description="Relay pagination state of a connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None
