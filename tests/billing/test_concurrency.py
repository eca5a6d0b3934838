"""Money under concurrency, on PostgreSQL with real parallel connections: two billing replicas
share one database, and requests race each other across both. Row locks decide (see
`ledger.py` and `BillingService.heartbeat`): minutes are charged once, an idempotency key
deposits once, and no wallet goes below zero."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.billing.conftest import (
    BILLING_SETTINGS,
    DEPOSIT,
    END,
    HEARTBEAT,
    START,
    Stack,
    billing_env,
    open_stack,
    start_all,
)
from tests.support.processes import Environment, GraphQLClient, ServiceProcess, environment

TRANSACTIONS = (
    "{ wallet { transactions(first: 100) { edges { node { kind amount { amount } } } } } }"
)


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Environment, ServiceProcess, list[ServiceProcess]]]:
    tmp: Path = tmp_path_factory.mktemp("billing-concurrency")
    with environment(tmp, database="postgres", bus="redis", **BILLING_SETTINGS) as env:
        auth = ServiceProcess("auth", env)
        billings = [ServiceProcess("billing", env, env=billing_env(auth)) for _ in range(2)]
        start_all(auth, *billings)
        try:
            yield env, auth, billings
        finally:
            codes = [b.stop() for b in billings] + [auth.stop()]
        assert codes == [0, 0, 0], "".join(b.log() for b in billings)


@pytest.fixture
async def two(
    replicas: tuple[Environment, ServiceProcess, list[ServiceProcess]],
) -> AsyncIterator[tuple[Stack, list[GraphQLClient]]]:
    env, auth, billings = replicas
    clients = [GraphQLClient(f"{b.url}/graphql") for b in billings]
    try:
        async with open_stack(env, auth, billings[0]) as stack:
            yield stack, clients
    finally:
        for client in clients:
            await client.close()


async def test_fifty_concurrent_heartbeats_charge_each_minute_once(
    two: tuple[Stack, list[GraphQLClient]],
) -> None:
    stack, clients = two
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 1_000)
    began = time.monotonic()
    session = (await stack.gql.execute(START, {"v": video}, token=viewer.token))["data"][
        "startPlayback"
    ]
    # Let the wall clock allow at least five begun minutes, then race 50 heartbeats, each
    # with a position of its own, so each one that wins the session's lock moves it and
    # charges every minute begun by then.
    while time.monotonic() - began < 4.2:
        # Playing (the position moves), so the session stays alive however slow the race is.
        beat = await stack.gql.execute(
            HEARTBEAT, {"s": session["id"], "p": time.monotonic() - began}, token=viewer.token
        )
        assert "errors" not in beat, beat
        await asyncio.sleep(0.5)
    results = await asyncio.gather(
        *(
            clients[n % 2].execute(
                HEARTBEAT, {"s": session["id"], "p": 4 + n / 100}, token=viewer.token
            )
            for n in range(50)
        )
    )
    assert all("errors" not in r for r in results), [r for r in results if "errors" in r][:3]
    minutes = [r["data"]["playbackHeartbeat"]["chargedMinutes"] for r in results]
    charged = max(minutes)
    # At least the five begun when they were sent; never more than the wall clock allows.
    assert 5 <= charged <= int(time.monotonic() - began) + 1 and min(minutes) >= 1
    # Each minute once: as many charges as minutes, and the wallet down by exactly those.
    assert await stack.balance(viewer) == 1_000 - charged * 10
    history = await stack.gql.execute(TRANSACTIONS, token=viewer.token)
    charges = [
        e
        for e in history["data"]["wallet"]["transactions"]["edges"]
        if e["node"]["kind"] == "CHARGE"
    ]
    assert len(charges) == charged
    assert (await stack.audit())["ok"] is True
    await stack.gql.execute(END, {"s": session["id"]}, token=viewer.token)


async def test_twenty_concurrent_deposits_with_one_key_make_one_deposit(
    two: tuple[Stack, list[GraphQLClient]],
) -> None:
    stack, clients = two
    user = await stack.register()
    for token in ("tok_visa", "tok_slow"):
        key = uuid.uuid4().hex
        variables = {"amount": 1_234, "token": token, "key": key}
        results = await asyncio.gather(
            *(clients[n % 2].execute(DEPOSIT, variables, token=user.token) for n in range(20))
        )
        assert all("errors" not in r for r in results), [r for r in results if "errors" in r][:3]
        assert len({r["data"]["deposit"]["id"] for r in results}) == 1
    assert await stack.balance(user) == 2 * 1_234
    history = await stack.gql.execute(TRANSACTIONS, token=user.token)
    assert [e["node"]["kind"] for e in history["data"]["wallet"]["transactions"]["edges"]] == [
        "DEPOSIT",
        "DEPOSIT",
    ]
    assert (await stack.audit())["ok"] is True


async def _drain(
    client: GraphQLClient, token: str, session_id: str, deadline: float
) -> dict[str, Any]:
    """Heartbeat, the position moving, until the session is refused; return the refusal."""
    position = 0.0
    while time.monotonic() < deadline:
        position += 0.5
        body = await client.execute(HEARTBEAT, {"s": session_id, "p": position}, token=token)
        if body.get("errors"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the wallet never ran dry")


async def test_two_sessions_draining_one_wallet_never_take_it_below_zero(
    two: tuple[Stack, list[GraphQLClient]],
) -> None:
    stack, clients = two
    owner, viewer = await stack.register(), await stack.register()
    videos = [await stack.video(owner, price=45) for _ in range(2)]
    await stack.deposit(viewer, 500)  # eleven minutes at 45, and 5 left over
    sessions = [
        (await clients[n].execute(START, {"v": videos[n]}, token=viewer.token))["data"][
            "startPlayback"
        ]
        for n in range(2)
    ]
    deadline = time.monotonic() + 60
    refusals = await asyncio.gather(
        *(_drain(clients[n], viewer.token, sessions[n]["id"], deadline) for n in range(2))
    )
    for refusal in refusals:
        assert refusal["errors"][0]["extensions"]["code"] == "INSUFFICIENT_FUNDS", refusal
    charged = sum(r["errors"][0]["extensions"]["chargedMinutes"] for r in refusals)
    assert charged == 11
    assert await stack.balance(viewer) == 5
    history = await stack.gql.execute(TRANSACTIONS, token=viewer.token)
    charges = [
        e
        for e in history["data"]["wallet"]["transactions"]["edges"]
        if e["node"]["kind"] == "CHARGE"
    ]
    assert len(charges) == 11
    assert (await stack.audit())["ok"] is True
