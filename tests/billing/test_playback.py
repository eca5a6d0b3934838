"""Playback sessions over HTTP: the first minute at start, each begun minute charged once by
the wall clock while the player plays, a paused player neither charged nor extended, the
revenue split, running out of funds, expiry, ending, price changes, and the playback token
the video service will check. A billing minute is one second here, the session TTL five."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from subgraphs.kernel.playback import InvalidPlaybackToken
from tests.billing.conftest import END, HEARTBEAT, SESSION, START, Stack, User
from tests.support.processes import error_codes

EARNINGS = "{ earnings { balance { amount } totalEarned { amount } } }"


async def _start(stack: Stack, user: User, video: str) -> dict[str, Any]:
    body = await stack.gql.execute(START, {"v": video}, token=user.token)
    assert "errors" not in body, body
    session: dict[str, Any] = body["data"]["startPlayback"]
    return session


async def _heartbeat(stack: Stack, user: User, session: str, position: float) -> dict[str, Any]:
    return await stack.gql.execute(HEARTBEAT, {"s": session, "p": position}, token=user.token)


async def _earned(stack: Stack, user: User) -> int:
    body = await stack.gql.execute(EARNINGS, token=user.token)
    return int(body["data"]["earnings"]["balance"]["amount"])


async def _reason(stack: Stack, token: str, video: str) -> str:
    try:
        await stack.verifier().verify(token, video_id=video)
    except InvalidPlaybackToken as refused:
        return refused.reason
    return "VALID"


async def test_starting_a_priced_video_needs_a_minute_of_funds(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=250)
    body = await stack.gql.execute(START, {"v": video}, token=viewer.token)
    assert error_codes(body) == ["INSUFFICIENT_FUNDS"]
    await stack.deposit(viewer, 249)
    body = await stack.gql.execute(START, {"v": video}, token=viewer.token)
    assert error_codes(body) == ["INSUFFICIENT_FUNDS"]
    assert await stack.balance(viewer) == 249  # nothing half-charged
    await stack.deposit(viewer, 101)
    session = await _start(stack, viewer, video)
    assert session["chargedMinutes"] == 1
    assert session["pricePerMinute"] == {"amount": 250, "currency": "USD"}
    assert await stack.balance(viewer) == 100
    # 70/30: the creator's share lands in the same entry as the charge.
    assert await _earned(stack, owner) == 175


async def test_the_playback_token_grants_this_video_only(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 500)
    session = await _start(stack, viewer, video)
    grant = await stack.verifier().verify(session["playbackToken"], video_id=video)
    assert (grant.session_id, grant.viewer_id) == (session["id"], viewer.id)
    assert await _reason(stack, session["playbackToken"], str(uuid.uuid4())) == "WRONG_VIDEO"
    assert await _reason(stack, session["playbackToken"][:-4] + "AAAA", video) == "INVALID"


async def test_each_begun_minute_is_charged_once_by_the_wall_clock(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 1_000)
    began = time.monotonic()
    session = await _start(stack, viewer, video)
    started = time.monotonic()
    charged, expiries, position = session["chargedMinutes"], [session["expiresAt"]], 0.0
    # The player claims to have barely moved: the wall clock bills it all the same, since
    # every heartbeat extends the token.
    deadline = started + 45
    sent = started
    while sent - started < 3.0:
        assert time.monotonic() < deadline
        position += 0.01
        sent = time.monotonic()
        body = await _heartbeat(stack, viewer, session["id"], position)
        assert "errors" not in body, body
        charged = body["data"]["playbackHeartbeat"]["chargedMinutes"]
        # Never more than the minutes begun since the start.
        assert charged <= int(time.monotonic() - began) + 1
        expiries.append(body["data"]["playbackHeartbeat"]["expiresAt"])
        await asyncio.sleep(0.2)
    # The last heartbeat was sent 3 s or more after the start: four minutes had begun.
    assert charged >= 4
    assert expiries == sorted(expiries) and expiries[-1] > expiries[0]
    for _ in range(3):  # the same position again (a retry, or a pause) charges nothing more
        body = await _heartbeat(stack, viewer, session["id"], position)
        assert body["data"]["playbackHeartbeat"]["chargedMinutes"] == charged
        assert body["data"]["playbackHeartbeat"]["expiresAt"] == expiries[-1]
    assert await stack.balance(viewer) == 1_000 - 10 * charged
    assert await _earned(stack, owner) == 7 * charged
    await stack.gql.execute(END, {"s": session["id"]}, token=viewer.token)


async def test_a_paused_player_is_neither_charged_nor_extended_and_lapses(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 1_000)
    session = await _start(stack, viewer, video)
    token = session["playbackToken"]
    # Position 0 for ever (paused, or a client hoping to pay for minute 0 only): the session
    # and its token keep the expiry they started with, and lapse.
    deadline = time.monotonic() + 45
    while True:
        body = await _heartbeat(stack, viewer, session["id"], 0)
        if body.get("errors"):
            break
        beat = body["data"]["playbackHeartbeat"]
        assert (beat["chargedMinutes"], beat["expiresAt"]) == (1, session["expiresAt"])
        assert time.monotonic() < deadline, "the session never lapsed"
        await asyncio.sleep(0.3)
    assert error_codes(body) == ["SESSION_ENDED"]
    assert body["errors"][0]["extensions"]["reason"] == "EXPIRED"
    assert await _reason(stack, token, video) == "EXPIRED"
    # The token granted five seconds: five minutes, all paid.
    state = await stack.gql.execute(SESSION, {"s": session["id"]}, token=viewer.token)
    assert state["data"]["playbackSession"]["chargedMinutes"] == 5
    assert await stack.balance(viewer) == 1_000 - 50


async def test_running_out_of_funds_ends_the_session(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=40)
    await stack.deposit(viewer, 100)
    session = await _start(stack, viewer, video)
    deadline = time.monotonic() + 45
    position = 0.0
    while time.monotonic() < deadline:
        position += 1
        body = await _heartbeat(stack, viewer, session["id"], position)
        if body.get("errors"):
            break
        await asyncio.sleep(0.2)
    assert error_codes(body) == ["INSUFFICIENT_FUNDS"]
    assert body["errors"][0]["extensions"]["chargedMinutes"] == 2
    assert await stack.balance(viewer) == 20  # never below zero, never a partial minute
    state = await stack.gql.execute(SESSION, {"s": session["id"]}, token=viewer.token)
    ended = state["data"]["playbackSession"]
    assert (ended["status"], ended["endReason"], ended["playbackToken"]) == (
        "ENDED",
        "INSUFFICIENT_FUNDS",
        None,
    )
    again = await _heartbeat(stack, viewer, session["id"], 1_000)
    assert error_codes(again) == ["SESSION_ENDED"]
    assert again["errors"][0]["extensions"]["reason"] == "INSUFFICIENT_FUNDS"


async def test_a_session_without_heartbeats_expires_and_its_token_with_it(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 100)
    session = await _start(stack, viewer, video)
    assert await _reason(stack, session["playbackToken"], video) == "VALID"
    deadline = time.monotonic() + 45
    status = "ACTIVE"
    while status == "ACTIVE" and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        state = await stack.gql.execute(SESSION, {"s": session["id"]}, token=viewer.token)
        status = state["data"]["playbackSession"]["status"]
    assert status == "EXPIRED"
    # Billing ends it on its own and says so, without waiting for a late heartbeat.
    group = f"test-{uuid.uuid4().hex}"
    ended: list[dict[str, Any]] = []
    while not ended and time.monotonic() < deadline:
        for message in await stack.bus.claim(
            "billing.playback.ended", group, "t", count=100, block=0.5
        ):
            if message.payload["sessionId"] == session["id"]:
                ended.append(message.payload)
    # The token granted the TTL (five seconds): five minutes, charged as the session ended.
    assert [(e["reason"], e["chargedMinutes"]) for e in ended] == [("EXPIRED", 5)]
    while await _reason(stack, session["playbackToken"], video) == "VALID":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert await _reason(stack, session["playbackToken"], video) == "EXPIRED"
    late = await _heartbeat(stack, viewer, session["id"], 10)
    assert error_codes(late) == ["SESSION_ENDED"]
    assert late["errors"][0]["extensions"]["reason"] == "EXPIRED"
    assert await stack.balance(viewer) == 50  # the late heartbeat charged nothing more


async def test_ending_a_session_stops_charging(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 100)
    began = time.monotonic()
    session = await _start(stack, viewer, video)
    minutes = []
    for _ in range(2):  # ending twice is harmless
        body = await stack.gql.execute(END, {"s": session["id"]}, token=viewer.token)
        ended = body["data"]["endPlayback"]
        assert (ended["status"], ended["endReason"], ended["playbackToken"]) == (
            "ENDED",
            "ENDED_BY_VIEWER",
            None,
        )
        minutes.append(ended["chargedMinutes"])
    # Ending charges the minutes begun until then (one, unless the machine is slow), once.
    assert minutes[0] == minutes[1] and 1 <= minutes[0] <= int(time.monotonic() - began) + 1
    await asyncio.sleep(1.5)
    body = await _heartbeat(stack, viewer, session["id"], 100)
    assert error_codes(body) == ["SESSION_ENDED"]
    assert await stack.balance(viewer) == 100 - 10 * minutes[0]


async def test_free_videos_and_owners_are_never_charged(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    free = await stack.video(owner)
    priced = await stack.video(owner, price=50)
    session = await _start(stack, viewer, free)
    assert session["chargedMinutes"] == 0 and session["playbackToken"]
    own = await _start(stack, owner, priced)
    assert own["pricePerMinute"]["amount"] == 0
    await asyncio.sleep(1.2)
    for user, playback in ((viewer, session), (owner, own)):
        body = await _heartbeat(stack, user, playback["id"], 100)
        assert body["data"]["playbackHeartbeat"]["chargedMinutes"] == 0
    assert await stack.balance(viewer) == 0 and await stack.balance(owner) == 0


async def test_charges_are_published(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=33)
    await stack.deposit(viewer, 100)
    session = await _start(stack, viewer, video)
    await stack.gql.execute(END, {"s": session["id"]}, token=viewer.token)
    group = f"test-{uuid.uuid4().hex}"
    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        for message in await stack.bus.claim("billing.charged", group, "t", count=100, block=0.5):
            payload = message.payload
            if payload["sessionId"] == session["id"] and payload["minuteIndex"] == 0:
                found.append(payload)
    (charged,) = found
    assert {k: charged[k] for k in charged if k not in ("chargeId", "chargedAt")} == {
        "sessionId": session["id"],
        "minuteIndex": 0,
        "viewerId": viewer.id,
        "videoId": video,
        "creatorId": owner.id,
        "amount": 33,
        "creatorShare": 23,  # 70% rounded down; the platform keeps the remainder
        "platformShare": 10,
        "currency": "USD",
    }


async def test_nobody_touches_another_users_session(stack: Stack) -> None:
    owner, viewer, mallory = await stack.register(), await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 100)
    await stack.deposit(mallory, 100)
    session = await _start(stack, viewer, video)
    for query, variables in (
        (SESSION, {"s": session["id"]}),
        (HEARTBEAT, {"s": session["id"], "p": 100}),
        (END, {"s": session["id"]}),
    ):
        body = await stack.gql.execute(query, variables, token=mallory.token)
        assert error_codes(body) == ["NOT_FOUND"], body
        assert error_codes(await stack.gql.execute(query, variables)) == ["UNAUTHENTICATED"]
    state = await stack.gql.execute(SESSION, {"s": session["id"]}, token=viewer.token)
    assert state["data"]["playbackSession"]["status"] == "ACTIVE"
    assert await stack.balance(mallory) == 100 and await stack.balance(viewer) == 90


async def test_bad_playback_input_is_refused(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner)
    session = await _start(stack, viewer, video)
    for variables in (
        {"s": session["id"], "p": -1},
        {"s": session["id"], "p": 1e12},
        {"s": "not-a-session", "p": 1},
        {"s": session["id"], "p": "soon"},
    ):
        body = await stack.gql.execute(HEARTBEAT, variables, token=viewer.token)
        assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)
    for video_id, code in (("nope", "BAD_USER_INPUT"), (str(uuid.uuid4()), "NOT_FOUND")):
        body = await stack.gql.execute(START, {"v": video_id}, token=viewer.token)
        assert error_codes(body) == [code]
    unknown = await stack.gql.execute(SESSION, {"s": str(uuid.uuid4())}, token=viewer.token)
    assert error_codes(unknown) == ["NOT_FOUND"]
