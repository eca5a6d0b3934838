"""Wallets and deposits over HTTP: the test payment provider's tokens, idempotency keys, limits,
exact 64-bit amounts, transaction history, the deposit event, and bad input."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from subgraphs.kernel.pagination import encode_cursor
from tests.billing.conftest import DEPOSIT, Stack
from tests.support.processes import error_codes

TRANSACTIONS = """
query T($first: Int, $after: String) { wallet { transactions(first: $first, after: $after) {
  edges { cursor node { id kind amount { amount currency } balanceAfter { amount }
                        description referenceId createdAt } }
  pageInfo { hasNextPage endCursor } } } }
"""


async def _deposit(stack: Stack, bearer: str, **variables: Any) -> dict[str, Any]:
    return await stack.gql.execute(DEPOSIT, variables, token=bearer)


async def test_a_deposit_credits_the_wallet_and_is_on_the_bus(stack: Stack) -> None:
    user = await stack.register()
    assert await stack.balance(user) == 0
    deposit = await stack.deposit(user, 2_500)
    assert deposit["status"] == "SUCCEEDED"
    assert deposit["amount"] == {"amount": 2_500, "currency": "USD"}
    assert await stack.balance(user) == 2_500

    history = await stack.gql.execute(TRANSACTIONS, token=user.token)
    (edge,) = history["data"]["wallet"]["transactions"]["edges"]
    assert edge["node"]["kind"] == "DEPOSIT"
    assert edge["node"]["amount"] == {"amount": 2_500, "currency": "USD"}
    assert edge["node"]["balanceAfter"] == {"amount": 2_500}
    assert edge["node"]["referenceId"] == deposit["id"]

    group = f"test-{uuid.uuid4().hex}"
    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        for message in await stack.bus.claim(
            "billing.deposit.succeeded", group, "t", count=100, block=0.5
        ):
            if message.payload["depositId"] == deposit["id"]:
                found.append(message.payload)
    assert found == [
        {
            "depositId": deposit["id"],
            "userId": user.id,
            "amount": 2_500,
            "currency": "USD",
            "succeededAt": found[0]["succeededAt"],
        }
    ]


async def test_the_same_key_and_request_returns_the_first_result(stack: Stack) -> None:
    user = await stack.register()
    request = {"amount": 700, "token": "tok_visa", "key": "order-1"}
    first = await _deposit(stack, user.token, **request)
    again = await _deposit(stack, user.token, **request)
    assert first["data"]["deposit"] == again["data"]["deposit"]
    assert await stack.balance(user) == 700

    # The key belongs to this user: another user's same key is their own deposit.
    other = await stack.register()
    theirs = await _deposit(stack, other.token, **request)
    assert theirs["data"]["deposit"]["id"] != first["data"]["deposit"]["id"]
    assert await stack.balance(other) == 700


async def test_the_same_key_with_a_different_request_is_a_conflict(stack: Stack) -> None:
    user = await stack.register()
    await _deposit(stack, user.token, amount=700, token="tok_visa", key="k")
    for changed in ({"amount": 701}, {"token": "tok_slow"}, {"currency": "EUR"}):
        body = await _deposit(
            stack, user.token, **{"amount": 700, "token": "tok_visa", "key": "k", **changed}
        )
        # EUR is not an accepted currency here: refused before the key is even looked at.
        assert error_codes(body) == (
            ["BAD_USER_INPUT"] if "currency" in changed else ["CONFLICT"]
        ), body
    assert await stack.balance(user) == 700


async def test_a_declined_card_fails_the_same_way_every_time(stack: Stack) -> None:
    user = await stack.register()
    for _ in range(2):
        body = await _deposit(stack, user.token, amount=900, token="tok_declined", key="d")
        assert error_codes(body) == ["PAYMENT_DECLINED"]
        assert body["data"] is None
    unknown = await _deposit(stack, user.token, amount=900, token="tok_what", key="u")
    assert error_codes(unknown) == ["INVALID_PAYMENT_TOKEN"]
    assert await stack.balance(user) == 0
    assert (await stack.gql.execute(TRANSACTIONS, token=user.token))["data"]["wallet"][
        "transactions"
    ]["edges"] == []


async def test_a_slow_payment_succeeds_after_its_delay(stack: Stack) -> None:
    user = await stack.register()
    started = time.monotonic()
    body = await _deposit(stack, user.token, amount=300, token="tok_slow", key="s")
    assert body["data"]["deposit"]["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 1.0  # the provider's configured delay
    assert await stack.balance(user) == 300


async def test_amounts_are_exact_past_32_bits(stack: Stack) -> None:
    user = await stack.register()
    big = 5_000_000_123  # over 2^32 minor units; GraphQL's Int would overflow
    body = await _deposit(stack, user.token, amount=big, token="tok_visa", key="big")
    assert body["data"]["deposit"]["amount"]["amount"] == big
    as_string = await _deposit(stack, user.token, amount=str(big), token="tok_visa", key="big")
    assert as_string["data"]["deposit"] == body["data"]["deposit"]
    assert await stack.balance(user) == big


async def test_bad_deposits_are_refused_and_write_nothing(stack: Stack) -> None:
    user = await stack.register()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": 99}, "BAD_USER_INPUT"),  # below the minimum
        ({"amount": 10_000_000_001}, "BAD_USER_INPUT"),  # above the maximum
        ({"amount": -500}, "BAD_USER_INPUT"),
        ({"amount": 1.5}, "BAD_USER_INPUT"),  # never a float
        ({"amount": "12.50"}, "BAD_USER_INPUT"),
        ({"amount": True}, "BAD_USER_INPUT"),
        ({"amount": 2**63}, "BAD_USER_INPUT"),
        ({"key": ""}, "BAD_USER_INPUT"),
        ({"key": "x" * 201}, "BAD_USER_INPUT"),
        ({"key": "tab\tkey"}, "BAD_USER_INPUT"),
        ({"token": ""}, "BAD_USER_INPUT"),
        ({"currency": "XYZ"}, "BAD_USER_INPUT"),
    ]
    for change, code in cases:
        variables = {"amount": 500, "token": "tok_visa", "key": uuid.uuid4().hex, **change}
        body = await _deposit(stack, user.token, **variables)
        assert error_codes(body) == [code], (change, body)
    anonymous = await stack.gql.execute(DEPOSIT, {"amount": 500, "token": "tok_visa", "key": "a"})
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    assert await stack.balance(user) == 0
    assert error_codes(await stack.gql.execute("{ wallet { balance { amount } } }")) == [
        "UNAUTHENTICATED"
    ]


async def test_transactions_page_newest_first(stack: Stack) -> None:
    user = await stack.register()
    for amount in (100, 200, 300):
        await stack.deposit(user, amount)
    first = await stack.gql.execute(TRANSACTIONS, {"first": 2}, token=user.token)
    page = first["data"]["wallet"]["transactions"]
    assert [e["node"]["amount"]["amount"] for e in page["edges"]] == [300, 200]
    assert [e["node"]["balanceAfter"]["amount"] for e in page["edges"]] == [600, 300]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await stack.gql.execute(
        TRANSACTIONS, {"first": 2, "after": page["pageInfo"]["endCursor"]}, token=user.token
    )
    page = rest["data"]["wallet"]["transactions"]
    assert [e["node"]["amount"]["amount"] for e in page["edges"]] == [100]
    assert page["pageInfo"]["hasNextPage"] is False
    for bad in ({"first": -1}, {"first": 101}, {"after": "not-a-cursor"}, {"after": "WyJ4Il0"}):
        body = await stack.gql.execute(TRANSACTIONS, bad, token=user.token)
        assert error_codes(body) == ["BAD_USER_INPUT"], (bad, body)


def _raw_cursor(text: str) -> str:
    """A cursor around any JSON text, as someone crafting one would make it."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_a_crafted_cursor_is_bad_input_never_internal(stack: Stack) -> None:
    user = await stack.register()
    await stack.deposit(user, 100)
    crafted = [
        "WzE4NDQ2NzQ0MDczNzA5NTUxNjE1XQ",  # [18446744073709551615]: 2^64 - 1
        encode_cursor(2**63),  # one past the largest 64-bit id
        _raw_cursor("[-9223372036854775809]"),
        _raw_cursor("[18446744073709551616]"),  # 2^64: beyond what JSON parsers keep exact
        _raw_cursor("[1e400]"),
        encode_cursor(0),
        encode_cursor(-5),
        encode_cursor(1.5),
        encode_cursor(True),
        encode_cursor(None),
        encode_cursor("12"),
        encode_cursor([1]),
        encode_cursor(1, 2),
        encode_cursor(),
    ]
    for cursor in crafted:
        body = await stack.gql.execute(TRANSACTIONS, {"after": cursor}, token=user.token)
        assert error_codes(body) == ["BAD_USER_INPUT"], (cursor, body)
    # The largest id there can be is a valid cursor: everything is older than it.
    body = await stack.gql.execute(
        TRANSACTIONS, {"after": encode_cursor(2**63 - 1)}, token=user.token
    )
    assert len(body["data"]["wallet"]["transactions"]["edges"]) == 1, body


async def test_nobody_reads_another_users_wallet(stack: Stack) -> None:
    alice, mallory = await stack.register(), await stack.register()
    await stack.deposit(alice, 1_000)
    query = """query U($r: [_Any!]!) { _entities(representations: $r) {
      ... on User { id wallet { balance { amount } } } } }"""
    theirs = await stack.gql.execute(
        query, {"r": [{"__typename": "User", "id": alice.id}]}, token=mallory.token
    )
    assert error_codes(theirs) == ["FORBIDDEN"]
    # Only the field is withheld: the rest of the user still resolves.
    assert theirs["data"]["_entities"] == [{"id": alice.id, "wallet": None}]
    anonymous = await stack.gql.execute(query, {"r": [{"__typename": "User", "id": alice.id}]})
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    own = await stack.gql.execute(
        query, {"r": [{"__typename": "User", "id": alice.id}]}, token=alice.token
    )
    assert own["data"]["_entities"] == [{"id": alice.id, "wallet": {"balance": {"amount": 1_000}}}]
    # Root fields only ever show the caller's own wallet.
    assert await stack.balance(mallory) == 0
