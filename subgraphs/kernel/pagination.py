"""Relay-style cursor pagination: opaque cursors, the checked values read back from them, and
the `first`/`after` bounds every list uses."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson

from subgraphs.kernel.errors import BadUserInput

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# What a BIGINT holds on every backend we run on.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _invalid() -> BadUserInput:
    return BadUserInput("Invalid cursor.", field="after")


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The values behind a cursor, or `BadUserInput` for anything we did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _invalid() from None
    if not isinstance(values, list) or len(values) != arity:
        raise _invalid()
    return values


def cursor_int(value: Any, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    """An integer position read back from a cursor, within what its column can hold.

    A cursor is the client's to send back, so a value we never issued (a bool, a float, a
    number past the column's range) is `BadUserInput`, not a failure in the database driver.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _invalid()
    return value


def cursor_time(value: Any) -> datetime:
    """A timestamp position read back from a cursor (ISO 8601 with a zone), in UTC."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            # We issue UTC timestamps only: a naive one is not ours and has no single meaning.
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # not a timestamp, or one that leaves the calendar once in UTC
    raise _invalid()


def page_size(
    first: int | None, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise BadUserInput(f"first must be between 0 and {maximum}.", field="first")
    return first
