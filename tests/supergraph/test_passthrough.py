"""Pass-through routes: the router process in front of a real upstream HTTP server, streaming
both ways, ranges, `Location`s, forwarding headers, hop-by-hop headers, path safety, CORS,
502/504, client disconnects, metrics, and configuration that must stop the router."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from supergraph.config import subgraph_endpoints
from supergraph.model import load_supergraph
from supergraph.passthrough import RouteConfigError, parse_routes, resolve_routes
from supergraph.passthrough.routes import unsafe_path
from supergraph.server import ROUTER_PATHS
from tests.supergraph.conftest import process, run_router
from tests.supergraph.passthrough_upstream import BIG_SIZE, big_chunks
from tests.support.processes import ROOT, free_port

FAILING = Path(__file__).parent / "failing" / "supergraph.graphql"
APP = "https://app.example"
SEGMENT = bytes(range(256)) * 400  # 102400 bytes


@dataclass
class Stack:
    router: str
    router_port: int
    upstream: str
    upstream_port: int
    logs: Path


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    logs = tmp_path_factory.mktemp("passthrough")
    files = logs / "files"
    files.mkdir()
    (files / "segment.ts").write_bytes(SEGMENT)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "tests.supergraph.passthrough_upstream",
        "--port",
        str(port),
        "--files",
        str(files),
    ]
    with process(argv, f"http://127.0.0.1:{port}/_state/health", logs / "upstream.log"):
        yield f"http://127.0.0.1:{port}", port, logs


@pytest.fixture(scope="module")
def stack(upstream: tuple[str, int, Path]) -> Iterator[Stack]:
    url, port, logs = upstream
    dead = free_port()  # nothing listens there
    routes = ",".join(
        [
            "/uploads=stable",  # a subgraph: its URL comes from the override below
            "/media=stable",
            f"/direct={url}/base",  # a URL with a base path
            f"/down=http://127.0.0.1:{dead}",
            "/flaky=flaky",  # a subgraph without override: the supergraph's (dead) URL
        ]
    )
    with run_router(
        FAILING,
        {"stable": f"{url}/graphql"},
        logs,
        REELGRAPH_ROUTER_ROUTES=routes,
        REELGRAPH_CORS_ORIGINS=APP,
        # GraphQL's rate limit bites early here; pass-through requests must never feel it.
        REELGRAPH_RATE_LIMIT_IP="5/minute",
    ) as graphql:
        base = graphql.removesuffix("/graphql")
        yield Stack(base, int(base.rsplit(":", 1)[1]), url, port, logs)


async def _poll(
    fetch: Callable[[], Awaitable[httpx.Response]],
    done: Callable[[Any], bool],
    what: str,
    timeout: float = 30.0,
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = (await fetch()).json()
        if done(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting: {what} ({value})")
        await asyncio.sleep(0.02)


def _state(client: httpx.AsyncClient, stack: Stack, key: str) -> Callable[[], Awaitable[Any]]:
    return lambda: client.get(f"{stack.upstream}/_state/{key}")


def _received(echoed: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echoed["headers"] if k == name]


async def _raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """A request written byte for byte, so no client library tidies the path first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest.partition(b"\r\n\r\n")[2]


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- requests and responses ---------------------------------------------------------------


