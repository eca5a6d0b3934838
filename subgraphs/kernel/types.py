"""GraphQL types every subgraph shares: `@shareable` object types, and custom scalars that
`subgraph_schema` registers in every schema."""

from __future__ import annotations

import re
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition


@strawberry.federation.type(shareable=True, description="Relay pagination state of a connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


# Money and counters can pass 2^31 - 1, where GraphQL's Int stops.
Long = NewType("Long", int)

_LONG_MAX = 2**63 - 1
# Larger integers lose precision as JSON numbers in JavaScript clients, so they go as strings.
_JSON_SAFE = 2**53 - 1
_DIGITS = re.compile(r"^-?[0-9]{1,19}$")


def _serialize_long(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Long cannot represent {value!r}")
    if not -_LONG_MAX <= value <= _LONG_MAX:
        raise ValueError("Long is out of range")
    return value if -_JSON_SAFE <= value <= _JSON_SAFE else str(value)


def _parse_long(value: object) -> int:
    """Integers only: a JSON integer, or a decimal string of one; never a float or a bool."""
    if isinstance(value, bool):
        raise ValueError("Long must be an integer")
    if isinstance(value, int):
        parsed = value
    elif isinstance(value, str) and _DIGITS.match(value):
        parsed = int(value)
    else:
        raise ValueError("Long must be an integer")
    if not -_LONG_MAX <= parsed <= _LONG_MAX:
        raise ValueError("Long is out of range")
    return parsed


SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description=(
            "A signed 64-bit integer. A JSON number when it is within ±(2^53 - 1), "
            "otherwise a decimal string; accepted as either, never as a float."
        ),
        serialize=_serialize_long,
        parse_value=_parse_long,
    )
}
