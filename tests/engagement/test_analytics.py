"""Views and analytics against a scripted viewing history, with the numbers worked out by
hand. The service runs in this process on a real database (a SQLite file, PostgreSQL) with
a scripted clock, so the history can span hours without the test waiting for them."""

from __future__ import annotations

import uuid

import pytest

from subgraphs.kernel.errors import BadUserInput, Forbidden, NotFound, RateLimited, Unauthenticated
from tests.engagement.world import DAY, T0, World


async def test_a_scripted_viewing_history_gives_the_hand_computed_figures(world: World) -> None:
    owner, a, b = await world.user("CREATOR"), await world.user(), await world.user()
    video = await world.video(owner, duration=100.0)  # points every 5 s; a view needs 30 s
    c1, c2 = "client-one-0000000001", "client-two-0000000002"

    # A: plays 0 → 40 with a ping every 10 s; the view counts at 30 s of watching.
    for t in (0, 10, 20, 30, 40):
        await world.ping(t, video, t, a)
    # B: plays to the end with sparse pings; watch time is what real time allowed: 100 s.
    for t in (0, 50, 100):
        await world.ping(t, video, t, b)
    # An anonymous client claims 90 s of progress 5 s after starting: 5 s credited, no view.
    await world.ping(0, video, 0, client=c1)
    await world.ping(5, video, 90, client=c1)
    # Another anonymous client watches 20 s, then seeks back (nothing credited for that).
    await world.ping(0, video, 0, client=c2)
    await world.ping(20, video, 20, client=c2)
    await world.ping(25, video, 10, client=c2)
    # A comes back after a long pause (a new visit) and watches 40 s more: within 30 minutes
    # of A's last view, so no second view.
    await world.ping(1000, video, 40, a)
    await world.ping(1040, video, 80, a)
    # A again after 30 minutes: 30 s of watching is a new view.
    await world.ping(2000, video, 0, a)
    await world.ping(2030, video, 30, a)

    result = await world.service.views.analytics(owner, video)
    assert result.views == 3  # A at 30 s, B at 50 s, A at 2030 s
    assert result.unique_viewers == 2  # A and B; the anonymous clients never reached a view
    assert result.watch_time_seconds == pytest.approx(40 + 100 + 5 + 20 + 40 + 30)
    assert result.average_view_duration_seconds == pytest.approx(235 / 3)
    # Six visits (A three times, B, two clients); only B watched past 95 %.
    assert result.completion_rate == pytest.approx(1 / 6)
    # Visits watching at 0 %, 5 %, … 95 %:
    # A1 covers 0-40 s, B all, c1 0 s (where it started) and 85-90 s, c2 0-20 s,
    # A2 40-80 s, A3 0-30 s.
    watching = [5, 4, 4, 4, 4, 3, 3, 2, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]
    assert result.retention == pytest.approx([n / 6 for n in watching])

    # A signed-out client id counts as one viewer: a view, then a new visit 11 minutes
    # later that is within 30 minutes of that view, so not another.
    for t in range(3000, 3070, 10):
        await world.ping(t, video, t - 3000, client=c2)
    assert (await world.service.views.analytics(owner, video)).views == 4
    for t in range(3700, 3770, 10):
        await world.ping(t, video, t - 3700, client=c2)
    assert (await world.service.views.analytics(owner, video)).views == 4


async def test_views_of_a_short_video_count_at_half_of_it(world: World) -> None:
    owner, viewer = await world.user(), await world.user()
    video = await world.video(owner, duration=10.0)
    await world.ping(0, video, 0, viewer)
    await world.ping(4, video, 4, viewer)
    assert (await world.service.views.analytics(owner, video)).views == 0
    await world.ping(5, video, 5, viewer)
    assert (await world.service.views.analytics(owner, video)).views == 1


