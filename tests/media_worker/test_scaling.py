"""More than one job at a time: two workers share the queue (each job done once, leases held
through long transcodes), and one worker runs REELGRAPH_MEDIA_CONCURRENCY jobs at once."""

from __future__ import annotations

from pathlib import Path

from subgraphs.kernel.bus import open_bus
from subgraphs.kernel.storage import LocalStorage
from tests.media_worker import media
from tests.media_worker.harness import Answers, check_stored_hls, running_worker, submit
from tests.support.processes import environment

# x264's slowest preset makes each job last several lease periods (renewed every third).
SLOW = {"REELGRAPH_MEDIA_PRESET": "veryslow"}


async def test_two_workers_each_take_one_job_and_hold_its_lease(tmp_path: Path) -> None:
    with environment(
        tmp_path, database="sqlite", bus="redis", REELGRAPH_BUS_VISIBILITY_TIMEOUT="2"
    ) as env:
        events = open_bus(env.settings())
        storage = LocalStorage(tmp_path / "media")
        answers = Answers(events)
        try:
            source = media.make_clip(
                tmp_path / "clip.mp4", width=640, height=360, seconds=5, fps=30
            )
            with running_worker(env, **SLOW) as first, running_worker(env, **SLOW) as second:
                videos = [await submit(events, storage, source) for _ in range(2)]
                outcomes = [await answers.outcome(video) for video in videos]
                assert [o.topic for o in outcomes] == ["media.ready", "media.ready"]
                for video, outcome in zip(videos, outcomes, strict=True):
                    await check_stored_hls(storage, video, outcome.payload, tmp_path)
                logs = [first.log(), second.log()]
            # One job each, and neither was handed to the other worker while it ran.
            assert [log.count("stored; ready") for log in logs] == [1, 1]
            assert not any("resuming" in log for log in logs)
            for video in videos:
                assert len(answers.of(video, "media.ready")) == 1
            durations = [
                float(line.split(" s of media in ")[1].split(" s")[0])
                for log in logs
                for line in log.splitlines()
                if " s of media in " in line
            ]
            assert min(durations) > 2, "the jobs must outlast the lease to prove renewal"
        finally:
            await storage.close()
            await events.close()


async def test_one_worker_runs_jobs_concurrently(tmp_path: Path) -> None:
    with environment(tmp_path, database="sqlite", bus="local") as env:
        events = open_bus(env.settings())
        storage = LocalStorage(tmp_path / "media")
        answers = Answers(events)
        try:
            long = media.make_clip(tmp_path / "long.mp4", width=640, height=360, seconds=4, fps=30)
            short = media.make_clip(
                tmp_path / "short.mp4", width=160, height=120, seconds=1, fps=10
            )
            with running_worker(env, REELGRAPH_MEDIA_CONCURRENCY="2", **SLOW):
                slow_video = await submit(events, storage, long)
                await answers.first_progress(slow_video)
                quick_video = await submit(events, storage, short)
                quick = await answers.outcome(quick_video)
                assert quick.topic == "media.ready"
                # The short job finished while the long one was still being transcoded.
                assert answers.of(slow_video, "media.ready") == []
                assert (await answers.outcome(slow_video)).topic == "media.ready"
        finally:
            await storage.close()
            await events.close()
