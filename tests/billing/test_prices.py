"""Prices and access, driven by video's events on the real bus: only the owner billing learned
from those events may price a video; unknown and deleted videos have no price to set; a video
someone may not see (private, unfinished) answers them exactly like a missing one; a price
change ends the running sessions it reprices."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.billing.conftest import HEARTBEAT, SESSION, SET_PRICE, START, Stack
from tests.support.processes import error_codes


async def _set_price(stack: Stack, token: str, video_id: str, price: object) -> dict[str, object]:
    return await stack.gql.execute(SET_PRICE, {"v": video_id, "p": price}, token=token)


async def test_the_owner_prices_a_video_and_access_follows(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner)
    assert (await stack.entity(video))["price"] == {"pricePerMinute": 0, "currency": "USD"}
    assert (await stack.entity(video, viewer.token))["access"] == {
        "canWatch": True,
        "reason": "FREE",
    }

    body = await _set_price(stack, owner.token, video, 25)
    assert body["data"] == {
        "setVideoPrice": {"id": video, "price": {"pricePerMinute": 25, "currency": "USD"}}
    }
    entity = await stack.entity(video, viewer.token)
    assert entity["price"] == {"pricePerMinute": 25, "currency": "USD"}
    assert entity["access"] == {"canWatch": False, "reason": "INSUFFICIENT_FUNDS"}
    assert (await stack.entity(video))["access"]["reason"] == "SIGN_IN_REQUIRED"
    assert (await stack.entity(video, owner.token))["access"] == {
        "canWatch": True,
        "reason": "OWNER",
    }
    await stack.deposit(viewer, 100)
    assert (await stack.entity(video, viewer.token))["access"] == {
        "canWatch": True,
        "reason": "FUNDS_AVAILABLE",
    }
    # Back to free.
    await _set_price(stack, owner.token, video, 0)
    assert (await stack.entity(video, viewer.token))["access"]["reason"] == "FREE"


async def test_only_the_owner_sets_a_price(stack: Stack) -> None:
    owner, other = await stack.register(), await stack.register()
    video = await stack.video(owner)
    assert error_codes(await _set_price(stack, other.token, video, 10)) == ["FORBIDDEN"]
    admin = await stack.admin()
    assert error_codes(await _set_price(stack, admin.token, video, 10)) == ["FORBIDDEN"]
    assert error_codes(await stack.gql.execute(SET_PRICE, {"v": video, "p": 10})) == [
        "UNAUTHENTICATED"
    ]
    assert (await stack.entity(video))["price"]["pricePerMinute"] == 0


async def test_bad_prices_are_refused(stack: Stack) -> None:
    owner = await stack.register()
    video = await stack.video(owner)
    for price in (-1, 100_001, 2.5, "ten"):
        body = await _set_price(stack, owner.token, video, price)
        assert error_codes(body) == ["BAD_USER_INPUT"], (price, body)
    assert error_codes(await _set_price(stack, owner.token, "not-an-id", 10)) == ["BAD_USER_INPUT"]
    body = await stack.gql.execute(
        "mutation M($v: ID!) { setVideoPrice(videoId: $v, pricePerMinute: 10, currency: GBP) "
        "{ id } }".replace("GBP", '"GBP"'),
        {"v": video},
        token=owner.token,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert (await stack.entity(video))["price"]["pricePerMinute"] == 0


async def test_a_video_billing_has_not_heard_of_is_not_found(stack: Stack) -> None:
    owner = await stack.register()
    video = str(uuid.uuid4())
    assert error_codes(await _set_price(stack, owner.token, video, 10)) == ["NOT_FOUND"]
    assert (await stack.entity(video, owner.token))["access"] == {
        "canWatch": False,
        "reason": "UNAVAILABLE",
    }
    # Once video announces it, its owner may price it.
    await stack.publish_video(owner, video_id=video)
    await stack.wait_access(video, owner.token, "OWNER")
    assert "errors" not in await _set_price(stack, owner.token, video, 10)


async def test_events_in_any_order_build_the_same_projection(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = str(uuid.uuid4())
    # `video.ready` overtakes `video.created` (separate streams); a stale `video.updated`
    # saying PROCESSING arrives last and must not undo READY.
    await stack.bus.publish(
        "video.ready",
        {
            "videoId": video,
            "ownerId": owner.id,
            "title": "t",
            "visibility": "PUBLIC",
            "durationSeconds": 3.0,
            "publishedAt": "2026-01-01T00:00:00+00:00",
        },
    )
    await stack.wait_access(video, viewer.token, "FREE")
    await stack.bus.publish(
        "video.updated",
        {
            "videoId": video,
            "ownerId": owner.id,
            "title": "t",
            "visibility": "PUBLIC",
            "status": "PROCESSING",
        },
    )
    await stack.bus.publish(
        "video.created",
        {
            "videoId": video,
            "ownerId": owner.id,
            "title": "t",
            "visibility": "PUBLIC",
            "status": "UPLOADING",
            "createdAt": "2026-01-01T00:00:00+00:00",
        },
    )
    # A visibility change is applied: the owner makes it private.
    await stack.bus.publish(
        "video.updated",
        {
            "videoId": video,
            "ownerId": owner.id,
            "title": "t",
            "visibility": "PRIVATE",
            "status": "READY",
        },
    )
    await stack.wait_access(video, viewer.token, "UNAVAILABLE")
    assert (await stack.entity(video, owner.token))["access"]["reason"] == "OWNER"
    body = await stack.gql.execute(START, {"v": video}, token=viewer.token)
    assert error_codes(body) == ["NOT_FOUND"]


async def test_a_video_still_processing_cannot_be_played(stack: Stack) -> None:
    owner, viewer, admin = await stack.register(), await stack.register(), await stack.admin()
    video = await stack.publish_video(owner, ready=False)
    # Those who may see an unfinished video hear that it is one.
    await stack.wait_access(video, owner.token, "NOT_READY")
    for who in (owner, admin):
        assert (await stack.entity(video, who.token))["access"]["reason"] == "NOT_READY"
        body = await stack.gql.execute(START, {"v": video}, token=who.token)
        assert error_codes(body) == ["CONFLICT"]
        assert body["errors"][0]["extensions"]["reason"] == "VIDEO_NOT_READY"
    # Anyone else: exactly as if there were no such video.
    await _answers_like_a_missing_video(stack, video, viewer.token)


async def _answers_like_a_missing_video(stack: Stack, video: str, token: str) -> None:
    """Every billing answer about `video` to `token` (and to nobody) is a missing video's."""

    async def answers(video_id: str) -> list[Any]:
        return [
            {k: v for k, v in (await stack.entity(video_id, token)).items() if k != "id"},
            {k: v for k, v in (await stack.entity(video_id)).items() if k != "id"},
            (await _set_price(stack, token, video_id, 10))["errors"],
            (await stack.gql.execute(START, {"v": video_id}, token=token))["errors"],
        ]

    hidden, missing = await answers(video), await answers(str(uuid.uuid4()))
    assert hidden == missing
    assert hidden[0] == {
        "price": {"pricePerMinute": 0, "currency": "USD"},
        "access": {"canWatch": False, "reason": "UNAVAILABLE"},
    }
    assert [e["extensions"]["code"] for e in hidden[2] + hidden[3]] == ["NOT_FOUND", "NOT_FOUND"]


