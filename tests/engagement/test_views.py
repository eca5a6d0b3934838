"""Views and watch time over HTTP, in real time: a client cannot inflate watch time, views
count once per viewer (signed in or by client id), and analytics are the owner's."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.engagement.stack import Account, Stack
from tests.support.processes import GraphQLClient

PING = """
mutation P($v: ID!, $p: Float!, $c: String) {
  recordWatchProgress(videoId: $v, positionSeconds: $p, clientId: $c) { positionSeconds }
}
"""
ANALYTICS = """
query A($v: ID!) {
  videoAnalytics(videoId: $v) {
    video { id } views uniqueViewers watchTimeSeconds averageViewDurationSeconds
    completionRate retention
  }
}
"""
VIEWS = """
query V($v: ID!) { _entities(representations: [{__typename: "Video", id: $v}]) { ... on Video { viewCount } } }
"""
TOP = "query T($p: ViewPeriod, $n: Int) { topVideos(period: $p, first: $n) { video { id } views } }"
DASHBOARD = "{ creatorDashboard { videoCount views uniqueViewers watchTimeSeconds followers } }"
PLATFORM = "{ platformStats { users videos views watchTimeSeconds liveStreams liveViewers } }"


async def watch_until_viewed(
    stack: Stack, video: str, owner: Account, who: Account | None = None, client: str | None = None
) -> None:
    """Play a 2-second video in real time, pinging, until its view counts (at 1 s)."""
    before = (await stack.ok(ANALYTICS, {"v": video}, as_=owner))["videoAnalytics"]["views"]
    await stack.ok(PING, {"v": video, "p": 0, "c": client}, as_=who)  # playback starts
    started = time.monotonic()
    deadline = started + 30
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        position = min(time.monotonic() - started, 2.0)
        await stack.ok(PING, {"v": video, "p": position, "c": client}, as_=who)
        views = (await stack.ok(ANALYTICS, {"v": video}, as_=owner))["videoAnalytics"]["views"]
        if views > before:
            assert views == before + 1
            return
    raise AssertionError("the view never counted")


async def test_a_client_cannot_inflate_watch_time(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner, duration=3600.0)
    started = time.monotonic()
    await stack.ok(PING, {"v": video, "p": 0}, as_=viewer)
    await stack.ok(PING, {"v": video, "p": 3000}, as_=viewer)
    await stack.ok(PING, {"v": video, "p": 3590}, as_=viewer)
    elapsed = time.monotonic() - started
    analytics = (await stack.ok(ANALYTICS, {"v": video}, as_=owner))["videoAnalytics"]
    # Claimed: an hour. Credited: no more than the real time between the pings.
    assert 0 <= analytics["watchTimeSeconds"] <= elapsed
    assert analytics["views"] == 0


async def test_views_count_once_per_viewer_signed_in_or_by_client_id(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner, duration=2.0)
    await watch_until_viewed(stack, video, owner, who=viewer)
    # More watching by the same viewer within 30 minutes is not another view.
    for position in (0.0, 1.0, 2.0, 0.5, 2.0):
        await stack.ok(PING, {"v": video, "p": position}, as_=viewer)
        await asyncio.sleep(0.3)
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    await watch_until_viewed(stack, video, owner, client=first)
    await watch_until_viewed(stack, video, owner, client=second)

    analytics = (await stack.ok(ANALYTICS, {"v": video}, as_=owner))["videoAnalytics"]
    assert (analytics["views"], analytics["uniqueViewers"]) == (3, 3)
    assert analytics["video"] == {"id": video}
    assert len(analytics["retention"]) == 20 and analytics["retention"][0] == 1.0
    assert analytics["averageViewDurationSeconds"] == analytics["watchTimeSeconds"] / 3
    assert (await stack.ok(VIEWS, {"v": video}))["_entities"][0]["viewCount"] == 3
    top = (await stack.ok(TOP, {"p": "DAY", "n": 100}))["topVideos"]
    assert {"video": {"id": video}, "views": 3} in top
    dashboard = (await stack.ok(DASHBOARD, as_=owner))["creatorDashboard"]
    assert (dashboard["videoCount"], dashboard["views"], dashboard["uniqueViewers"]) == (1, 3, 3)


async def test_analytics_and_dashboards_are_guarded(stack: Stack) -> None:
    owner, other = await stack.account(), await stack.account()
    admin = await stack.admin()
    video = await stack.video(owner)
    private = await stack.video(owner, visibility="PRIVATE")

    assert await stack.fails(ANALYTICS, {"v": video}, as_=other) == "FORBIDDEN"
    assert await stack.fails(ANALYTICS, {"v": private}, as_=other) == "NOT_FOUND"
    assert await stack.fails(ANALYTICS, {"v": video}) == "UNAUTHENTICATED"
    assert await stack.fails(ANALYTICS, {"v": "bad"}, as_=owner) == "BAD_USER_INPUT"
    assert (await stack.ok(ANALYTICS, {"v": private}, as_=admin))["videoAnalytics"]["views"] == 0
    assert await stack.fails(DASHBOARD) == "UNAUTHENTICATED"
    assert (await stack.ok(DASHBOARD, as_=other))["creatorDashboard"]["videoCount"] == 0
    assert await stack.fails(PLATFORM, as_=owner) == "FORBIDDEN"
    assert await stack.fails(PLATFORM) == "UNAUTHENTICATED"
    stats = (await stack.ok(PLATFORM, as_=admin))["platformStats"]
    assert stats["users"] >= 3 and stats["videos"] >= 2
    assert await stack.fails(TOP, {"n": 101}) == "BAD_USER_INPUT"
    invalid = await stack.execute(TOP, {"p": "YEAR"})
    assert invalid["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # Private videos never rank.
    assert all(
        t["video"]["id"] != private
        for t in (await stack.ok(TOP, {"p": "ALL", "n": 100}))["topVideos"]
    )


async def test_made_up_client_ids_from_one_address_stop_counting_after_five(stack: Stack) -> None:
    """The reported attack: fresh client ids at two requests per view. The address is the
    caller's as engagement's trusted proxy (the router) reports it in X-Forwarded-For."""
    owner, viewer = await stack.account(), await stack.account()
    video = await stack.video(owner, duration=2.0)  # a view after 1 s of playing
    elsewhere = GraphQLClient(stack.gql.url, client_ip="198.51.100.23")
    made_up = [uuid.uuid4().hex for _ in range(7)]
    traveller = uuid.uuid4().hex
    try:
        for client in made_up:
            await stack.ok(PING, {"v": video, "p": 0, "c": client})
        body = await elsewhere.execute(PING, {"v": video, "p": 0, "c": traveller})
        assert "errors" not in body, body
        await stack.ok(PING, {"v": video, "p": 0}, as_=viewer)
        await asyncio.sleep(1.2)  # real time played, which is what watch time is made of
        for client in made_up:
            answer = await stack.ok(PING, {"v": video, "p": 2.0, "c": client})
            # Counted or not, the answer is the same.
            assert answer == {"recordWatchProgress": {"positionSeconds": 2.0}}
        body = await elsewhere.execute(PING, {"v": video, "p": 2.0, "c": traveller})
        assert "errors" not in body, body
        await stack.ok(PING, {"v": video, "p": 2.0}, as_=viewer)
    finally:
        await elsewhere.close()

    analytics = (await stack.ok(ANALYTICS, {"v": video}, as_=owner))["videoAnalytics"]
    # Five made-up ids from the first address, one from another, one signed-in viewer.
    assert (analytics["views"], analytics["uniqueViewers"]) == (7, 7)
    assert (await stack.ok(VIEWS, {"v": video}))["_entities"][0]["viewCount"] == 7
    top = (await stack.ok(TOP, {"p": "DAY", "n": 100}))["topVideos"]
    assert {"video": {"id": video}, "views": 7} in top
