"""Subgraphs are told who the client is: every fetch the router sends (queries, `_entities`,
multipart uploads, a subscription's upstream WebSocket and the entity fetches of its events)
carries one X-Forwarded-For, the address the router itself determined. Also what that does to
in-flight deduplication, and trusted proxies the router refuses to start with."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from supergraph.compose import SubgraphSource, compose
from supergraph.compose.fetch import fetch_sdl
from supergraph.server import create_router_app
from tests.supergraph.conftest import failing_subgraph, run_router
from tests.support.processes import ROOT

# The router trusts 127.0.0.1 (its default); a client connecting from 127.0.0.2 is not trusted.
TRUSTED = "127.0.0.1"
UNTRUSTED = "127.0.0.2"
MESSAGES = (
    "subscription S($topic: String!) "
    "{ messages(topic: $topic) { seq forwardedFor thing { name forwardedFor } } }"
)


@pytest.fixture(scope="module")
def routers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`stable` and `events` behind two routers: one deduplicating as it does by default, one
    told that `stable` answers per client address."""
    logs = tmp_path_factory.mktemp("client-address")
    with (
        failing_subgraph("stable", "ok", logs) as stable,
        failing_subgraph("events", "ok", logs) as events,
    ):
        urls = {"stable": stable, "events": events}
        supergraph = logs / "supergraph.graphql"
        supergraph.write_text(
            compose([SubgraphSource(n, u, fetch_sdl(u)) for n, u in urls.items()])
        )
        with (
            run_router(supergraph, urls, logs) as router,
            run_router(
                supergraph, urls, logs, REELGRAPH_SUBGRAPH_STABLE_DEDUPE_PER_ADDRESS="true"
            ) as per_address,
        ):
            yield {"router": router, "per_address": per_address, **urls}


def _client(peer: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=peer), timeout=httpx.Timeout(60)
    )


async def _query(
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    peer: str = TRUSTED,
    forwarded_for: list[str] | None = None,
) -> dict[str, Any]:
    # Several header lines when asked: some proxies add their own line.
    headers = [("x-forwarded-for", line) for line in forwarded_for or []]
    async with _client(peer) as http:
        response = await http.post(
            url, json={"query": query, "variables": variables or {}}, headers=headers
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


# (the client's peer address, the X-Forwarded-For lines it sends) → what subgraphs are told.
CASES = [
    pytest.param(TRUSTED, [], TRUSTED, id="trusted-peer-itself"),
    pytest.param(TRUSTED, ["198.51.100.7"], "198.51.100.7", id="behind-a-trusted-proxy"),
    # The client wrote 6.6.6.6 itself; the trusted proxy appended the address it saw.
    pytest.param(TRUSTED, ["6.6.6.6, 198.51.100.7"], "198.51.100.7", id="spoofed-hop-behind-proxy"),
    pytest.param(TRUSTED, ["6.6.6.6", "2001:db8::7"], "2001:db8::7", id="proxy-adds-its-own-line"),
    pytest.param(UNTRUSTED, [], UNTRUSTED, id="untrusted-peer"),
    pytest.param(UNTRUSTED, ["198.51.100.7"], UNTRUSTED, id="untrusted-peer-spoofing"),
    pytest.param(UNTRUSTED, ["198.51.100.7", "10.0.0.1"], UNTRUSTED, id="untrusted-two-lines"),
]


@pytest.mark.parametrize(("peer", "sent", "told"), CASES)
async def test_queries_and_entity_fetches_tell_subgraphs_the_client_address(
    routers: dict[str, str], peer: str, sent: list[str], told: str
) -> None:
    body = await _query(routers["router"], "{ forwardedFor }", peer=peer, forwarded_for=sent)
    # One value, the router's own finding: never the client's header passed on or appended to.
    assert body["data"]["forwardedFor"] == told


@pytest.mark.parametrize(("peer", "sent", "told"), CASES[:2] + CASES[-2:])
async def test_uploads_and_their_entity_fetches_tell_subgraphs_the_client_address(
    routers: dict[str, str], peer: str, sent: list[str], told: str
) -> None:
    payload = uuid.uuid4().bytes * 1000
    operations = {
        "query": "mutation M($f: Upload!) "
        "{ store(file: $f) { sha256 forwardedFor thing { name forwardedFor } } }",
        "variables": {"f": None},
    }
    headers = [("x-forwarded-for", line) for line in sent] + [("apollo-require-preflight", "1")]
    async with _client(peer) as http:
        response = await http.post(
            routers["router"],
            data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f"]})},
            files={"0": ("clip.bin", payload, "application/octet-stream")},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    stored = response.json()["data"]["store"]
    assert stored == {
        "sha256": hashlib.sha256(payload).hexdigest(),
        "forwardedFor": told,
        "thing": {"name": "thing 1", "forwardedFor": told},
    }


@contextlib.asynccontextmanager
async def _socket(url: str, peer: str, sent: list[str]) -> AsyncIterator[ClientConnection]:
    async with connect(
        url.replace("http://", "ws://"),
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers=[("x-forwarded-for", line) for line in sent],
        local_addr=(peer, 0),
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 30)) == {"type": "connection_ack"}
        yield socket


async def _wait_for_subscribers(routers: dict[str, str], topic: str, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    query = "query A($t: String!) { activeSubscribers(topic: $t) }"
    while True:
        body = await _query(routers["events"], query, {"t": topic})
        if body["data"]["activeSubscribers"] == count:
            return
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)


async def _publish(routers: dict[str, str], topic: str) -> None:
    mutation = 'mutation P($t: String!) { publish(topic: $t, body: "hi") }'
    await _query(routers["router"], mutation, {"t": topic})


@pytest.mark.parametrize(("peer", "sent", "told"), CASES[:2] + CASES[-2:])
async def test_a_subscriptions_upstream_socket_tells_the_subgraph_the_client_address(
    routers: dict[str, str], peer: str, sent: list[str], told: str
) -> None:
    topic = f"ws-{uuid.uuid4().hex[:8]}"
    async with _socket(routers["router"], peer, sent) as socket:
        subscribe = {"query": MESSAGES, "variables": {"topic": topic}}
        await socket.send(json.dumps({"type": "subscribe", "id": "1", "payload": subscribe}))
        await _wait_for_subscribers(routers, topic, 1)
        await _publish(routers, topic)
        message = json.loads(await asyncio.wait_for(socket.recv(), 30))
    assert message["type"] == "next", message
    event = message["payload"]["data"]["messages"]
    # The upgrade request of the upstream subscription, and each event's entity fetch.
    assert event["forwardedFor"] == told
    assert event["thing"]["forwardedFor"] == told


@pytest.mark.parametrize(("peer", "sent", "told"), [CASES[1], CASES[-2]])
async def test_an_sse_subscriptions_upstream_tells_the_subgraph_the_client_address(
    routers: dict[str, str], peer: str, sent: list[str], told: str
) -> None:
    topic = f"sse-{uuid.uuid4().hex[:8]}"
    headers = [("x-forwarded-for", line) for line in sent] + [("accept", "text/event-stream")]
    async with (
        _client(peer) as http,
        http.stream(
            "POST",
            routers["router"],
            json={"query": MESSAGES, "variables": {"topic": topic}},
            headers=headers,
        ) as response,
    ):
        await _wait_for_subscribers(routers, topic, 1)
        await _publish(routers, topic)
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])["data"]["messages"]
                break
    assert event["forwardedFor"] == told
    assert event["thing"]["forwardedFor"] == told


