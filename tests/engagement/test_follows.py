"""Follows with exact counts, and the notifications a followed creator's new public video or
live start creates: listed, marked read, and pushed to a subscriber through the bus."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.engagement.stack import Account, Stack, eventually
from tests.support.ws import subscribe

FOLLOW = "mutation F($u: ID!) { follow(userId: $u) { id followerCount viewerFollows } }"
UNFOLLOW = "mutation U($u: ID!) { unfollow(userId: $u) { id followerCount viewerFollows } }"
USER = """
query U($u: ID!) {
  _entities(representations: [{__typename: "User", id: $u}]) {
    ... on User {
      followerCount followingCount viewerFollows
      following(first: 10) { totalCount edges { node { id } } }
    }
  }
}
"""
NOTIFICATIONS = """
query N($first: Int, $after: String) {
  notifications(first: $first, after: $after) {
    unreadCount
    edges { cursor node { id kind title read actor { id } video { id } stream { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MARK = "mutation M($ids: [ID!]) { markNotificationsRead(ids: $ids) }"
ADDED = "subscription { notificationAdded { id kind title actor { id } video { id } read } }"


async def user(stack: Stack, who: Account, as_: Account | None = None) -> dict[str, Any]:
    body = await stack.execute(USER, {"u": who.id}, as_=as_)
    entity: dict[str, Any] = body["data"]["_entities"][0]
    return entity


async def notifications(stack: Stack, who: Account, **variables: Any) -> dict[str, Any]:
    data = await stack.ok(NOTIFICATIONS, variables, as_=who)
    result: dict[str, Any] = data["notifications"]
    return result


async def ready(
    stack: Stack, owner: Account, visibility: str = "PUBLIC", video_id: str | None = None
) -> str:
    video_id = video_id or str(uuid.uuid4())
    await stack.publish(
        "video.ready",
        {
            "videoId": video_id,
            "ownerId": owner.id,
            "title": f"Video {video_id[:4]}",
            "visibility": visibility,
            "durationSeconds": 30.0,
            "publishedAt": datetime.now(UTC).isoformat(),
        },
    )
    return video_id


async def test_follow_and_unfollow(stack: Stack) -> None:
    creator, fan = await stack.account(), await stack.account()
    await stack.known(creator, by=fan)

    followed = (await stack.ok(FOLLOW, {"u": creator.id}, as_=fan))["follow"]
    assert followed == {"id": creator.id, "followerCount": 1, "viewerFollows": True}
    again = (await stack.ok(FOLLOW, {"u": creator.id}, as_=fan))["follow"]
    assert again["followerCount"] == 1  # following twice is following once
    seen = await user(stack, fan, as_=fan)
    assert seen["followingCount"] == 1
    assert seen["following"] == {"totalCount": 1, "edges": [{"node": {"id": creator.id}}]}
    anonymous = await user(stack, creator)
    assert (anonymous["followerCount"], anonymous["viewerFollows"]) == (1, False)

    unfollowed = (await stack.ok(UNFOLLOW, {"u": creator.id}, as_=fan))["unfollow"]
    assert unfollowed == {"id": creator.id, "followerCount": 0, "viewerFollows": False}
    assert (await stack.ok(UNFOLLOW, {"u": creator.id}, as_=fan))["unfollow"]["followerCount"] == 0
    assert (await user(stack, fan, as_=fan))["followingCount"] == 0


async def test_fifty_followers_at_once_count_fifty(stack: Stack) -> None:
    creator, first = await stack.account(), await stack.account()
    await stack.known(creator, by=first)
    fans = await asyncio.gather(*(stack.account() for _ in range(50)))
    await asyncio.gather(*(stack.ok(FOLLOW, {"u": creator.id}, as_=f) for f in fans * 2))
    assert (await user(stack, creator))["followerCount"] == 50
    await asyncio.gather(*(stack.ok(UNFOLLOW, {"u": creator.id}, as_=f) for f in fans[:20]))
    assert (await user(stack, creator))["followerCount"] == 30


async def test_people_following_each_other_at_once_neither_deadlock_nor_miscount(
    stack: Stack,
) -> None:
    pairs = [(await stack.account(), await stack.account()) for _ in range(10)]
    for a, b in pairs:
        await stack.known(a, by=b)
        await stack.known(b, by=a)
    # Each pair follows each other at the same moment, in both directions at once.
    await asyncio.gather(
        *(stack.ok(FOLLOW, {"u": b.id}, as_=a) for a, b in pairs),
        *(stack.ok(FOLLOW, {"u": a.id}, as_=b) for a, b in pairs),
    )
    for a, b in pairs:
        for person in (a, b):
            counts = await user(stack, person, as_=person)
            assert counts["followerCount"] == 1
            assert counts["followingCount"] == 1
    await asyncio.gather(
        *(stack.ok(UNFOLLOW, {"u": b.id}, as_=a) for a, b in pairs),
        *(stack.ok(UNFOLLOW, {"u": a.id}, as_=b) for a, b in pairs),
    )
    for a, _ in pairs:
        counts = await user(stack, a, as_=a)
        assert (counts["followerCount"], counts["followingCount"]) == (0, 0)


async def test_follow_input_and_privacy(stack: Stack) -> None:
    creator, fan, other = await stack.account(), await stack.account(), await stack.account()
    admin = await stack.admin()
    await stack.known(creator, by=fan)
    await stack.ok(FOLLOW, {"u": creator.id}, as_=fan)

    assert await stack.fails(FOLLOW, {"u": creator.id}) == "UNAUTHENTICATED"
    assert await stack.fails(FOLLOW, {"u": fan.id}, as_=fan) == "BAD_USER_INPUT"
    assert await stack.fails(FOLLOW, {"u": "nobody"}, as_=fan) == "BAD_USER_INPUT"
    assert await stack.fails(FOLLOW, {"u": str(uuid.uuid4())}, as_=fan) == "NOT_FOUND"
    assert await stack.fails(UNFOLLOW, {"u": creator.id}) == "UNAUTHENTICATED"
    assert await stack.fails(UNFOLLOW, {"u": "nobody"}, as_=fan) == "BAD_USER_INPUT"
    # Whom someone follows is theirs (and admins') to see.
    body = await stack.execute(USER, {"u": fan.id}, as_=other)
    assert body["data"]["_entities"][0]["following"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    by_admin = await user(stack, fan, as_=admin)
    assert by_admin["following"]["totalCount"] == 1


async def test_a_followed_creators_new_public_video_and_live_start_notify(stack: Stack) -> None:
    creator, fan, stranger = await stack.account(), await stack.account(), await stack.account()
    await stack.known(creator, by=fan)
    await stack.ok(FOLLOW, {"u": creator.id}, as_=fan)

    private = await ready(stack, creator, "PRIVATE")
    video = await ready(stack, creator)
    found = await eventually(
        lambda: notifications(stack, fan),
        lambda n: len(n["edges"]) == 1,
        what="a NEW_VIDEO notification",
    )
    node = found["edges"][0]["node"]
    assert node["kind"] == "NEW_VIDEO" and node["video"] == {"id": video} and node["stream"] is None
    assert node["actor"] == {"id": creator.id} and node["read"] is False
    assert node["title"] == f"Video {video[:4]}" and found["unreadCount"] == 1

    # The same event again (a redelivery) notifies nobody twice; the private video, once
    # made public, does notify.
    await ready(stack, creator, video_id=video)
    await stack.publish(
        "video.updated",
        {
            "videoId": private,
            "ownerId": creator.id,
            "title": "now public",
            "visibility": "PUBLIC",
            "status": "READY",
        },
    )
    stream = str(uuid.uuid4())
    await stack.publish(
        "video.stream.created", {"streamId": stream, "ownerId": creator.id, "title": "Live"}
    )
    live = {
        "streamId": stream,
        "ownerId": creator.id,
        "title": "Live",
        "startedAt": "2030-01-01T00:00:00+00:00",
    }
    await stack.publish("video.stream.live", live)
    await stack.publish("video.stream.live", live)
    found = await eventually(
        lambda: notifications(stack, fan),
        lambda n: len(n["edges"]) >= 3,
        what="three notifications",
    )
    kinds = [
        (e["node"]["kind"], (e["node"]["video"] or e["node"]["stream"])["id"])
        for e in found["edges"]
    ]
    assert sorted(kinds) == sorted(
        [("NEW_VIDEO", video), ("NEW_VIDEO", private), ("LIVE_STARTED", stream)]
    )
    assert (await notifications(stack, stranger))["edges"] == []

    # Marking read: only one's own, listed or all.
    ids = [e["node"]["id"] for e in found["edges"]]
    assert (await stack.ok(MARK, {"ids": ids[:1]}, as_=stranger))["markNotificationsRead"] == 0
    assert (await stack.ok(MARK, {"ids": ids[:1]}, as_=fan))["markNotificationsRead"] == 1
    assert (await notifications(stack, fan))["unreadCount"] == 2
    assert (await stack.ok(MARK, {}, as_=fan))["markNotificationsRead"] == 2
    after = await notifications(stack, fan)
    assert after["unreadCount"] == 0 and all(e["node"]["read"] for e in after["edges"])
    page = await notifications(stack, fan, first=2)
    rest = await notifications(stack, fan, first=2, after=page["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in page["edges"] + rest["edges"]] == ids
    assert await stack.fails(MARK, {"ids": ["abc"]}, as_=fan) == "BAD_USER_INPUT"
    assert await stack.fails(MARK, {}) == "UNAUTHENTICATED"
    assert await stack.fails(NOTIFICATIONS, {}) == "UNAUTHENTICATED"
    assert await stack.fails(NOTIFICATIONS, {"after": "bogus"}, as_=fan) == "BAD_USER_INPUT"


async def test_notifications_reach_a_subscriber_once(stack: Stack) -> None:
    creator, fan = await stack.account(), await stack.account()
    await stack.known(creator, by=fan)
    await stack.ok(FOLLOW, {"u": creator.id}, as_=fan)

    async with subscribe(stack.gql.url, ADDED, token=fan.token) as subscription:
        # The subscription has no "ready" signal: announce videos until one arrives.
        first = None
        for _ in range(60):
            await ready(stack, creator)
            try:
                first = await subscription.next(timeout=1)
                break
            except TimeoutError:
                continue
        assert first is not None and "errors" not in first, first
        assert first["data"]["notificationAdded"]["kind"] == "NEW_VIDEO"
        # Drain probes that were still on their way, then one announced twice arrives once.
        while True:
            try:
                await subscription.next(timeout=2)
            except TimeoutError:
                break
        video = await ready(stack, creator)
        await ready(stack, creator, video_id=video)
        closing = await ready(stack, creator)
        received = [(await subscription.next())["data"]["notificationAdded"] for _ in range(2)]
        assert [n["video"]["id"] for n in received] == [video, closing]
        assert received[0]["actor"] == {"id": creator.id} and received[0]["read"] is False


async def test_notification_subscription_needs_a_signed_in_user(stack: Stack) -> None:
    async with subscribe(stack.gql.url, ADDED) as subscription:
        message = await subscription.message()
    assert message["type"] in ("next", "error"), message
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
