"""Builds the video service's ASGI app: GraphQL (with multipart uploads and subscriptions),
tus uploads at `/uploads`, media at `/media`, the bus consumers and the upload sweep."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.requests import HTTPConnection
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.schema import BaseSchema

from subgraphs.kernel.graphql import build_context
from subgraphs.kernel.http import ContextFactory, GraphQLEndpoint, drain, service_app
from subgraphs.kernel.playback import playback_verifier
from subgraphs.kernel.runtime import ServiceRuntime
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import open_storage
from subgraphs.video import events
from subgraphs.video.media import (
    MediaEndpoint,
    MediaSigner,
    VisibilityGate,
    load_signing_key,
    redact_token,
)
from subgraphs.video.models import outbox
from subgraphs.video.paid import PaidAccess, PaidMediaGate
from subgraphs.video.schema import VideoContext, schema
from subgraphs.video.search import SearchIndex
from subgraphs.video.service import VideoService
from subgraphs.video.tus import TusEndpoints
from subgraphs.video.uploads import UploadService

# Multipart framing around the file: boundaries, part headers, `operations` and `map`.
MULTIPART_OVERHEAD = 1024 * 1024
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def public_origin(settings: Settings) -> Callable[[HTTPConnection], str]:
    """The origin clients reach, for the URLs we hand out: REELGRAPH_PUBLIC_URL when set,
    else what a trusted proxy (the router) says in X-Forwarded-Host/-Proto, else the
    router's default address."""
    proxies = settings.trusted_proxy_set()

    def origin(connection: HTTPConnection) -> str:
        if settings.public_url:
            return settings.resolved_public_url()
        peer = connection.client.host if connection.client else None
        host = connection.headers.get("x-forwarded-host", "").split(",")[0].strip()
        proto = connection.headers.get("x-forwarded-proto", "http").split(",")[0].strip()
        if peer in proxies and _HOST.match(host) and proto in ("http", "https"):
            return f"{proto}://{host}"
        return settings.resolved_public_url()

    return origin


class _BodyTooLarge(Exception):
    pass


class VideoGraphQL(GraphQLEndpoint):
    """/graphql with GraphQL multipart uploads, whose bodies are cut off past the direct
    upload limit before they fill a disk."""

    def __init__(
        self, schema: BaseSchema, context_factory: ContextFactory, *, max_body: int
    ) -> None:
        super().__init__(schema, context_factory, multipart_uploads_enabled=True)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_multipart(scope):
            await super().__call__(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            await drain(receive)
            await _too_large(send, self.max_body)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await super().__call__(scope, counted, watched)
        except _BodyTooLarge:
            if not started:
                await drain(receive)
                await _too_large(send, self.max_body)


def _is_multipart(scope: Scope) -> bool:
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    return bytes(content_type).lower().startswith(b"multipart/form-data")


async def _too_large(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {
            "errors": [
                {
                    "message": "The request is larger than the direct upload limit; "
                    "use createUpload for large files.",
                    "extensions": {"code": "UPLOAD_TOO_LARGE", "limitBytes": limit},
                }
            ]
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    runtime = ServiceRuntime("video", settings, outbox=outbox)
    storage = open_storage(settings)
    signer = MediaSigner(load_signing_key(settings), ttl=settings.media_token_ttl)
    service = VideoService(
        db=runtime.db,
        storage=storage,
        search=SearchIndex(runtime.db.engine.dialect.name),
        settings=settings,
        bus=runtime.bus,
    )
    uploads = UploadService(
        db=runtime.db,
        storage=storage,
        videos=service,
        settings=settings,
    )
    playback = playback_verifier(settings)
    paid = PaidAccess(db=runtime.db, settings=settings, playback=playback)
    events.start_consumers(runtime, service, paid)
    runtime.add_background(uploads.run_sweeper)
    proxies = settings.trusted_proxy_set()
    origin = public_origin(settings)
    ingest = settings.resolved_live_ingest_url()

    async def context(connection: HTTPConnection) -> VideoContext:
        return await build_context(
            VideoContext,
            connection,
            runtime.verifier,
            proxies,
            service=service,
            uploads=uploads,
            signer=signer,
            paid=paid,
            bus=runtime.bus,
            tokens=runtime.verifier,
            public_url=origin(connection),
            ingest_url=ingest,
        )

    tus = TusEndpoints(
        uploads,
        runtime.verifier,
        public_url=origin,
        max_size=settings.video_max_upload_bytes,
    )
    media = MediaEndpoint(
        storage,
        signer,
        service.playable,
        gates=(VisibilityGate(), PaidMediaGate(paid)),
        playback=playback,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        # Storage closes last: consumers, sweeps and joins use it until the runtime stops them.
        try:
            async with runtime.lifespan(app):
                yield
        finally:
            await uploads.wait_for_finalizing()
            await storage.close()
            await playback.close()

    return service_app(
        graphql=VideoGraphQL(
            schema,
            context,
            max_body=settings.video_max_direct_upload_bytes + MULTIPART_OVERHEAD,
        ),
        routes=[
            *tus.routes(),
            Route("/media/{video_id}/{token}/{path:path}", media.handle, methods=["GET", "HEAD"]),
        ],
        lifespan=lifespan,
        log_path=redact_token,
    )
