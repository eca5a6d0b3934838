"""Real media files generated with PyAV for the media worker's tests: small and quick to encode."""

from __future__ import annotations

import math
from array import array
from fractions import Fraction
from pathlib import Path

import av

AUDIO_RATE = 48_000
AUDIO_FRAME = 1024


_BLOCK = bytes(int(128 + 90 * math.sin(i / 41) + 30 * math.sin(i / 7)) for i in range(4099))


def _pattern(width: int, height: int, index: int) -> av.VideoFrame:
    """A sliding noise-like RGBA texture, so the encoder has real motion to code."""
    size = width * height * 4
    offset = (index * 4 * 7) % len(_BLOCK)
    data = (_BLOCK * (size // len(_BLOCK) + 2))[offset : offset + size]
    return av.VideoFrame.from_bytes(data, width, height, format="rgba")


def _black(width: int, height: int) -> av.VideoFrame:
    return av.VideoFrame.from_bytes(b"\x00\x00\x00\xff" * (width * height), width, height, "rgba")


def _write_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    """A 440 Hz stereo tone in AAC."""
    total = int(seconds * AUDIO_RATE)
    for start in range(0, total, AUDIO_FRAME):
        count = min(AUDIO_FRAME, total - start)
        samples = array("h")
        for n in range(start, start + count):
            value = int(6000 * math.sin(2 * math.pi * 440.0 * n / AUDIO_RATE))
            samples.extend((value, value))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=count)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def make_clip(
    path: Path,
    *,
    width: int,
    height: int,
    seconds: float,
    fps: int,
    audio: bool = True,
    rotate: int | None = None,
    vfr: bool = False,
    faststart: bool = False,
    black_seconds: float = 0.0,
    sar: Fraction | None = None,
) -> Path:
    """H.264 (+ AAC) in MP4. `rotate` sets the display matrix; `vfr` alternates frame durations;
    the first `black_seconds` are black (a fade-in); `sar` makes the pixels non-square."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        video = container.add_stream("libx264", rate=fps)
        # x264 only codes 4:2:0 at even sizes; odd-sized clips are 4:4:4, as some cameras emit.
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.options = {"preset": "ultrafast", "crf": "30"}
        if sar is not None:
            video.codec_context.sample_aspect_ratio = sar
        if vfr:
            # pts in milliseconds; durations alternate between one and two nominal frame times.
            video.time_base = Fraction(1, 1000)
        if rotate is not None:
            # `rotate` is clockwise, like the phone `rotate` tag; PyAV takes counter-clockwise.
            video.set_display_rotation(-rotate)
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if audio else None
        frame_ms = 1000 / fps
        pts, index = 0.0, 0
        while pts < seconds * (1000 if vfr else fps):
            if pts < black_seconds * (1000 if vfr else fps):
                frame = _black(width, height).reformat(format=pix_fmt)
            else:
                frame = _pattern(width, height, index).reformat(format=pix_fmt)
            frame.pts = int(pts)
            if vfr:
                frame.time_base = Fraction(1, 1000)
                pts += frame_ms * (1 if index % 2 == 0 else 3)
            else:
                pts += 1
            for packet in video.encode(frame):
                container.mux(packet)
            index += 1
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            _write_audio(container, sound, seconds)
    return path


def make_audio_only(path: Path, seconds: float) -> Path:
    """AAC in an .m4a (MP4) container."""
    with av.open(str(path), "w", format="ipod") as container:
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        _write_audio(container, sound, seconds)
    return path


def make_corrupt(path: Path) -> Path:
    """A clip with its index up front whose middle is overwritten with junk and tail cut off."""
    make_clip(path, width=320, height=240, seconds=3, fps=25, faststart=True)
    data = bytearray(path.read_bytes())
    start, end = len(data) // 3, len(data) // 2
    data[start:end] = bytes((i * 37 + 11) % 256 for i in range(end - start))
    path.write_bytes(bytes(data[: len(data) * 3 // 4]))
    return path


def make_truncated(path: Path) -> Path:
    """A clip cut off halfway, as an interrupted upload leaves it: the index at the end is gone."""
    make_clip(path, width=320, height=240, seconds=2, fps=25)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_cut_short(path: Path) -> Path:
    """A clip with its index up front whose last 40% is missing: it opens, but ends early."""
    make_clip(path, width=320, height=240, seconds=4, fps=25, faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def make_unsupported_codec(path: Path) -> Path:
    """A short lossless FFV1 clip in Matroska: decodable, but not a codec uploads may use."""
    with av.open(str(path), "w", format="matroska") as container:
        video = container.add_stream("ffv1", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for index in range(10):
            frame = _pattern(64, 48, index).reformat(format="yuv420p")
            frame.pts = index
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def make_text_as_mp4(path: Path) -> Path:
    """A plain text file with a .mp4 name."""
    path.write_text("This is not a video, just some notes someone renamed.\n" * 40)
    return path


def make_subtitles_only(path: Path) -> Path:
    """An SRT captions file: FFmpeg opens it, but it holds only a subtitle stream."""
    path.write_text(
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\nGoodbye.\n"
    )
    return path


def make_empty(path: Path) -> Path:
    """A zero-byte file, as an aborted upload leaves it."""
    path.write_bytes(b"")
    return path
