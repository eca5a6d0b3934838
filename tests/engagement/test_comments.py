"""Comments: one level of replies, edits by the author, soft deletes by the author, the
video's owner or an admin, NEWEST and TOP orders with cursors, and input limits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.engagement.stack import Account, Stack

ADD = """
mutation A($v: ID!, $b: String!, $p: ID) {
  addComment(videoId: $v, body: $b, parentId: $p) {
    id body parentId deleted replyCount createdAt editedAt author { id } video { id }
  }
}
"""
EDIT = (
    "mutation E($c: ID!, $b: String!) { editComment(commentId: $c, body: $b) { id body editedAt } }"
)
DELETE = "mutation D($c: ID!) { deleteComment(commentId: $c) }"
COMMENTS = """
query C($v: ID!, $first: Int, $after: String, $order: CommentOrder) {
  _entities(representations: [{__typename: "Video", id: $v}]) {
    ... on Video {
      commentCount
      comments(first: $first, after: $after, orderBy: $order) {
        edges { cursor node { id body deleted replyCount author { id }
          replies(first: 10) { edges { node { id body } } pageInfo { hasNextPage } } } }
        pageInfo { hasNextPage hasPreviousPage endCursor }
      }
    }
  }
}
"""


async def add(
    stack: Stack, who: Account, video: str, body: str, parent: str | None = None
) -> dict[str, Any]:
    data = await stack.ok(ADD, {"v": video, "b": body, "p": parent}, as_=who)
    comment: dict[str, Any] = data["addComment"]
    return comment


async def listing(
    stack: Stack, video: str, as_: Account | None = None, **variables: Any
) -> dict[str, Any]:
    data = await stack.ok(COMMENTS, {"v": video, **variables}, as_=as_)
    entity: dict[str, Any] = data["_entities"][0]
    return entity


async def test_comment_reply_and_replies_to_replies_join_the_thread(stack: Stack) -> None:
    owner, alice, bob = await stack.account(), await stack.account(), await stack.account()
    video = await stack.video(owner)

    top = await add(stack, alice, video, "  First!  ")
    assert top["body"] == "First!" and top["parentId"] is None and top["author"] == {"id": alice.id}
    assert top["video"] == {"id": video} and top["editedAt"] is None and top["replyCount"] == 0
    reply = await add(stack, bob, video, "Welcome", top["id"])
    assert reply["parentId"] == top["id"]
    # A reply to a reply goes to the same thread: one level of replies, as on YouTube.
    nested = await add(stack, alice, video, "Thanks", reply["id"])
    assert nested["parentId"] == top["id"]

    seen = await listing(stack, video)
    assert seen["commentCount"] == 3
    (edge,) = seen["comments"]["edges"]
    assert edge["node"]["replyCount"] == 2
    assert [r["node"]["body"] for r in edge["node"]["replies"]["edges"]] == ["Welcome", "Thanks"]


async def test_newest_and_top_orders_page_with_cursors(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner)
    ids = [(await add(stack, viewer, video, f"comment {n}"))["id"] for n in range(5)]
    for _ in range(2):
        await add(stack, viewer, video, "reply", ids[1])
    await add(stack, viewer, video, "reply", ids[3])

    first = await listing(stack, video, first=2)
    assert [e["node"]["id"] for e in first["comments"]["edges"]] == [ids[4], ids[3]]
    assert first["comments"]["pageInfo"]["hasNextPage"] is True
    rest = await listing(stack, video, first=10, after=first["comments"]["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in rest["comments"]["edges"]] == [ids[2], ids[1], ids[0]]
    assert rest["comments"]["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": rest["comments"]["edges"][-1]["cursor"],
    }

    top = await listing(stack, video, first=2, order="TOP")
    assert [e["node"]["id"] for e in top["comments"]["edges"]] == [ids[1], ids[3]]
    top_rest = await listing(
        stack, video, first=10, order="TOP", after=top["comments"]["pageInfo"]["endCursor"]
    )
    assert [e["node"]["id"] for e in top_rest["comments"]["edges"]] == [ids[4], ids[2], ids[0]]


async def test_authors_edit_their_own_comments_only(stack: Stack) -> None:
    owner, author, other = await stack.account(), await stack.account(), await stack.account()
    video = await stack.video(owner)
    comment = await add(stack, author, video, "typo")

    edited = (await stack.ok(EDIT, {"c": comment["id"], "b": "fixed"}, as_=author))["editComment"]
    assert edited["body"] == "fixed" and edited["editedAt"] is not None
    # Nobody else edits it: not another viewer, not the video's owner.
    assert await stack.fails(EDIT, {"c": comment["id"], "b": "x"}, as_=other) == "FORBIDDEN"
    assert await stack.fails(EDIT, {"c": comment["id"], "b": "x"}, as_=owner) == "FORBIDDEN"
    assert await stack.fails(EDIT, {"c": comment["id"], "b": "x"}) == "UNAUTHENTICATED"
    assert await stack.fails(EDIT, {"c": str(uuid.uuid4()), "b": "x"}, as_=author) == "NOT_FOUND"
    assert await stack.fails(EDIT, {"c": comment["id"], "b": "   "}, as_=author) == "BAD_USER_INPUT"
    node = (await listing(stack, video))["comments"]["edges"][0]["node"]
    assert node["body"] == "fixed"


async def test_author_owner_and_admin_delete_and_the_thread_stays_readable(stack: Stack) -> None:
    owner, author, replier, other = await asyncio.gather(*(stack.account() for _ in range(4)))
    admin = await stack.admin()
    video = await stack.video(owner)
    top = await add(stack, author, video, "thread")
    reply_a = await add(stack, replier, video, "reply a", top["id"])
    reply_b = await add(stack, replier, video, "reply b", top["id"])
    lone = await add(stack, replier, video, "lone")

    assert await stack.fails(DELETE, {"c": top["id"]}, as_=other) == "FORBIDDEN"
    assert await stack.fails(DELETE, {"c": top["id"]}) == "UNAUTHENTICATED"
    assert (await stack.ok(DELETE, {"c": top["id"]}, as_=author))["deleteComment"] is True
    # Deleting again is harmless.
    assert (await stack.ok(DELETE, {"c": top["id"]}, as_=author))["deleteComment"] is True
    # The video's owner moderates any comment on it; admins any comment anywhere.
    await stack.ok(DELETE, {"c": reply_a["id"]}, as_=owner)
    await stack.ok(DELETE, {"c": lone["id"]}, as_=admin)

    seen = await listing(stack, video)
    assert seen["commentCount"] == 1
    (edge,) = seen["comments"]["edges"]  # the deleted lone comment is gone, the thread stays
    thread = edge["node"]
    assert thread["id"] == top["id"] and thread["deleted"] is True
    assert thread["body"] is None and thread["author"] is None and thread["replyCount"] == 1
    assert [r["node"]["id"] for r in thread["replies"]["edges"]] == [reply_b["id"]]
    # A deleted comment takes no new replies and no edits.
    assert (
        await stack.fails(ADD, {"v": video, "b": "hi", "p": top["id"]}, as_=other)
        == "BAD_USER_INPUT"
    )
    assert await stack.fails(EDIT, {"c": top["id"], "b": "back"}, as_=author) == "NOT_FOUND"


async def test_comments_need_a_visible_video_and_a_valid_body(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner)
    private = await stack.video(owner, visibility="PRIVATE")
    other_video = await stack.video(owner)
    parent = await add(stack, viewer, video, "parent")

    assert await stack.fails(ADD, {"v": video, "b": "hi"}) == "UNAUTHENTICATED"
    assert await stack.fails(ADD, {"v": private, "b": "hi"}, as_=viewer) == "NOT_FOUND"
    assert await stack.fails(ADD, {"v": "nope", "b": "hi"}, as_=viewer) == "BAD_USER_INPUT"
    for body in ("", "   \n ", "x" * 10_001, "bell \x07"):
        assert await stack.fails(ADD, {"v": video, "b": body}, as_=viewer) == "BAD_USER_INPUT"
    assert (await add(stack, viewer, video, "x" * 10_000))["body"] == "x" * 10_000
    # A parent on another video, or none at all, is not found.
    assert (
        await stack.fails(ADD, {"v": other_video, "b": "hi", "p": parent["id"]}, as_=viewer)
        == "NOT_FOUND"
    )
    assert (
        await stack.fails(ADD, {"v": video, "b": "hi", "p": str(uuid.uuid4())}, as_=viewer)
        == "NOT_FOUND"
    )
    # Comments on a video the viewer may not see stay hidden; its owner sees and deletes them.
    own = await add(stack, owner, private, "note to self")
    assert (await listing(stack, private, as_=viewer))["comments"]["edges"] == []
    assert (await listing(stack, private, as_=owner))["commentCount"] == 1
    assert await stack.fails(DELETE, {"c": own["id"]}, as_=viewer) == "NOT_FOUND"
    assert await stack.fails(DELETE, {"c": "nope"}, as_=viewer) == "BAD_USER_INPUT"


async def test_bad_cursors_and_page_sizes_are_rejected(stack: Stack) -> None:
    owner = await stack.account()
    video = await stack.video(owner)
    for variables in ({"after": "garbage"}, {"first": 101}, {"first": -1}):
        body = await stack.execute(COMMENTS, {"v": video, **variables})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
