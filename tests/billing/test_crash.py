"""Crash safety: a real `reelgraph serve billing` killed (SIGKILL, from a test-only fault point
in the real heartbeat code path) before its charge commits leaves nothing behind, and killed
after the commit but before answering leaves a whole entry that a retried heartbeat does not
charge again."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.billing.conftest import (
    BACKEND_IDS,
    BACKENDS,
    BILLING_SETTINGS,
    HEARTBEAT,
    SESSION,
    START,
    Stack,
    billing_env,
    open_stack,
    start_all,
)
from tests.support.processes import Environment, ServiceProcess, environment

# Restarts take a while on a busy machine: the session must outlive them.
SETTINGS = {**BILLING_SETTINGS, "REELGRAPH_BILLING_SESSION_TTL_SECONDS": "300"}
TRANSACTIONS = "{ wallet { transactions(first: 100) { edges { node { kind } } } } }"
FUNDS = 300_000


@pytest.fixture(params=BACKENDS, ids=BACKEND_IDS)
def crash_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Environment, ServiceProcess]]:
    database, bus = request.param
    tmp: Path = tmp_path_factory.mktemp(f"billing-crash-{database}")
    with environment(tmp, database=database, bus=bus, **SETTINGS) as env:
        auth = ServiceProcess("auth", env)
        start_all(auth)
        try:
            yield env, auth
        finally:
            assert auth.stop() == 0


def _billing(env: Environment, auth: ServiceProcess, fault: str | None) -> ServiceProcess:
    extra = {**billing_env(auth), **SETTINGS}
    if fault:
        extra["REELGRAPH_BILLING_FAULT"] = fault
    billing = ServiceProcess("billing", env, env=extra)
    start_all(billing)
    return billing


async def _heartbeat_kills(stack: Stack, token: str, session_id: str) -> None:
    with pytest.raises(httpx.HTTPError):
        await stack.gql.execute(HEARTBEAT, {"s": session_id, "p": 1.5}, token=token)
    assert stack.billing.wait_for_exit() == -signal.SIGKILL


async def _state(stack: Stack, token: str, session_id: str) -> dict[str, Any]:
    body = await stack.gql.execute(SESSION, {"s": session_id}, token=token)
    assert "errors" not in body, body
    state: dict[str, Any] = body["data"]["playbackSession"]
    return state


async def test_a_killed_heartbeat_leaves_no_half_entry_and_is_not_charged_twice(
    crash_env: tuple[Environment, ServiceProcess],
) -> None:
    env, auth = crash_env
    # 1. Killed inside the transaction, after the charge was written but before COMMIT.
    billing = _billing(env, auth, "crash_before_charge_commit")
    try:
        async with open_stack(env, auth, billing) as stack:
            owner, viewer = await stack.register(), await stack.register()
            video = await stack.video(owner, price=30)
            # Ample: restarts take a while, and every second is a billing minute here.
            await stack.deposit(viewer, FUNDS)
            session = (await stack.gql.execute(START, {"v": video}, token=viewer.token))["data"][
                "startPlayback"
            ]
            assert session["chargedMinutes"] == 1
            # Once a second has passed since the start (the answer came after it began), the
            # wall clock has begun the second minute: the moving heartbeat charges it.
            await asyncio.sleep(1.1)
            await _heartbeat_kills(stack, viewer.token, session["id"])
    finally:
        billing.stop()

    # 2. Nothing of it survived. Now killed right after COMMIT, before the response.
    billing = _billing(env, auth, "crash_after_charge_commit")
    try:
        async with open_stack(env, auth, billing) as stack:
            state = await _state(stack, viewer.token, session["id"])
            assert (state["chargedMinutes"], state["positionSeconds"]) == (1, 0)
            assert await stack.balance(viewer) == FUNDS - 30
            audit = await stack.audit()
            assert audit["ok"] is True
            entries_before = audit["entries"]
            await _heartbeat_kills(stack, viewer.token, session["id"])
    finally:
        billing.stop()

    # 3. The committed minutes are whole entries, and retrying the heartbeat (the same
    # position: it extends and charges nothing) charges nothing more.
    billing = _billing(env, auth, None)
    try:
        async with open_stack(env, auth, billing) as stack:
            charged = (await _state(stack, viewer.token, session["id"]))["chargedMinutes"]
            assert charged >= 2  # as many as the wall clock had begun by the killed heartbeat
            audit = await stack.audit()
            assert audit["ok"] is True
            assert audit["entries"] == entries_before + charged - 1  # whole charge entries
            for _ in range(3):
                retried = await stack.gql.execute(
                    HEARTBEAT, {"s": session["id"], "p": 1.5}, token=viewer.token
                )
                assert retried["data"]["playbackHeartbeat"]["chargedMinutes"] == charged, retried
            assert await stack.balance(viewer) == FUNDS - 30 * charged
            history = await stack.gql.execute(TRANSACTIONS, token=viewer.token)
            kinds = [e["node"]["kind"] for e in history["data"]["wallet"]["transactions"]["edges"]]
            assert kinds == ["CHARGE"] * charged + ["DEPOSIT"]
            assert (await stack.audit())["ok"] is True
    finally:
        assert billing.stop() == 0, billing.log()
