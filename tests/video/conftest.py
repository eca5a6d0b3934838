"""The video service as operators run it, per backend stack, shared by every video test:
SQLite + local bus + local storage, and PostgreSQL + Redis + S3 (a real moto_server). A real
auth service issues the tokens. The media worker is played by the tests: they answer
`media.transcode` with real `media.*` events and real HLS files in storage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from subgraphs.kernel.bus import Bus, open_bus
from subgraphs.kernel.storage import Storage, open_storage
from tests.support.processes import (
    Environment,
    GraphQLClient,
    ServiceProcess,
    environment,
    free_port,
    run_cli,
)
from tests.support.s3 import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, run_moto_server
from tests.video.media import make_hls

STACKS = [("sqlite", "local", "local"), ("postgres", "redis", "s3")]
SUPERGRAPH = Path(__file__).resolve().parents[2] / "schema" / "supergraph.graphql"
STACK_IDS = ["sqlite+local+local", "postgres+redis+s3"]
MiB = 1024 * 1024
# Small limits, so the limits can be reached cheaply.
MAX_UPLOAD = 20 * MiB
MAX_DIRECT = 2 * MiB
QUOTA = 50 * MiB
SETTINGS = {
    "REELGRAPH_VIDEO_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    "REELGRAPH_VIDEO_MAX_DIRECT_UPLOAD_BYTES": str(MAX_DIRECT),
    "REELGRAPH_VIDEO_USER_QUOTA_BYTES": str(QUOTA),
    "REELGRAPH_VIDEO_UPLOAD_SWEEP_SECONDS": "0.5",
    # Failed consumer messages come back after this; the storage-cleanup retry test waits it.
    "REELGRAPH_BUS_VISIBILITY_TIMEOUT": "4",
    "REELGRAPH_ACCESS_TOKEN_TTL": "3600",
}
DEADLINE = 45.0

CREATE_UPLOAD = """
mutation C($input: CreateUploadInput!) {
  createUpload(input: $input) {
    id uploadUrl expiresAt
    video { id title status visibility tags description category { id } owner { id } }
  }
}
"""
UPLOAD_VIDEO = """
mutation U($file: Upload!, $input: UploadVideoInput!) {
  uploadVideo(file: $file, input: $input) { id status title visibility }
}
"""
VIDEO = """
query V($id: ID!) {
  video(id: $id) {
    id title description tags visibility status failureReason processingProgress
    durationSeconds createdAt publishedAt thumbnailUrl hlsUrl
    owner { id } category { id name slug }
    renditions { name width height bandwidth averageBandwidth codecs frameRate }
    storyboard { imageUrl vttUrl tileWidth tileHeight columns rows intervalSeconds }
  }
}
"""


@dataclass
class Stack:
    """One backend combination's running services and settings."""

    env: Environment
    auth: ServiceProcess
    video: ServiceProcess
    storage_kind: str
    media_dir: Path
    media_document: dict[str, Any]
    processes: list[ServiceProcess] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)
    # Closed with the stack: things started lazily by a test (the router).
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def name(self) -> str:
        return f"{self.env.database}+{self.env.bus}+{self.storage_kind}"

    def start_video(self, **extra_env: str) -> ServiceProcess:
        """Another video replica on the same database, bus and storage."""
        port = free_port()
        process = ServiceProcess(
            "video",
            self.env,
            port=port,
            env={"REELGRAPH_PUBLIC_URL": f"http://127.0.0.1:{port}", **extra_env},
        )
        process.start()
        self.processes.append(process)
        return process

    def router(self) -> str:
        """Our federation router over the checked-in supergraph and this stack's services
        (started once per stack); its /graphql URL."""
        if "router" not in self.cache:
            from tests.supergraph.conftest import run_router

            self.cache["router"] = self.resources.enter_context(
                run_router(
                    SUPERGRAPH,
                    {"auth": f"{self.auth.url}/graphql", "video": f"{self.video.url}/graphql"},
                    self.env.data_dir,
                    REELGRAPH_ROUTER_JWKS_URL=f"{self.auth.url}/.well-known/jwks.json",
                )
            )
        url: str = self.cache["router"]
        return url

    def replica(self) -> ServiceProcess:
        """A second replica with the same settings, started once per stack."""
        if "replica" not in self.cache:
            self.cache["replica"] = self.start_video()
        replica: ServiceProcess = self.cache["replica"]
        return replica


