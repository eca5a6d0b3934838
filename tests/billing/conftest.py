"""A real auth and billing process per backend (SQLite + local bus, PostgreSQL + Redis), shared
by the billing API tests, with helpers to sign users up, publish video's events on the real bus
and talk GraphQL to billing. A billing "minute" lasts one second here."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from subgraphs.kernel.bus import Bus, open_bus
from subgraphs.kernel.playback import PLAYBACK_KEYS_PATH, PlaybackTokenVerifier
from subgraphs.kernel.tokens import JwksClient
from tests.support.processes import (
    Environment,
    GraphQLClient,
    ServiceProcess,
    environment,
    run_cli,
)

BACKENDS = [("sqlite", "local"), ("postgres", "redis")]
BACKEND_IDS = [f"{db}+{bus}" for db, bus in BACKENDS]

BILLING_SETTINGS = {
    "REELGRAPH_BILLING_MINUTE_SECONDS": "1",
    "REELGRAPH_BILLING_SESSION_TTL_SECONDS": "5",
    "REELGRAPH_BILLING_TEST_PROVIDER_DELAY_SECONDS": "1",
    "REELGRAPH_BILLING_DEPOSIT_MAX": "10000000000",
}

REGISTER = """
mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id handle } } }
"""
LOGIN = "mutation L($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
DEPOSIT = """
mutation D($amount: Long!, $token: String!, $key: String!, $currency: String) {
  deposit(amount: $amount, paymentToken: $token, idempotencyKey: $key, currency: $currency) {
    id status amount { amount currency } createdAt
  }
}
"""
WALLET = "{ wallet { balance { amount currency } } }"
SET_PRICE = """
mutation P($v: ID!, $p: Long!) { setVideoPrice(videoId: $v, pricePerMinute: $p) {
  id price { pricePerMinute currency } } }
"""
VIDEO = """
query V($r: [_Any!]!) { _entities(representations: $r) {
  ... on Video { id price { pricePerMinute currency } access { canWatch reason } } } }
"""
SESSION_FIELDS = """
id playbackToken expiresAt chargedMinutes status endReason positionSeconds startedAt
pricePerMinute { amount currency } video { id }
"""
START = f"mutation S($v: ID!) {{ startPlayback(videoId: $v) {{ {SESSION_FIELDS} }} }}"
HEARTBEAT = f"""
mutation H($s: ID!, $p: Float!) {{ playbackHeartbeat(sessionId: $s, positionSeconds: $p) {{
  {SESSION_FIELDS} }} }}
