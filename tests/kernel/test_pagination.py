"""Cursor pagination: cursors round-trip, anything we did not issue is a BAD_USER_INPUT on `after`,
and page sizes stay within bounds."""

from __future__ import annotations

import base64

import orjson
import pytest

from subgraphs.kernel.errors import BadUserInput
from subgraphs.kernel.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
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
