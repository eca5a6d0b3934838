"""The media worker's answers (real `media.*` events on the bus) drive a video's processing:
progress, READY with its media, FAILED with a reason; duplicates and late events never move a
video backwards. The `videoProcessing` subscription follows it across replicas."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest

from tests.support.ws import Subscription
from tests.support.ws import subscribe as subscribe_to
from tests.video.conftest import Api, Person, Stack, eventually

SUBSCRIPTION = """
subscription P($id: ID!) {
  videoProcessing(videoId: $id) { videoId status progress failureReason video { id status } }
}
"""


async def test_progress_then_ready_stores_the_media_and_announces_it(api: Api) -> None:
    creator = await api.register()
    video_id = await api.processing_video(creator, title="Launch day")

    await api.publish("media.progress", {"videoId": video_id, "progress": 0.25})
    await api.wait_for_video(video_id, creator, lambda v: v["processingProgress"] == 0.25)
    await api.publish("media.progress", {"videoId": video_id, "progress": 0.75})
    await api.wait_for_video(video_id, creator, lambda v: v["processingProgress"] == 0.75)
    await api.finish_processing(video_id)
    video = await api.wait_for_video(video_id, creator, lambda v: v["status"] == "READY")

    document = api.stack.media_document
    assert video["processingProgress"] == 1.0
    assert video["durationSeconds"] == document["durationSeconds"]
    assert video["publishedAt"] is not None
    base = f"{api.video_url}/media/{video_id}/public/"
    assert video["hlsUrl"] == base + "hls/master.m3u8"
    assert video["thumbnailUrl"] == base + "poster.jpg"
    assert video["storyboard"]["imageUrl"] == base + "storyboard.jpg"
    assert video["storyboard"]["vttUrl"] == base + "storyboard.vtt"
    assert video["storyboard"]["intervalSeconds"] == 2.0
    (rendition,) = video["renditions"]
    expected = document["renditions"][0]
    assert rendition == {
        "name": expected["name"],
        "width": expected["width"],
        "height": expected["height"],
        "bandwidth": expected["bandwidth"],
        "averageBandwidth": expected["averageBandwidth"],
        "codecs": expected["codecs"],
        "frameRate": expected["frameRate"],
    }
    ready = await api.events(
        "video.ready", lambda p: p["videoId"] == video_id, until=lambda f: len(f) == 1
    )
    assert ready[0]["ownerId"] == creator.id
    assert ready[0]["durationSeconds"] == document["durationSeconds"]
    assert set(ready[0]) == {
        "videoId",
        "ownerId",
        "title",
        "visibility",
        "durationSeconds",
        "publishedAt",
    }
    statuses = await api.events(
        "video.processing",
        lambda p: p["videoId"] == video_id,
        until=lambda f: any(p["status"] == "READY" for p in f),
    )
    assert [p["status"] for p in statuses][-1] == "READY"
    assert [p["progress"] for p in statuses if p["status"] == "PROCESSING"][-2:] == [0.25, 0.75]


async def test_duplicate_and_late_events_never_move_a_finished_video_backwards(
    api: Api,
) -> None:
    creator = await api.register()
    ready_id = await api.ready_video(creator)
    failed_id = await api.processing_video(creator)
    await api.publish(
        "media.failed",
        {"videoId": failed_id, "code": "CORRUPT_MEDIA", "reason": "Broken.", "attempts": 1},
    )
    await api.wait_for_video(failed_id, creator, lambda v: v["status"] == "FAILED")

    # Late and repeated answers for both, then a marker whose effect we can wait for.
    for video_id in (ready_id, failed_id):
        await api.publish("media.progress", {"videoId": video_id, "progress": 0.1})
        await api.publish(
            "media.failed",
            {"videoId": video_id, "code": "TRANSCODE_FAILED", "reason": "Late.", "attempts": 3},
        )
        await api.finish_processing(video_id, durationSeconds=99.0)
    marker = await api.processing_video(creator)
    await api.publish("media.progress", {"videoId": marker, "progress": 0.5})
    await api.finish_processing(marker)
    await api.wait_for_video(marker, creator, lambda v: v["status"] == "READY")

    ready = await api.video(ready_id, creator)
    failed = await api.video(failed_id, creator)
    assert ready is not None and failed is not None
    assert (ready["status"], ready["processingProgress"]) == ("READY", 1.0)
    assert ready["durationSeconds"] == api.stack.media_document["durationSeconds"]
    assert (failed["status"], failed["failureReason"]) == ("FAILED", "Broken.")
    assert failed["hlsUrl"] is None
    announced = await api.events(
        "video.ready", lambda p: p["videoId"] in (ready_id, failed_id), timeout=2
    )
    assert [p["videoId"] for p in announced] == [ready_id]


async def test_failure_reasons_are_for_the_owner_and_admins_only(api: Api) -> None:
    creator = await api.register()
    other = await api.register()
    admin = await api.admin()
    video_id = await api.processing_video(creator, visibility="PUBLIC")
    await api.publish(
        "media.failed",
        {"videoId": video_id, "code": "NOT_MEDIA", "reason": "Not a video file.", "attempts": 1},
    )

    await api.wait_for_video(video_id, creator, lambda v: v["status"] == "FAILED")

    assert (await api.video(video_id, admin) or {})["failureReason"] == "Not a video file."
    assert await api.video(video_id, other) is None
    assert await api.video(video_id) is None
    failed = await api.events(
        "video.failed", lambda p: p["videoId"] == video_id, until=lambda f: len(f) == 1
    )
    assert failed == [{"videoId": video_id, "ownerId": creator.id, "reason": "Not a video file."}]


async def test_an_unusable_ready_report_fails_the_video(api: Api) -> None:
    creator = await api.register()
    video_id = await api.processing_video(creator)
    await api.publish("media.ready", {"videoId": video_id, "durationSeconds": 3.0})
    video = await api.wait_for_video(video_id, creator, lambda v: v["status"] == "FAILED")
    assert video["failureReason"] == "Processing produced no playable media."


async def test_media_for_a_deleted_video_is_removed_when_the_worker_reports(api: Api) -> None:
    # The worker finished a video that was deleted meanwhile: its outputs must not linger.
    ghost = str(uuid.uuid4())
    await api.write_media(ghost)
    assert [i async for i in api.storage.list(f"videos/{ghost}/")]
    await api.publish("media.ready", {"videoId": ghost, **api.stack.media_document})

    async def emptied() -> bool:
        return [i async for i in api.storage.list(f"videos/{ghost}/")] == []

    await eventually(emptied, "the orphaned media was never removed")


# --- the subscription --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def subscribe(
    url: str, video_id: str, who: Person | None, *, via: Literal["init", "header"] = "init"
) -> AsyncIterator[Subscription]:
    async with subscribe_to(
        url + "/graphql",
        SUBSCRIPTION,
        {"id": video_id},
        token=who.token if who else None,
        via=via,
    ) as subscription:
        yield subscription


def _event(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    event: dict[str, Any] = message["payload"]["data"]["videoProcessing"]
    return event


async def test_the_owner_follows_progress_to_ready_on_another_replica(
    api: Api, stack: Stack
) -> None:
    creator = await api.register()
    video_id = await api.processing_video(creator)

    # Subscribed on the second replica; the consumer that applies the events may be either.
    async with subscribe(stack.replica().url, video_id, creator) as subscription:
        first = _event(await subscription.message())
        assert (first["status"], first["progress"]) == ("PROCESSING", 0.0)
        await api.publish("media.progress", {"videoId": video_id, "progress": 0.4})
        progress = _event(await subscription.message())
        assert (progress["status"], progress["progress"]) == ("PROCESSING", 0.4)
        await api.finish_processing(video_id)
        done = _event(await subscription.message())
        assert done["status"] == "READY"
        assert done["progress"] == 1.0
        assert done["video"] == {"id": video_id, "status": "READY"}
        assert (await subscription.message())["type"] == "complete"


async def test_the_subscription_ends_with_failed_and_its_reason(api: Api) -> None:
    creator = await api.register()
    video_id = await api.processing_video(creator)

    async with subscribe(api.video_url, video_id, creator, via="header") as subscription:
        assert _event(await subscription.message())["status"] == "PROCESSING"
        await api.publish(
            "media.failed",
            {"videoId": video_id, "code": "TOO_LONG", "reason": "Too long.", "attempts": 1},
        )
        failed = _event(await subscription.message())
        assert (failed["status"], failed["failureReason"]) == ("FAILED", "Too long.")
        assert (await subscription.message())["type"] == "complete"

    # Subscribing to a finished video answers its state at once and completes.
    async with subscribe(api.video_url, video_id, creator) as subscription:
        assert _event(await subscription.message())["status"] == "FAILED"
        assert (await subscription.message())["type"] == "complete"


@pytest.mark.parametrize(
    ("who", "code"),
    [("anonymous", "UNAUTHENTICATED"), ("stranger", "NOT_FOUND"), ("forged", "UNAUTHENTICATED")],
)
async def test_only_the_owner_and_admins_may_follow_processing(
    api: Api, who: str, code: str
) -> None:
    creator = await api.register()
    video_id = await api.processing_video(creator)
    person: Person | None = None
    if who == "stranger":
        person = await api.register()
    elif who == "forged":
        person = Person(creator.id, creator.handle, creator.token[:-4] + "AAAA", "CREATOR")

    async with subscribe(api.video_url, video_id, person) as subscription:
        message = await subscription.message()
    assert message["type"] in ("next", "error"), message
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert [e["extensions"]["code"] for e in errors] == [code]

    admin = await api.admin()
    async with subscribe(api.video_url, video_id, admin) as subscription:
        assert _event(await subscription.message())["videoId"] == video_id


async def test_others_cannot_follow_a_public_videos_processing(api: Api) -> None:
    creator = await api.register()
    video_id = await api.ready_video(creator)
    async with subscribe(api.video_url, video_id, await api.register()) as subscription:
        message = await subscription.message()
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