def test_requests_keep_their_path_query_method_and_status(stack: Stack) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        response = httpx.request(
            method,
            f"{stack.router}/media/echo/a%20b%2Fc;v=1?x=1&y=%2F&z",
            content=b"payload" if method in ("POST", "PUT", "PATCH") else None,
        )
        assert response.status_code == 200, response.text
        echoed = response.json()
        assert echoed["method"] == method
        assert echoed["raw_path"] == "/media/echo/a%20b%2Fc;v=1"
        assert echoed["query"] == "x=1&y=%2F&z"
        if method in ("POST", "PUT", "PATCH"):
            assert echoed["size"] == 7
    # A URL target keeps its base path in front of the request's path.
    direct = httpx.get(f"{stack.router}/direct/echo/x?q=1").json()
    assert (direct["raw_path"], direct["query"]) == ("/base/direct/echo/x", "q=1")
    # Upstream statuses come back unchanged.
    for status in (201, 204, 304, 404, 409, 412):
        assert httpx.get(f"{stack.router}/uploads/echo?status={status}").status_code == status
    # The prefix itself is routed; a path that merely starts with its letters is not.
    marker = uuid.uuid4().hex[:8]
    assert httpx.get(f"{stack.router}/media?m={marker}").status_code == 404
    assert httpx.get(f"{stack.router}/mediaxyz{marker}").status_code == 404
    seen = httpx.get(f"{stack.upstream}/_seen").json()
    assert "/media" in seen
    assert not any(marker in path for path in seen)
    # Methods that are not for pass-through are refused at the router.
    trace = httpx.request("TRACE", f"{stack.router}/media/echo")
    assert trace.status_code == 405
    assert trace.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_request_bodies_stream_up_as_they_arrive(stack: Stack) -> None:
    key = uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=60) as client:

        async def body() -> AsyncIterator[bytes]:
            yield b"a" * 65536
            # Upstream holds the first chunk while the client still has the last one.
            await _poll(
                _state(client, stack, key),
                lambda s: s.get("received", 0) >= 65536,
                "upstream to receive the first chunk before the last is sent",
            )
            yield b"z" * 10

        response = await client.patch(f"{stack.router}/uploads/stream/{key}", content=body())
        assert response.status_code == 200, response.text
        assert response.json()["size"] == 65546
        state = (await client.get(f"{stack.upstream}/_state/{key}")).json()
        assert state["transfer_encoding"] == "chunked" and state["content_length"] is None


async def test_response_bodies_stream_down_as_they_arrive(stack: Stack) -> None:
    key = uuid.uuid4().hex
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("GET", f"{stack.router}/media/stream/{key}") as response,
    ):
        assert response.status_code == 200
        chunks = response.aiter_raw()
        first = b""
        while len(first) < 1006:
            first += await asyncio.wait_for(anext(chunks), 30)
        assert first.startswith(b"first:")
        # The client has the first chunk; upstream has not even sent the last.
        assert "sent_last" not in (await client.get(f"{stack.upstream}/_state/{key}")).json()
        await client.post(f"{stack.upstream}/_release/{key}")
        rest = b"".join([chunk async for chunk in chunks])
    assert (first + rest).endswith(b"last")


async def test_a_64_mib_body_passes_intact_both_ways(stack: Stack) -> None:
    expected = hashlib.sha256()
    for chunk in big_chunks():
        expected.update(chunk)

    async def body() -> AsyncIterator[bytes]:
        for chunk in big_chunks():
            yield chunk

    key = uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=120) as client:
        uploaded = await client.put(
            f"{stack.router}/uploads/stream/{key}",
            content=body(),
            headers={"content-length": str(BIG_SIZE)},
        )
        assert uploaded.json() == {"size": BIG_SIZE, "sha256": expected.hexdigest()}
        state = (await client.get(f"{stack.upstream}/_state/{key}")).json()
        assert state["content_length"] == str(BIG_SIZE)  # not turned into chunks
        got = hashlib.sha256()
        async with client.stream("GET", f"{stack.router}/media/big") as response:
            assert response.headers["content-length"] == str(BIG_SIZE)
            async for chunk in response.aiter_raw():
                got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()


