"""The transcode job handler called directly, on a real local bus and storage: deliveries
beyond the attempt limit, and what it leaves in storage."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from media_worker.jobs.transcode import TranscodeJob
from subgraphs.kernel.bus import Bus, Message, open_bus
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import LocalStorage
from tests.media_worker.harness import Answers, keys_under


@dataclass
class Setup:
    job: TranscodeJob
    bus: Bus
    storage: LocalStorage
    answers: Answers


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    settings = Settings(data_dir=tmp_path, bus="local", media_max_attempts=2)
    bus = open_bus(settings)
    storage = LocalStorage(tmp_path / "media")
    try:
        yield Setup(TranscodeJob(bus, storage, settings), bus, storage, Answers(bus))
    finally:
        await bus.close()


def _delivery(video_id: str, attempt: int) -> Message:
    payload = {
        "videoId": video_id,
        "sourceKey": f"uploads/{video_id}/source",
        "outputPrefix": f"videos/{video_id}/",
    }
    return Message("1", "media.transcode", payload, time.time(), attempt=attempt)


async def test_a_job_whose_workers_kept_dying_fails_and_leaves_nothing(setup: Setup) -> None:
    video_id = str(uuid.uuid4())
    await setup.storage.put(f"videos/{video_id}/hls/720p/segment_00000.ts", b"partial")
    await setup.job(_delivery(video_id, attempt=3))  # two interrupted deliveries: the limit
    outcome = await setup.answers.outcome(video_id)
    assert outcome.topic == "media.failed"
    assert outcome.payload == {
        "videoId": video_id,
        "code": "TRANSCODE_FAILED",
        "reason": "The worker was stopped or crashed 2 times while processing this video. "
        "Gave up after 2 attempts.",
        "attempts": 2,
    }
    assert await keys_under(setup.storage, f"videos/{video_id}/") == []


async def test_a_finished_job_is_announced_however_often_it_was_delivered(setup: Setup) -> None:
    video_id = str(uuid.uuid4())
    document = {"videoId": video_id, "master": "hls/master.m3u8", "renditions": []}
    await setup.storage.put(f"videos/{video_id}/hls/master.m3u8", b"#EXTM3U\n")
    await setup.storage.put(f"videos/{video_id}/media.json", orjson.dumps(document))
    await setup.job(_delivery(video_id, attempt=7))
    outcome = await setup.answers.outcome(video_id)
    assert (outcome.topic, outcome.payload) == ("media.ready", document)
    assert len(await keys_under(setup.storage, f"videos/{video_id}/")) == 2
