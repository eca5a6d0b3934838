"""The benchmark's source: a generated 1080p30 H.264 + AAC clip at a realistic bitrate,
made once with PyAV (lavfi test pattern plus temporal noise, like camera grain) and cached."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import av
from av.video.frame import PictureType

CACHE = Path(
    os.environ.get("REELGRAPH_BENCH_CACHE")
    or Path(tempfile.gettempdir()) / "reelgraph-bench-transcode"
)
WIDTH, HEIGHT, FPS = 1920, 1080, 30
VIDEO_BITRATE = 8_000_000  # what a phone or camera upload of 1080p30 typically carries
AUDIO_BITRATE = 128_000


def source_clip(seconds: int) -> Path:
    """The cached clip of `seconds` seconds, generated on first use (about 1 s per second)."""
    path = CACHE / f"source-{WIDTH}x{HEIGHT}-{FPS}fps-{seconds}s-{VIDEO_BITRATE // 1000}k.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    video_in = av.open(
        f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={seconds},noise=alls=10:allf=t",
        format="lavfi",
    )
    audio_in = av.open(f"sine=frequency=440:sample_rate=48000:duration={seconds}", format="lavfi")
    with av.open(str(partial), "w", format="mp4", options={"movflags": "faststart"}) as out:
        video = out.add_stream(
            "libx264",
            rate=FPS,
            options={
                "preset": "veryfast",
                "b": str(VIDEO_BITRATE),
                "maxrate": str(VIDEO_BITRATE * 5 // 4),
                "bufsize": str(VIDEO_BITRATE * 2),
                "g": str(FPS * 2),
            },
        )
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.thread_type = "AUTO"
        audio = out.add_stream("aac", rate=48_000, layout="stereo")
        audio.bit_rate = AUDIO_BITRATE
        for frame in video_in.decode(video=0):
            frame.pict_type = PictureType.NONE
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48_000)
        for frame in audio_in.decode(audio=0):
            for chunk in resampler.resample(frame):
                out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
    video_in.close()
    audio_in.close()
    partial.replace(path)
    return path
