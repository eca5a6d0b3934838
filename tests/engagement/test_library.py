"""A viewer's library: watch history with resume positions, continue watching, watch later
and favorites; only its owner reads or changes it."""

from __future__ import annotations

import uuid
from typing import Any

from tests.engagement.stack import Account, Stack, eventually

PROGRESS = """
mutation P($v: ID!, $p: Float!, $c: String) {
  recordWatchProgress(videoId: $v, positionSeconds: $p, clientId: $c) {
    positionSeconds durationSeconds completed watchedAt video { id }
  }
}
"""
LIBRARY = """
query L($u: ID!, $first: Int, $after: String) {
  _entities(representations: [{__typename: "User", id: $u}]) {
    ... on User {
      watchHistory(first: $first, after: $after) {
        totalCount
        edges { cursor node { positionSeconds completed video { id } } }
        pageInfo { hasNextPage endCursor }
      }
      continueWatching { positionSeconds video { id } }
      watchLater(first: $first) { totalCount edges { node { id viewerWatchLater } addedAt } }
      favorites(first: $first) { totalCount edges { node { id viewerFavorite } } }
    }
  }
}
"""
VIDEO = """
query V($v: ID!) {
  _entities(representations: [{__typename: "Video", id: $v}]) {
    ... on Video { viewerProgress { positionSeconds durationSeconds completed } viewerWatchLater viewerFavorite }
  }
}
"""
SAVE = {
    "WATCH_LATER": (
        "mutation S($v: ID!) { addToWatchLater(videoId: $v) { id viewerWatchLater } }",
        "mutation U($v: ID!) { removeFromWatchLater(videoId: $v) }",
    ),
    "FAVORITES": (
        "mutation S($v: ID!) { addToFavorites(videoId: $v) { id viewerFavorite } }",
        "mutation U($v: ID!) { removeFromFavorites(videoId: $v) }",
    ),
}
CLEAR = "mutation { clearWatchHistory }"
REMOVE = "mutation R($v: ID!) { removeFromWatchHistory(videoId: $v) }"


async def library(
    stack: Stack, user: Account, as_: Account | None = None, **variables: Any
) -> dict[str, Any]:
    body = await stack.execute(LIBRARY, {"u": user.id, **variables}, as_=as_ or user)
    return body


def history_ids(body: dict[str, Any]) -> list[str]:
    edges = body["data"]["_entities"][0]["watchHistory"]["edges"]
    return [e["node"]["video"]["id"] for e in edges]


def continuing_ids(body: dict[str, Any]) -> list[str]:
    return [p["video"]["id"] for p in body["data"]["_entities"][0]["continueWatching"]]


async def test_progress_is_remembered_and_resumes(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner, duration=100.0)

    saved = (await stack.ok(PROGRESS, {"v": video, "p": 42.5}, as_=viewer))["recordWatchProgress"]
    assert saved["positionSeconds"] == 42.5 and saved["durationSeconds"] == 100.0
    assert saved["completed"] is False and saved["video"] == {"id": video}
    resume = (await stack.ok(VIDEO, {"v": video}, as_=viewer))["_entities"][0]["viewerProgress"]
    assert resume == {"positionSeconds": 42.5, "durationSeconds": 100.0, "completed": False}
    # Nobody else sees it, and a player a little past the end is clamped to the end.
    assert (await stack.ok(VIDEO, {"v": video}, as_=owner))["_entities"][0][
        "viewerProgress"
    ] is None
    end = (await stack.ok(PROGRESS, {"v": video, "p": 100.4}, as_=viewer))["recordWatchProgress"]
    assert end["positionSeconds"] == 100.0 and end["completed"] is True