async def test_a_private_or_unfinished_video_looks_missing_to_everyone_else(stack: Stack) -> None:
    owner, other, admin = await stack.register(), await stack.register(), await stack.admin()
    private = await stack.video(owner, visibility="PRIVATE")
    unfinished = await stack.publish_video(owner, visibility="UNLISTED", ready=False)
    await stack.wait_access(unfinished, owner.token, "NOT_READY")
    for video in (private, unfinished):
        # Its owner prices it; nobody else can tell, not even from the price.
        assert "errors" not in await _set_price(stack, owner.token, video, 10)
        await _answers_like_a_missing_video(stack, video, other.token)
        # Admins see every video: they hear that only its owner may price it, and the price.
        assert error_codes(await _set_price(stack, admin.token, video, 10)) == ["FORBIDDEN"]
        assert (await stack.entity(video, admin.token))["price"]["pricePerMinute"] == 10
        assert (await stack.entity(video, owner.token))["price"]["pricePerMinute"] == 10
    assert (await stack.entity(private, owner.token))["access"]["reason"] == "OWNER"


async def _state(stack: Stack, token: str, session_id: str) -> dict[str, Any]:
    body = await stack.gql.execute(SESSION, {"s": session_id}, token=token)
    assert "errors" not in body, body
    state: dict[str, Any] = body["data"]["playbackSession"]
    return state


