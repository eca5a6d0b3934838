"""Two engagement replicas on one bus, behind the real router: chat, deletions, presence and
notifications published on one replica reach subscribers connected (through the router) to
the other, exactly once, with `User` fields joined from auth for every event.
Runs once per backend pair: SQLite + the local bus, PostgreSQL + Redis."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supergraph.compose import SubgraphSource, compose
from supergraph.compose.fetch import fetch_sdl
from tests.engagement.stack import Account, Stack, eventually
from tests.engagement.test_chat import DELETE, SEND, VIEWERS, first_event
from tests.engagement.test_follows import FOLLOW, ready
from tests.supergraph.conftest import run_router
from tests.support.processes import Environment, ServiceProcess
from tests.support.ws import Subscription, subscribe

ADDED = """
subscription A($s: ID!) {
  chatMessageAdded(streamId: $s) { id body createdAt author { id handle displayName } }
}
"""
DELETED = "subscription D($s: ID!) { chatMessageDeleted(streamId: $s) { id } }"
NOTIFIED = "subscription { notificationAdded { kind video { id } actor { id displayName } } }"


def display_name(account: Account) -> str:
    return f"Viewer {account.handle[2:]}"  # as Stack.account registers it


@contextlib.contextmanager
def replica(env: Environment, auth: ServiceProcess) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        "engagement", env, env={"REELGRAPH_JWKS_URL": f"{auth.url}/.well-known/jwks.json"}
    ).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def replica_b(
    engagement_env: Environment, services: tuple[ServiceProcess, ServiceProcess]
) -> Iterator[ServiceProcess]:
    with replica(engagement_env, services[0]) as process:
        yield process


@pytest.fixture(scope="module")
def router(
    engagement_env: Environment,
    services: tuple[ServiceProcess, ServiceProcess],
    replica_b: ServiceProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The real router over auth and engagement, sending engagement's operations to B."""
    auth = services[0]
    logs: Path = tmp_path_factory.mktemp("router")
    urls = {"auth": f"{auth.url}/graphql", "engagement": f"{replica_b.url}/graphql"}
    supergraph = logs / "supergraph.graphql"
    supergraph.write_text(compose([SubgraphSource(n, u, fetch_sdl(u)) for n, u in urls.items()]))
    with run_router(
        supergraph, urls, logs, REELGRAPH_ROUTER_JWKS_URL=f"{auth.url}/.well-known/jwks.json"
    ) as url:
        yield url


async def drain(subscription: Subscription, seconds: float = 1.5) -> list[dict[str, Any]]:
    """Whatever is still arriving (late probes), until the subscription goes quiet."""
    events = []
    while True:
        try:
            events.append(await subscription.next(timeout=seconds))
        except TimeoutError:
            return events


async def test_chat_sent_on_replica_a_reaches_a_router_subscriber_on_b_exactly_once(
    stack: Stack, router: str
) -> None:
    owner, alice, bob = await stack.account(), await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    async with subscribe(router, ADDED, {"s": stream}, token=alice.token) as subscription:
        # `stack` talks to replica A; the subscription lives on B behind the router.
        await first_event(
            stack, subscription, lambda: stack.ok(SEND, {"s": stream, "b": "probe"}, as_=owner)
        )
        await drain(subscription)
        sent = []
        for n in range(30):
            author = (alice, bob)[n % 2]
            message = (await stack.ok(SEND, {"s": stream, "b": f"message {n}"}, as_=author))[
                "sendChatMessage"
            ]
            sent.append((message["id"], f"message {n}", author))
        received = [(await subscription.next())["data"]["chatMessageAdded"] for _ in sent]
        # Every message once. (Order is publish order; replicas' outbox relays racing on
        # PostgreSQL may swap neighbours, so it is not asserted.)
        by_id = {r["id"]: r for r in received}
        assert len(by_id) == len(sent)
        assert {i: by_id[i]["body"] for i, _, _ in sent} == {i: b for i, b, _ in sent}
        for event, (_, _, author) in zip([by_id[i] for i, _, _ in sent], sent, strict=True):
            # Joined from auth by the router for every event.
            assert event["author"] == {
                "id": author.id,
                "handle": author.handle,
                "displayName": display_name(author),
            }
        assert await drain(subscription) == []  # and nothing twice


