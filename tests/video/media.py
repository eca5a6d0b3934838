"""A tiny real HLS rendition, poster, storyboard and WebVTT made with PyAV, standing in for
the media worker's outputs: what the video service serves once a video is READY."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

WIDTH, HEIGHT, FPS, SECONDS = 160, 90, 10, 3
RUNG = "90p"


def _frames(seconds: int) -> list[av.VideoFrame]:
    frames = []
    for index in range(FPS * seconds):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for number, plane in enumerate(frame.planes):
            plane.update(bytes([(index * 9 + number * 60) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = index, Fraction(1, FPS)
        frames.append(frame)
    return frames


def _jpeg(path: Path, frame: av.VideoFrame) -> None:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuvj420p"
        image = frame.reformat(format="yuvj420p")
        image.pts = 0
        container.mux(stream.encode(image))
        container.mux(stream.encode(None))


def make_hls(out: Path, *, seconds: int = SECONDS) -> dict[str, Any]:
    """Write `seconds` of media under `out` (laid out as under videos/<id>/) and return the
    `media.ready` document describing it (without videoId)."""
    rung_dir = out / "hls" / RUNG
    rung_dir.mkdir(parents=True)
    frames = _frames(seconds)
    with av.open(
        str(rung_dir / "index.m3u8"),
        "w",
        format="hls",
        options={
            "hls_time": "1",
            "hls_playlist_type": "vod",
            "hls_segment_filename": str(rung_dir / "segment_%05d.ts"),
        },
    ) as container:
        stream = container.add_stream(
            "libx264", rate=FPS, options={"preset": "ultrafast", "g": str(FPS)}
        )
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    segments = sorted(rung_dir.glob("segment_*.ts"))
    bits = sum(s.stat().st_size for s in segments) * 8
    bandwidth = max(1, bits // seconds)
    (out / "hls" / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth * 2},AVERAGE-BANDWIDTH={bandwidth},"
        f'RESOLUTION={WIDTH}x{HEIGHT},CODECS="avc1.42c00d",FRAME-RATE={FPS:.3f}\n'
        f"{RUNG}/index.m3u8\n"
    )
    _jpeg(out / "poster.jpg", frames[0])
    _jpeg(out / "storyboard.jpg", frames[-1])
    (out / "storyboard.vtt").write_text(
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n"
    )
    return {
        "durationSeconds": float(seconds),
        "hasVideo": True,
        "hasAudio": False,
        "master": "hls/master.m3u8",
        "renditions": [
            {
                "name": RUNG,
                "width": WIDTH,
                "height": HEIGHT,
                "bandwidth": bandwidth * 2,
                "averageBandwidth": bandwidth,
                "codecs": "avc1.42c00d",
                "frameRate": float(FPS),
            }
        ],
        "thumbnail": "poster.jpg",
        "storyboard": {
            "image": "storyboard.jpg",
            "vtt": "storyboard.vtt",
            "tileWidth": WIDTH,
            "tileHeight": HEIGHT,
            "columns": 1,
            "rows": 1,
            "intervalSeconds": 2.0,
        },
    }