async def test_a_price_change_ends_the_sessions_it_reprices(stack: Stack) -> None:
    owner, viewer, payer = await stack.register(), await stack.register(), await stack.register()
    video = await stack.video(owner)
    await stack.deposit(payer, 1_000)
    free = (await stack.gql.execute(START, {"v": video}, token=viewer.token))["data"][
        "startPlayback"
    ]
    own = (await stack.gql.execute(START, {"v": video}, token=owner.token))["data"]["startPlayback"]
    assert free["pricePerMinute"]["amount"] == 0
    assert "errors" not in await _set_price(stack, owner.token, video, 10)
    # The session started free would otherwise stream the priced video for nothing.
    state = await _state(stack, viewer.token, free["id"])
    assert (state["status"], state["endReason"], state["playbackToken"]) == (
        "ENDED",
        "PRICE_CHANGED",
        None,
    )
    beat = await stack.gql.execute(HEARTBEAT, {"s": free["id"], "p": 5}, token=viewer.token)
    assert error_codes(beat) == ["SESSION_ENDED"]
    assert beat["errors"][0]["extensions"]["reason"] == "PRICE_CHANGED"
    assert (await _state(stack, owner.token, own["id"]))["status"] == "ACTIVE"
    # Video hears of it on the bus, and revokes the session's tokens.
    group = f"test-{uuid.uuid4().hex}"
    deadline = time.monotonic() + 30
    ended: list[dict[str, Any]] = []
    while not ended and time.monotonic() < deadline:
        for message in await stack.bus.claim(
            "billing.playback.ended", group, "t", count=100, block=0.5
        ):
            if message.payload["sessionId"] == free["id"]:
                ended.append(message.payload)
    assert [(e["reason"], e["videoId"]) for e in ended] == [("PRICE_CHANGED", video)]

    # A session at the new price survives the same price set again, not another one.
    paid = (await stack.gql.execute(START, {"v": video}, token=payer.token))["data"][
        "startPlayback"
    ]
    assert paid["pricePerMinute"]["amount"] == 10
    assert "errors" not in await _set_price(stack, owner.token, video, 10)
    assert (await _state(stack, payer.token, paid["id"]))["status"] == "ACTIVE"
    assert "errors" not in await _set_price(stack, owner.token, video, 30)
    state = await _state(stack, payer.token, paid["id"])
    assert (state["status"], state["endReason"]) == ("ENDED", "PRICE_CHANGED")
    again = (await stack.gql.execute(START, {"v": video}, token=payer.token))["data"][
        "startPlayback"
    ]
    assert again["pricePerMinute"]["amount"] == 30
    await stack.gql.execute(
        "mutation E($s: ID!) { endPlayback(sessionId: $s) { id } }",
        {"s": again["id"]},
        token=payer.token,
    )


async def test_deleting_a_video_removes_its_price_and_ends_its_sessions(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.video(owner, price=10)
    await stack.deposit(viewer, 1_000)
    session = (await stack.gql.execute(START, {"v": video}, token=viewer.token))["data"][
        "startPlayback"
    ]
    assert session["status"] == "ACTIVE"
    await stack.bus.publish("video.deleted", {"videoId": video, "ownerId": owner.id})
    await stack.wait_access(video, owner.token, "UNAVAILABLE")
    assert (await stack.entity(video))["price"]["pricePerMinute"] == 0
    assert error_codes(await _set_price(stack, owner.token, video, 10)) == ["NOT_FOUND"]
    deadline = time.monotonic() + 30
    while True:
        state = await stack.gql.execute(
            "query Q($s: ID!) { playbackSession(id: $s) { status endReason playbackToken } }",
            {"s": session["id"]},
            token=viewer.token,
        )
        if state["data"]["playbackSession"]["status"] == "ENDED" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert state["data"]["playbackSession"] == {
        "status": "ENDED",
        "endReason": "VIDEO_DELETED",
        "playbackToken": None,
    }
    # A late event cannot bring it back. Each topic is consumed in order, so once a later
    # video on the same topics is known, the late events have been handled.
    await stack.publish_video(owner, video_id=video)
    await stack.video(owner)
    assert (await stack.entity(video, owner.token))["access"]["reason"] == "UNAVAILABLE"


async def test_malformed_video_events_are_skipped_not_fatal(stack: Stack) -> None:
    owner = await stack.register()
    await stack.bus.publish("video.created", {"videoId": "nope", "ownerId": None})
    await stack.bus.publish("video.ready", {"unexpected": True})
    # Later, well-formed events are still applied.
    video = await stack.video(owner)
    assert (await stack.entity(video, owner.token))["access"]["reason"] == "OWNER"