async def test_a_deletion_on_a_reaches_a_subscriber_on_b(stack: Stack, router: str) -> None:
    owner, viewer = await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    messages = [
        (await stack.ok(SEND, {"s": stream, "b": f"m{n}"}, as_=viewer))["sendChatMessage"]["id"]
        for n in range(5)
    ]
    async with subscribe(router, DELETED, {"s": stream}) as subscription:
        first = await first_event(
            stack,
            subscription,
            lambda: stack.ok(DELETE, {"id": messages.pop(0)}, as_=owner),
        )
        assert first["data"]["chatMessageDeleted"]["id"]
        await drain(subscription)
        last = (await stack.ok(SEND, {"s": stream, "b": "last"}, as_=viewer))["sendChatMessage"][
            "id"
        ]
        await stack.ok(DELETE, {"id": last}, as_=owner)
        assert (await subscription.next())["data"]["chatMessageDeleted"] == {"id": last}


async def test_presence_is_counted_across_replicas_and_drops_with_a_dead_replica(
    stack: Stack,
    router: str,
    engagement_env: Environment,
    services: tuple[ServiceProcess, ServiceProcess],
) -> None:
    owner, alice, bob, carol = [await stack.account() for _ in range(4)]
    stream = await stack.stream(owner)
    async with subscribe(router, VIEWERS, {"s": stream}, token=alice.token) as watcher:
        assert (await watcher.next())["data"]["viewerCountChanged"] == 1
        # Bob watches on replica A directly: Alice's subscription on B sees him come and go.
        async with subscribe(stack.gql.url, VIEWERS, {"s": stream}, token=bob.token) as on_a:
            assert (await on_a.next())["data"]["viewerCountChanged"] == 2
            assert (await watcher.next())["data"]["viewerCountChanged"] == 2
        assert (await watcher.next())["data"]["viewerCountChanged"] == 1

        # Carol watches on a replica that then dies without a word: once its heartbeat
        # stops, she stops counting.
        with replica(engagement_env, services[0]) as doomed:
            async with subscribe(
                f"{doomed.url}/graphql", VIEWERS, {"s": stream}, token=carol.token
            ) as on_c:
                assert (await on_c.next())["data"]["viewerCountChanged"] == 2
                assert (await watcher.next())["data"]["viewerCountChanged"] == 2
                doomed.kill()
                assert (await watcher.next(timeout=60))["data"]["viewerCountChanged"] == 1


async def test_notifications_handled_by_either_replica_reach_a_router_subscriber(
    stack: Stack, router: str
) -> None:
    creator, fan = await stack.account(), await stack.account()
    await stack.known(creator, by=fan)
    await stack.ok(FOLLOW, {"u": creator.id}, as_=fan)
    async with subscribe(router, NOTIFIED, token=fan.token) as subscription:
        first = await first_event(stack, subscription, lambda: ready(stack, creator))
        assert first["data"]["notificationAdded"]["actor"] == {
            "id": creator.id,
            "displayName": display_name(creator),
        }
        await drain(subscription)
        videos = [await ready(stack, creator) for _ in range(5)]
        received = [(await subscription.next())["data"]["notificationAdded"] for _ in videos]
        # Either replica may handle each event, so they may arrive in any order.
        assert sorted(n["video"]["id"] for n in received) == sorted(videos)
        assert await drain(subscription) == []
    await eventually(
        lambda: stack.ok("{ notifications(first: 100) { edges { node { id } } } }", as_=fan),
        lambda d: len(d["notifications"]["edges"]) >= 6,
        what="the notifications listed",
    )
