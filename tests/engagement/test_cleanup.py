"""Cleanup on other services' deletions: a deleted account's engagement is deleted or
anonymised (counters stay exact), a deleted video's and stream's engagement is deleted, and
the consumers are idempotent (a redelivered event changes nothing more)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String, Text, TypeDecorator, cast, func, or_, select

from subgraphs.engagement.models import metadata
from subgraphs.kernel.db import Database
from tests.engagement.stack import Account, Stack, eventually
from tests.engagement.test_chat import HISTORY, SEND
from tests.engagement.test_comments import ADD, COMMENTS
from tests.engagement.test_follows import FOLLOW, NOTIFICATIONS, ready
from tests.engagement.test_library import LIBRARY, PROGRESS, SAVE
from tests.engagement.test_reactions import REACT

COUNTS = """
query C($v: ID!, $o: ID!) {
  _entities(representations: [{__typename: "Video", id: $v}, {__typename: "User", id: $o}]) {
    ... on Video { likeCount dislikeCount commentCount viewCount }
    ... on User { followerCount followingCount }
  }
}
"""
ANALYTICS = "query A($v: ID!) { videoAnalytics(videoId: $v) { views uniqueViewers } }"
DELETE_ACCOUNT = 'mutation D { deleteAccount(password: "correct horse battery") }'


def _textual(kind: Any) -> bool:
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return isinstance(kind, String)


async def rows_naming(stack: Stack, text: str) -> dict[str, int]:
    """Rows of every engagement table (but the outbox and inbox) that mention `text`."""
    db = Database(stack.env.settings().database_url_for("engagement"))
    found: dict[str, int] = {}
    try:
        async with db.transaction() as session:
            for table in metadata.sorted_tables:
                if table.name in ("outbox", "inbox"):
                    continue
                columns = [c for c in table.columns if _textual(c.type)]
                if not columns:
                    continue
                condition = or_(*(cast(c, Text).contains(text) for c in columns))
                count = (
                    await session.execute(select(func.count()).select_from(table).where(condition))
                ).scalar_one()
                if count:
                    found[table.name] = int(count)
    finally:
        await db.dispose()
    return found


async def counts(stack: Stack, video: str, owner: Account, as_: Account) -> dict[str, Any]:
    video_counts, user_counts = (await stack.ok(COUNTS, {"v": video, "o": owner.id}, as_=as_))[
        "_entities"
    ]
    return {**video_counts, **user_counts}


async def test_a_deleted_account_leaves_no_trace_and_counters_stay_exact(stack: Stack) -> None:
    owner, leaver, friend = await stack.account(), await stack.account(), await stack.account()
    video = await stack.video(owner, duration=2.0)
    stream = await stack.stream(owner)
    await stack.known(owner, by=leaver)
    await stack.known(leaver, by=friend)

    await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=leaver)
    await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=friend)
    thread = (await stack.ok(ADD, {"v": video, "b": "mine", "p": None}, as_=leaver))["addComment"]
    await stack.ok(ADD, {"v": video, "b": "a reply", "p": thread["id"]}, as_=friend)
    await stack.ok(ADD, {"v": video, "b": "my reply", "p": thread["id"]}, as_=leaver)
    await stack.ok(FOLLOW, {"u": owner.id}, as_=leaver)
    await stack.ok(FOLLOW, {"u": leaver.id}, as_=friend)
    await stack.ok(PROGRESS, {"v": video, "p": 0}, as_=leaver)
    await stack.ok(SAVE["WATCH_LATER"][0], {"v": video}, as_=leaver)
    await stack.ok(SAVE["FAVORITES"][0], {"v": video}, as_=leaver)
    await stack.ok(SEND, {"s": stream, "b": "bye all"}, as_=leaver)
    await ready(stack, owner)  # a notification for the leaver
    await eventually(
        lambda: stack.ok(NOTIFICATIONS, {}, as_=leaver),
        lambda d: len(d["notifications"]["edges"]) == 1,
        what="the leaver's notification",
    )
    before = await counts(stack, video, owner, owner)
    assert (before["likeCount"], before["commentCount"], before["followerCount"]) == (2, 3, 1)
    assert await rows_naming(stack, leaver.id)

    body = await stack.auth.execute(DELETE_ACCOUNT, token=leaver.token)
    assert body == {"data": {"deleteAccount": True}}, body
    await eventually(
        lambda: rows_naming(stack, leaver.id),
        lambda found: set(found) <= {"users"},  # only the tombstone that refuses its token
        what="every row naming the deleted user gone",
    )
    after = await counts(stack, video, owner, owner)
    assert (after["likeCount"], after["commentCount"], after["followerCount"]) == (1, 1, 0)
    # The thread stays readable: the leaver's comment is deleted, the friend's reply stays.
    listed = (await stack.ok(COMMENTS, {"v": video}))["_entities"][0]["comments"]["edges"]
    (node,) = [e["node"] for e in listed]
    assert node["deleted"] is True and node["author"] is None
    assert [r["node"]["body"] for r in node["replies"]["edges"]] == ["a reply"]
    assert (await stack.ok(HISTORY, {"s": stream, "n": 10}))["chatMessages"] == []
    friend_counts = (await stack.ok(COUNTS, {"v": video, "o": friend.id}))["_entities"][1]
    assert friend_counts["followingCount"] == 0
    # The account's token, still unexpired, no longer writes anything here.
    assert await stack.fails(REACT, {"v": video, "r": "LIKE"}, as_=leaver) == "UNAUTHENTICATED"

    # A redelivery of the deletion changes nothing more, and a late registration event
    # does not bring the account back. Markers on the same topics, consumed in order after
    # them, tell when they were handled.
    await stack.publish("auth.user.deleted", {"userId": leaver.id})
    await stack.publish("auth.user.registered", {"userId": leaver.id, "role": "VIEWER"})
    marker = await stack.account()
    await stack.known(marker, by=owner)
    await stack.ok(FOLLOW, {"u": owner.id}, as_=marker)
    await stack.auth.execute(DELETE_ACCOUNT, token=marker.token)
    await eventually(
        lambda: counts(stack, video, owner, owner),
        lambda now: now["followerCount"] == 0,
        what="the marker's deletion handled",
    )
    assert await counts(stack, video, owner, owner) == after
    assert set(await rows_naming(stack, leaver.id)) <= {"users"}
    assert await stack.fails(REACT, {"v": video, "r": "LIKE"}, as_=leaver) == "UNAUTHENTICATED"


async def test_views_of_a_deleted_account_stay_counted_but_anonymous(stack: Stack) -> None:
    owner, leaver = await stack.account(), await stack.account()
    video = await stack.video(owner, duration=2.0)
    from tests.engagement.test_views import watch_until_viewed

    await watch_until_viewed(stack, video, owner, who=leaver)
    await stack.auth.execute(DELETE_ACCOUNT, token=leaver.token)
    await eventually(
        lambda: rows_naming(stack, leaver.id),
        lambda found: set(found) <= {"users"},
        what="the viewer anonymised",
    )
    analytics = (await stack.ok(ANALYTICS, {"v": video}, as_=owner))["videoAnalytics"]
    assert (analytics["views"], analytics["uniqueViewers"]) == (1, 1)


async def test_a_deleted_video_takes_its_engagement_with_it(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner)
    kept = await stack.video(owner)
    await stack.known(owner, by=viewer)
    await stack.ok(FOLLOW, {"u": owner.id}, as_=viewer)
    await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=viewer)
    await stack.ok(ADD, {"v": video, "b": "nice", "p": None}, as_=viewer)
    for target in (video, kept):
        await stack.ok(PROGRESS, {"v": target, "p": 3}, as_=viewer)
        await stack.ok(SAVE["WATCH_LATER"][0], {"v": target}, as_=viewer)
    announced = await ready(stack, owner)
    await eventually(
        lambda: stack.ok(NOTIFICATIONS, {}, as_=viewer),
        lambda d: len(d["notifications"]["edges"]) == 1,
        what="a notification",
    )

    for doomed in (video, announced):
        await stack.publish("video.deleted", {"videoId": doomed, "ownerId": owner.id})
    await eventually(
        lambda: rows_naming(stack, video),
        lambda found: set(found) <= {"videos"},  # the tombstone that keeps it deleted
        what="the video's engagement gone",
    )
    await eventually(
        lambda: stack.ok(NOTIFICATIONS, {}, as_=viewer),
        lambda d: d["notifications"]["edges"] == [],
        what="the deleted video's notification gone",
    )
    assert await stack.fails(REACT, {"v": video, "r": "LIKE"}, as_=viewer) == "NOT_FOUND"
    user = (await stack.ok(LIBRARY, {"u": viewer.id}, as_=viewer))["_entities"][0]
    assert [e["node"]["video"]["id"] for e in user["watchHistory"]["edges"]] == [kept]
    assert [e["node"]["id"] for e in user["watchLater"]["edges"]] == [kept]

    # Late or repeated events do not bring it back (markers on the same topics, consumed
    # in order after them, tell when they were handled).
    await stack.publish("video.deleted", {"videoId": video, "ownerId": owner.id})
    await stack.publish(
        "video.ready",
        {
            "videoId": video,
            "ownerId": owner.id,
            "title": "zombie",
            "visibility": "PUBLIC",
            "durationSeconds": 9,
        },
    )
    marker = await stack.video(owner)
    await stack.publish("video.deleted", {"videoId": marker, "ownerId": owner.id})
    await eventually(
        lambda: stack.execute(REACT, {"v": marker, "r": "LIKE"}, as_=owner),
        lambda b: "errors" in b,
        what="the marker deleted",
    )
    assert await stack.fails(REACT, {"v": video, "r": "LIKE"}, as_=owner) == "NOT_FOUND"
    assert set(await rows_naming(stack, video)) <= {"videos"}


async def test_a_deleted_stream_takes_its_chat_with_it(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    await stack.ok(SEND, {"s": stream, "b": "hello"}, as_=viewer)
    await stack.publish("video.stream.deleted", {"streamId": stream, "ownerId": owner.id})
    await eventually(
        lambda: stack.execute(HISTORY, {"s": stream, "n": 10}),
        lambda b: "errors" in b,
        what="the room gone",
    )
    assert set(await rows_naming(stack, stream)) <= {"chat_rooms"}
    await stack.publish(
        "video.stream.created", {"streamId": stream, "ownerId": owner.id, "title": "again"}
    )
    await stack.stream(owner)  # consumed after it
    assert await stack.fails(SEND, {"s": stream, "b": "x"}, as_=viewer) == "NOT_FOUND"
    assert str(uuid.UUID(stream)) == stream
