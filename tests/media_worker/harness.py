"""The media worker as a real process for tests: start, stop (SIGTERM) or kill -9 it, publish
real `media.transcode` jobs on the bus, read its answers, and check what it stored."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import m3u8
import orjson

from subgraphs.kernel.bus import Bus, Message
from subgraphs.kernel.storage import LocalStorage, S3Storage, Storage
from tests.support.processes import ROOT, Environment, free_port
from tests.support.s3 import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, REGION

# Fast settings for every worker a test starts: tiny clips, one-second segments.
FAST = {
    "REELGRAPH_MEDIA_PRESET": "ultrafast",
    "REELGRAPH_MEDIA_SEGMENT_SECONDS": "1",
    "REELGRAPH_LOG_LEVEL": "INFO",
}
ANSWER_TOPICS = ("media.progress", "media.ready", "media.failed")
DEADLINE = 120.0


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    return {
        "REELGRAPH_STORAGE": "s3",
        "REELGRAPH_S3_ENDPOINT_URL": endpoint,
        "REELGRAPH_S3_BUCKET": bucket,
        "REELGRAPH_S3_REGION": REGION,
        "REELGRAPH_S3_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "REELGRAPH_S3_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
    }


def open_test_storage(env: dict[str, str], data_dir: Path) -> Storage:
    if env.get("REELGRAPH_STORAGE") == "s3":
        return S3Storage(
            env["REELGRAPH_S3_BUCKET"],
            endpoint_url=env["REELGRAPH_S3_ENDPOINT_URL"],
            region=REGION,
            access_key_id=DUMMY_ACCESS_KEY_ID,
            secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        )
    return LocalStorage(data_dir / "media")


class WorkerProcess:
    """`python -m media_worker` with the environment's settings, its log in a file."""

    def __init__(self, environment: Environment, **extra: str) -> None:
        self.environment = environment
        self.env = {**os.environ, **environment.env, **FAST, **extra}
        self.log_path = environment.data_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def work_dir(self) -> Path:
        explicit = self.env.get("REELGRAPH_MEDIA_WORK_DIR")
        return Path(explicit) if explicit else Path(self.env["REELGRAPH_DATA_DIR"]) / "media-work"

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "media_worker"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_for_log("media worker started", timeout=timeout)
        return self

    def wait_for_log(self, text: str, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the worker log within {timeout} s:\n{self.log()}")

    async def await_log(self, text: str, timeout: float = DEADLINE) -> None:
        await asyncio.to_thread(self.wait_for_log, text, timeout)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, as an operator stops it; the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker ignored SIGTERM for {timeout} s:\n{self.log()}") from None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running_worker(environment: Environment, **extra: str) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(environment, **extra).start()
    try:
        yield worker
    finally:
        code = worker.stop()
    assert code == 0, worker.log()


class TcpProxy:
    """A TCP forwarder to a real server that can be started late: until `open()` its port
    refuses connections, as a storage service that is down does."""

    def __init__(self, target: str) -> None:
        host_port = target.split("://", 1)[-1].rstrip("/")
        self.target_host, _, port = host_port.partition(":")
        self.target_port = int(port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@dataclass
class Answers:
    """Everything the worker published, read through a consumer group of the test's own
    (a group starts at the beginning of the stream, so nothing is missed)."""

    bus: Bus
    group: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    messages: list[Message] = field(default_factory=list)

    async def poll(self) -> None:
        for topic in ANSWER_TOPICS:
            claimed = await self.bus.claim(topic, self.group, "test", count=500, block=0.05)
            for message in claimed:
                await self.bus.ack(topic, self.group, message.id)
            self.messages.extend(claimed)

    def of(self, video_id: str, topic: str) -> list[Message]:
        return [m for m in self.messages if m.topic == topic and m.payload["videoId"] == video_id]

    async def outcome(self, video_id: str, timeout: float = DEADLINE) -> Message:
        """The first media.ready or media.failed for the video."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.poll()
            done = self.of(video_id, "media.ready") + self.of(video_id, "media.failed")
            if done:
                return done[0]
            await asyncio.sleep(0.1)
        raise AssertionError(f"no answer for {video_id} within {timeout} s")

    async def first_progress(self, video_id: str, timeout: float = DEADLINE) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.poll()
            progress = [m for m in self.of(video_id, "media.progress") if m.payload["progress"]]
            if progress:
                return progress[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no progress for {video_id} within {timeout} s")


async def submit(
    bus: Bus, storage: Storage | None, source: Path | None, video_id: str | None = None
) -> str:
    """Upload `source` as a video's file (None: upload nothing) and publish its job."""
    video_id = video_id or str(uuid.uuid4())
    if source is not None and storage is not None:
        await storage.put_file(f"uploads/{video_id}/source", str(source))
    await bus.publish(
        "media.transcode",
        {
            "videoId": video_id,
            "sourceKey": f"uploads/{video_id}/source",
            "outputPrefix": f"videos/{video_id}/",
        },
    )
    return video_id


# --- checking what was stored ------------------------------------------------------------------


@dataclass
class Variant:
    uri: str
    info: Any  # m3u8 StreamInfo
    segments: list[tuple[str, float]]  # storage key, EXTINF duration


async def keys_under(storage: Storage, prefix: str) -> list[str]:
    return [info.key async for info in storage.list(prefix)]


async def check_stored_hls(
    storage: Storage, video_id: str, document: dict[str, Any], tmp: Path
) -> list[Variant]:
    """Validate every playlist with m3u8 against the document and the stored segments.

    Returns the variants in master order. Checks that every listed segment is stored and
    decodes, that the renditions cut at the same instants, and that nothing unlisted is left
    under hls/.
    """
    prefix = f"videos/{video_id}/"
    stored = orjson.loads(await storage.get(prefix + "media.json"))
    assert stored == document
    assert document["master"] == "hls/master.m3u8"
    master = m3u8.loads((await storage.get(prefix + "hls/master.m3u8")).decode())
    assert master.is_variant
    by_name = {r["name"]: r for r in document["renditions"]}
    assert len(master.playlists) == len(by_name)
    variants = []
    listed = {prefix + "hls/master.m3u8"}
    for playlist in master.playlists:
        name = playlist.uri.split("/")[0]
        assert playlist.uri == f"{name}/index.m3u8"
        rendition = by_name[name]
        info = playlist.stream_info
        assert info.bandwidth == rendition["bandwidth"] >= info.average_bandwidth > 0
        assert info.average_bandwidth == rendition["averageBandwidth"]
        assert info.codecs == rendition["codecs"]
        if rendition["width"] is None:
            assert info.resolution is None and info.frame_rate is None
            assert info.codecs == "mp4a.40.2"
        else:
            assert info.resolution == (rendition["width"], rendition["height"])
            assert info.frame_rate == rendition["frameRate"]
            assert info.codecs.startswith("avc1.")
        key = prefix + "hls/" + playlist.uri
        listed.add(key)
        media = m3u8.loads((await storage.get(key)).decode())
        assert media.playlist_type == "vod" and media.is_endlist
        assert media.target_duration is not None
        segments = []
        for segment in media.segments:
            assert "/" not in segment.uri and segment.uri.startswith("segment_")
            segment_key = f"{prefix}hls/{name}/{segment.uri}"
            assert (await storage.stat(segment_key)).size > 0
            assert segment.duration <= media.target_duration + 0.5
            segments.append((segment_key, segment.duration))
            listed.add(segment_key)
        assert segments
        total = sum(d for _, d in segments)
        assert abs(total - document["durationSeconds"]) < 0.6, (total, document)
        variants.append(Variant(playlist.uri, info, segments))
    # Nothing else under hls/: no leftovers of an earlier run, no duplicates.
    assert set(await keys_under(storage, prefix + "hls/")) == listed
    # Keyframes aligned across renditions: the same cuts everywhere.
    videos = [v for v in variants if v.info.resolution is not None]
    for variant in videos[1:]:
        assert len(variant.segments) == len(videos[0].segments)
        for (_, mine), (_, theirs) in zip(variant.segments, videos[0].segments, strict=True):
            assert abs(mine - theirs) < 0.05
    # Every segment of every rendition is a playable MPEG-TS of the stated size.
    for variant in variants:
        for index, (segment_key, _) in enumerate(variant.segments):
            local = tmp / f"{uuid.uuid4().hex}.ts"
            await storage.download(segment_key, str(local))
            with av.open(str(local)) as container:
                if variant.info.resolution is not None:
                    stream = container.streams.video[0]
                    packets = [p for p in container.demux(stream) if p.size]
                    assert packets[0].is_keyframe, (segment_key, index)
                    container.seek(0)
                    frame = next(container.decode(video=0))
                    assert (frame.width, frame.height) == variant.info.resolution
                else:
                    assert not container.streams.video
                    assert container.streams.audio[0].codec_context.name == "aac"
            local.unlink()
    return variants


def vtt_cues(text: str) -> list[tuple[str, str, str]]:
    """(start, end, payload) of each cue of a WebVTT file."""
    lines = text.splitlines()
    assert lines[0] == "WEBVTT"
    cues = []
    for index, line in enumerate(lines):
        if " --> " in line:
            start, end = line.split(" --> ")
            cues.append((start, end, lines[index + 1]))
    return cues


def decode_jpeg(path: Path) -> Any:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.reformat(format="gray")
