"""Signed-out viewers cannot be made up in bulk: client ids are the client's to invent, so one
client address has at most REELGRAPH_ANONYMOUS_VIEWERS_PER_IP (5) of them counting toward a
video at once, and counts as at most REELGRAPH_ANONYMOUS_PRESENCE_PER_IP (5) live viewers of a
stream. Driven in-process with a scripted clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from subgraphs.engagement.models import AnonymousViewer
from tests.engagement.world import ADDRESS, T0, World

OTHER_ADDRESS = "2001:db8::7"


def client(n: int) -> str:
    return f"made-up-client-{n:06d}"


async def watch(world: World, at: float, video: str, *clients: str, address: str = ADDRESS) -> None:
    """Each client plays 30 s from `at` (a view of a 100 s video), from `address`."""
    for c in clients:
        await world.ping(at, video, 0, client=c, address=address)
    for c in clients:
        await world.ping(at + 30, video, 30, client=c, address=address)


async def test_one_address_counts_a_few_made_up_client_ids_per_video(world: World) -> None:
    owner, member = await world.user("CREATOR"), await world.user()
    video, other_video = await world.video(owner), await world.video(owner)
    analytics = world.service.views.analytics

    # A script: eight client ids from one address, two pings each.
    await watch(world, 0, video, *(client(n) for n in range(1, 9)))
    result = await analytics(owner, video)
    assert (result.views, result.unique_viewers) == (5, 5)
    assert result.watch_time_seconds == 5 * 30  # the other three recorded nothing at all
    assert result.retention[0] == 1.0 and result.retention[6] == 1.0  # 5 visits, all at 30 %

    # Past the allowance a ping is answered as usual: nothing tells the script it was dropped.
    progress = await world.service.views.record(None, video, 45.0, client(8), address=ADDRESS)
    assert (progress.position_seconds, progress.duration_seconds) == (45.0, 100.0)

    # Another address, a signed-in viewer at the same address, another video: all count.
    await watch(world, 0, video, client(9), address=OTHER_ADDRESS)
    await world.ping(0, video, 0, member, address=ADDRESS)
    await world.ping(30, video, 30, member, address=ADDRESS)
    await watch(world, 0, other_video, *(client(n) for n in range(1, 7)))
    assert (await analytics(owner, video)).views == 7
    assert (await analytics(owner, other_video)).views == 5

    # A client id keeps its place while it keeps pinging; the others' places free up once
    # they have been idle for the window (30 minutes), and new client ids take them.
    await world.ping(1000, video, 40, client=client(1))
    await watch(world, 1900, video, *(client(n) for n in range(10, 15)))
    result = await analytics(owner, video)
    assert (result.views, result.unique_viewers) == (11, 11)  # 10-13 counted, 14 did not


async def test_idle_anonymous_viewers_are_swept_and_go_with_their_video(world: World) -> None:
    owner = await world.user("CREATOR")
    video, kept = await world.video(owner), await world.video(owner)
    await watch(world, 0, video, client(1), client(2))
    await watch(world, 0, kept, client(1))

    async def rows() -> int:
        async with world.db.transaction() as session:
            return int(
                (
                    await session.execute(select(func.count()).select_from(AnonymousViewer))
                ).scalar_one()
            )

    assert await rows() == 3
    world.clock.now = T0 + 30 + 1799  # within the window of the last pings: all held
    assert await world.service.views.forget_idle_viewers() == 0
    await world.ping(1829, kept, 31, client=client(1))  # renewed
    world.clock.now = T0 + 30 + 1800  # a window after: free, and swept
    assert await world.service.views.forget_idle_viewers() == 2
    assert await rows() == 1

    await world.event("video.deleted", {"videoId": kept, "ownerId": owner.subject})
    assert await rows() == 0


async def test_one_address_counts_as_a_few_live_viewers(world: World) -> None:
    owner, member = await world.user(), await world.user()
    stream = await world.stream(owner)
    presence = world.service.presence

    tabs = [await presence.join(None, stream, address=ADDRESS) for _ in range(7)]
    assert [t.viewer_count for t in tabs] == [1, 2, 3, 4, 5, 5, 5]
    elsewhere = await presence.join(None, stream, address=OTHER_ADDRESS)
    signed_in = await presence.join(member, stream, address=ADDRESS)
    assert (elsewhere.viewer_count, signed_in.viewer_count) == (6, 7)

    # Closing tabs: the address keeps counting as min(open tabs, 5), whichever tabs close.
    for tab, expected in zip(tabs[:5], (7, 7, 6, 5, 4), strict=True):
        await presence.leave(tab.connection_id)
        assert (await presence.counts([stream]))[stream] == expected
    for tab in tabs[5:]:
        await presence.leave(tab.connection_id)
    await presence.leave(elsewhere.connection_id)
    assert (await presence.counts([stream]))[stream] == 1
