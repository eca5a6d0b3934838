"""Refresh-token rotation, reuse detection, sign-out and password changes."""

from __future__ import annotations

import asyncio

from tests.auth.conftest import Accounts
from tests.auth.test_register_login import LOGIN
from tests.support.processes import GraphQLClient, error_codes

REFRESH = "mutation R($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken user { id } } }"
LOGOUT = "mutation L($t: String!) { logout(refreshToken: $t) }"
LOGOUT_ALL = "mutation { logoutAll }"
CHANGE_PASSWORD = (
    "mutation C($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }"
)
ME = "{ me { id handle email } }"


async def test_refresh_rotates_the_token(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    body = await gql.execute(REFRESH, {"t": user["refreshToken"]})
    rotated = body["data"]["refreshToken"]
    assert rotated["refreshToken"] != user["refreshToken"]
    assert rotated["user"]["id"] == user["user"]["id"]
    me = await gql.execute(ME, token=rotated["accessToken"])
    assert me["data"]["me"]["id"] == user["user"]["id"]
    again = await gql.execute(REFRESH, {"t": rotated["refreshToken"]})
    assert "errors" not in again


async def test_reusing_a_rotated_token_revokes_its_family(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    user = await accounts.register()
    rotated = (await gql.execute(REFRESH, {"t": user["refreshToken"]}))["data"]["refreshToken"]
    replay = await gql.execute(REFRESH, {"t": user["refreshToken"]})
    assert error_codes(replay) == ["UNAUTHENTICATED"]
    assert replay["errors"][0]["extensions"]["reason"] == "REFRESH_TOKEN_REUSED"
    # The token it had been rotated into is dead too: the thief and the user both sign in again.
    after = await gql.execute(REFRESH, {"t": rotated["refreshToken"]})
    assert error_codes(after) == ["UNAUTHENTICATED"]


async def test_reuse_only_revokes_that_sign_in(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    other = (await gql.execute(LOGIN, {"email": user["email"], "password": user["password"]}))[
        "data"
    ]["login"]
    await gql.execute(REFRESH, {"t": user["refreshToken"]})
    await gql.execute(REFRESH, {"t": user["refreshToken"]})
    assert "errors" not in await gql.execute(REFRESH, {"t": other["refreshToken"]})


async def test_concurrent_refreshes_with_one_token_let_one_through(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    user = await accounts.register()
    bodies = await asyncio.gather(
        *(gql.execute(REFRESH, {"t": user["refreshToken"]}) for _ in range(5))
    )
    assert sum("errors" not in b for b in bodies) <= 1
    assert all(error_codes(b) in ([], ["UNAUTHENTICATED"]) for b in bodies)


async def test_unknown_and_malformed_refresh_tokens_are_rejected(gql: GraphQLClient) -> None:
    for token in ["", "nope", "x" * 500]:
        body = await gql.execute(REFRESH, {"t": token})
        assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_logout_ends_that_sign_in(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    assert (await gql.execute(LOGOUT, {"t": user["refreshToken"]}))["data"]["logout"] is True
    assert error_codes(await gql.execute(REFRESH, {"t": user["refreshToken"]})) == [
        "UNAUTHENTICATED"
    ]
    # Logging out twice, or with a token we never issued, is harmless.
    assert (await gql.execute(LOGOUT, {"t": user["refreshToken"]}))["data"]["logout"] is True
    assert (await gql.execute(LOGOUT, {"t": "never-issued"}))["data"]["logout"] is True


async def test_logout_all_ends_every_sign_in(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    second = (await gql.execute(LOGIN, {"email": user["email"], "password": user["password"]}))[
        "data"
    ]["login"]
    assert error_codes(await gql.execute(LOGOUT_ALL)) == ["UNAUTHENTICATED"]
    assert (await gql.execute(LOGOUT_ALL, token=user["accessToken"]))["data"]["logoutAll"] is True
    for refresh in (user["refreshToken"], second["refreshToken"]):
        assert error_codes(await gql.execute(REFRESH, {"t": refresh})) == ["UNAUTHENTICATED"]


async def test_change_password_keeps_this_sign_in_and_ends_the_others(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    user = await accounts.register()
    other = (await gql.execute(LOGIN, {"email": user["email"], "password": user["password"]}))[
        "data"
    ]["login"]
    body = await gql.execute(
        CHANGE_PASSWORD,
        {"c": user["password"], "n": "a brand new secret"},
        token=user["accessToken"],
    )
    assert body["data"]["changePassword"] is True
    assert "errors" not in await gql.execute(REFRESH, {"t": user["refreshToken"]})
    assert error_codes(await gql.execute(REFRESH, {"t": other["refreshToken"]})) == [
        "UNAUTHENTICATED"
    ]
    old = await gql.execute(LOGIN, {"email": user["email"], "password": user["password"]})
    assert error_codes(old) == ["UNAUTHENTICATED"]
    new = await gql.execute(LOGIN, {"email": user["email"], "password": "a brand new secret"})
    assert "errors" not in new


async def test_change_password_rejects_bad_input(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    token = user["accessToken"]
    cases = [
        ({"c": "wrong current pw", "n": "a brand new secret"}, "BAD_USER_INPUT", "currentPassword"),
        ({"c": user["password"], "n": "short"}, "BAD_USER_INPUT", "newPassword"),
        ({"c": user["password"], "n": user["password"]}, "BAD_USER_INPUT", "newPassword"),
    ]
    for variables, code, field in cases:
        body = await gql.execute(CHANGE_PASSWORD, variables, token=token)
        assert error_codes(body) == [code], body
        assert body["errors"][0]["extensions"]["field"] == field
    assert error_codes(await gql.execute(CHANGE_PASSWORD, {"c": "a", "n": "b" * 10})) == [
        "UNAUTHENTICATED"
    ]
