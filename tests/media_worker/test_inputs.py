"""Uploads beyond H.264 in MP4: other containers, codecs, bit depths and channel layouts go
through the same pipeline (`make_vod`: probe, ladder, images) into H.264/AAC HLS."""

from __future__ import annotations

import math
from array import array
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import pytest

from media_worker.vod import VodOptions, make_vod
from tests.media_worker.media import _pattern

OPTIONS = VodOptions(max_duration=60, segment_seconds=1, preset="ultrafast")
RATE = 48_000


def write_clip(
    path: Path,
    *,
    container: str,
    video: str | None,
    pix_fmt: str = "yuv420p",
    audio: str | None,
    layout: str = "stereo",
    sample_format: str = "fltp",
    size: tuple[int, int] = (320, 240),
    seconds: float = 2.0,
    fps: int = 25,
) -> Path:
    """A short clip in any container/codec PyAV's FFmpeg can write."""
    width, height = size
    with av.open(str(path), "w", format=container) as out:
        vstream = None
        if video is not None:
            vstream = out.add_stream(video, rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
            if video == "libx265":
                vstream.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
            elif video == "libvpx-vp9":
                vstream.options = {"deadline": "realtime", "cpu-used": "8"}
        astream = None
        if audio is not None:
            astream = out.add_stream(audio, rate=RATE, layout=layout)
        if vstream is not None:
            for index in range(int(seconds * fps)):
                frame = _pattern(width, height, index).reformat(format=pix_fmt)
                frame.pts, frame.time_base = index, Fraction(1, fps)
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
        if astream is not None:
            channels = av.AudioLayout(layout).nb_channels
            chunk = astream.codec_context.frame_size or 1024
            total = int(seconds * RATE)
            for start in range(0, total, chunk):
                count = min(chunk, total - start)
                frame = av.AudioFrame(format="flt", layout=layout, samples=count)
                tone = array(
                    "f",
                    (
                        0.2 * math.sin(2 * math.pi * 440 * (start + n) / RATE)
                        for n in range(count)
                        for _ in range(channels)
                    ),
                )
                frame.planes[0].update(tone.tobytes())
                frame.sample_rate, frame.pts = RATE, start
                frame.time_base = Fraction(1, RATE)
                frame = av.AudioResampler(format=sample_format, layout=layout, rate=RATE).resample(
                    frame
                )[0]
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
    return path


CASES = {
    "hevc-10bit-mkv": dict(
        container="matroska",
        video="libx265",
        pix_fmt="yuv420p10le",
        audio="flac",
        sample_format="s16",
    ),
    "vp9-opus-webm": dict(container="webm", video="libvpx-vp9", audio="libopus"),
    "mpeg4-mp3-avi": dict(container="avi", video="mpeg4", audio="libmp3lame"),
    "mpeg2-ac3-ts-5.1": dict(container="mpegts", video="mpeg2video", audio="ac3", layout="5.1"),
    "prores-pcm-mov": dict(
        container="mov",
        video="prores_ks",
        pix_fmt="yuv422p10le",
        audio="pcm_s16le",
        sample_format="s16",
    ),
    "mjpeg-mono-mov": dict(
        container="mov", video="mjpeg", pix_fmt="yuvj420p", audio="aac", layout="mono"
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_upload_formats_become_h264_aac_hls(tmp_path: Path, case: str) -> None:
    source = write_clip(tmp_path / f"{case}.bin", **CASES[case])  # type: ignore[arg-type]
    vod = make_vod(str(source), str(tmp_path / "out"), OPTIONS)
    assert vod.info.video is not None and vod.info.audio is not None
    [rendition] = vod.renditions
    assert (rendition.name, rendition.width, rendition.height) == ("240p", 320, 240)
    assert rendition.codecs.startswith("avc1.") and rendition.codecs.endswith(",mp4a.40.2")
    playlist = m3u8.load(str(tmp_path / "out" / "hls" / "240p" / "index.m3u8"))
    assert sum(s.duration for s in playlist.segments) == pytest.approx(2.0, abs=0.3)
    first = tmp_path / "out" / "hls" / "240p" / playlist.segments[0].uri
    with av.open(str(first)) as segment:
        video = segment.streams.video[0].codec_context
        audio = segment.streams.audio[0].codec_context
        assert (video.name, video.pix_fmt) == ("h264", "yuv420p")
        assert (audio.name, audio.sample_rate, audio.channels) == ("aac", RATE, 2)
        starts = {}
        for packet in segment.demux():
            if packet.pts is not None and packet.stream.type not in starts:
                starts[packet.stream.type] = float(packet.pts * packet.time_base)
        # Picture and sound start together (the clips start both at 0).
        assert abs(starts["video"] - starts["audio"]) < 0.1, starts
    assert vod.images.poster == "poster.jpg"


def test_audio_only_mp3_and_flac(tmp_path: Path) -> None:
    for name, container, codec in (
        ("song.mp3", "mp3", "libmp3lame"),
        ("song.flac", "flac", "flac"),
    ):
        fmt = "s16" if codec == "flac" else "fltp"
        source = write_clip(
            tmp_path / name, container=container, video=None, audio=codec, sample_format=fmt
        )
        vod = make_vod(str(source), str(tmp_path / f"out-{name}"), OPTIONS)
        assert [(r.name, r.codecs) for r in vod.renditions] == [("audio", "mp4a.40.2")]