# In-flight deduplication


async def _same_query_at_once(
    url: str, tag: str, addresses: list[str]
) -> tuple[list[str | None], int]:
    """One identical slow query per address, all at once: what each client was answered, and
    how many fetches reached the subgraph. (Merging needs the requests to overlap, which 8
    requests fired together do easily within the subgraph's 1.5 s; nothing needs them to be
    apart.)"""
    query = "query Q($tag: String!) { forwardedFor(tag: $tag, ms: 1500) }"
    bodies = await asyncio.gather(
        *(_query(url, query, {"tag": tag}, forwarded_for=[a]) for a in addresses)
    )
    calls = await _query(url, "query C($tag: String!) { calls(tag: $tag) }", {"tag": tag})
    return [b["data"]["forwardedFor"] for b in bodies], calls["data"]["calls"]


async def test_anonymous_clients_asking_the_same_thing_at_once_are_still_merged(
    routers: dict[str, str],
) -> None:
    addresses = [f"198.51.100.{i}" for i in range(1, 9)]

    answers, calls = await _same_query_at_once(routers["router"], uuid.uuid4().hex, addresses)

    # Different addresses did not split the fetches: fewer reached the subgraph than clients
    # asked (the subgraph saw the first asker's address; its answer must not depend on it).
    assert calls < len(addresses), answers
    assert set(answers) <= set(addresses)


async def test_a_subgraph_answering_per_address_is_merged_per_address_only(
    routers: dict[str, str],
) -> None:
    addresses = [f"203.0.113.{i // 2 + 1}" for i in range(8)]  # four clients, twice each

    answers, calls = await _same_query_at_once(routers["per_address"], uuid.uuid4().hex, addresses)

    # Nobody got an answer meant for another address; the same address's twins may share one.
    assert answers == addresses
    assert len(set(addresses)) <= calls <= len(addresses)


# Configuration


def test_the_router_refuses_a_bad_trusted_proxy_entry() -> None:
    sdl = (ROOT / "tests" / "supergraph" / "failing" / "supergraph.graphql").read_text()
    with pytest.raises(ValueError, match=r"REELGRAPH_TRUSTED_PROXIES: '10\.0\.0\.0/33' has an"):
        create_router_app(sdl, environ={"REELGRAPH_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/33"})
    with pytest.raises(ValueError, match="REELGRAPH_SUBGRAPH_STABLE_DEDUPE_PER_ADDRESS"):
        create_router_app(sdl, environ={"REELGRAPH_SUBGRAPH_STABLE_DEDUPE_PER_ADDRESS": "maybe"})


def test_the_router_process_stops_at_start_up_naming_the_bad_entry(tmp_path: Path) -> None:
    supergraph = ROOT / "tests" / "supergraph" / "failing" / "supergraph.graphql"
    result = subprocess.run(
        [sys.executable, "-m", "reelgraph", "router", "--supergraph", str(supergraph)],
        cwd=ROOT,
        env={**os.environ, "REELGRAPH_TRUSTED_PROXIES": "127.0.0.1, router"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "REELGRAPH_TRUSTED_PROXIES: 'router' is neither an IP address nor a CIDR range" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
