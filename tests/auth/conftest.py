"""An auth service process per backend combination, shared by the tests of a module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import (
    BACKEND_IDS,
    BACKENDS,
    Environment,
    GraphQLClient,
    ServiceProcess,
    environment,
)

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken expiresIn user { id handle displayName role email } }
}
"""


@pytest.fixture(scope="module", params=BACKENDS, ids=BACKEND_IDS)
def auth_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Environment]:
    database, bus = request.param
    tmp: Path = tmp_path_factory.mktemp(f"auth-{database}-{bus}")
    with environment(
        tmp,
        database=database,
        bus=bus,
        REELGRAPH_LOGIN_MAX_FAILURES_PER_ACCOUNT="5",
        REELGRAPH_LOGIN_MAX_FAILURES_PER_IP="12",
    ) as env:
        yield env


@pytest.fixture(scope="module")
def auth_service(auth_env: Environment) -> Iterator[ServiceProcess]:
    service = ServiceProcess("auth", auth_env).start()
    yield service
    assert service.stop() == 0, service.log()


@pytest.fixture
async def gql(auth_service: ServiceProcess) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(f"{auth_service.url}/graphql")
    yield client
    await client.close()


class Accounts:
    """Registers throwaway users with unique emails and handles."""

    def __init__(self, gql: GraphQLClient) -> None:
        self.gql = gql
        self.count = 0

    async def register(
        self, password: str = "correct horse battery", **overrides: Any
    ) -> dict[str, Any]:
        import uuid

        tag = uuid.uuid4().hex[:10]
        payload = {
            "email": f"user_{tag}@example.com",
            "password": password,
            "handle": f"u_{tag}",
            "displayName": f"User {tag}",
            **overrides,
        }
        body = await self.gql.execute(REGISTER, {"input": payload})
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["register"]
        result["email"] = payload["email"]
        result["password"] = password
        return result


@pytest.fixture
def accounts(gql: GraphQLClient) -> Accounts:
    return Accounts(gql)
