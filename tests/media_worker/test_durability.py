"""A worker killed (-9) or stopped (SIGTERM) mid-job loses nothing: the job's lease lapses, it
is redone by another worker into a clean output, and no scratch files are left behind."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest

from subgraphs.kernel.bus import open_bus
from subgraphs.kernel.storage import LocalStorage
from tests.media_worker import media
from tests.media_worker.harness import (
    Answers,
    WorkerProcess,
    check_stored_hls,
    decode_jpeg,
    running_worker,
    submit,
)
from tests.support.processes import environment

# Leases lapse 3 s after a worker stops renewing them.
VISIBILITY = "3"
# The first worker encodes slowly on purpose, so it is surely mid-job when it is stopped.
SLOW = {"REELGRAPH_MEDIA_PRESET": "veryslow"}


@pytest.mark.parametrize("bus", ["redis", "local"])
async def test_kill_9_mid_job_and_another_worker_finishes_it_cleanly(
    tmp_path: Path, bus: str
) -> None:
    with environment(
        tmp_path, database="sqlite", bus=bus, REELGRAPH_BUS_VISIBILITY_TIMEOUT=VISIBILITY
    ) as env:
        events = open_bus(env.settings())
        storage = LocalStorage(tmp_path / "media")
        answers = Answers(events)
        try:
            video_id = str(uuid.uuid4())
            prefix = f"videos/{video_id}/"
            # What an earlier run that crashed while uploading would have left.
            await storage.put(prefix + "hls/720p/segment_00042.ts", b"stale segment")
            await storage.put(prefix + "hls/master.m3u8", b"#EXTM3U\n#stale\n")
            await storage.put(prefix + "poster.jpg", b"not a jpeg")
            source = media.make_clip(
                tmp_path / "clip.mp4", width=640, height=360, seconds=4, fps=30
            )

            doomed = WorkerProcess(env, **SLOW).start()
            try:
                await submit(events, storage, source, video_id)
                await answers.first_progress(video_id)
                doomed.kill()
            finally:
                doomed.stop()
            await answers.poll()
            assert answers.of(video_id, "media.ready") == []
            # The killed worker could not clean up after itself.
            assert len(list(doomed.work_dir.iterdir())) == 1

            with running_worker(env) as rescuer:
                outcome = await answers.outcome(video_id)
                assert outcome.topic == "media.ready", outcome.payload
                assert "resuming after 1 interrupted attempts" in rescuer.log()
                document = outcome.payload
                await check_stored_hls(storage, video_id, document, tmp_path)
                poster = tmp_path / "poster.jpg"
                await storage.download(prefix + "poster.jpg", str(poster))
                assert (decode_jpeg(poster).width, decode_jpeg(poster).height) == (640, 360)
                # The dead worker's scratch directory was swept, and the job's own removed.
                assert list(rescuer.work_dir.iterdir()) == []
            assert len(answers.of(video_id, "media.ready")) == 1
        finally:
            await storage.close()
            await events.close()


async def test_sigterm_mid_job_exits_cleanly_and_the_job_is_redone(tmp_path: Path) -> None:
    with environment(
        tmp_path, database="sqlite", bus="local", REELGRAPH_BUS_VISIBILITY_TIMEOUT=VISIBILITY
    ) as env:
        events = open_bus(env.settings())
        storage = LocalStorage(tmp_path / "media")
        answers = Answers(events)
        try:
            source = media.make_clip(
                tmp_path / "clip.mp4", width=640, height=360, seconds=4, fps=30
            )
            stopping = WorkerProcess(env, **SLOW).start()
            try:
                video_id = await submit(events, storage, source)
                await answers.first_progress(video_id)
            finally:
                code = stopping.stop()
            assert code == 0, stopping.log()
            assert "abandoned media.transcode message" in stopping.log()
            assert "Traceback" not in stopping.log()
            await answers.poll()
            assert answers.of(video_id, "media.ready") + answers.of(video_id, "media.failed") == []
            # It removed its own scratch directory before exiting.
            assert list(stopping.work_dir.iterdir()) == []

            with running_worker(env) as successor:
                outcome = await answers.outcome(video_id)
                assert outcome.topic == "media.ready", outcome.payload
                await check_stored_hls(storage, video_id, outcome.payload, tmp_path)
                assert list(successor.work_dir.iterdir()) == []
        finally:
            await storage.close()
            await events.close()


def test_sigint_when_idle_exits_zero(tmp_path: Path) -> None:
    with environment(tmp_path, database="sqlite", bus="local") as env:
        worker = WorkerProcess(env).start()
        assert worker.process is not None
        worker.process.send_signal(signal.SIGINT)
        assert worker.process.wait(60) == 0
        assert "media worker stopped" in worker.log()
