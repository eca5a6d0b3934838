"""Crafted cursors and notification ids: every list engagement pages answers a cursor we did
not issue, however well-formed its JSON, with BAD_USER_INPUT on `after` (never INTERNAL), and
`markNotificationsRead` refuses ids out of range and more ids than one call may name."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.engagement.stack import Stack, eventually
from tests.engagement.test_comments import COMMENTS
from tests.engagement.test_follows import FOLLOW, MARK, NOTIFICATIONS, ready
from tests.engagement.test_library import PROGRESS, SAVE

NOW = datetime.now(UTC).isoformat()
ID = str(uuid.uuid4())
BIG = 18_446_744_073_709_551_615  # 2^64 - 1: above what SQLite and PostgreSQL BIGINT hold

# Positions of the wrong type or out of range; each stands where a cursor holds a timestamp,
# an id or a count.
BAD_TIMES = [
    "2026-01-01T00:00:00",  # no zone: timestamps are stored as UTC only
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "yesterday",
    1_700_000_000,
    None,
    ["2026-01-01T00:00:00+00:00"],
]
BAD_IDS = ["not-an-id", "a\x00b", 42, None, True, {"id": ID}, "x" * 10_000]
# Not a 64-bit integer at all: notification ids are BIGINTs.
BAD_NUMBERS = [BIG, 2**63, -(2**63) - 1, True, 1.5, "3", None, [1]]
# Reply counts are non-negative INTEGERs.
BAD_COUNTS = [*BAD_NUMBERS, 2**31, -1]

LIST = """
query L($u: ID!, $after: String) {
  _entities(representations: [{__typename: "User", id: $u}]) {
    ... on User {
      following(first: 5, after: $after) { totalCount }
      watchHistory(first: 5, after: $after) { totalCount }
      watchLater(first: 5, after: $after) { totalCount }
      favorites(first: 5, after: $after) { totalCount }
    }
  }
}
"""
FIELDS = ("following", "watchHistory", "watchLater", "favorites")
REPLIES = """
query R($v: ID!, $after: String) {
  _entities(representations: [{__typename: "Video", id: $v}]) {
    ... on Video {
      comments(first: 5) { edges { node { replies(first: 5, after: $after) { edges { cursor } } } } }
    }
  }
}
"""
ADD = "mutation A($v: ID!, $b: String!, $p: ID) { addComment(videoId: $v, body: $b, parentId: $p) { id } }"


def encode_cursor(*values: Any) -> str:
    """A cursor as engagement builds them (base64url of a JSON list), with ints of any size."""
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def two_part_cursors() -> list[str]:
    """(timestamp, id) cursors with one bad position each."""
    return [encode_cursor(t, ID) for t in BAD_TIMES] + [encode_cursor(NOW, i) for i in BAD_IDS]


def codes(body: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [
        (e.get("extensions", {}).get("code"), e.get("extensions", {}).get("field"))
        for e in body.get("errors") or []
    ]


async def test_a_users_lists_refuse_crafted_cursors(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner)
    await stack.known(owner, by=viewer)
    # Something on each list, so each query reaches its cursor.
    await stack.ok(FOLLOW, {"u": owner.id}, as_=viewer)
    await stack.ok(PROGRESS, {"v": video, "p": 1}, as_=viewer)
    await stack.ok(SAVE["WATCH_LATER"][0], {"v": video}, as_=viewer)
    await stack.ok(SAVE["FAVORITES"][0], {"v": video}, as_=viewer)
    issued = await stack.ok(LIST, {"u": viewer.id}, as_=viewer)
    assert all(issued["_entities"][0][f]["totalCount"] == 1 for f in FIELDS), issued

    for cursor in two_part_cursors():
        body = await stack.execute(LIST, {"u": viewer.id, "after": cursor}, as_=viewer)
        assert codes(body) == [("BAD_USER_INPUT", "after")] * len(FIELDS), (cursor, body)


async def test_comment_lists_refuse_crafted_cursors(stack: Stack) -> None:
    owner = await stack.account()
    video = await stack.video(owner)
    thread = (await stack.ok(ADD, {"v": video, "b": "thread", "p": None}, as_=owner))["addComment"]
    await stack.ok(ADD, {"v": video, "b": "reply", "p": thread["id"]}, as_=owner)

    top = [encode_cursor(n, NOW, ID) for n in BAD_COUNTS]
    top += [encode_cursor(0, t, ID) for t in BAD_TIMES]
    top += [encode_cursor(0, NOW, i) for i in BAD_IDS]
    for order, cursors in (("NEWEST", two_part_cursors()), ("TOP", top)):
        for cursor in cursors:
            body = await stack.execute(COMMENTS, {"v": video, "after": cursor, "order": order})
            assert codes(body) == [("BAD_USER_INPUT", "after")], (order, cursor, body)
    for cursor in two_part_cursors():
        body = await stack.execute(REPLIES, {"v": video, "after": cursor})
        assert codes(body) == [("BAD_USER_INPUT", "after")], (cursor, body)


async def test_notifications_refuse_crafted_cursors_and_ids(stack: Stack) -> None:
    owner, fan = await stack.account(), await stack.account()
    await stack.known(owner, by=fan)
    await stack.ok(FOLLOW, {"u": owner.id}, as_=fan)
    await ready(stack, owner)
    page = await eventually(
        lambda: stack.ok(NOTIFICATIONS, {}, as_=fan),
        lambda d: len(d["notifications"]["edges"]) == 1,
        what="the fan's notification",
    )
    (edge,) = page["notifications"]["edges"]

    # The reported cursor: [2^64 - 1].
    assert encode_cursor(BIG) == "WzE4NDQ2NzQ0MDczNzA5NTUxNjE1XQ"
    for value in BAD_NUMBERS:
        body = await stack.execute(NOTIFICATIONS, {"after": encode_cursor(value)}, as_=fan)
        assert codes(body) == [("BAD_USER_INPUT", "after")], (value, body)
    # The largest position a notification id can have is still a position.
    assert (await stack.ok(NOTIFICATIONS, {"after": encode_cursor(2**63 - 1)}, as_=fan))[
        "notifications"
    ]["edges"] == [edge]

    for ids in (["99999999999999999999"], ["1_000"], ["-1"], [" 1"], ["1e3"], ["1\n"], ["\x001"]):
        body = await stack.execute(MARK, {"ids": ids}, as_=fan)
        assert codes(body) == [("BAD_USER_INPUT", "ids")], (ids, body)
    too_many = [str(n) for n in range(1, 102)]
    body = await stack.execute(MARK, {"ids": too_many}, as_=fan)
    assert codes(body) == [("BAD_USER_INPUT", "ids")], body
    # Nothing was marked by the refused calls; a hundred ids is still one call.
    assert (await stack.ok(NOTIFICATIONS, {}, as_=fan))["notifications"]["unreadCount"] == 1
    hundred = [edge["node"]["id"], *too_many[:99]]
    assert (await stack.ok(MARK, {"ids": hundred}, as_=fan))["markNotificationsRead"] == 1


USER_FIELDS = """
query U($u: ID!) {
  _entities(representations: [{__typename: "User", id: $u}]) {
    ... on User { followerCount followingCount viewerFollows following(first: 5) { totalCount } }
  }
}
"""


async def test_user_fields_of_an_id_that_is_not_ours_are_empty(stack: Stack) -> None:
    admin = await stack.admin()
    for crafted in ("not-an-id", "a\x00b", "x" * 10_000):
        body = await stack.ok(USER_FIELDS, {"u": crafted}, as_=admin)
        assert body["_entities"] == [
            {
                "followerCount": 0,
                "followingCount": 0,
                "viewerFollows": False,
                "following": {"totalCount": 0},
            }
        ], body
