"""Reactions: likes and dislikes on videos engagement knows from video's events, counted
exactly under concurrency, only on videos the viewer may see."""

from __future__ import annotations

import asyncio
import uuid

from tests.engagement.stack import Stack, eventually

REACT = """
mutation R($v: ID!, $r: Reaction!) {
  react(videoId: $v, reaction: $r) { id likeCount dislikeCount viewerReaction }
}
"""
VIDEO = """
query V($v: ID!) {
  _entities(representations: [{__typename: "Video", id: $v}]) {
    ... on Video { likeCount dislikeCount viewerReaction }
  }
}
"""


async def test_like_switch_to_dislike_and_take_it_back(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner)

    liked = (await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=viewer))["react"]
    assert liked == {"id": video, "likeCount": 1, "dislikeCount": 0, "viewerReaction": "LIKE"}
    again = (await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=viewer))["react"]
    assert again["likeCount"] == 1  # reacting the same way twice counts once
    switched = (await stack.ok(REACT, {"v": video, "r": "DISLIKE"}, as_=viewer))["react"]
    assert (switched["likeCount"], switched["dislikeCount"]) == (0, 1)
    cleared = (await stack.ok(REACT, {"v": video, "r": "NONE"}, as_=viewer))["react"]
    assert cleared == {"id": video, "likeCount": 0, "dislikeCount": 0, "viewerReaction": "NONE"}

    await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=viewer)
    seen_by_owner = (await stack.ok(VIDEO, {"v": video}, as_=owner))["_entities"][0]
    assert seen_by_owner == {"likeCount": 1, "dislikeCount": 0, "viewerReaction": "NONE"}
    anonymous = (await stack.ok(VIDEO, {"v": video}))["_entities"][0]
    assert anonymous["viewerReaction"] == "NONE" and anonymous["likeCount"] == 1


async def test_a_hundred_users_reacting_at_once_give_exactly_a_hundred(stack: Stack) -> None:
    owner = await stack.account()
    video = await stack.video(owner)
    viewers = await asyncio.gather(*(stack.account() for _ in range(100)))

    results = await asyncio.gather(
        *(stack.execute(REACT, {"v": video, "r": "LIKE"}, as_=v) for v in viewers)
    )
    assert all("errors" not in r for r in results), [r for r in results if "errors" in r][:3]
    counts = (await stack.ok(VIDEO, {"v": video}))["_entities"][0]
    assert (counts["likeCount"], counts["dislikeCount"]) == (100, 0)

    # Half switch to dislike and a quarter take it back, all at once, with repeats.
    switching, clearing = viewers[:50], viewers[50:75]
    await asyncio.gather(
        *(stack.ok(REACT, {"v": video, "r": "DISLIKE"}, as_=v) for v in switching * 2),
        *(stack.ok(REACT, {"v": video, "r": "NONE"}, as_=v) for v in clearing),
    )
    counts = (await stack.ok(VIDEO, {"v": video}))["_entities"][0]
    assert (counts["likeCount"], counts["dislikeCount"]) == (25, 50)


async def test_one_user_racing_themselves_counts_once(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner)
    await asyncio.gather(
        *(stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=viewer) for _ in range(20))
    )
    counts = (await stack.ok(VIDEO, {"v": video}))["_entities"][0]
    assert counts["likeCount"] == 1


async def test_reacting_needs_an_account_and_a_visible_video(stack: Stack) -> None:
    owner, other = await stack.account(), await stack.account()
    private = await stack.video(owner, visibility="PRIVATE")
    processing = await stack.video(owner, ready=False)
    unlisted = await stack.video(owner, visibility="UNLISTED")

    assert await stack.fails(REACT, {"v": unlisted, "r": "LIKE"}) == "UNAUTHENTICATED"
    # Videos a viewer may not see do not exist for them.
    assert await stack.fails(REACT, {"v": private, "r": "LIKE"}, as_=other) == "NOT_FOUND"
    assert await stack.fails(REACT, {"v": processing, "r": "LIKE"}, as_=other) == "NOT_FOUND"
    assert await stack.fails(REACT, {"v": str(uuid.uuid4()), "r": "LIKE"}, as_=other) == "NOT_FOUND"
    # The owner may react to their own private video; an unlisted one is open to anyone.
    await stack.ok(REACT, {"v": private, "r": "LIKE"}, as_=owner)
    await stack.ok(REACT, {"v": unlisted, "r": "DISLIKE"}, as_=other)
    # A private video's counts are not shown to others either.
    hidden = (await stack.ok(VIDEO, {"v": private}, as_=other))["_entities"][0]
    assert hidden["likeCount"] == 0


async def test_bad_reaction_input_is_rejected(stack: Stack) -> None:
    viewer = await stack.account()
    assert await stack.fails(REACT, {"v": "not-an-id", "r": "LIKE"}, as_=viewer) == "BAD_USER_INPUT"
    body = await stack.execute(REACT, {"v": str(uuid.uuid4()), "r": "LOVE"}, as_=viewer)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_video_made_private_stops_taking_reactions(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner)
    await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=viewer)
    await stack.publish(
        "video.updated",
        {
            "videoId": video,
            "ownerId": owner.id,
            "title": "A video",
            "visibility": "PRIVATE",
            "status": "READY",
        },
    )
    code = await eventually(
        lambda: stack.execute(REACT, {"v": video, "r": "DISLIKE"}, as_=viewer),
        lambda body: "errors" in body,
        what="private video refusing reactions",
    )
    assert code["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_suspended_account_cannot_react_with_its_unexpired_token(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    admin = await stack.admin()
    video = await stack.video(owner)
    await stack.ok(REACT, {"v": video, "r": "LIKE"}, as_=viewer)
    body = await stack.auth.execute(
        "mutation S($u: ID!) { suspendUser(userId: $u) { id } }",
        {"u": viewer.id},
        token=admin.token,
    )
    assert "errors" not in body, body
    refused = await eventually(
        lambda: stack.execute(REACT, {"v": video, "r": "DISLIKE"}, as_=viewer),
        lambda b: "errors" in b,
        what="the suspension known to engagement",
    )
    assert refused["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "ACCOUNT_SUSPENDED",
    }
    counts = (await stack.ok(VIDEO, {"v": video}))["_entities"][0]
    assert counts["likeCount"] + counts["dislikeCount"] == 1
