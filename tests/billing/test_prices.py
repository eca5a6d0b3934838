"""Prices and access, driven by video's events on the real bus: only the owner billing learned
from those events may price a video; unknown and deleted videos have no price to set."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.billing.conftest import SET_PRICE, START, Stack
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
    owner, viewer = await stack.register(), await stack.register()
    video = await stack.publish_video(owner, ready=False)
    await stack.wait_access(video, viewer.token, "NOT_READY")
    body = await stack.gql.execute(START, {"v": video}, token=viewer.token)
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["reason"] == "VIDEO_NOT_READY"


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
