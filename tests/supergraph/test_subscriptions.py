"""Subscriptions through the router, between real processes: graphql-transport-ws and SSE
clients, an upstream graphql-transport-ws subscription per operation, and entity fields
resolved from another subgraph for every event."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from supergraph.compose import SubgraphSource, compose
from supergraph.compose.fetch import fetch_sdl
from tests.supergraph.conftest import failing_subgraph, run_router

MESSAGES = (
    "subscription S($topic: String!) { messages(topic: $topic) { seq body thing { id name } } }"
)


@contextlib.asynccontextmanager
async def client(
    url: str, payload: dict[str, Any] | None = None
) -> AsyncIterator[ClientConnection]:
    async with connect(
        url.replace("http://", "ws://"), subprotocols=["graphql-transport-ws"]
    ) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        assert json.loads(await socket.recv()) == {"type": "connection_ack"}
        yield socket


async def receive(socket: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout))
    return message


async def gql(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        body: dict[str, Any] = (
            await http.post(url, json={"query": query, "variables": variables})
        ).json()
    return body


async def publish(stack: dict[str, str], topic: str, count: int = 1, body: str = "hi") -> None:
    result = await gql(
        stack["router"],
        "mutation P($t: String!, $b: String!, $n: Int!) { publish(topic: $t, body: $b, count: $n) }",
        {"t": topic, "b": body, "n": count},
    )
    assert "errors" not in result, result


async def active(stack: dict[str, str], topic: str) -> int:
    result = await gql(
        stack["events"], "query A($t: String!) { activeSubscribers(topic: $t) }", {"t": topic}
    )
    return int(result["data"]["activeSubscribers"])


async def wait_for_subscribers(
    stack: dict[str, str], topic: str, count: int, timeout: float = 20
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await active(stack, topic) != count:
        assert asyncio.get_running_loop().time() < deadline, (
            f"{await active(stack, topic)} subscribers, wanted {count}"
        )
        await asyncio.sleep(0.05)


async def test_events_carry_fields_other_subgraphs_own(stack: dict[str, str]) -> None:
    async with client(stack["router"]) as socket:
        await socket.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": "1",
                    "payload": {"query": MESSAGES, "variables": {"topic": "join"}},
                }
            )
        )
        await wait_for_subscribers(stack, "join", 1)
        await publish(stack, "join", count=2, body="hello")
        first, second = await receive(socket), await receive(socket)
    assert first["type"] == second["type"] == "next"
    assert first["payload"]["data"]["messages"] == {
        "seq": 1,
        "body": "hello",
        "thing": {"id": "2", "name": "thing 2"},
    }
    assert second["payload"]["data"]["messages"]["thing"] == {"id": "3", "name": "thing 3"}


async def test_two_hundred_subscribers_get_every_event_in_order(stack: dict[str, str]) -> None:
    topic, subscribers, events = "crowd", 200, 20

    async def subscriber() -> list[int]:
        async with client(stack["router"]) as socket:
            await socket.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "id": "s",
                        "payload": {"query": MESSAGES, "variables": {"topic": topic}},
                    }
                )
            )
            ready.release()
            seqs = []
            while len(seqs) < events:
                message = await receive(socket, timeout=60)
                assert message["type"] == "next", message
                assert "errors" not in message["payload"], message
                seqs.append(message["payload"]["data"]["messages"]["seq"])
            return seqs

    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(subscriber()) for _ in range(subscribers)]
    for _ in range(subscribers):
        await ready.acquire()
    await wait_for_subscribers(stack, topic, subscribers, timeout=60)
    for _ in range(events):
        await publish(stack, topic)
    results = await asyncio.gather(*tasks)
    assert all(seqs == list(range(1, events + 1)) for seqs in results)
    await wait_for_subscribers(stack, topic, 0)  # every upstream closed when the clients left


async def test_sse_streams_events_then_ends_when_the_client_leaves(stack: dict[str, str]) -> None:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            stack["router"],
            json={"query": MESSAGES, "variables": {"topic": "sse"}},
            headers={"accept": "text/event-stream"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        await wait_for_subscribers(stack, "sse", 1)
        await publish(stack, "sse", count=3)
        events = []
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if len(events) == 3:
                break
    assert [e["data"]["messages"]["seq"] for e in events] == [1, 2, 3]
    assert events[0]["data"]["messages"]["thing"]["name"] == "thing 2"
    await wait_for_subscribers(stack, "sse", 0)


async def test_completing_a_subscription_closes_the_upstream(stack: dict[str, str]) -> None:
    async with client(stack["router"]) as socket:
        await socket.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": "x",
                    "payload": {"query": MESSAGES, "variables": {"topic": "done"}},
                }
            )
        )
        await wait_for_subscribers(stack, "done", 1)
        await socket.send(json.dumps({"type": "complete", "id": "x"}))
        await wait_for_subscribers(stack, "done", 0)
        # The connection stays usable.
        await socket.send(json.dumps({"type": "ping"}))
        assert await receive(socket) == {"type": "pong"}


async def test_queries_over_the_socket_answer_once_and_complete(stack: dict[str, str]) -> None:
    async with client(stack["router"]) as socket:
        await socket.send(
            json.dumps(
                {"type": "subscribe", "id": "q", "payload": {"query": "{ stable things { name } }"}}
            )
        )
        result = await receive(socket)
        assert result["payload"]["data"]["stable"] == "stable"
        assert await receive(socket) == {"type": "complete", "id": "q"}


async def test_invalid_operations_get_an_error_message(stack: dict[str, str]) -> None:
    async with client(stack["router"]) as socket:
        await socket.send(
            json.dumps(
                {"type": "subscribe", "id": "bad", "payload": {"query": "subscription { nope }"}}
            )
        )
        message = await receive(socket)
        assert message["type"] == "error" and message["id"] == "bad"
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_protocol_violations_close_the_connection(stack: dict[str, str]) -> None:
    url = stack["router"].replace("http://", "ws://")
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps({"type": "subscribe", "id": "1", "payload": {"query": MESSAGES}})
        )
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with client(stack["router"]) as socket:
        subscribe = {
            "type": "subscribe",
            "id": "dup",
            "payload": {"query": MESSAGES, "variables": {"topic": "dup"}},
        }
        await socket.send(json.dumps(subscribe))
        await socket.send(json.dumps(subscribe))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
    await wait_for_subscribers(stack, "dup", 0)


async def test_an_upstream_that_dies_ends_the_subscription_with_an_error(tmp_path: Path) -> None:
    with failing_subgraph("stable", "ok", tmp_path) as stable:
        events_cm = failing_subgraph("events", "ok", tmp_path)
        events = events_cm.__enter__()
        try:
            sources = [
                SubgraphSource(n, u, fetch_sdl(u))
                for n, u in (("stable", stable), ("events", events))
            ]
            supergraph = tmp_path / "supergraph.graphql"
            supergraph.write_text(compose(sources))
            with run_router(supergraph, {"stable": stable, "events": events}, tmp_path) as router:
                async with client(router) as socket:
                    await socket.send(
                        json.dumps(
                            {
                                "type": "subscribe",
                                "id": "d",
                                "payload": {"query": MESSAGES, "variables": {"topic": "t"}},
                            }
                        )
                    )
                    await wait_for_subscribers({"events": events}, "t", 1)
                    events_cm.__exit__(None, None, None)  # the subgraph process goes away
                    events_cm = None  # type: ignore[assignment]
                    message = await receive(socket, timeout=30)
        finally:
            if events_cm is not None:
                events_cm.__exit__(None, None, None)
    assert message["type"] == "error" and message["id"] == "d"
    assert message["payload"][0]["extensions"]["code"] == "SUBGRAPH_UNAVAILABLE"


async def test_subscriptions_per_connection_are_limited(tmp_path: Path) -> None:
    with (
        failing_subgraph("stable", "ok", tmp_path) as stable,
        failing_subgraph("events", "ok", tmp_path) as events,
    ):
        sources = [
            SubgraphSource(n, u, fetch_sdl(u)) for n, u in (("stable", stable), ("events", events))
        ]
        supergraph = tmp_path / "supergraph.graphql"
        supergraph.write_text(compose(sources))
        with run_router(
            supergraph,
            {"stable": stable, "events": events},
            tmp_path,
            REELGRAPH_SUBSCRIPTIONS_PER_CONNECTION="2",
        ) as router:
            async with client(router) as socket:
                for n in range(3):
                    await socket.send(
                        json.dumps(
                            {
                                "type": "subscribe",
                                "id": str(n),
                                "payload": {"query": MESSAGES, "variables": {"topic": "cap"}},
                            }
                        )
                    )
                refused = await receive(socket)
                assert refused["type"] == "error" and refused["id"] == "2"
                assert refused["payload"][0]["extensions"]["code"] == "SUBSCRIPTION_LIMIT"
                await wait_for_subscribers({"events": events}, "cap", 2)
                # Completing one frees its slot.
                await socket.send(json.dumps({"type": "complete", "id": "0"}))
                await wait_for_subscribers({"events": events}, "cap", 1)
                await socket.send(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "id": "3",
                            "payload": {"query": MESSAGES, "variables": {"topic": "cap"}},
                        }
                    )
                )
                await wait_for_subscribers({"events": events}, "cap", 2)
