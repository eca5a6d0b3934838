"""The media worker as a real process: real `media.transcode` jobs on the bus (local and Redis),
uploads in storage (local and S3 on moto_server), and its answers read back from the bus."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from subgraphs.kernel.bus import Bus, open_bus
from subgraphs.kernel.storage import Storage
from tests.media_worker import media
from tests.media_worker.harness import (
    Answers,
    WorkerProcess,
    check_stored_hls,
    decode_jpeg,
    keys_under,
    open_test_storage,
    running_worker,
    s3_env,
    submit,
    vtt_cues,
)
from tests.support.processes import Environment, environment
from tests.support.s3 import moto_s3_endpoint  # noqa: F401

MAX_DURATION = 5.0


@dataclass
class Stack:
    environment: Environment
    worker: WorkerProcess
    bus: Bus
    storage: Storage
    answers: Answers
    tmp: Path

    def scratch_left(self) -> list[str]:
        work = self.worker.work_dir
        return sorted(p.name for p in work.iterdir()) if work.exists() else []


@pytest.fixture(scope="module")
def local_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    tmp = tmp_path_factory.mktemp("local")
    with environment(
        tmp, database="sqlite", bus="local", REELGRAPH_MEDIA_MAX_DURATION=str(MAX_DURATION)
    ) as env:
        yield env


@pytest.fixture(scope="module")
async def local(local_env: Environment) -> AsyncIterator[Stack]:
    async for stack in _stack(local_env):
        yield stack


@pytest.fixture(scope="module")
def redis_s3_env(
    tmp_path_factory: pytest.TempPathFactory,
    moto_s3_endpoint: str,  # noqa: F811
) -> Iterator[Environment]:
    tmp = tmp_path_factory.mktemp("redis-s3")
    extra = s3_env(moto_s3_endpoint, f"worker-{uuid.uuid4().hex[:12]}")
    with environment(tmp, database="sqlite", bus="redis", **extra) as env:
        yield env


@pytest.fixture(scope="module")
async def redis_s3(redis_s3_env: Environment) -> AsyncIterator[Stack]:
    async for stack in _stack(redis_s3_env):
        yield stack


async def _stack(env: Environment) -> AsyncIterator[Stack]:
    bus = open_bus(env.settings())
    storage = open_test_storage(env.env, env.data_dir)
    try:
        with running_worker(env) as worker:
            yield Stack(env, worker, bus, storage, Answers(bus), env.data_dir)
            assert "Traceback" not in worker.log(), worker.log()
    finally:
        await storage.close()
        await bus.close()


async def transcode(stack: Stack, source: Path | None) -> tuple[str, dict[str, Any]]:
    video_id = await submit(stack.bus, stack.storage, source)
    outcome = await stack.answers.outcome(video_id)
    # The scratch directory is gone before the answer is published.
    assert stack.scratch_left() == []
    return video_id, {"topic": outcome.topic, **outcome.payload}


async def ready(stack: Stack, source: Path) -> tuple[str, dict[str, Any]]:
    video_id, answer = await transcode(stack, source)
    assert answer.pop("topic") == "media.ready", answer
    return video_id, answer


async def failed(stack: Stack, source: Path | None) -> dict[str, Any]:
    video_id, answer = await transcode(stack, source)
    assert answer.pop("topic") == "media.failed", answer
    assert answer["videoId"] == video_id
    # Nothing is left in storage for a failed video.
    assert await keys_under(stack.storage, f"videos/{video_id}/") == []
    return answer


# --- good uploads, local bus and local storage ----------------------------------------------


async def test_full_hd_with_audio(local: Stack) -> None:
    source = media.make_clip(local.tmp / "hd.mp4", width=1920, height=1080, seconds=2, fps=30)
    video_id, document = await ready(local, source)
    assert document["durationSeconds"] == pytest.approx(2.0, abs=0.1)
    assert document["hasVideo"] and document["hasAudio"]
    assert [(r["name"], r["width"], r["height"]) for r in document["renditions"]] == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]
    assert all(r["codecs"].endswith(",mp4a.40.2") for r in document["renditions"])
    assert all(r["frameRate"] == 30.0 for r in document["renditions"])
    variants = await check_stored_hls(local.storage, video_id, document, local.tmp)
    # 720p leads the master, so hls.js starts there; the rest follow highest first.
    assert [v.uri for v in variants] == [
        "720p/index.m3u8",
        "1080p/index.m3u8",
        "480p/index.m3u8",
        "360p/index.m3u8",
        "240p/index.m3u8",
    ]
    assert len(variants[0].segments) == 2

    assert document["thumbnail"] == "poster.jpg"
    poster = local.tmp / f"{video_id}.jpg"
    await local.storage.download(f"videos/{video_id}/poster.jpg", str(poster))
    assert (decode_jpeg(poster).width, decode_jpeg(poster).height) == (1280, 720)
    assert document["storyboard"]["tileWidth"] == 160
    vtt = (await local.storage.get(f"videos/{video_id}/storyboard.vtt")).decode()
    assert [cue[2] for cue in vtt_cues(vtt)] == ["storyboard.jpg#xywh=0,0,160,90"]
    assert (await local.storage.stat(f"videos/{video_id}/storyboard.jpg")).size > 0

    # Progress: from 0, increasing, and throttled to about two messages a second.
    progress = local.answers.of(video_id, "media.progress")
    values = [m.payload["progress"] for m in progress]
    assert values[0] == 0.0 and values == sorted(values) and len(set(values)) == len(values)
    assert all(0.0 <= v <= 1.0 for v in values)
    gaps = [b.published_at - a.published_at for a, b in itertools.pairwise(progress)]
    assert all(gap >= 0.4 for gap in gaps), gaps


async def test_rotated_phone_clip_comes_out_portrait(local: Stack) -> None:
    source = media.make_clip(
        local.tmp / "phone.mp4", width=640, height=360, seconds=2, fps=30, rotate=90
    )
    video_id, document = await ready(local, source)
    assert [(r["width"], r["height"]) for r in document["renditions"]] == [(360, 640), (240, 426)]
    await check_stored_hls(local.storage, video_id, document, local.tmp)
    assert (document["storyboard"]["tileWidth"], document["storyboard"]["tileHeight"]) == (160, 284)


async def test_odd_dimensions(local: Stack) -> None:
    source = media.make_clip(local.tmp / "odd.mp4", width=641, height=361, seconds=2, fps=24)
    video_id, document = await ready(local, source)
    assert [(r["width"], r["height"]) for r in document["renditions"]] == [(640, 360), (426, 240)]
    assert all(r["frameRate"] == 24.0 for r in document["renditions"])
    await check_stored_hls(local.storage, video_id, document, local.tmp)


async def test_anamorphic_pixels_are_made_square(local: Stack) -> None:
    source = media.make_clip(
        local.tmp / "dv.mp4", width=480, height=360, seconds=1, fps=25, sar=Fraction(4, 3)
    )
    video_id, document = await ready(local, source)
    assert [(r["width"], r["height"]) for r in document["renditions"]] == [(640, 360), (426, 240)]
    await check_stored_hls(local.storage, video_id, document, local.tmp)


async def test_variable_frame_rate(local: Stack) -> None:
    source = media.make_clip(
        local.tmp / "vfr.mp4", width=320, height=240, seconds=3, fps=30, vfr=True
    )
    video_id, document = await ready(local, source)
    assert document["durationSeconds"] == pytest.approx(3.0, abs=0.15)
    [rendition] = document["renditions"]
    # Frames alternate between 1/30 s and 3/30 s: HLS's FRAME-RATE is the maximum, 30.
    assert rendition["frameRate"] == 30.0
    variants = await check_stored_hls(local.storage, video_id, document, local.tmp)
    assert len(variants[0].segments) == 3


async def test_video_without_audio(local: Stack) -> None:
    source = media.make_clip(
        local.tmp / "mute.mp4", width=320, height=240, seconds=2, fps=25, audio=False
    )
    video_id, document = await ready(local, source)
    assert document["hasVideo"] and not document["hasAudio"]
    assert all("mp4a" not in r["codecs"] for r in document["renditions"])
    await check_stored_hls(local.storage, video_id, document, local.tmp)


async def test_audio_only_gets_one_aac_rendition(local: Stack) -> None:
    video_id, document = await ready(local, media.make_audio_only(local.tmp / "song.m4a", 3))
    assert not document["hasVideo"] and document["hasAudio"]
    assert document["renditions"] == [
        {
            "name": "audio",
            "width": None,
            "height": None,
            "bandwidth": document["renditions"][0]["bandwidth"],
            "averageBandwidth": document["renditions"][0]["averageBandwidth"],
            "codecs": "mp4a.40.2",
            "frameRate": None,
        }
    ]
    assert document["thumbnail"] is None and document["storyboard"] is None
    await check_stored_hls(local.storage, video_id, document, local.tmp)
    assert sorted(await keys_under(local.storage, f"videos/{video_id}/"))[-1].endswith("media.json")
    assert not await local.storage.exists(f"videos/{video_id}/poster.jpg")


async def test_one_second_clip_and_a_redelivered_job_is_only_announced(local: Stack) -> None:
    source = media.make_clip(local.tmp / "short.mp4", width=320, height=240, seconds=1, fps=25)
    video_id, document = await ready(local, source)
    assert document["durationSeconds"] == pytest.approx(1.0, abs=0.1)
    await check_stored_hls(local.storage, video_id, document, local.tmp)
    before = {
        info.key: info.modified_at async for info in local.storage.list(f"videos/{video_id}/")
    }
    progress_before = len(local.answers.of(video_id, "media.progress"))

    # The same job again, as a redelivery after a lost ack would bring it.
    await local.bus.publish(
        "media.transcode",
        {
            "videoId": video_id,
            "sourceKey": f"uploads/{video_id}/source",
            "outputPrefix": f"videos/{video_id}/",
        },
    )
    while len(local.answers.of(video_id, "media.ready")) < 2:
        await local.answers.outcome(video_id)  # polls; raises after its deadline
    first, second = local.answers.of(video_id, "media.ready")
    assert second.payload == first.payload
    after = {info.key: info.modified_at async for info in local.storage.list(f"videos/{video_id}/")}
    assert after == before  # nothing transcoded or written again
    assert len(local.answers.of(video_id, "media.progress")) == progress_before


# --- bad uploads: each fails at once, with its code -----------------------------------------


async def test_corrupt_file(local: Stack) -> None:
    answer = await failed(local, media.make_corrupt(local.tmp / "corrupt.mp4"))
    assert (answer["code"], answer["attempts"]) == ("CORRUPT_MEDIA", 1)
    assert "damaged" in answer["reason"]


async def test_truncated_upload(local: Stack) -> None:
    answer = await failed(local, media.make_truncated(local.tmp / "half.mp4"))
    assert answer["code"] == "CORRUPT_MEDIA"


async def test_text_file_named_mp4(local: Stack) -> None:
    answer = await failed(local, media.make_text_as_mp4(local.tmp / "notes.mp4"))
    assert (answer["code"], answer["reason"]) == (
        "NOT_MEDIA",
        "The file is not a video or audio file.",
    )


async def test_zero_bytes(local: Stack) -> None:
    answer = await failed(local, media.make_empty(local.tmp / "empty.mp4"))
    assert answer["code"] == "EMPTY_FILE"


async def test_too_long(local: Stack) -> None:
    source = media.make_clip(
        local.tmp / "long.mp4", width=160, height=120, seconds=6, fps=10, audio=False
    )
    answer = await failed(local, source)
    assert answer["code"] == "TOO_LONG"
    assert f"the limit is {MAX_DURATION:g} s" in answer["reason"]


async def test_missing_source(local: Stack) -> None:
    answer = await failed(local, None)
    assert (answer["code"], answer["attempts"]) == ("SOURCE_MISSING", 1)


async def test_malformed_jobs_are_answered_or_dropped_and_the_worker_goes_on(local: Stack) -> None:
    await local.bus.publish("media.transcode", {"sourceKey": "x"})  # no video: only logged
    await local.bus.publish(
        "media.transcode",
        {"videoId": "bad-prefix", "sourceKey": "uploads/x/source", "outputPrefix": "../etc/"},
    )
    outcome = await local.answers.outcome("bad-prefix")
    assert outcome.topic == "media.failed"
    assert outcome.payload["code"] == "TRANSCODE_FAILED"
    source = media.make_clip(local.tmp / "after.mp4", width=160, height=120, seconds=1, fps=10)
    await ready(local, source)


# --- Redis bus and S3 storage ---------------------------------------------------------------


async def test_redis_and_s3_clip_with_audio(redis_s3: Stack) -> None:
    source = media.make_clip(redis_s3.tmp / "clip.mp4", width=640, height=360, seconds=2, fps=25)
    video_id, document = await ready(redis_s3, source)
    assert [r["name"] for r in document["renditions"]] == ["360p", "240p"]
    await check_stored_hls(redis_s3.storage, video_id, document, redis_s3.tmp)
    assert (await redis_s3.storage.stat(f"videos/{video_id}/hls/master.m3u8")).content_type == (
        "application/vnd.apple.mpegurl"
    )
    assert (await redis_s3.storage.stat(f"videos/{video_id}/storyboard.vtt")).content_type == (
        "text/vtt"
    )


async def test_redis_and_s3_audio_only(redis_s3: Stack) -> None:
    video_id, document = await ready(redis_s3, media.make_audio_only(redis_s3.tmp / "a.m4a", 2))
    assert [r["codecs"] for r in document["renditions"]] == ["mp4a.40.2"]
    await check_stored_hls(redis_s3.storage, video_id, document, redis_s3.tmp)


async def test_redis_and_s3_rejects_what_is_not_media(redis_s3: Stack) -> None:
    answer = await failed(redis_s3, media.make_text_as_mp4(redis_s3.tmp / "n.mp4"))
    assert answer["code"] == "NOT_MEDIA"