@pytest.fixture(scope="session")
def hls_media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("hls")
    return out, make_hls(out)


@pytest.fixture(scope="session", params=STACKS, ids=STACK_IDS)
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    hls_media: tuple[Path, dict[str, Any]],
) -> Iterator[Stack]:
    database, bus, storage = request.param
    tmp = tmp_path_factory.mktemp(f"video-{database}-{bus}-{storage}")
    with contextlib.ExitStack() as resources:
        extra = dict(SETTINGS)
        if storage == "s3":
            endpoint = resources.enter_context(run_moto_server())
            extra.update(
                REELGRAPH_STORAGE="s3",
                REELGRAPH_S3_ENDPOINT_URL=endpoint,
                REELGRAPH_S3_BUCKET=f"video-{uuid.uuid4().hex[:12]}",
                REELGRAPH_S3_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
                REELGRAPH_S3_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
            )
        env = resources.enter_context(environment(tmp, database=database, bus=bus, **extra))
        auth = ServiceProcess("auth", env).start()
        processes: list[ServiceProcess] = [auth]

        def stop_all() -> None:
            failures = []
            for process in reversed(processes):
                code = process.stop()
                if code != 0:
                    failures.append(f"{process.name}:{process.port} exited {code}\n{process.log()}")
            assert not failures, "\n".join(failures)

        resources.callback(stop_all)
        env.env["REELGRAPH_JWKS_URL"] = f"{auth.url}/.well-known/jwks.json"
        running = Stack(env, auth, auth, storage, hls_media[0], hls_media[1], processes)
        resources.enter_context(running.resources)
        running.video = running.start_video()
        yield running


# --- people ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    handle: str
    token: str
    role: str
    password: str = "correct horse battery"


REGISTER = """
mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id handle } } }
"""


