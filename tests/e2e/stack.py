"""The upload-to-playback path as operators run it, for the end-to-end tests: auth, video, the
media worker and our router over the checked-in supergraph, each its own process on one backend
combination, and a client that speaks to it only through the router (GraphQL, WebSocket
subscriptions, tus uploads, media), as the web client does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tusclient.client import TusClient
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from subgraphs.kernel.storage import Storage, open_storage
from supergraph.config import env_name
from tests.media_worker.harness import running_worker
from tests.supergraph.conftest import process
from tests.support.processes import Environment, ServiceProcess, environment, free_port
from tests.support.s3 import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, REGION, run_moto_server
from tests.support.ws import Subscription

ROOT = Path(__file__).resolve().parents[2]
SUPERGRAPH = ROOT / "schema" / "supergraph.graphql"
# (database, bus, storage)
STACKS = [("sqlite", "local", "local"), ("postgres", "redis", "s3")]
STACK_IDS = ["sqlite+local+local", "postgres+redis+s3"]
SEGMENT_SECONDS = 4
# Generous: two cores shared with other suites; transcoding is the slow part.
DEADLINE = 120.0
STARTUP = 60.0
TUS = {"tus-resumable": "1.0.0"}
OCTETS = {**TUS, "content-type": "application/offset+octet-stream"}

REGISTER = """
mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id handle } } }
"""
CREATE_UPLOAD = """
mutation C($input: CreateUploadInput!) {
  createUpload(input: $input) { id uploadUrl video { id status visibility owner { handle } } }
}
"""
VIDEO = """
query V($id: ID!) {
  video(id: $id) {
    id title visibility status failureReason processingProgress durationSeconds publishedAt
    hlsUrl thumbnailUrl owner { id handle }
    renditions { name width height bandwidth averageBandwidth codecs frameRate }
    storyboard { imageUrl vttUrl tileWidth tileHeight columns rows intervalSeconds }
  }
}
"""
PROCESSING = """
subscription P($id: ID!) {
  videoProcessing(videoId: $id) { videoId status progress failureReason video { id title } }
}
"""


@dataclass
class Stack:
    """One running backend combination, reached through its router at `origin`."""

    env: Environment
    origin: str
    player: str
    storage_kind: str

    @property
    def name(self) -> str:
        return f"{self.env.database}+{self.env.bus}+{self.storage_kind}"

    @property
    def graphql(self) -> str:
        return f"{self.origin}/graphql"


@contextlib.contextmanager
def running_stack(
    tmp: Path, *, database: str, bus: str, storage: str, player: str
) -> Iterator[Stack]:
    """Start every process of one combination; stop them all (and check they exit cleanly)."""
    with contextlib.ExitStack() as resources:
        router_port = free_port()
        origin = f"http://127.0.0.1:{router_port}"
        extra = {
            # Media and upload URLs are built on the router's origin, as clients reach it.
            "REELGRAPH_PUBLIC_URL": origin,
            "REELGRAPH_ACCESS_TOKEN_TTL": "3600",
            "REELGRAPH_VIDEO_UPLOAD_SWEEP_SECONDS": "1",
        }
        if storage == "s3":
            extra.update(
                REELGRAPH_STORAGE="s3",
                REELGRAPH_S3_ENDPOINT_URL=resources.enter_context(run_moto_server()),
                REELGRAPH_S3_BUCKET=f"e2e-{uuid.uuid4().hex[:12]}",
                REELGRAPH_S3_REGION=REGION,
                REELGRAPH_S3_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
                REELGRAPH_S3_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
            )
        env = resources.enter_context(environment(tmp, database=database, bus=bus, **extra))
        services: list[ServiceProcess] = []

        def stop_services() -> None:
            failures = []
            for service in reversed(services):
                code = service.stop()
                if code != 0:
                    failures.append(f"{service.name} exited {code}:\n{service.log()}")
            assert not failures, "\n".join(failures)

        resources.callback(stop_services)
        # Everything starts at once; nothing needs another to be up before it starts.
        auth = ServiceProcess("auth", env)
        env.env["REELGRAPH_JWKS_URL"] = f"{auth.url}/.well-known/jwks.json"
        video = ServiceProcess("video", env)
        for service in (auth, video):
            services.append(service)
            service.launch()
        # The worker as operators run it, but with x264's fastest preset to spare the CPU;
        # segments of the production length.
        resources.enter_context(
            running_worker(env, REELGRAPH_MEDIA_SEGMENT_SECONDS=str(SEGMENT_SECONDS))
        )
        # Engagement and billing are not running: their fields are never asked for. Their
        # URLs point at a port nothing listens on, so no query can reach a stranger's service
        # on the default ports of a shared machine.
        nowhere = f"http://127.0.0.1:{free_port()}/graphql"
        urls = {"auth": auth.url + "/graphql", "video": video.url + "/graphql"}
        urls.update(engagement=nowhere, billing=nowhere)
        router_env = {
            **env.env,
            **{f"REELGRAPH_SUBGRAPH_{env_name(n)}_URL": url for n, url in urls.items()},
            "REELGRAPH_ROUTER_ROUTES": "/uploads=video,/media=video",
            "REELGRAPH_CORS_ORIGINS": player,
        }
        argv = ["-m", "reelgraph", "router", "--supergraph", str(SUPERGRAPH)]
        resources.enter_context(
            process(
                [sys.executable, *argv, "--port", str(router_port)],
                f"{origin}/health",
                tmp / f"router-{router_port}.log",
                router_env,
            )
        )
        for service in (auth, video):
            service.wait_healthy(timeout=STARTUP)
        yield Stack(env, origin, player, storage)


# --- people and requests, all through the router ------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    handle: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


class Client:
    """What a user's app does, through the router only: GraphQL, tus and media requests."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = httpx.AsyncClient(timeout=60)

    async def close(self) -> None:
        await self.http.aclose()

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, who: Person | None = None
    ) -> dict[str, Any]:
        response = await self.http.post(
            self.stack.graphql,
            json={"query": query, "variables": variables or {}},
            headers=who.auth if who else {},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def ok(
        self, query: str, variables: dict[str, Any] | None = None, who: Person | None = None
    ) -> dict[str, Any]:
        body = await self.gql(query, variables, who)
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    async def register(self, *, creator: bool = False) -> Person:
        tag = uuid.uuid4().hex[:10]
        data = await self.ok(
            REGISTER,
            {
                "input": {
                    "email": f"e2e_{tag}@example.com",
                    "password": "correct horse battery",
                    "handle": f"e2e_{tag}",
                    "displayName": f"Person {tag}",
                }
            },
        )
        user, token = data["register"]["user"], data["register"]["accessToken"]
        if creator:
            person = Person(user["id"], user["handle"], token)
            promoted = await self.ok("mutation { becomeCreator { accessToken } }", who=person)
            token = promoted["becomeCreator"]["accessToken"]
        return Person(user["id"], user["handle"], token)

    async def create_upload(
        self, who: Person, *, size: int, filename: str = "clip.mp4", **input: Any
    ) -> dict[str, Any]:
        """createUpload's answer: the session (id, uploadUrl, video)."""
        variables = {
            "input": {
                "title": "An end-to-end video",
                "categoryId": "education",
                "filename": filename,
                "sizeBytes": size,
                **input,
            }
        }
        session: dict[str, Any] = (await self.ok(CREATE_UPLOAD, variables, who))["createUpload"]
        return session

    async def video(self, video_id: str, who: Person | None = None) -> dict[str, Any] | None:
        video: dict[str, Any] | None = (await self.ok(VIDEO, {"id": video_id}, who))["video"]
        return video

    async def wait_for_video(
        self, video_id: str, who: Person, check: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = await self.video(video_id, who)
            if last is not None and check(last):
                return last
            await asyncio.sleep(0.2)
        raise AssertionError(f"video {video_id} never got there; last seen: {last}")

    async def upload(
        self, who: Person, data: bytes, *, filename: str = "clip.mp4", **input: Any
    ) -> str:
        """A whole upload in one go (createUpload, then tuspy through the router); the id."""
        session = await self.create_upload(who, size=len(data), filename=filename, **input)
        await asyncio.to_thread(tus_upload, self.stack, session["uploadUrl"], who, data)
        return str(session["video"]["id"])

    async def ready(self, who: Person, data: bytes, **input: Any) -> dict[str, Any]:
        """Upload a clip and wait until it is READY; the owner's view of the video."""
        video_id = await self.upload(who, data, **input)
        video = await self.wait_for_video(
            video_id, who, lambda v: v["status"] in ("READY", "FAILED")
        )
        assert video["status"] == "READY", video
        return video

    async def get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.get(url, headers=headers)


def tus_client(stack: Stack, who: Person) -> TusClient:
    return TusClient(f"{stack.origin}/uploads", headers=who.auth)


def tus_upload(
    stack: Stack, url: str, who: Person, data: bytes, *, chunk_size: int = 1 << 20
) -> None:
    """tuspy: asks the server for the offset (HEAD), then PATCHes chunk by chunk."""
    uploader = tus_client(stack, who).uploader(
        file_stream=io.BytesIO(data), url=url, chunk_size=chunk_size
    )
    uploader.upload()


async def tus_offset(http: httpx.AsyncClient, url: str, who: Person) -> int:
    response = await http.head(url, headers={**TUS, **who.auth})
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


async def cut_patch(url: str, who: Person, data: bytes, offset: int, wait: float) -> None:
    """A client whose connection dies mid-PATCH: headers and part of the body, then a reset."""
    parts = urlsplit(url)
    _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    rest = data[offset:]
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(rest)}\r\nAuthorization: Bearer {who.token}\r\n\r\n"
    )
    writer.write(head.encode() + rest[: len(rest) // 2])
    await writer.drain()
    await asyncio.sleep(wait)
    writer.transport.abort()


async def storage_keys(storage: Storage, *prefixes: str) -> list[str]:
    return [info.key for prefix in prefixes async for info in storage.list(prefix)]


@contextlib.asynccontextmanager
async def stack_storage(stack: Stack) -> AsyncIterator[Storage]:
    """The stack's storage, opened as the services open it (to check what they left)."""
    storage = open_storage(stack.env.settings())
    try:
        yield storage
    finally:
        await storage.close()


@contextlib.asynccontextmanager
async def processing(
    stack: Stack, video_id: str, who: Person | None, query: str = PROCESSING
) -> AsyncIterator[Subscription]:
    """`videoProcessing(videoId)` through the router over graphql-transport-ws, signed in as a
    browser must: the token in `connection_init`, no header on the upgrade request."""
    async with connect(
        stack.graphql.replace("http://", "ws://"),
        subprotocols=[Subprotocol("graphql-transport-ws")],
        open_timeout=DEADLINE,
    ) as socket:
        init = {"authorization": f"Bearer {who.token}"} if who else {}
        await socket.send(json.dumps({"type": "connection_init", "payload": init}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
        assert ack["type"] == "connection_ack", ack
        subscribe = {"query": query, "variables": {"id": video_id}}
        await socket.send(json.dumps({"type": "subscribe", "id": "1", "payload": subscribe}))
        yield Subscription(socket)


async def until_finished(subscription: Subscription) -> list[dict[str, Any]]:
    """Every event up to READY or FAILED, then the server's `complete`."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["status"] not in ("READY", "FAILED"):
        payload = await subscription.next(timeout=DEADLINE)
        assert not payload.get("errors"), payload
        events.append(payload["data"]["videoProcessing"])
    end = await subscription.message(timeout=DEADLINE)
    assert end["type"] == "complete", end
    return events


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) pairs of a graphql-sse stream (distinct connections mode)."""
    name, data = None, ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data = line.removeprefix("data:").strip()
        elif line == "" and name is not None:
            yield name, json.loads(data) if data else None
            name, data = None, ""