async def test_top_videos_per_period_and_the_dashboards(world: World) -> None:
    owner, fan = await world.user("CREATOR"), await world.user()
    admin = await world.user("ADMIN")
    recent = await world.video(owner, duration=60.0)
    older = await world.video(owner, duration=60.0)
    hidden = await world.video(owner, duration=60.0, visibility="PRIVATE")
    viewers = [await world.user() for _ in range(4)]
    # Four views of `older` ten days back, two of `recent` now, one of the private one.
    for n, who in enumerate(viewers):
        await world.ping(-10 * DAY + n, older, 0, who)
        await world.ping(-10 * DAY + n + 30, older, 30, who)
    for who in viewers[:2]:
        await world.ping(0, recent, 0, who)
        await world.ping(30, recent, 30, who)
    await world.ping(0, hidden, 0, owner)
    await world.ping(30, hidden, 30, owner)
    await world.service.reactions.react(fan, recent, "LIKE")
    await world.service.reactions.react(viewers[0], recent, "DISLIKE")
    await world.service.comments.add(fan, recent, "nice", None)
    await world.service.follows.follow(fan, owner.subject)
    world.clock.now = T0 + 60

    top = world.service.views.top_videos
    assert await top("DAY", 10) == [(recent, 2)]
    assert await top("WEEK", 10) == [(recent, 2)]
    assert await top("MONTH", 10) == [(older, 4), (recent, 2)]
    assert await top("ALL", 1) == [(older, 4)]
    with pytest.raises(BadUserInput):
        await top("YEAR", 10)

    dashboard = await world.service.views.dashboard(owner)
    assert (dashboard.video_count, dashboard.views, dashboard.unique_viewers) == (3, 7, 5)
    assert dashboard.watch_time_seconds == pytest.approx(7 * 30)
    assert (dashboard.likes, dashboard.dislikes, dashboard.comments) == (1, 1, 1)
    assert dashboard.followers == 1
    assert (await world.service.views.dashboard(fan)).video_count == 0

    stats = await world.service.views.platform(admin)
    assert stats.views >= 7 and stats.follows >= 1 and stats.videos >= 3
    with pytest.raises(Forbidden):
        await world.service.views.platform(owner)
    with pytest.raises(Unauthenticated):
        await world.service.views.dashboard(None)


async def test_analytics_are_for_the_owner_and_admins(world: World) -> None:
    owner, other = await world.user("CREATOR"), await world.user()
    admin = await world.user("ADMIN")
    public = await world.video(owner)
    private = await world.video(owner, visibility="PRIVATE")
    assert (await world.service.views.analytics(admin, private)).views == 0
    with pytest.raises(Forbidden):
        await world.service.views.analytics(other, public)
    with pytest.raises(NotFound):
        await world.service.views.analytics(other, private)
    with pytest.raises(Unauthenticated):
        await world.service.views.analytics(None, public)
    # A token that still says ADMIN after auth demoted the account is not trusted.
    await world.event(
        "auth.user.updated", {"userId": admin.subject, "role": "VIEWER", "suspended": False}
    )
    with pytest.raises(NotFound):
        await world.service.views.analytics(admin, private)


async def test_chat_sends_are_held_to_the_per_user_rate_and_slow_mode(world: World) -> None:
    owner, viewer = await world.user(), await world.user()
    stream = str(uuid.uuid4())
    await world.event(
        "video.stream.created", {"streamId": stream, "ownerId": owner.subject, "title": "t"}
    )
    chat = world.service.chat
    interval = world.service.parts.settings.chat_min_interval
    assert interval == 1.0  # the default: one message per second per user and room
    await chat.send(viewer, stream, "one")
    with pytest.raises(RateLimited) as limited:
        await chat.send(viewer, stream, "two")
    assert limited.value.retry_after == 1
    world.clock.now += 1.0
    await chat.send(viewer, stream, "two")

    await chat.set_slow_mode(owner, stream, 30)
    world.clock.now += 10
    with pytest.raises(RateLimited) as limited:
        await chat.send(viewer, stream, "three")
    assert limited.value.retry_after == 20
    # The owner is held to the base rate only.
    await chat.send(owner, stream, "owner")
    world.clock.now += 1
    await chat.send(owner, stream, "owner again")
    world.clock.now += 20
    await chat.send(viewer, stream, "three")
    assert [m.body for m in await chat.history(stream, 10)] == [
        "one",
        "two",
        "owner",
        "owner again",
        "three",
    ]