class Api:
    """What the tests do to the running stack: GraphQL, tus, the bus and storage."""

    def __init__(self, stack: Stack, bus: Bus, storage: Storage) -> None:
        self.stack = stack
        self.bus = bus
        self.storage = storage
        self.video_url = stack.video.url
        self.gql = GraphQLClient(f"{stack.video.url}/graphql")
        self.auth = GraphQLClient(f"{stack.auth.url}/graphql")
        self.http = httpx.AsyncClient(timeout=30)

    async def close(self) -> None:
        await self.gql.close()
        await self.auth.close()
        await self.http.aclose()

    # People ----------------------------------------------------------------------------

    async def register(self, role: str = "CREATOR") -> Person:
        tag = uuid.uuid4().hex[:10]
        body = await self.auth.execute(
            REGISTER,
            {
                "input": {
                    "email": f"v_{tag}@example.com",
                    "password": "correct horse battery",
                    "handle": f"v_{tag}",
                    "displayName": f"Video {tag}",
                }
            },
        )
        assert "errors" not in body, body
        user = body["data"]["register"]["user"]
        token = body["data"]["register"]["accessToken"]
        if role == "CREATOR":
            body = await self.auth.execute(
                "mutation { becomeCreator { accessToken } }", token=token
            )
            token = body["data"]["becomeCreator"]["accessToken"]
        elif role == "ADMIN":
            result = await asyncio.to_thread(
                run_cli, self.stack.env, "auth", "set-role", user["handle"], "ADMIN"
            )
            assert result.returncode == 0, result.stderr
            body = await self.auth.execute(
                "mutation L($e: String!, $p: String!) { login(email: $e, password: $p) "
                "{ accessToken user { role } } }",
                {"e": f"v_{tag}@example.com", "p": "correct horse battery"},
            )
            assert body["data"]["login"]["user"]["role"] == "ADMIN", body
            token = body["data"]["login"]["accessToken"]
        return Person(user["id"], user["handle"], token, role)

    async def admin(self) -> Person:
        """One admin per stack (making one runs the CLI)."""
        if "admin" not in self.stack.cache:
            self.stack.cache["admin"] = await self.register("ADMIN")
        admin: Person = self.stack.cache["admin"]
        return admin

    # GraphQL -----------------------------------------------------------------------------

    async def q(
        self, query: str, variables: dict[str, Any] | None = None, who: Person | None = None
    ) -> dict[str, Any]:
        return await self.gql.execute(query, variables, token=who.token if who else None)

    async def video(self, video_id: str, who: Person | None = None) -> dict[str, Any] | None:
        body = await self.q(VIDEO, {"id": video_id}, who)
        assert "errors" not in body, body
        video: dict[str, Any] | None = body["data"]["video"]
        return video

    async def create_upload(self, who: Person, **overrides: Any) -> dict[str, Any]:
        """createUpload's whole response body."""
        data = {
            "title": "A test video",
            "categoryId": "education",
            "filename": "clip.mp4",
            "sizeBytes": 1000,
            **overrides,
        }
        return await self.q(CREATE_UPLOAD, {"input": data}, who)

    async def new_upload(self, who: Person, **overrides: Any) -> dict[str, Any]:
        body = await self.create_upload(who, **overrides)
        assert "errors" not in body, body
        session: dict[str, Any] = body["data"]["createUpload"]
        return session

    async def upload_video(
        self,
        who: Person | None,
        data: bytes,
        *,
        filename: str = "clip.mp4",
        url: str | None = None,
        **overrides: Any,
    ) -> httpx.Response:
        variables = {
            "file": None,
            "input": {"title": "Direct upload", "categoryId": "music", **overrides},
        }
        headers = {"authorization": f"Bearer {who.token}"} if who else {}
        return await self.http.post(
            url or f"{self.video_url}/graphql",
            data={
                "operations": json.dumps({"query": UPLOAD_VIDEO, "variables": variables}),
                "map": json.dumps({"0": ["variables.file"]}),
            },
            files={"0": (filename, data, "video/mp4")},
            headers=headers,
        )

    async def wait_for_video(
        self,
        video_id: str,
        who: Person,
        check: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = DEADLINE,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = await self.video(video_id, who)
            if last is not None and check(last):
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"video {video_id} never got there; last seen: {last}")

    # The media worker, played by the test ------------------------------------------------

    async def processing_video(self, who: Person, **overrides: Any) -> str:
        """A video in PROCESSING, through a direct upload."""
        response = await self.upload_video(who, b"\x00" * 2048, **overrides)
        body = response.json()
        assert "errors" not in body, body
        video = body["data"]["uploadVideo"]
        assert video["status"] == "PROCESSING"
        return str(video["id"])

    async def write_media(self, video_id: str) -> None:
        for path in sorted(self.stack.media_dir.rglob("*")):
            if path.is_file():
                relative = path.relative_to(self.stack.media_dir).as_posix()
                await self.storage.put_file(f"videos/{video_id}/{relative}", str(path))

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self.bus.publish(topic, payload)

    async def finish_processing(self, video_id: str, **changes: Any) -> None:
        """What the worker does when it succeeds: media into storage, then media.ready."""
        await self.write_media(video_id)
        await self.publish(
            "media.ready", {"videoId": video_id, **self.stack.media_document, **changes}
        )

    async def ready_video(self, who: Person, **overrides: Any) -> str:
        video_id = await self.processing_video(who, **overrides)
        await self.finish_processing(video_id)
        await self.wait_for_video(video_id, who, lambda v: v["status"] == "READY")
        return video_id

    async def events(
        self,
        topic: str,
        match: Callable[[dict[str, Any]], bool],
        *,
        until: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Payloads on `topic` that `match`, read through a brand-new consumer group (which
        starts at the beginning of the topic), until `until` holds or time runs out."""
        group = f"test-{uuid.uuid4().hex}"
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(found):
            for message in await self.bus.claim(topic, group, "tester", count=200, block=0.3):
                await self.bus.ack(topic, group, message.id)
                if match(message.payload):
                    found.append(message.payload)
        return found


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    settings = stack.env.settings()
    bus = open_bus(settings)
    storage = open_storage(settings)
    client = Api(stack, bus, storage)
    try:
        yield client
    finally:
        await client.close()
        await bus.close()
        await storage.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], message: str, timeout: float = DEADLINE
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(message)


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
