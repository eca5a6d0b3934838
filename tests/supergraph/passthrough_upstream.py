"""`python -m tests.supergraph.passthrough_upstream --port N --files DIR`: the HTTP server the
pass-through tests put behind the router. It echoes what reached it, streams on cue, serves
files with ranges, answers upload creations with a `Location`, stalls (for timeouts), and
reports what it saw at `/_state/{key}` and `/_seen` (asked directly, not through the router)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

BIG_CHUNK = 1 << 20
BIG_SIZE = 64 * BIG_CHUNK
# How long anything here waits for a cue before giving up (the tests poll well within it).
PATIENCE = 120.0

STATE: defaultdict[str, dict[str, Any]] = defaultdict(dict)
RELEASED: set[str] = set()
SEEN: list[str] = []
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def big_chunks() -> Iterator[bytes]:
    """64 MiB no two mebibytes of which are alike, so a reordered or lost chunk shows."""
    for n in range(BIG_SIZE // BIG_CHUNK):
        yield hashlib.sha256(n.to_bytes(4, "big")).digest() * (BIG_CHUNK // 32)


class Seen:
    """Records the raw path of every request, to prove what never arrived."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            SEEN.append(scope.get("raw_path", b"").decode("latin-1"))
        await self.app(scope, receive, send)


async def echo(request: Request) -> Response:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    body = {
        "method": request.method,
        "path": request.url.path,
        "raw_path": request.scope["raw_path"].decode("latin-1"),
        "query": request.scope["query_string"].decode("latin-1"),
        "headers": [
            [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]
        ],
        "size": size,
        "sha256": digest.hexdigest(),
    }
    status = int(request.query_params.get("status", "200"))
    headers = {
        "x-kept": "yes",
        "set-cookie": "upstream=1; Path=/",
        "keep-alive": "timeout=5",
        "proxy-authenticate": "Basic",
        "trailer": "x-checksum",
        "upgrade": "h2c",
        "connection": "x-upstream-hop",
        "x-upstream-hop": "1",
        "access-control-allow-origin": "*",
        "tus-resumable": "1.0.0",
    }
    if status in (204, 304):
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def create_upload(request: Request) -> Response:
    """Like tus creation: 201 and where the new upload lives."""
    host, port = request.scope["server"]
    where = request.query_params.get("where", "self")
    location = {
        "self": f"http://{host}:{port}{request.url.path}/abc123?v=1",
        "elsewhere": "https://cdn.example/files/abc123",
        "relative": f"{request.url.path}/abc123",
    }[where]
    return Response(
        status_code=201,
        headers={"location": location, "tus-resumable": "1.0.0", "upload-offset": "0"},
    )


async def receive_stream(request: Request) -> Response:
    key = request.path_params["key"]
    state = STATE[key]
    state.update(received=0, content_length=request.headers.get("content-length"))
    state["transfer_encoding"] = request.headers.get("transfer-encoding")
    digest = hashlib.sha256()
    try:
        async for chunk in request.stream():
            digest.update(chunk)
            state["received"] += len(chunk)
    except ClientDisconnect:
        state["aborted"] = True
        raise
    state["done"] = True
    return JSONResponse({"size": state["received"], "sha256": digest.hexdigest()})


async def _until(predicate: Any, request: Request) -> bool:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if predicate() or await request.is_disconnected():
            return bool(predicate())
        await asyncio.sleep(0.01)
    return False


async def stream_on_cue(request: Request) -> Response:
    """The first chunk at once; the last only when the test says so."""
    key = request.path_params["key"]

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first:" + b"f" * 1000
            STATE[key]["sent_first"] = True
            if not await _until(lambda: key in RELEASED, request):
                return
            yield b"last"
            STATE[key]["sent_last"] = True
        finally:
            STATE[key]["closed"] = True

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def endless(request: Request) -> Response:
    key = request.path_params["key"]

    async def chunks() -> AsyncIterator[bytes]:
        try:
            deadline = time.monotonic() + PATIENCE
            while time.monotonic() < deadline:
                yield b"e" * 65536
                STATE[key]["sent"] = STATE[key].get("sent", 0) + 1
                await asyncio.sleep(0.01)
        finally:
            STATE[key]["closed"] = True

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def slow(request: Request) -> Response:
    """Never answers while anyone is waiting."""
    await _until(lambda: False, request)
    STATE["slow"]["gave_up"] = True
    return Response("late")


async def big(request: Request) -> Response:
    return StreamingResponse(
        big_chunks(),
        media_type="application/octet-stream",
        headers={"content-length": str(BIG_SIZE)},
    )


async def state(request: Request) -> Response:
    return JSONResponse(STATE.get(request.path_params["key"], {}))


async def release(request: Request) -> Response:
    RELEASED.add(request.path_params["key"])
    return JSONResponse({"released": True})


async def seen(_: Request) -> Response:
    return JSONResponse(SEEN)


def create_app(files: str) -> ASGIApp:
    routes: list[Route | Mount] = [
        Route("/_state/{key}", state),
        Route("/_release/{key}", release, methods=["POST"]),
        Route("/_seen", seen),
        Route("/uploads/files", create_upload, methods=["POST"]),
        Route("/base/direct/files", create_upload, methods=["POST"]),
        Route("/uploads/stream/{key}", receive_stream, methods=["POST", "PUT", "PATCH"]),
        Route("/media/stream/{key}", stream_on_cue),
        Route("/media/endless/{key}", endless),
        Route("/media/slow", slow),
        Route("/media/big", big),
        Mount("/media/files", StaticFiles(directory=files)),
    ]
    for prefix in ("/uploads", "/media", "/base/direct"):
        routes.append(Route(f"{prefix}/echo", echo, methods=ALL_METHODS))
        routes.append(Route(f"{prefix}/echo/{{rest:path}}", echo, methods=ALL_METHODS))
    return Seen(Starlette(routes=routes))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--files", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.files),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
