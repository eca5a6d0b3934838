"""Paid media access across real processes: auth, video, billing and our router on one bus, per
backend stack (SQLite + local bus + local files; PostgreSQL + Redis + S3 on a real
moto_server). The media worker is played by the test, as in tests/video: real HLS files into
storage, then `media.ready`. Billing learns owners from video's real events, video learns
prices and ended sessions from billing's. A billing minute lasts one second here, and a
session (with its token) lapses SESSION_TTL seconds after its last heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from subgraphs.kernel.bus import open_bus
from subgraphs.kernel.playback import PLAYBACK_KEYS_PATH
from subgraphs.kernel.storage import open_storage
from tests.supergraph.conftest import process
from tests.support.processes import (
    Environment,
    GraphQLClient,
    ServiceProcess,
    environment,
    free_port,
)
from tests.support.s3 import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, run_moto_server
from tests.video.conftest import Api, Person
from tests.video.conftest import Stack as VideoStack
from tests.video.media import make_hls

STACKS = [("sqlite", "local", "local"), ("postgres", "redis", "s3")]
STACK_IDS = ["sqlite+local+local", "postgres+redis+s3"]
ROOT = Path(__file__).resolve().parents[2]
SUPERGRAPH = ROOT / "schema" / "supergraph.graphql"
SESSION_TTL = 8
CLIP_SECONDS = 12
DEADLINE = 45.0
SETTINGS = {
    "REELGRAPH_BILLING_MINUTE_SECONDS": "1",
    "REELGRAPH_BILLING_SESSION_TTL_SECONDS": str(SESSION_TTL),
    "REELGRAPH_ACCESS_TOKEN_TTL": "3600",
    "REELGRAPH_BUS_VISIBILITY_TIMEOUT": "10",
}

SESSION_FIELDS = "id playbackToken expiresAt chargedMinutes status endReason"
START = f"mutation S($v: ID!) {{ startPlayback(videoId: $v) {{ {SESSION_FIELDS} }} }}"
HEARTBEAT = (
    "mutation H($s: ID!, $p: Float!) { playbackHeartbeat(sessionId: $s, positionSeconds: $p) "
    f"{{ {SESSION_FIELDS} }} }}"
)
END = f"mutation E($s: ID!) {{ endPlayback(sessionId: $s) {{ {SESSION_FIELDS} }} }}"
SET_PRICE = (
    "mutation P($v: ID!, $p: Long!) { setVideoPrice(videoId: $v, pricePerMinute: $p) "
    "{ id price { pricePerMinute } } }"
)
DEPOSIT = (
    'mutation D($a: Long!, $k: String!) { deposit(amount: $a, paymentToken: "tok_visa", '
    "idempotencyKey: $k) { status } }"
)
ACCESS = (
    "query A($r: [_Any!]!) { _entities(representations: $r) { ... on Video "
    "{ price { pricePerMinute } access { canWatch reason } } } }"
)


@dataclass
class PaidStack:
    """One backend combination: video's test stack, plus billing and the router in front."""

    video: VideoStack
    billing: ServiceProcess
    router_url: str
    player_origin: str

    @property
    def env(self) -> Environment:
        return self.video.env


@pytest.fixture(scope="package")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("paid-hls")
    return out, make_hls(out, seconds=CLIP_SECONDS)


def _start_all(*services: ServiceProcess) -> None:
    with ThreadPoolExecutor(len(services)) as pool:
        # Generous: on a busy 2-core machine a cold interpreter takes a while to import.
        started = [pool.submit(service.start, 90.0) for service in services]
    errors = [f.exception() for f in started if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


@pytest.fixture(scope="package", params=STACKS, ids=STACK_IDS)
def paid_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    clip: tuple[Path, dict[str, Any]],
) -> Iterator[PaidStack]:
    database, bus, storage = request.param
    tmp = tmp_path_factory.mktemp(f"paid-{database}-{bus}-{storage}")
    with contextlib.ExitStack() as resources:
        extra = dict(SETTINGS)
        if storage == "s3":
            endpoint = resources.enter_context(run_moto_server())
            extra.update(
                REELGRAPH_STORAGE="s3",
                REELGRAPH_S3_ENDPOINT_URL=endpoint,
                REELGRAPH_S3_BUCKET=f"paid-{uuid.uuid4().hex[:12]}",
                REELGRAPH_S3_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
                REELGRAPH_S3_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
            )
        env = resources.enter_context(environment(tmp, database=database, bus=bus, **extra))
        router_port, player_port = free_port(), free_port()
        router = f"http://127.0.0.1:{router_port}"
        auth = ServiceProcess("auth", env)
        billing = ServiceProcess("billing", env)
        # Media URLs start with the router, which passes /media through to video.
        video = ServiceProcess("video", env, env={"REELGRAPH_PUBLIC_URL": router})
        env.env["REELGRAPH_JWKS_URL"] = f"{auth.url}/.well-known/jwks.json"
        env.env["REELGRAPH_PLAYBACK_KEYS_URL"] = f"{billing.url}{PLAYBACK_KEYS_PATH}"
        processes = [auth, billing, video]

        def stop_all() -> None:
            failures = []
            for service in reversed(processes):
                code = service.stop()
                if code not in (0, None):
                    failures.append(f"{service.name}:{service.port} exited {code}\n{service.log()}")
            assert not failures, "\n".join(failures)

        resources.callback(stop_all)
        _start_all(*processes)
        resources.enter_context(
            process(
                [
                    sys.executable,
                    "-m",
                    "reelgraph",
                    "router",
                    "--supergraph",
                    str(SUPERGRAPH),
                    "--port",
                    str(router_port),
                    "--route",
                    "/media=video",
                ],
                f"{router}/health",
                tmp / f"router-{router_port}.log",
                {
                    "REELGRAPH_SUBGRAPH_AUTH_URL": f"{auth.url}/graphql",
                    "REELGRAPH_SUBGRAPH_VIDEO_URL": f"{video.url}/graphql",
                    "REELGRAPH_SUBGRAPH_BILLING_URL": f"{billing.url}/graphql",
                    "REELGRAPH_ROUTER_JWKS_URL": f"{auth.url}/.well-known/jwks.json",
                    "REELGRAPH_RATE_LIMIT_IP": "off",
                    "REELGRAPH_RATE_LIMIT_USER": "off",
                    "REELGRAPH_CORS_ORIGINS": f"http://127.0.0.1:{player_port}",
                },
            )
        )
        base = VideoStack(env, auth, video, storage, clip[0], clip[1], processes)
        resources.enter_context(base.resources)
        yield PaidStack(base, billing, router, f"http://127.0.0.1:{player_port}")


