"""Differential test over our product graph: our router and Hive Gateway serve the checked-in
`schema/supergraph.graphql` over a real auth service; the same operations, the same answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.hive import free_port, run_hive_gateway
from tests.supergraph.conftest import run_router
from tests.support.processes import Environment, ServiceProcess, environment, run_cli

SUPERGRAPH = Path(__file__).resolve().parents[2] / "schema" / "supergraph.graphql"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("product")
    with environment(tmp, database="sqlite", bus="local") as env:
        auth = ServiceProcess("auth", env).start()
        try:
            yield _seed(env, auth) | {"env": env, "auth": auth}
        finally:
            auth.stop()


def _seed(env: Environment, auth: ServiceProcess) -> dict[str, Any]:
    """Three accounts, one of them an admin, with fresh access tokens."""
    url = f"{auth.url}/graphql"
    register = "mutation R($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }"
    people: dict[str, Any] = {}
    for handle in ("ada", "grace", "alan"):
        body = httpx.post(
            url,
            json={
                "query": register,
                "variables": {
                    "i": {
                        "email": f"{handle}@example.com",
                        "password": "a long password",
                        "handle": handle,
                        "displayName": handle.title(),
                    }
                },
            },
        ).json()
        people[handle] = body["data"]["register"]
    assert run_cli(env, "auth", "set-role", "ada", "ADMIN").returncode == 0
    login = (
        'mutation { login(email: "ada@example.com", password: "a long password") { accessToken } }'
    )
    people["ada"]["accessToken"] = httpx.post(url, json={"query": login}).json()["data"]["login"][
        "accessToken"
    ]
    return people


@pytest.fixture(scope="module")
def gateways(
    product: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    auth_url = f"{product['auth'].url}/graphql"
    sdl = re.sub(
        r'(@join__graph\(name: "auth", url: )"[^"]*"', rf'\1"{auth_url}"', SUPERGRAPH.read_text()
    )
    assert auth_url in sdl
    supergraph = tmp_path_factory.mktemp("sg") / "supergraph.graphql"
    supergraph.write_text(sdl)
    with (
        run_router(supergraph, {}, tmp_path_factory.mktemp("ours")) as ours,
        run_hive_gateway(sdl, free_port()) as hive,
    ):
        yield {"ours": ours, "hive": hive}


# (name, query, variables, who is signed in)
OPERATIONS: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("me-anonymous", "{ me { id handle } }", {}, None),
    ("me-signed-in", "{ me { handle displayName role email } }", {}, "grace"),
    (
        "user-by-id-hides-email",
        "query U($id: ID!) { user(id: $id) { handle email role } }",
        {"id": "$alan"},
        "grace",
    ),
    (
        "user-by-id-admin-sees-email",
        "query U($id: ID!) { user(id: $id) { handle email } }",
        {"id": "$alan"},
        "ada",
    ),
    ("user-by-handle", '{ userByHandle(handle: "GRACE") { handle displayName } }', {}, None),
    ("user-missing", '{ user(id: "00000000-0000-0000-0000-000000000000") { handle } }', {}, None),
    (
        "users-as-admin",
        "{ users(first: 2) { totalCount edges { node { handle } } pageInfo { hasNextPage } } }",
        {},
        "ada",
    ),
    ("users-as-viewer-forbidden", "{ users(first: 2) { totalCount } }", {}, "grace"),
    ("users-anonymous", "{ users { totalCount } }", {}, None),
    ("aliases-and-typename", "{ who: me { __typename name: displayName h: handle } }", {}, "alan"),
    (
        "fragments",
        "query { me { ...Bits } } fragment Bits on User { handle role createdAt }",
        {},
        "ada",
    ),
    (
        "skip-include",
        "query Q($x: Boolean!) { me { handle email @include(if: $x) role @skip(if: $x) } }",
        {"x": True},
        "grace",
    ),
    ("bad-token-subgraph-error", "{ me { handle } }", {}, "garbage"),
    ("unknown-field", "{ me { password } }", {}, None),
    ("bad-variable", "query U($id: ID!) { user(id: $id) { handle } }", {"id": None}, None),
    ("syntax-error", "{ me { ", {}, None),
    ("typename-root", "{ __typename }", {}, None),
    ("introspection-type", '{ __type(name: "User") { name kind } }', {}, None),
    (
        "register-bad-input",
        'mutation { register(input: {email: "x", password: "y", handle: "z", displayName: ""}) { accessToken } }',
        {},
        None,
    ),
    (
        "login-wrong-password",
        'mutation { login(email: "grace@example.com", password: "wrong one!") { accessToken } }',
        {},
        None,
    ),
]


def _request(url: str, query: str, variables: dict[str, Any], token: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = httpx.post(
        url, json={"query": query, "variables": variables}, headers=headers, timeout=30
    ).json()
    return body


@pytest.mark.parametrize(
    ("name", "query", "variables", "who"), OPERATIONS, ids=[o[0] for o in OPERATIONS]
)
def test_product_graph_answers_like_hive_gateway(
    name: str,
    query: str,
    variables: dict[str, Any],
    who: str | None,
    product: dict[str, Any],
    gateways: dict[str, str],
) -> None:
    resolved = {
        k: product[v[1:]]["user"]["id"] if isinstance(v, str) and v.startswith("$") else v
        for k, v in variables.items()
    }
    token = "not.a.token" if who == "garbage" else (product[who]["accessToken"] if who else None)
    ours = _request(gateways["ours"], query, resolved, token)
    theirs = _request(gateways["hive"], query, resolved, token)
    assert ("data" in ours) == ("data" in theirs), (ours, theirs)
    assert ours.get("data") == theirs.get("data"), (ours, theirs)
    assert bool(ours.get("errors")) == bool(theirs.get("errors")), (ours, theirs)
