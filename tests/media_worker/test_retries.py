"""Transient failures are retried with backoff; when they persist the job fails with
TRANSCODE_FAILED and a readable reason. Storage really is unreachable here: the worker's S3
endpoint is a port nobody listens on until the test opens a proxy to moto_server there."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import orjson

from subgraphs.kernel.bus import open_bus
from subgraphs.kernel.storage import S3Storage
from tests.media_worker import media
from tests.media_worker.harness import (
    Answers,
    TcpProxy,
    check_stored_hls,
    running_worker,
    s3_env,
    submit,
)
from tests.support.processes import environment
from tests.support.s3 import (  # noqa: F401
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    REGION,
    moto_s3_endpoint,
)


def _moto_storage(endpoint: str, bucket: str) -> S3Storage:
    return S3Storage(
        bucket,
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=DUMMY_ACCESS_KEY_ID,
        secret_access_key=DUMMY_SECRET_ACCESS_KEY,
    )


def _failure_times(log: str) -> list[float]:
    return [
        entry["ts"]
        for entry in (orjson.loads(line) for line in log.splitlines() if line.startswith("{"))
        if "failed while" in entry["msg"]
    ]


async def test_storage_down_at_first_then_up_is_retried_with_backoff(
    tmp_path: Path,
    moto_s3_endpoint: str,  # noqa: F811
) -> None:
    bucket = f"retry-{uuid.uuid4().hex[:12]}"
    proxy = TcpProxy(moto_s3_endpoint)
    with environment(
        tmp_path,
        database="sqlite",
        bus="local",
        REELGRAPH_MEDIA_MAX_ATTEMPTS="6",
        **s3_env(proxy.url, bucket),
    ) as env:
        events = open_bus(env.settings())
        storage = _moto_storage(moto_s3_endpoint, bucket)
        answers = Answers(events)
        try:
            source = media.make_clip(
                tmp_path / "clip.mp4", width=320, height=240, seconds=1, fps=25
            )
            with running_worker(env) as worker:
                video_id = await submit(events, storage, source)
                await worker.await_log("attempt 1 of 6 failed while downloading")
                await answers.poll()
                assert answers.of(video_id, "media.failed") == []
                await proxy.open()  # storage is back
                outcome = await answers.outcome(video_id)
                assert outcome.topic == "media.ready", outcome.payload
                await check_stored_hls(storage, video_id, outcome.payload, tmp_path)
                failures = _failure_times(worker.log())
            # 2 s, then 4 s, ... between attempts (at least: each attempt also takes time).
            for (earlier, later), backoff in zip(
                itertools.pairwise(failures), (2, 4, 8, 16), strict=False
            ):
                assert later - earlier >= backoff
        finally:
            await proxy.close()
            await storage.close()
            await events.close()


async def test_persistent_storage_failure_gives_up_with_a_readable_reason(tmp_path: Path) -> None:
    nobody = TcpProxy("http://127.0.0.1:9")  # never opened
    with environment(
        tmp_path,
        database="sqlite",
        bus="local",
        REELGRAPH_MEDIA_MAX_ATTEMPTS="2",
        REELGRAPH_MEDIA_RETRY_BACKOFF="0.2",
        **s3_env(nobody.url, "never"),
    ) as env:
        events = open_bus(env.settings())
        answers = Answers(events)
        try:
            with running_worker(env) as worker:
                video_id = await submit(events, None, None)
                outcome = await answers.outcome(video_id)
                assert outcome.topic == "media.failed"
                assert outcome.payload == {
                    "videoId": video_id,
                    "code": "TRANSCODE_FAILED",
                    "reason": "The upload could not be read from storage. Gave up after 2 attempts.",
                    "attempts": 2,
                }
                assert len(_failure_times(worker.log())) == 2
                # The reason is for people: no endpoint, host or exception text in it.
                assert "127.0.0.1" not in outcome.payload["reason"]
        finally:
            await events.close()