# --- what the tests do ----------------------------------------------------------------------


class Paid(Api):
    """Video's test API (people, uploads, the worker's answers), plus billing and media."""

    def __init__(self, stack: PaidStack, *args: Any) -> None:
        super().__init__(stack.video, *args)
        self.paid = stack
        self.billing = GraphQLClient(f"{stack.billing.url}/graphql")
        self.router = GraphQLClient(f"{stack.router_url}/graphql")

    async def close(self) -> None:
        await super().close()
        await self.billing.close()
        await self.router.close()

    async def bill(
        self, query: str, variables: dict[str, Any] | None = None, who: Person | None = None
    ) -> dict[str, Any]:
        return await self.billing.execute(query, variables, token=who.token if who else None)

    async def access(self, video_id: str, who: Person | None = None) -> dict[str, Any]:
        body = await self.bill(ACCESS, {"r": [{"__typename": "Video", "id": video_id}]}, who)
        assert "errors" not in body, body
        entity: dict[str, Any] = body["data"]["_entities"][0]
        return entity

    async def priced_video(self, owner: Person, price: int, **overrides: Any) -> str:
        """A READY video its owner priced through billing, once video has learned the price."""
        video_id = await self.ready_video(owner, **overrides)
        await self.wait_access(video_id, owner, "OWNER")  # billing learned the owner
        await self.set_price(owner, video_id, price)
        return video_id

    async def set_price(self, owner: Person, video_id: str, price: int) -> None:
        body = await self.bill(SET_PRICE, {"v": video_id, "p": price}, owner)
        assert "errors" not in body, body
        stranger = await self.stranger()
        # Video has applied billing's event once a non-owner's hlsUrl follows the price.
        await self.wait_for_video(
            video_id, stranger, lambda v: (v["hlsUrl"] is None) == (price > 0)
        )

    async def stranger(self) -> Person:
        if "stranger" not in self.stack.cache:
            self.stack.cache["stranger"] = await self.register("VIEWER")
        person: Person = self.stack.cache["stranger"]
        return person

    async def wait_access(
        self, video_id: str, who: Person | None, reason: str, timeout: float = DEADLINE
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            entity = await self.access(video_id, who)
            if entity["access"]["reason"] == reason:
                return entity
            assert time.monotonic() < deadline, entity
            await asyncio.sleep(0.1)

    async def deposit(self, who: Person, amount: int) -> None:
        body = await self.bill(DEPOSIT, {"a": amount, "k": uuid.uuid4().hex}, who)
        assert body.get("data", {}).get("deposit", {}).get("status") == "SUCCEEDED", body

    async def start(self, who: Person, video_id: str) -> dict[str, Any]:
        body = await self.bill(START, {"v": video_id}, who)
        assert "errors" not in body, body
        session: dict[str, Any] = body["data"]["startPlayback"]
        return session

    async def heartbeat(self, who: Person, session_id: str, position: float) -> dict[str, Any]:
        return await self.bill(HEARTBEAT, {"s": session_id, "p": position}, who)

    async def end(self, who: Person, session_id: str) -> dict[str, Any]:
        body = await self.bill(END, {"s": session_id}, who)
        assert "errors" not in body, body
        session: dict[str, Any] = body["data"]["endPlayback"]
        return session

    def media(self, video_id: str, token: str, path: str) -> str:
        """A media URL through the router, as clients reach it."""
        return f"{self.paid.router_url}/media/{video_id}/{token}/{path}"

    async def get(self, url: str, **headers: str) -> httpx.Response:
        return await self.http.get(url, headers=headers)

    async def status(self, url: str) -> int:
        return (await self.get(url)).status_code


@pytest.fixture
async def paid(paid_stack: PaidStack) -> AsyncIterator[Paid]:
    settings = paid_stack.env.settings()
    bus = open_bus(settings)
    storage = open_storage(settings)
    client = Paid(paid_stack, bus, storage)
    try:
        yield client
    finally:
        await client.close()
        await bus.close()
        await storage.close()
