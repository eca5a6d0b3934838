"""The video subgraph behind our federation router, over the checked-in supergraph: the router
joins auth's `User` into videos and video's `User.videos` into auth's `me`, keeps hidden videos
hidden, and carries `videoProcessing` over WebSocket with the owner's token."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from tests.video.conftest import Api, Person, Stack


async def _routed(
    stack: Stack, query: str, variables: dict[str, Any] | None = None, who: Person | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {who.token}"} if who else {}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            stack.router(), json={"query": query, "variables": variables or {}}, headers=headers
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_router_joins_owners_and_user_videos_across_subgraphs(
    api: Api, stack: Stack
) -> None:
    owner = await api.register()
    stranger = await api.register()
    public = await api.ready_video(owner, title="Routed and public")
    private = await api.ready_video(owner, title="Routed and private", visibility="PRIVATE")

    listed = await _routed(
        stack,
        "query L($o: ID) { videos(filter: {ownerId: $o}) { totalCount edges { node "
        "{ id title hlsUrl category { name } owner { id handle } } } } }",
        {"o": owner.id},
    )
    assert "errors" not in listed, listed
    (edge,) = listed["data"]["videos"]["edges"]
    assert edge["node"]["id"] == public
    assert edge["node"]["owner"] == {"id": owner.id, "handle": owner.handle}
    assert edge["node"]["category"] == {"name": "Music"}

    mine = await _routed(
        stack, "{ me { handle videos { totalCount edges { node { id visibility } } } } }", who=owner
    )
    assert mine["data"]["me"]["handle"] == owner.handle
    assert {e["node"]["id"] for e in mine["data"]["me"]["videos"]["edges"]} == {public, private}

    theirs = await _routed(
        stack,
        "query U($id: ID!) { user(id: $id) { handle videos { edges { node { id } } } } }",
        {"id": owner.id},
        stranger,
    )
    assert [e["node"]["id"] for e in theirs["data"]["user"]["videos"]["edges"]] == [public]
    hidden = await _routed(
        stack,
        "query V($id: ID!) { video(id: $id) { id owner { handle } } }",
        {"id": private},
        stranger,
    )
    assert hidden == {"data": {"video": None}}


async def test_the_processing_subscription_runs_through_the_router(api: Api, stack: Stack) -> None:
    owner = await api.register()
    video_id = await api.processing_video(owner, title="Watched through the router")
    url = stack.router().replace("http://", "ws://")
    query = (
        "subscription P($id: ID!) { videoProcessing(videoId: $id) "
        "{ status progress video { title owner { handle } } } }"
    )

    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {owner.token}"}}
        await socket.send(orjson.dumps(init).decode())
        assert orjson.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "connection_ack"
        subscribe = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": query, "variables": {"id": video_id}},
        }
        await socket.send(orjson.dumps(subscribe).decode())

        async def next_event() -> dict[str, Any]:
            while True:
                message = orjson.loads(await asyncio.wait_for(socket.recv(), 30))
                if message["type"] == "ping":
                    await socket.send(orjson.dumps({"type": "pong"}).decode())
                    continue
                assert message["type"] == "next", message
                assert not message["payload"].get("errors"), message
                event: dict[str, Any] = message["payload"]["data"]["videoProcessing"]
                return event

        first = await next_event()
        assert first["status"] == "PROCESSING"
        assert first["video"]["owner"] == {"handle": owner.handle}
        await api.publish("media.progress", {"videoId": video_id, "progress": 0.5})
        assert (await next_event())["progress"] == 0.5
        await api.finish_processing(video_id)
        done = await next_event()
        assert done["status"] == "READY"
        assert done["video"] == {
            "title": "Watched through the router",
            "owner": {"handle": owner.handle},
        }
