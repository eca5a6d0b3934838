"""Cursor pagination: cursors round-trip, anything we did not issue is a BAD_USER_INPUT on `after`
(down to the type and range of each value read back), and page sizes stay within bounds."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from subgraphs.kernel.errors import BadUserInput
from subgraphs.kernel.pagination import (
    DEFAULT_PAGE_SIZE,
    INT64_MAX,
    INT64_MIN,
    MAX_PAGE_SIZE,
    cursor_int,
    cursor_time,
    decode_cursor,
    encode_cursor,
    page_size,
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [
        ("2026-11-22T04:41:41.905594+00:00", "0b5a6c1e-3c9d-4f6e-8a7b-1c2d3e4f5a6b"),
        (1_763_786_501.25, 42),
        ("ünïcödé ✓", None),
        ("needs/padding?+", "a" * 7),
        (-1,),
    ],
)
def test_a_cursor_round_trips_its_values(values: tuple[object, ...]) -> None:
    cursor = encode_cursor(*values)

    assert decode_cursor(cursor, len(values)) == list(values)


def test_cursors_are_url_safe_and_unpadded() -> None:
    cursor = encode_cursor("\xff\xfe" * 20, "?>?>")

    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_different_positions_give_different_cursors() -> None:
    assert encode_cursor("t1", "a") != encode_cursor("t1", "b")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("!!!!", id="non-base64-characters"),
        pytest.param("a", id="impossible-base64-length"),
        pytest.param("not a cursor at all", id="garbage-text"),
        pytest.param(_b64(b"\xff\xfe\xfd"), id="base64-of-non-utf8"),
        pytest.param(_b64(b"[1, 2"), id="base64-of-truncated-json"),
        pytest.param(_b64(b'{"id": 1, "at": 2}'), id="base64-of-an-object"),
        pytest.param(_b64(b'"just a string"'), id="base64-of-a-string"),
        pytest.param(_b64(b"null"), id="base64-of-null"),
        pytest.param("é€漢字", id="non-ascii"),
    ],
)
def test_a_cursor_we_did_not_issue_is_bad_user_input_on_after(cursor: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        decode_cursor(cursor, 2)

    assert raised.value.code == "BAD_USER_INPUT"
    assert raised.value.extensions == {"field": "after"}
    assert raised.value.message == "Invalid cursor."


@pytest.mark.parametrize(("issued", "expected"), [((1,), 2), ((1, 2, 3), 2), ((), 1)])
def test_a_cursor_of_the_wrong_arity_is_bad_user_input_on_after(
    issued: tuple[int, ...], expected: int
) -> None:
    with pytest.raises(BadUserInput) as raised:
        decode_cursor(encode_cursor(*issued), expected)

    assert raised.value.extensions == {"field": "after"}


def test_a_cursor_is_plain_base64_json_of_its_values() -> None:
    # Documented shape other services rely on when they build cursors by hand.
    assert orjson.loads(base64.urlsafe_b64decode(encode_cursor("a", 1) + "==")) == ["a", 1]


@pytest.mark.parametrize("value", [0, 1, -1, 42, INT64_MIN, INT64_MAX])
def test_an_integer_position_within_64_bits_reads_back(value: int) -> None:
    (position,) = decode_cursor(encode_cursor(value), 1)

    assert cursor_int(position) == value


@pytest.mark.parametrize(
    "json",
    [
        pytest.param(b"[18446744073709551615]", id="the-reported-2^64-1"),
        pytest.param(b"[9223372036854775808]", id="one-past-int64"),
        pytest.param(b"[-9223372036854775809]", id="one-below-int64"),
        pytest.param(b"[1" + b"0" * 30 + b"]", id="past-what-json-keeps-an-int"),
        pytest.param(b"[true]", id="bool"),
        pytest.param(b"[1.0]", id="float"),
        pytest.param(b'["1"]', id="string"),
        pytest.param(b"[null]", id="null"),
        pytest.param(b"[[1]]", id="list"),
    ],
)
def test_an_integer_position_out_of_range_or_of_another_type_is_bad_user_input(
    json: bytes,
) -> None:
    (position,) = decode_cursor(_b64(json), 1)

    with pytest.raises(BadUserInput) as raised:
        cursor_int(position)

    assert raised.value.extensions == {"field": "after"}


def test_an_integer_position_honours_the_columns_own_range() -> None:
    assert cursor_int(2**31 - 1, minimum=0, maximum=2**31 - 1) == 2**31 - 1
    for value in (2**31, -1):
        with pytest.raises(BadUserInput):
            cursor_int(value, minimum=0, maximum=2**31 - 1)


@pytest.mark.parametrize(
    ("issued", "expected"),
    [
        ("2026-11-22T04:41:41.905594+00:00", datetime(2026, 11, 22, 4, 41, 41, 905594, UTC)),
        ("2026-11-22T06:41:41+02:00", datetime(2026, 11, 22, 4, 41, 41, tzinfo=UTC)),
        ("0001-01-01T00:00:00+00:00", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_timestamp_position_reads_back_in_utc(issued: str, expected: datetime) -> None:
    (position,) = decode_cursor(encode_cursor(issued), 1)

    parsed = cursor_time(position)

    assert parsed == expected and parsed.utcoffset() == timedelta(0)


def test_a_timestamp_position_round_trips_an_aware_datetime() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5)))

    assert cursor_time(decode_cursor(encode_cursor(moment.isoformat()), 1)[0]) == moment


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-22T04:41:41", id="naive"),
        pytest.param("0001-01-01T00:00:00+01:00", id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:59-01:00", id="after-year-9999-in-utc"),
        pytest.param("yesterday", id="not-a-timestamp"),
        pytest.param(1_763_786_501, id="number"),
        pytest.param(None, id="null"),
        pytest.param(["2026-11-22T04:41:41+00:00"], id="list"),
    ],
)
def test_a_timestamp_position_that_is_not_an_aware_timestamp_is_bad_user_input(
    value: Any,
) -> None:
    with pytest.raises(BadUserInput) as raised:
        cursor_time(value)

    assert raised.value.extensions == {"field": "after"}
    assert raised.value.message == "Invalid cursor."


def test_page_size_defaults_when_first_is_not_given() -> None:
    assert page_size(None) == DEFAULT_PAGE_SIZE == 20
    assert page_size(None, default=5) == 5


@pytest.mark.parametrize("first", [0, 1, 50, MAX_PAGE_SIZE])
def test_page_size_accepts_first_within_bounds(first: int) -> None:
    assert page_size(first) == first


@pytest.mark.parametrize("first", [-1, MAX_PAGE_SIZE + 1, 10_000])
def test_page_size_rejects_first_out_of_bounds_as_bad_user_input_on_first(first: int) -> None:
    with pytest.raises(BadUserInput) as raised:
        page_size(first)

    assert raised.value.extensions == {"field": "first"}
    assert str(MAX_PAGE_SIZE) in raised.value.message


def test_page_size_honours_a_smaller_maximum() -> None:
    assert page_size(10, maximum=10) == 10
    with pytest.raises(BadUserInput):
        page_size(11, maximum=10)