async def test_history_newest_first_with_pages_and_continue_watching(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    started, finished, barely, hidden = [await stack.video(owner, duration=60.0) for _ in range(4)]
    await stack.ok(PROGRESS, {"v": started, "p": 30}, as_=viewer)
    await stack.ok(PROGRESS, {"v": finished, "p": 59}, as_=viewer)
    await stack.ok(PROGRESS, {"v": barely, "p": 2}, as_=viewer)
    await stack.ok(PROGRESS, {"v": hidden, "p": 20}, as_=viewer)
    await stack.publish(
        "video.updated",
        {
            "videoId": hidden,
            "ownerId": owner.id,
            "title": "t",
            "visibility": "PRIVATE",
            "status": "READY",
        },
    )
    # A video that became private leaves the history (it is not deleted from it). Both lists
    # are waited for: a response's fields resolve side by side, so one may be read before the
    # event was applied and the other after.
    body = await eventually(
        lambda: library(stack, viewer),
        lambda b: hidden not in history_ids(b) and hidden not in continuing_ids(b),
        what="private video out of the history",
    )
    assert history_ids(body) == [barely, finished, started]
    user = body["data"]["_entities"][0]
    assert user["watchHistory"]["totalCount"] == 3
    assert continuing_ids(body) == [started]

    page = await library(stack, viewer, first=2)
    assert history_ids(page) == [barely, finished]
    cursor = page["data"]["_entities"][0]["watchHistory"]["pageInfo"]["endCursor"]
    assert history_ids(await library(stack, viewer, first=2, after=cursor)) == [started]

    # Watching again moves a video to the top.
    await stack.ok(PROGRESS, {"v": started, "p": 31}, as_=viewer)
    assert history_ids(await library(stack, viewer))[0] == started


async def test_removing_and_clearing_history(stack: Stack) -> None:
    owner, viewer, other = await stack.account(), await stack.account(), await stack.account()
    first, second = await stack.video(owner), await stack.video(owner)
    for video in (first, second):
        await stack.ok(PROGRESS, {"v": video, "p": 10}, as_=viewer)
        await stack.ok(PROGRESS, {"v": video, "p": 10}, as_=other)

    assert (await stack.ok(REMOVE, {"v": first}, as_=viewer))["removeFromWatchHistory"] is True
    assert (await stack.ok(REMOVE, {"v": first}, as_=viewer))["removeFromWatchHistory"] is False
    assert history_ids(await library(stack, viewer)) == [second]
    assert (await stack.ok(CLEAR, as_=viewer))["clearWatchHistory"] == 1
    assert history_ids(await library(stack, viewer)) == []
    # Another user's history is untouched.
    assert sorted(history_ids(await library(stack, other))) == sorted([first, second])
    assert await stack.fails(CLEAR) == "UNAUTHENTICATED"
    assert await stack.fails(REMOVE, {"v": first}) == "UNAUTHENTICATED"
    assert await stack.fails(REMOVE, {"v": "nope"}, as_=viewer) == "BAD_USER_INPUT"


async def test_a_library_is_its_owners_alone(stack: Stack) -> None:
    owner, viewer, other = await stack.account(), await stack.account(), await stack.account()
    admin = await stack.admin()
    video = await stack.video(owner)
    await stack.ok(PROGRESS, {"v": video, "p": 10}, as_=viewer)
    await stack.ok(SAVE["FAVORITES"][0], {"v": video}, as_=viewer)

    for reader in (other, admin, None):
        body = await stack.execute(LIBRARY, {"u": viewer.id}, as_=reader)
        user = body["data"]["_entities"][0]
        assert user == {
            "watchHistory": None,
            "continueWatching": None,
            "watchLater": None,
            "favorites": None,
        }
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes == ({"UNAUTHENTICATED"} if reader is None else {"FORBIDDEN"}), body


async def test_progress_input_is_checked(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner, duration=60.0)
    private = await stack.video(owner, visibility="PRIVATE")
    for position in (-1, 61.5, 1e12):
        assert (
            await stack.fails(PROGRESS, {"v": video, "p": position}, as_=viewer) == "BAD_USER_INPUT"
        )
    assert await stack.fails(PROGRESS, {"v": "x", "p": 1}, as_=viewer) == "BAD_USER_INPUT"
    assert await stack.fails(PROGRESS, {"v": private, "p": 1}, as_=viewer) == "NOT_FOUND"
    assert await stack.fails(PROGRESS, {"v": str(uuid.uuid4()), "p": 1}, as_=viewer) == "NOT_FOUND"
    # Signed out, a client id is needed, and it must look like one.
    assert await stack.fails(PROGRESS, {"v": video, "p": 1}) == "BAD_USER_INPUT"
    for client in ("short", "x" * 65, "has spaces in it!!!!", "ünïcödé-ünïcödé-ünï"):
        assert await stack.fails(PROGRESS, {"v": video, "p": 1, "c": client}) == "BAD_USER_INPUT"
    anonymous = await stack.ok(PROGRESS, {"v": video, "p": 5, "c": uuid.uuid4().hex})
    assert anonymous["recordWatchProgress"]["positionSeconds"] == 5


async def test_watch_later_and_favorites(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    first, second = await stack.video(owner), await stack.video(owner)
    private = await stack.video(owner, visibility="PRIVATE")
    for name, (add, remove) in SAVE.items():
        flag = "viewerWatchLater" if name == "WATCH_LATER" else "viewerFavorite"
        field = "watchLater" if name == "WATCH_LATER" else "favorites"
        added = await stack.ok(add, {"v": first}, as_=viewer)
        assert next(iter(added.values())) == {"id": first, flag: True}
        await stack.ok(add, {"v": second}, as_=viewer)
        await stack.ok(add, {"v": first}, as_=viewer)  # adding twice keeps one entry
        user = (await library(stack, viewer))["data"]["_entities"][0]
        assert user[field]["totalCount"] == 2
        assert [e["node"]["id"] for e in user[field]["edges"]] == [second, first]
        assert all(e["node"][flag] is True for e in user[field]["edges"])
        seen = (await stack.ok(VIDEO, {"v": first}, as_=viewer))["_entities"][0]
        assert seen[flag] is True
        assert (await stack.ok(VIDEO, {"v": first}, as_=owner))["_entities"][0][flag] is False

        assert list((await stack.ok(remove, {"v": first}, as_=viewer)).values()) == [True]
        assert list((await stack.ok(remove, {"v": first}, as_=viewer)).values()) == [False]
        assert await stack.fails(add, {"v": private}, as_=viewer) == "NOT_FOUND"
        assert await stack.fails(add, {"v": "bad"}, as_=viewer) == "BAD_USER_INPUT"
        assert await stack.fails(remove, {"v": "bad"}, as_=viewer) == "BAD_USER_INPUT"
        assert await stack.fails(add, {"v": first}) == "UNAUTHENTICATED"
        assert await stack.fails(remove, {"v": first}) == "UNAUTHENTICATED"
    # The two lists are separate.
    user = (await library(stack, viewer))["data"]["_entities"][0]
    assert [e["node"]["id"] for e in user["watchLater"]["edges"]] == [second]
    assert [e["node"]["id"] for e in user["favorites"]["edges"]] == [second]
