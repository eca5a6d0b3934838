"""The router reloads its supergraph file when it changes, without dropping requests in
flight or open subscriptions, and keeps serving the old one when the new one is broken."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from supergraph.compose import SubgraphSource, compose
from supergraph.compose.fetch import fetch_sdl
from tests.supergraph.conftest import failing_subgraph, run_router


async def _until(check: object, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_reload_keeps_requests_and_subscriptions_alive(tmp_path: Path) -> None:
    with (
        failing_subgraph("stable", "ok", tmp_path) as stable,
        failing_subgraph("events", "ok", tmp_path) as events,
        failing_subgraph("flaky", "slow", tmp_path) as slow_flaky,
    ):
        sdl = {
            n: fetch_sdl(u)
            for n, u in (("stable", stable), ("events", events), ("flaky", slow_flaky))
        }
        before = compose(
            [
                SubgraphSource("stable", stable, sdl["stable"]),
                SubgraphSource("events", events, sdl["events"]),
                SubgraphSource("flaky", slow_flaky, sdl["flaky"]),
            ]
        )
        after = compose(
            [
                SubgraphSource("stable", stable, sdl["stable"]),
                SubgraphSource("events", events, sdl["events"]),
            ]
        )
        path = tmp_path / "supergraph.graphql"
        path.write_text(before)
        with run_router(path, {}, tmp_path, REELGRAPH_SUPERGRAPH_POLL_SECONDS="0.2") as router:
            async with (
                httpx.AsyncClient(timeout=30) as http,
                connect(
                    router.replace("http://", "ws://"), subprotocols=["graphql-transport-ws"]
                ) as socket,
            ):  # type: ignore[list-item]
                await socket.send(json.dumps({"type": "connection_init"}))
                await socket.recv()
                await socket.send(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "id": "s",
                            "payload": {
                                "query": 'subscription { messages(topic: "reload") { seq thing { name } } }'
                            },
                        }
                    )
                )

                async def subscribed() -> bool:
                    r = await http.post(
                        events, json={"query": '{ activeSubscribers(topic: "reload") }'}
                    )
                    return bool(r.json()["data"]["activeSubscribers"] == 1)

                await _until(subscribed)
                # A request in flight (flaky answers 3 s late) when the file changes.
                in_flight = asyncio.create_task(
                    http.post(router, json={"query": "{ flaky stable }"})
                )
                await asyncio.sleep(0.5)
                path.write_text(after)

                async def reloaded() -> bool:
                    r = await http.post(router, json={"query": "{ flaky }"})
                    return (
                        "errors" in r.json()
                        and r.json()["errors"][0]["extensions"]["code"]
                        == "GRAPHQL_VALIDATION_FAILED"
                    )

                await _until(reloaded)
                assert (await in_flight).json() == {"data": {"flaky": "flaky", "stable": "stable"}}
                await http.post(
                    router,
                    json={"query": 'mutation { publish(topic: "reload", body: "still here") }'},
                )
                event = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert event["payload"]["data"]["messages"] == {
                    "seq": 1,
                    "thing": {"name": "thing 2"},
                }

                path.write_text("this is not a supergraph")
                await asyncio.sleep(1.0)
                still = await http.post(router, json={"query": "{ stable }"})
                assert still.json() == {"data": {"stable": "stable"}}
