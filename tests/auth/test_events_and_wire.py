"""What auth puts on the bus, what it says to the router, and what it never writes to logs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from subgraphs.kernel.bus import open_bus
from tests.auth.conftest import Accounts
from tests.auth.test_profiles_and_admin import UPDATE
from tests.support.processes import Environment, GraphQLClient, ServiceProcess


async def _events_for(
    env: Environment, topic: str, user_id: str, *, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Every event on `topic` about `user_id`, read through a brand-new consumer group."""
    bus = open_bus(env.settings())
    group = f"test-{uuid.uuid4().hex}"
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not found:
            for message in await bus.claim(topic, group, "tester", count=100, block=0.5):
                await bus.ack(topic, group, message.id)
                if message.payload.get("userId") == user_id:
                    found.append(message.payload)
    finally:
        await bus.close()
    return found


async def test_lifecycle_events_reach_the_bus(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    user = await accounts.register()
    user_id = user["user"]["id"]
    registered = await _events_for(auth_env, "auth.user.registered", user_id)
    assert len(registered) == 1
    assert registered[0]["handle"] == user["user"]["handle"]
    assert "email" not in registered[0] and "password" not in str(registered[0])

    await gql.execute(UPDATE, {"input": {"displayName": "Evented"}}, token=user["accessToken"])
    updated = await _events_for(auth_env, "auth.user.updated", user_id)
    assert [e["displayName"] for e in updated] == ["Evented"]

    await gql.execute(
        "mutation D($p: String!) { deleteAccount(password: $p) }",
        {"p": user["password"]},
        token=user["accessToken"],
    )
    assert await _events_for(auth_env, "auth.user.deleted", user_id) == [{"userId": user_id}]


async def test_failed_mutations_publish_nothing(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    user = await accounts.register()
    await gql.execute(UPDATE, {"input": {"avatarUrl": "ftp://nope"}}, token=user["accessToken"])
    assert await _events_for(auth_env, "auth.user.updated", user["user"]["id"], timeout=1.5) == []


async def test_subgraph_sdl_declares_the_user_entity(gql: GraphQLClient) -> None:
    sdl = (await gql.execute("{ _service { sdl } }"))["data"]["_service"]["sdl"]
    assert '@key(fields: "id")' in sdl
    assert "type User" in sdl
    assert "https://specs.apollo.dev/federation/v2" in sdl
    assert "PageInfo @shareable" in sdl


async def test_request_id_is_taken_or_made_and_echoed(auth_service: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        given = await http.post(
            f"{auth_service.url}/graphql",
            json={"query": "{ me { id } }"},
            headers={"x-request-id": "trace-abc.123"},
        )
        made = await http.post(f"{auth_service.url}/graphql", json={"query": "{ me { id } }"})
        hostile = await http.post(
            f"{auth_service.url}/graphql",
            json={"query": "{ me { id } }"},
            headers={"x-request-id": 'bad id"}'},
        )
    assert given.headers["x-request-id"] == "trace-abc.123"
    assert len(made.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != 'bad id"}'
    await asyncio.sleep(0.2)
    assert '"request_id":"trace-abc.123"' in auth_service.log()


async def test_malformed_requests_get_4xx_not_500(auth_service: ServiceProcess) -> None:
    async with httpx.AsyncClient() as http:
        bad_json = await http.post(
            f"{auth_service.url}/graphql",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        mutation_over_get = await http.get(
            f"{auth_service.url}/graphql", params={"query": "mutation { logoutAll }"}
        )
        no_query = await http.post(f"{auth_service.url}/graphql", json={})
    for response in (bad_json, mutation_over_get, no_query):
        assert 400 <= response.status_code < 500, response.text
        assert "Traceback" not in response.text


async def test_secrets_never_reach_the_log(
    gql: GraphQLClient, accounts: Accounts, auth_service: ServiceProcess
) -> None:
    password = f"unmistakable-{uuid.uuid4().hex}"
    user = await accounts.register(password=password)
    await gql.execute(
        "mutation L($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        {"e": user["email"], "p": "wrong-" + password},
    )
    await gql.execute(
        "mutation R($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
        {"t": user["refreshToken"]},
    )
    await asyncio.sleep(0.2)
    log = auth_service.log()
    assert "request" in log  # the log is being written at all
    for secret in (
        password,
        user["refreshToken"],
        user["accessToken"],
        user["accessToken"].split(".")[2],
    ):
        assert secret not in log
