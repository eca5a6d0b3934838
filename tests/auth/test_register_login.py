"""Registration and sign-in over HTTP against a real auth process."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.auth.conftest import REGISTER, Accounts
from tests.support.processes import GraphQLClient, error_codes

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken refreshToken user { id handle } }
}
"""


def _input(**overrides: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "email": f"new_{tag}@example.com",
        "password": "a perfectly fine password",
        "handle": f"h_{tag}",
        "displayName": "New Person",
        **overrides,
    }


async def test_register_returns_tokens_and_a_viewer(gql: GraphQLClient) -> None:
    body = await gql.execute(REGISTER, {"input": _input(displayName="  Ada   Lovelace ")})
    payload = body["data"]["register"]
    assert payload["expiresIn"] == 900
    assert payload["user"]["role"] == "VIEWER"
    assert payload["user"]["displayName"] == "Ada Lovelace"
    assert payload["accessToken"].count(".") == 2
    assert len(payload["refreshToken"]) >= 40


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@" + "b" * 260 + ".com"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "         "}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"handle": "ab"}, "handle"),
        ({"handle": "has space"}, "handle"),
        ({"handle": "x" * 31}, "handle"),
        ({"handle": "Admin"}, "handle"),
        ({"displayName": "   "}, "displayName"),
        ({"displayName": "d" * 51}, "displayName"),
        ({"displayName": "bell\x07"}, "displayName"),
    ],
)
async def test_register_rejects_bad_input(
    gql: GraphQLClient, overrides: dict[str, str], field: str
) -> None:
    body = await gql.execute(REGISTER, {"input": _input(**overrides)})
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["data"] is None


async def test_register_with_missing_field_is_a_graphql_input_error(gql: GraphQLClient) -> None:
    data = _input()
    del data["password"]
    body = await gql.execute(REGISTER, {"input": data})
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_email_and_handle_are_unique_case_insensitively(gql: GraphQLClient) -> None:
    first = _input()
    assert "errors" not in await gql.execute(REGISTER, {"input": first})
    same_email = _input(email=first["email"].upper())
    body = await gql.execute(REGISTER, {"input": same_email})
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["field"] == "email"
    same_handle = _input(handle=first["handle"].upper())
    body = await gql.execute(REGISTER, {"input": same_handle})
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["field"] == "handle"


async def test_concurrent_registrations_of_one_email_create_one_account(gql: GraphQLClient) -> None:
    email = f"race_{uuid.uuid4().hex[:8]}@example.com"
    bodies = await asyncio.gather(
        *(gql.execute(REGISTER, {"input": _input(email=email)}) for _ in range(8))
    )
    winners = [b for b in bodies if "errors" not in b]
    assert len(winners) == 1
    assert all(error_codes(b) == ["CONFLICT"] for b in bodies if b not in winners)


async def test_login_with_any_email_case(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    body = await gql.execute(LOGIN, {"email": user["email"].upper(), "password": user["password"]})
    assert body["data"]["login"]["user"]["id"] == user["user"]["id"]


async def test_login_failures_do_not_reveal_which_part_was_wrong(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    user = await accounts.register()
    wrong_password = await gql.execute(
        LOGIN, {"email": user["email"], "password": "not the password"}
    )
    unknown_email = await gql.execute(
        LOGIN, {"email": "nobody@example.com", "password": "whatever12"}
    )
    assert error_codes(wrong_password) == error_codes(unknown_email) == ["UNAUTHENTICATED"]
    assert wrong_password["errors"][0]["message"] == unknown_email["errors"][0]["message"]


async def test_long_passwords_are_not_truncated(gql: GraphQLClient, accounts: Accounts) -> None:
    # Both share their first 72 bytes, where bcrypt alone would stop reading.
    shared = "p" * 80
    user = await accounts.register(password=shared + "-one")
    ok = await gql.execute(LOGIN, {"email": user["email"], "password": shared + "-one"})
    assert "errors" not in ok
    other = await gql.execute(LOGIN, {"email": user["email"], "password": shared + "-two"})
    assert error_codes(other) == ["UNAUTHENTICATED"]


async def test_multibyte_passwords_over_72_bytes_work(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    password = "密码" * 20  # 120 bytes of UTF-8
    user = await accounts.register(password=password)
    body = await gql.execute(LOGIN, {"email": user["email"], "password": password})
    assert "errors" not in body


async def test_account_is_throttled_after_repeated_failures(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    user = await accounts.register()
    for _ in range(5):
        body = await gql.execute(LOGIN, {"email": user["email"], "password": "wrong password"})
        assert error_codes(body) == ["UNAUTHENTICATED"]
    # Even the right password is refused now, and from another address too.
    other_ip = GraphQLClient(gql.url)
    try:
        body = await other_ip.execute(LOGIN, {"email": user["email"], "password": user["password"]})
    finally:
        await other_ip.close()
    assert error_codes(body) == ["RATE_LIMITED"]
    assert body["errors"][0]["extensions"]["retryAfter"] > 0


async def test_address_is_throttled_across_accounts(gql: GraphQLClient, accounts: Accounts) -> None:
    victim = await accounts.register()
    for i in range(12):
        body = await gql.execute(
            LOGIN, {"email": f"guess{i}@example.com", "password": "wrong password"}
        )
        assert error_codes(body) == ["UNAUTHENTICATED"]
    body = await gql.execute(LOGIN, {"email": victim["email"], "password": victim["password"]})
    assert error_codes(body) == ["RATE_LIMITED"]
    # The account itself is not locked for everyone else.
    elsewhere = GraphQLClient(gql.url)
    try:
        body = await elsewhere.execute(
            LOGIN, {"email": victim["email"], "password": victim["password"]}
        )
    finally:
        await elsewhere.close()
    assert "errors" not in body


async def test_successful_login_resets_the_account_counter(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    user = await accounts.register()
    for _ in range(4):
        await gql.execute(LOGIN, {"email": user["email"], "password": "wrong password"})
    assert "errors" not in await gql.execute(
        LOGIN, {"email": user["email"], "password": user["password"]}
    )
    for _ in range(4):
        await gql.execute(LOGIN, {"email": user["email"], "password": "wrong password"})
    assert "errors" not in await gql.execute(
        LOGIN, {"email": user["email"], "password": user["password"]}
    )


async def test_login_rejects_bad_input(gql: GraphQLClient) -> None:
    overlong = await gql.execute(LOGIN, {"email": "a@example.com", "password": "x" * 1025})
    assert error_codes(overlong) == ["BAD_USER_INPUT"]
    missing = await gql.execute('mutation { login(email: "a@example.com") { accessToken } }')
    assert error_codes(missing) == ["GRAPHQL_VALIDATION_FAILED"]
    wrong_type = await gql.execute(LOGIN, {"email": 42, "password": ["x"]})
    assert set(error_codes(wrong_type)) == {"BAD_USER_INPUT"}  # one error per bad variable