"""
END = f"mutation E($s: ID!) {{ endPlayback(sessionId: $s) {{ {SESSION_FIELDS} }} }}"
SESSION = f"query Q($s: ID!) {{ playbackSession(id: $s) {{ {SESSION_FIELDS} }} }}"
AUDIT = "{ ledgerAudit { ok entries postings accounts violations { kind detail } } }"


_ADMINS: dict[str, User] = {}


@dataclass
class User:
    id: str
    token: str
    handle: str
    email: str


@dataclass
class Stack:
    env: Environment
    auth: ServiceProcess
    billing: ServiceProcess
    bus: Bus
    auth_gql: GraphQLClient
    gql: GraphQLClient

    async def register(self) -> User:
        tag = uuid.uuid4().hex[:10]
        email = f"b_{tag}@example.com"
        body = await self.auth_gql.execute(
            REGISTER,
            {
                "input": {
                    "email": email,
                    "password": "correct horse battery",
                    "handle": f"b_{tag}",
                    "displayName": f"Billing {tag}",
                }
            },
        )
        assert "errors" not in body, body
        result = body["data"]["register"]
        return User(result["user"]["id"], result["accessToken"], result["user"]["handle"], email)

    async def admin(self) -> User:
        """One admin per stack (made with the operator's CLI, as the README says)."""
        key = str(self.env.data_dir)
        if key not in _ADMINS:
            user = await self.register()
            done = await asyncio.to_thread(
                run_cli, self.env, "auth", "set-role", user.handle, "ADMIN"
            )
            assert done.returncode == 0, done.stderr
            body = await self.auth_gql.execute(
                LOGIN, {"e": user.email, "p": "correct horse battery"}
            )
            user.token = body["data"]["login"]["accessToken"]
            _ADMINS[key] = user
        return _ADMINS[key]

    async def publish_video(
        self,
        owner: User,
        *,
        video_id: str | None = None,
        visibility: str = "PUBLIC",
        ready: bool = True,
    ) -> str:
        """What the video service publishes for a new upload (and its processing finishing)."""
        video_id = video_id or str(uuid.uuid4())
        await self.bus.publish(
            "video.created",
            {
                "videoId": video_id,
                "ownerId": owner.id,
                "title": "A video",
                "visibility": visibility,
                "status": "UPLOADING",
                "createdAt": "2026-01-01T00:00:00+00:00",
            },
        )
        if ready:
            await self.bus.publish(
                "video.ready",
                {
                    "videoId": video_id,
                    "ownerId": owner.id,
                    "title": "A video",
                    "visibility": visibility,
                    "durationSeconds": 600.0,
                    "publishedAt": "2026-01-01T00:00:00+00:00",
                },
            )
        return video_id

    async def video(self, owner: User, *, price: int = 0, visibility: str = "PUBLIC") -> str:
        """A READY video billing knows about, priced by its owner."""
        video_id = await self.publish_video(owner, visibility=visibility)
        await self.wait_access(video_id, owner.token, "OWNER")
        if price:
            body = await self.gql.execute(SET_PRICE, {"v": video_id, "p": price}, token=owner.token)
            assert "errors" not in body, body
        return video_id

    async def entity(self, video_id: str, token: str | None = None) -> dict[str, Any]:
        body = await self.gql.execute(
            VIDEO, {"r": [{"__typename": "Video", "id": video_id}]}, token=token
        )
        assert "errors" not in body, body
        entity: dict[str, Any] = body["data"]["_entities"][0]
        return entity

    async def wait_access(
        self, video_id: str, token: str | None, reason: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll until billing's projection has caught up with the bus."""
        deadline = time.monotonic() + timeout
        while True:
            entity = await self.entity(video_id, token)
            if entity["access"]["reason"] == reason or time.monotonic() > deadline:
                assert entity["access"]["reason"] == reason, entity
                return entity
            await asyncio.sleep(0.1)

    async def deposit(self, user: User, amount: int, token: str = "tok_visa") -> dict[str, Any]:
        body = await self.gql.execute(
            DEPOSIT,
            {"amount": amount, "token": token, "key": uuid.uuid4().hex},
            token=user.token,
        )
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["deposit"]
        return result

    async def balance(self, user: User) -> int:
        body = await self.gql.execute(WALLET, token=user.token)
        assert "errors" not in body, body
        return int(body["data"]["wallet"]["balance"]["amount"])

    async def audit(self) -> dict[str, Any]:
        body = await self.gql.execute(AUDIT, token=(await self.admin()).token)
        assert "errors" not in body, body
        audit: dict[str, Any] = body["data"]["ledgerAudit"]
        return audit

    def verifier(self) -> PlaybackTokenVerifier:
        return PlaybackTokenVerifier(JwksClient(f"{self.billing.url}{PLAYBACK_KEYS_PATH}"))


def billing_env(auth: ServiceProcess) -> dict[str, str]:
    return {**BILLING_SETTINGS, "REELGRAPH_JWKS_URL": f"{auth.url}/.well-known/jwks.json"}


@pytest.fixture(scope="package", params=BACKENDS, ids=BACKEND_IDS)
def stack_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Environment]:
    database, bus = request.param
    tmp: Path = tmp_path_factory.mktemp(f"billing-{database}-{bus}")
    with environment(tmp, database=database, bus=bus, **BILLING_SETTINGS) as env:
        yield env


@pytest.fixture(scope="package")
def processes(stack_env: Environment) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Auth and billing, started side by side (billing fetches auth's keys only when asked)."""
    auth = ServiceProcess("auth", stack_env)
    billing = ServiceProcess("billing", stack_env, env=billing_env(auth))
    start_all(auth, billing)
    try:
        yield auth, billing
    finally:
        codes = billing.stop(), auth.stop()
    assert codes == (0, 0), billing.log() + auth.log()


def start_all(*services: ServiceProcess) -> None:
    """Start processes side by side; if one fails, stop the others before raising."""
    with ThreadPoolExecutor(len(services)) as pool:
        # Generous: on a busy 2-core machine a cold interpreter takes a while to import.
        started = [pool.submit(service.start, 90.0) for service in services]
    errors = [f.exception() for f in started if f.exception() is not None]
    if errors:
        for service in services:
            service.stop()
        raise errors[0]  # type: ignore[misc]


@asynccontextmanager
async def open_stack(
    env: Environment, auth: ServiceProcess, billing: ServiceProcess
) -> AsyncIterator[Stack]:
    bus = open_bus(env.settings())
    auth_gql = GraphQLClient(f"{auth.url}/graphql")
    gql = GraphQLClient(f"{billing.url}/graphql")
    try:
        yield Stack(env, auth, billing, bus, auth_gql, gql)
    finally:
        await auth_gql.close()
        await gql.close()
        await bus.close()


@pytest.fixture
async def stack(
    stack_env: Environment, processes: tuple[ServiceProcess, ServiceProcess]
) -> AsyncIterator[Stack]:
    async with open_stack(stack_env, *processes) as opened:
        yield opened
