"""Custom scalars shared (with identical definitions) by the subgraphs that use them.

Schemas that use `ISBN` pass `config=SCALAR_CONFIG`.
"""

from __future__ import annotations

import re
from typing import NewType

import strawberry
from strawberry.schema.config import StrawberryConfig

_ISBN = re.compile(r"^978-\d{10}$")


def _parse_isbn(value: object) -> str:
    if not isinstance(value, str) or not _ISBN.match(value):
        raise ValueError(f"not an ISBN-13 of the form 978-NNNNNNNNNN: {value!r}")
    return value


ISBN = NewType("ISBN", str)

SCALAR_CONFIG = StrawberryConfig(
    scalar_map={
        ISBN: strawberry.scalar(
            name="ISBN",
            description="An ISBN-13 written as 978-NNNNNNNNNN.",
            serialize=str,
            parse_value=_parse_isbn,
        )
    }
)
