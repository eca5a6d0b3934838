"""Profiles, privacy of email, roles, suspension and deletion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.auth.conftest import Accounts
from tests.auth.test_register_login import LOGIN
from tests.auth.test_sessions import REFRESH
from tests.support.processes import Environment, GraphQLClient, error_codes, run_cli

USER = "query U($id: ID!) { user(id: $id) { id handle email suspended } }"
UPDATE = """
mutation P($input: UpdateProfileInput!) {
  updateProfile(input: $input) { handle displayName avatarUrl bio }
}
"""
USERS = """
query Users($first: Int, $after: String) {
  users(first: $first, after: $after) {
    totalCount edges { cursor node { id email } } pageInfo { hasNextPage endCursor }
  }
}
"""


async def _admin(accounts: Accounts, gql: GraphQLClient, env: Environment) -> dict[str, Any]:
    admin = await accounts.register()
    result = run_cli(env, "auth", "set-role", admin["user"]["handle"], "ADMIN")
    assert result.returncode == 0, result.stderr
    body = await gql.execute(LOGIN, {"email": admin["email"], "password": admin["password"]})
    return {**admin, "accessToken": body["data"]["login"]["accessToken"]}


async def test_email_is_private_to_self_and_admins(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    alice, bob = await accounts.register(), await accounts.register()
    alice_id = alice["user"]["id"]
    as_bob = await gql.execute(USER, {"id": alice_id}, token=bob["accessToken"])
    assert as_bob["data"]["user"]["email"] is None
    assert as_bob["data"]["user"]["suspended"] is None
    anonymous = await gql.execute(USER, {"id": alice_id})
    assert anonymous["data"]["user"]["email"] is None
    as_alice = await gql.execute(USER, {"id": alice_id}, token=alice["accessToken"])
    assert as_alice["data"]["user"]["email"] == alice["email"]
    admin = await _admin(accounts, gql, auth_env)
    as_admin = await gql.execute(USER, {"id": alice_id}, token=admin["accessToken"])
    assert as_admin["data"]["user"]["email"] == alice["email"]


async def test_email_stays_private_through_entity_resolution(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    alice, bob = await accounts.register(), await accounts.register()
    query = "query E($r: [_Any!]!) { _entities(representations: $r) { ... on User { id email handle } } }"
    reps = [
        {"__typename": "User", "id": alice["user"]["id"]},
        {"__typename": "User", "id": bob["user"]["id"]},
    ]
    body = await gql.execute(query, {"r": reps}, token=bob["accessToken"])
    alice_entity, bob_entity = body["data"]["_entities"]
    assert alice_entity["email"] is None
    assert bob_entity["email"] == bob["email"]


async def test_user_lookups(gql: GraphQLClient, accounts: Accounts) -> None:
    alice = await accounts.register()
    by_handle = await gql.execute(
        "query H($h: String!) { userByHandle(handle: $h) { id } }",
        {"h": alice["user"]["handle"].upper()},
    )
    assert by_handle["data"]["userByHandle"]["id"] == alice["user"]["id"]
    for missing in ["00000000-0000-0000-0000-000000000000", "not-a-uuid"]:
        assert (await gql.execute(USER, {"id": missing}))["data"]["user"] is None


async def test_update_profile(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    token = user["accessToken"]
    body = await gql.execute(
        UPDATE,
        {
            "input": {
                "displayName": "Renamed",
                "bio": "I film trains.\nMostly.",
                "avatarUrl": "https://cdn.example.com/a.png",
            }
        },
        token=token,
    )
    assert body["data"]["updateProfile"] == {
        "handle": user["user"]["handle"],
        "displayName": "Renamed",
        "avatarUrl": "https://cdn.example.com/a.png",
        "bio": "I film trains.\nMostly.",
    }
    # Sending null clears; leaving a field out keeps it.
    body = await gql.execute(UPDATE, {"input": {"bio": None}}, token=token)
    assert body["data"]["updateProfile"]["bio"] is None
    assert body["data"]["updateProfile"]["displayName"] == "Renamed"
    assert body["data"]["updateProfile"]["avatarUrl"] == "https://cdn.example.com/a.png"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"avatarUrl": "javascript:alert(1)"}, "BAD_USER_INPUT", "avatarUrl"),
        ({"avatarUrl": "https://" + "a" * 2100}, "BAD_USER_INPUT", "avatarUrl"),
        ({"bio": "b" * 501}, "BAD_USER_INPUT", "bio"),
        ({"displayName": ""}, "BAD_USER_INPUT", "displayName"),
        ({"displayName": None}, "BAD_USER_INPUT", "displayName"),
        ({"handle": "no spaces allowed"}, "BAD_USER_INPUT", "handle"),
        ({"handle": None}, "BAD_USER_INPUT", "handle"),
    ],
)
async def test_update_profile_rejects_bad_input(
    gql: GraphQLClient, accounts: Accounts, change: dict[str, Any], code: str, field: str
) -> None:
    user = await accounts.register()
    body = await gql.execute(UPDATE, {"input": change}, token=user["accessToken"])
    assert error_codes(body) == [code]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_update_profile_handle_must_be_free(gql: GraphQLClient, accounts: Accounts) -> None:
    alice, bob = await accounts.register(), await accounts.register()
    body = await gql.execute(
        UPDATE, {"input": {"handle": alice["user"]["handle"].upper()}}, token=bob["accessToken"]
    )
    assert error_codes(body) == ["CONFLICT"]
    # Changing the case of your own handle is fine.
    body = await gql.execute(
        UPDATE, {"input": {"handle": bob["user"]["handle"].upper()}}, token=bob["accessToken"]
    )
    assert body["data"]["updateProfile"]["handle"] == bob["user"]["handle"].upper()


async def test_update_profile_needs_a_viewer(gql: GraphQLClient) -> None:
    assert error_codes(await gql.execute(UPDATE, {"input": {"bio": "x"}})) == ["UNAUTHENTICATED"]


async def test_become_creator_issues_a_token_with_the_new_role(
    gql: GraphQLClient, accounts: Accounts
) -> None:
    user = await accounts.register()
    query = "mutation { becomeCreator { accessToken expiresIn user { role } } }"
    assert error_codes(await gql.execute(query)) == ["UNAUTHENTICATED"]
    body = await gql.execute(query, token=user["accessToken"])
    assert body["data"]["becomeCreator"]["user"]["role"] == "CREATOR"
    from jose import jwt

    claims = jwt.get_unverified_claims(body["data"]["becomeCreator"]["accessToken"])
    assert claims["role"] == "CREATOR"
    again = await gql.execute(query, token=body["data"]["becomeCreator"]["accessToken"])
    assert again["data"]["becomeCreator"]["user"]["role"] == "CREATOR"


async def test_users_is_for_admins_and_paginates(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    viewer = await accounts.register()
    assert error_codes(await gql.execute(USERS, {"first": 2}, token=viewer["accessToken"])) == [
        "FORBIDDEN"
    ]
    assert error_codes(await gql.execute(USERS, {"first": 2})) == ["UNAUTHENTICATED"]
    admin = await _admin(accounts, gql, auth_env)
    seen: list[str] = []
    after = None
    while True:
        body = await gql.execute(USERS, {"first": 3, "after": after}, token=admin["accessToken"])
        page = body["data"]["users"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        assert all(edge["node"]["email"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == page["totalCount"]
    assert viewer["user"]["id"] in seen
    for variables in ({"first": 101}, {"first": -1}, {"after": "garbage!"}, {"after": "WzFd"}):
        body = await gql.execute(USERS, variables, token=admin["accessToken"])
        assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)


async def test_set_user_role(gql: GraphQLClient, accounts: Accounts, auth_env: Environment) -> None:
    mutation = "mutation S($id: ID!, $r: Role!) { setUserRole(userId: $id, role: $r) { id role } }"
    target, other = await accounts.register(), await accounts.register()
    body = await gql.execute(
        mutation, {"id": target["user"]["id"], "r": "ADMIN"}, token=other["accessToken"]
    )
    assert error_codes(body) == ["FORBIDDEN"]
    admin = await _admin(accounts, gql, auth_env)
    body = await gql.execute(
        mutation, {"id": target["user"]["id"], "r": "CREATOR"}, token=admin["accessToken"]
    )
    assert body["data"]["setUserRole"]["role"] == "CREATOR"
    cases = [
        ({"id": "not-a-uuid", "r": "CREATOR"}, "BAD_USER_INPUT"),
        ({"id": "00000000-0000-0000-0000-000000000000", "r": "CREATOR"}, "NOT_FOUND"),
        ({"id": admin["user"]["id"], "r": "VIEWER"}, "FORBIDDEN"),
        ({"id": target["user"]["id"], "r": "EMPEROR"}, "BAD_USER_INPUT"),
    ]
    for variables, code in cases:
        assert error_codes(await gql.execute(mutation, variables, token=admin["accessToken"])) == [
            code
        ], variables


async def test_suspension_locks_the_account_out(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    suspend = "mutation S($id: ID!) { suspendUser(userId: $id) { id suspended } }"
    reinstate = "mutation S($id: ID!) { reinstateUser(userId: $id) { id suspended } }"
    user, other = await accounts.register(), await accounts.register()
    assert error_codes(
        await gql.execute(suspend, {"id": user["user"]["id"]}, token=other["accessToken"])
    ) == ["FORBIDDEN"]
    admin = await _admin(accounts, gql, auth_env)
    body = await gql.execute(suspend, {"id": user["user"]["id"]}, token=admin["accessToken"])
    assert body["data"]["suspendUser"]["suspended"] is True
    # Everything they held stops working: refresh, sign-in, and their access token at auth.
    assert error_codes(await gql.execute(REFRESH, {"t": user["refreshToken"]})) == [
        "UNAUTHENTICATED"
    ]
    login = await gql.execute(LOGIN, {"email": user["email"], "password": user["password"]})
    assert error_codes(login) == ["FORBIDDEN"]
    assert error_codes(await gql.execute("{ me { id } }", token=user["accessToken"])) == [
        "FORBIDDEN"
    ]
    assert error_codes(
        await gql.execute(suspend, {"id": admin["user"]["id"]}, token=admin["accessToken"])
    ) == ["FORBIDDEN"]
    body = await gql.execute(reinstate, {"id": user["user"]["id"]}, token=admin["accessToken"])
    assert body["data"]["reinstateUser"]["suspended"] is False
    assert "errors" not in await gql.execute(
        LOGIN, {"email": user["email"], "password": user["password"]}
    )


async def test_delete_account_and_delete_user(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    me = await accounts.register()
    wrong = await gql.execute(
        'mutation { deleteAccount(password: "nope nope") }', token=me["accessToken"]
    )
    assert error_codes(wrong) == ["BAD_USER_INPUT"]
    body = await gql.execute(
        "mutation D($p: String!) { deleteAccount(password: $p) }",
        {"p": me["password"]},
        token=me["accessToken"],
    )
    assert body["data"]["deleteAccount"] is True
    assert (await gql.execute(USER, {"id": me["user"]["id"]}))["data"]["user"] is None
    assert error_codes(
        await gql.execute(LOGIN, {"email": me["email"], "password": me["password"]})
    ) == ["UNAUTHENTICATED"]

    victim, other = await accounts.register(), await accounts.register()
    delete = "mutation D($id: ID!) { deleteUser(userId: $id) }"
    assert error_codes(
        await gql.execute(delete, {"id": victim["user"]["id"]}, token=other["accessToken"])
    ) == ["FORBIDDEN"]
    admin = await _admin(accounts, gql, auth_env)
    assert (await gql.execute(delete, {"id": victim["user"]["id"]}, token=admin["accessToken"]))[
        "data"
    ]["deleteUser"]
    assert error_codes(
        await gql.execute(delete, {"id": victim["user"]["id"]}, token=admin["accessToken"])
    ) == ["NOT_FOUND"]


async def test_admin_mutations_reject_malformed_and_unknown_ids(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    admin = await _admin(accounts, gql, auth_env)
    for name in ("suspendUser", "reinstateUser"):
        mutation = f"mutation M($id: ID!) {{ {name}(userId: $id) {{ id }} }}"
        for user_id, code in (
            ("not-a-uuid", "BAD_USER_INPUT"),
            ("00000000-0000-0000-0000-000000000000", "NOT_FOUND"),
        ):
            body = await gql.execute(mutation, {"id": user_id}, token=admin["accessToken"])
            assert error_codes(body) == [code], (name, user_id, body)
    body = await gql.execute('mutation { deleteUser(userId: "nope") }', token=admin["accessToken"])
    assert error_codes(body) == ["BAD_USER_INPUT"]
