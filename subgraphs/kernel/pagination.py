"""Relay-style cursor pagination: opaque cursors and the `first`/`after` bounds every list uses."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from subgraphs.kernel.errors import BadUserInput

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The values behind a cursor, or `BadUserInput` for anything we did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadUserInput("Invalid cursor.", field="after") from None
    if not isinstance(values, list) or len(values) != arity:
        raise BadUserInput("Invalid cursor.", field="after")
    return values


def page_size(
    first: int | None, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise BadUserInput(f"first must be between 0 and {maximum}.", field="first")
    return first