def test_ranges_heads_and_conditional_requests(stack: Stack) -> None:
    url = f"{stack.router}/media/files/segment.ts"
    part = httpx.get(url, headers={"range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == SEGMENT[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(SEGMENT)}"
    assert part.headers["content-length"] == "10"
    beyond = httpx.get(url, headers={"range": "bytes=999999-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(SEGMENT)}"
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(SEGMENT))
    assert head.headers["accept-ranges"] == "bytes"
    whole = httpx.get(url)
    assert whole.content == SEGMENT and whole.headers["content-length"] == str(len(SEGMENT))
    cached = httpx.get(url, headers={"if-none-match": whole.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""


def test_upstream_locations_become_the_routers_public_ones(stack: Stack) -> None:
    created = httpx.post(f"{stack.router}/uploads/files", headers={"tus-resumable": "1.0.0"})
    assert created.status_code == 201
    assert created.headers["location"] == f"{stack.router}/uploads/files/abc123?v=1"
    assert created.headers["upload-offset"] == "0"
    assert created.headers["tus-resumable"] == "1.0.0"
    # Behind a trusted proxy the public origin is the one that proxy reports.
    proxied = httpx.post(
        f"{stack.router}/uploads/files",
        headers={"x-forwarded-proto": "https", "x-forwarded-host": "media.example"},
    )
    assert proxied.headers["location"] == "https://media.example/uploads/files/abc123?v=1"
    # A URL target's base path is taken off again.
    direct = httpx.post(f"{stack.router}/direct/files")
    assert direct.headers["location"] == f"{stack.router}/direct/files/abc123?v=1"
    # Other origins and relative references are not the router's to change.
    elsewhere = httpx.post(f"{stack.router}/uploads/files?where=elsewhere")
    assert elsewhere.headers["location"] == "https://cdn.example/files/abc123"
    relative = httpx.post(f"{stack.router}/uploads/files?where=relative")
    assert relative.headers["location"] == "/uploads/files/abc123"


async def test_upstream_is_told_who_asked_and_the_request_id(stack: Stack) -> None:
    trusted = httpx.get(
        f"{stack.router}/media/echo",
        headers={"x-forwarded-for": "198.51.100.7", "x-request-id": "pt-forwarded-1"},
    )
    echoed = trusted.json()
    assert _received(echoed, "x-forwarded-for") == ["198.51.100.7, 127.0.0.1"]
    assert _received(echoed, "x-forwarded-proto") == ["http"]
    assert _received(echoed, "x-forwarded-host") == [f"127.0.0.1:{stack.router_port}"]
    assert _received(echoed, "x-request-id") == ["pt-forwarded-1"]
    assert trusted.headers["x-request-id"] == "pt-forwarded-1"
    # A client that is not a trusted proxy cannot claim another address, host or scheme.
    untrusted_transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=untrusted_transport) as client:
        response = await client.get(
            f"{stack.router}/media/echo",
            headers={
                "x-forwarded-for": "198.51.100.7",
                "x-forwarded-host": "evil.example",
                "x-forwarded-proto": "https",
                "forwarded": "for=198.51.100.7",
                "x-real-ip": "198.51.100.7",
            },
        )
    echoed = response.json()
    assert _received(echoed, "x-forwarded-for") == ["127.0.0.2"]
    assert _received(echoed, "x-forwarded-host") == [f"127.0.0.1:{stack.router_port}"]
    assert _received(echoed, "x-forwarded-proto") == ["http"]
    assert _received(echoed, "forwarded") == _received(echoed, "x-real-ip") == []
    # Without one from the client, the router's own request id goes upstream.
    assert _received(echoed, "x-request-id") == [response.headers["x-request-id"]]


def test_hop_by_hop_headers_stay_behind_both_ways(stack: Stack) -> None:
    end_to_end = {
        "authorization": "Bearer some.token.here",
        "range": "bytes=0-1",
        "if-none-match": '"abc"',
        "tus-resumable": "1.0.0",
        "upload-offset": "0",
        "upload-length": "10",
        "upload-metadata": "filename ZmlsZS5tcDQ=",
        "content-type": "application/offset+octet-stream",
        "cookie": "session=1",
        "x-custom": "kept",
    }
    hop_by_hop = {
        "connection": "keep-alive, x-client-hop",
        "x-client-hop": "1",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "trailer": "x-checksum",
        "upgrade": "h2c",
        "proxy-authorization": "Basic cHJveHk6c2VjcmV0",
    }
    response = httpx.patch(
        f"{stack.router}/uploads/echo", content=b"0123456789", headers={**end_to_end, **hop_by_hop}
    )
    echoed = response.json()
    for name, value in end_to_end.items():
        assert _received(echoed, name) == [value], name
    for name in ("x-client-hop", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization"):
        assert _received(echoed, name) == [], name
    assert not any("x-client-hop" in v for v in _received(echoed, "connection"))
    assert echoed["size"] == 10
    # And on the way back.
    assert response.headers["x-kept"] == "yes"
    assert response.headers["set-cookie"] == "upstream=1; Path=/"
    for name in ("keep-alive", "proxy-authenticate", "trailer", "upgrade", "x-upstream-hop"):
        assert name not in response.headers, name
    assert "x-upstream-hop" not in response.headers.get("connection", "")
    # Upstream's own CORS answer never reaches a browser: the router decides CORS.
    assert "access-control-allow-origin" not in response.headers


async def test_traversal_nul_and_backslashes_are_refused_before_upstream(stack: Stack) -> None:
    marker = "pt" + uuid.uuid4().hex[:8]
    paths = [
        f"/media/{marker}/../../graphql",
        f"/media/{marker}/%2e%2e/x",
        f"/media/{marker}/%2E%2e/x",
        f"/media/{marker}/.%2e/x",
        f"/media/{marker}/%252e%252e/x",
        f"/media/{marker}/a/..%2f..%2fetc",
        f"/media/{marker}/..;/x",
        f"/media/{marker}/./x",
        f"/media/{marker}/a%00b",
        f"/media/{marker}/a%5cb",
        f"/media/{marker}/a\\b",
        f"/uploads/{marker}/%2e%2e%2f%2e%2e%2fsecret",
    ]
    for path in paths:
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        status, body = await _raw_request(stack.router_port, head)
        assert status == 400, path
        assert b'"code":"BAD_REQUEST"' in body, (path, body)
    seen = httpx.get(f"{stack.upstream}/_seen").json()
    assert not any(marker in path for path in seen)


def test_cors_preflights_and_responses_follow_the_routers_allow_list(stack: Stack) -> None:
    marker = uuid.uuid4().hex[:8]
    url = f"{stack.router}/uploads/echo/{marker}"
    preflight = {
        "origin": APP,
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "tus-resumable, upload-offset, content-type, upload-metadata",
    }
    allowed = httpx.options(url, headers=preflight)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == APP
    methods = {m.strip() for m in allowed.headers["access-control-allow-methods"].split(",")}
    assert {"PATCH", "HEAD", "DELETE", "POST", "GET", "OPTIONS"} <= methods
    allowed_headers = allowed.headers["access-control-allow-headers"].lower()
    for name in ("range", "upload-offset", "upload-length", "tus-resumable", "authorization"):
        assert name in allowed_headers
    for refused in (
        {**preflight, "origin": "https://evil.example"},
        {**preflight, "access-control-request-headers": "x-not-allowed"},
        {**preflight, "access-control-request-method": "TRACE"},
    ):
        denied = httpx.options(url, headers=refused)
        assert denied.status_code == 403
        assert not [h for h in denied.headers if h.startswith("access-control-")]
    # Preflights are the router's to answer; none reached upstream.
    assert not any(marker in path for path in httpx.get(f"{stack.upstream}/_seen").json())
    actual = httpx.get(url, headers={"origin": APP})
    assert actual.headers["access-control-allow-origin"] == APP
    exposed = actual.headers["access-control-expose-headers"].lower()
    for name in ("location", "upload-offset", "tus-resumable", "content-range", "etag"):
        assert name in exposed
    assert "origin" in actual.headers["vary"].lower()
    foreign = httpx.get(url, headers={"origin": "https://evil.example"})
    assert foreign.status_code == 200
    assert not [h for h in foreign.headers if h.startswith("access-control-")]
    # A tus client's discovery request (no preflight) goes through to upstream.
    discovery = httpx.options(url, headers={"tus-resumable": "1.0.0"})
    assert discovery.json()["method"] == "OPTIONS"


def test_an_unreachable_upstream_is_a_502(stack: Stack) -> None:
    for path in ("/down/anything", "/flaky/anything"):
        response = httpx.get(f"{stack.router}{path}")
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert "Traceback" not in response.text


async def test_a_client_that_leaves_releases_the_upstream_connection(stack: Stack) -> None:
    key = uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=60) as client:
        async with client.stream("GET", f"{stack.router}/media/endless/{key}") as response:
            await asyncio.wait_for(anext(response.aiter_raw()), 30)
        # Upstream's endless stream ends because the router closed its side.
        await _poll(_state(client, stack, key), lambda s: s.get("closed"), "upstream released")
        # The same for an upload cut off halfway.
        upload = uuid.uuid4().hex
        _, writer = await asyncio.open_connection("127.0.0.1", stack.router_port)
        writer.write(
            f"PATCH /uploads/stream/{upload} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 10000000\r\n\r\n".encode()
            + b"u" * 100_000
        )
        await writer.drain()
        await _poll(
            _state(client, stack, upload),
            lambda s: s.get("received", 0) >= 100_000,
            "upstream to receive the first part",
        )
        writer.close()
        state = await _poll(
            _state(client, stack, upload), lambda s: s.get("aborted"), "upload aborted upstream"
        )
        assert not state.get("done")


def test_pass_through_skips_the_graphql_edge_but_keeps_headers_and_ids(stack: Stack) -> None:
    # The GraphQL rate limit (5/minute from this address) never applies to media.
    for n in range(12):
        response = httpx.get(
            f"{stack.router}/media/files/segment.ts",
            headers={"range": f"bytes={n}-{n}", "x-request-id": f"pt-edge-{n}"},
        )
        assert response.status_code == 206
        assert response.headers["x-request-id"] == f"pt-edge-{n}"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    statuses = [
        httpx.post(f"{stack.router}/graphql", json={"query": "{ __typename }"}).status_code
        for _ in range(8)
    ]
    assert 429 in statuses
    router_log = "".join(p.read_text() for p in stack.logs.glob("router-*.log"))
    assert '"request_id":"pt-edge-3"' in router_log
    # Paths below a route may hold credentials (signed media URLs): only the prefix is logged.
    assert '"path":"/media/…"' in router_log
    assert "segment.ts" not in router_log


def test_metrics_count_pass_through_requests_and_bytes(stack: Stack) -> None:
    metrics = f"{stack.router}/metrics"
    before = httpx.get(metrics).text
    for _ in range(3):
        httpx.get(f"{stack.router}/media/files/segment.ts", headers={"range": "bytes=0-99"})
    httpx.get(f"{stack.router}/uploads/echo?status=404")
    httpx.put(f"{stack.router}/uploads/echo", content=b"x" * 1000)
    after = httpx.get(metrics).text
    requests = "reelgraph_router_passthrough_requests_total"
    volume = "reelgraph_router_passthrough_bytes_total"

    def grew(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert grew(requests, route="/media", status="206") == 3
    assert grew(requests, route="/uploads", status="404") == 1
    assert grew(volume, route="/media", direction="downstream") == 300
    assert grew(volume, route="/uploads", direction="upstream") == 1000


# --- timeouts: a router of their own with a short one --------------------------------------


async def test_timeouts_bound_silence_but_never_the_whole_transfer(
    stack: Stack, tmp_path: Path
) -> None:
    with run_router(
        FAILING,
        {},
        tmp_path,
        # `--route` replaces REELGRAPH_ROUTER_ROUTES.
        "--route",
        f"/media={stack.upstream}",
        "--route",
        f"/uploads={stack.upstream}",
        REELGRAPH_ROUTER_ROUTES="/ignored=stable",
        REELGRAPH_ROUTER_ROUTE_TIMEOUT="3",
    ) as graphql:
        router = graphql.removesuffix("/graphql")
        async with httpx.AsyncClient(timeout=60) as client:

            async def no_answer() -> None:
                response = await client.get(f"{router}/media/slow")
                assert response.status_code == 504
                assert response.json()["error"]["code"] == "UPSTREAM_TIMEOUT"

            async def stalls_mid_stream() -> None:
                key = uuid.uuid4().hex  # never released: upstream goes quiet after one chunk
                async with client.stream("GET", f"{router}/media/stream/{key}") as response:
                    assert response.status_code == 200
                    with pytest.raises(httpx.RemoteProtocolError):
                        async for _ in response.aiter_raw():
                            pass

            async def long_but_lively_download() -> None:
                key = uuid.uuid4().hex
                async with client.stream("GET", f"{router}/media/endless/{key}") as response:
                    chunks = response.aiter_raw()
                    await anext(chunks)
                    # Longer than the timeout in all, never silent for long.
                    loop = asyncio.get_running_loop()
                    until = loop.time() + 4
                    while loop.time() < until:
                        await anext(chunks)

            async def long_but_lively_upload() -> None:
                key = uuid.uuid4().hex

                async def body() -> AsyncIterator[bytes]:
                    yield b"a" * 1000
                    await asyncio.sleep(4)  # longer than the timeout, before the body ends
                    yield b"b" * 1000

                response = await client.post(f"{router}/uploads/stream/{key}", content=body())
                assert response.json()["size"] == 2000

            await asyncio.gather(
                no_answer(),
                stalls_mid_stream(),
                long_but_lively_download(),
                long_but_lively_upload(),
            )
            ignored = await client.get(f"{router}/ignored/echo")
            assert ignored.status_code == 404  # the environment's route was replaced
            assert ignored.headers["content-type"].startswith("text/plain")


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("media=stable", "absolute path"),
        ("/=stable", "absolute path"),
        ("/a/../b=stable", "absolute path"),
        ("/a b=stable", "absolute path"),
        ("/media", "PREFIX=TARGET"),
        ("/media=", "PREFIX=TARGET"),
        ("/graphql=stable", "overlaps the router's own /graphql"),
        ("/graphql/files=stable", "overlaps the router's own /graphql"),
        ("/health=stable", "overlaps the router's own /health"),
        ("/metrics=stable", "overlaps the router's own /metrics"),
        ("/ready=stable", "overlaps the router's own /ready"),
        ("/media=stable,/media/=flaky", "configured twice"),
        ("/media=ftp://files.example", "http(s) URL"),
        ("/media=http://", "http(s) URL"),
        ("/media=http://user:pw@host.example", "credentials"),
        ("/media=http://host.example/?a=1", "query"),
        ("/media=http://host.example:99999", "not a URL"),
    ],
)
def test_bad_route_configuration_is_refused(entry: str, message: str) -> None:
    with pytest.raises(RouteConfigError, match=re.escape(message)):
        parse_routes([entry], ROUTER_PATHS)


def test_subgraph_targets_must_exist_and_follow_url_overrides() -> None:
    supergraph = load_supergraph(FAILING.read_text())
    routes = parse_routes(["/media=stable", "/files=http://files.example:8080/base/"], ROUTER_PATHS)
    env = {"REELGRAPH_SUBGRAPH_STABLE_URL": "http://127.0.0.1:4999/graphql"}
    upstreams = resolve_routes(routes, subgraph_endpoints(supergraph, env))
    assert upstreams["/media"].origin == "http://127.0.0.1:4999"
    assert upstreams["/files"].origin == "http://files.example:8080"
    assert upstreams["/files"].base_path == "/base"
    plain = resolve_routes(routes, subgraph_endpoints(supergraph, {}))
    assert plain["/media"].origin == "http://127.0.0.1:9"
    unknown = parse_routes(["/media=video"], ROUTER_PATHS)
    with pytest.raises(RouteConfigError, match=r"no subgraph 'video'.*flaky, stable"):
        resolve_routes(unknown, subgraph_endpoints(supergraph, {}))


@pytest.mark.parametrize(
    "path",
    [b"/m/../x", b"/m/%2e%2E/x", b"/m/%252e%252e/x", b"/m/a%00", b"/m/a%5Cb", b"/m/..;/x"],
)
def test_unsafe_paths_are_named(path: bytes) -> None:
    assert unsafe_path(path) is not None
    assert unsafe_path(b"/m/a%20b/c.m3u8") is None


def test_the_router_will_not_start_on_a_bad_route() -> None:
    # Every check is the same for `--route` (the timeouts test runs that option).
    argv = [sys.executable, "-m", "reelgraph", "router", "--supergraph", str(FAILING)]
    run = subprocess.run(
        [*argv, "--port", str(free_port())],
        cwd=ROOT,
        env={**os.environ, "REELGRAPH_ROUTER_ROUTES": "/media=stable,/uploads=video"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "Error: Pass-through route /uploads=video: the supergraph has no subgraph 'video'" in (
        run.stderr
    )
    assert "Traceback" not in run.stderr
