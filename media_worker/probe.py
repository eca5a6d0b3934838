"""Probe an upload with PyAV: what it contains, and whether it is fit to transcode.
Decodes a sample at the start, middle and end, so truncated or corrupt files are caught here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Any, Literal

import av

ProbeErrorCode = Literal[
    "EMPTY_FILE",
    "NOT_MEDIA",
    "NO_MEDIA_STREAMS",
    "CORRUPT_MEDIA",
    "TOO_LONG",
    "UNSUPPORTED_CODEC",
]

# Codecs an upload may carry: what phones, cameras and editors deliver, and FFmpeg decodes well.
SUPPORTED_VIDEO_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "prores", "mjpeg"}
)
SUPPORTED_AUDIO_CODECS = frozenset(
    {"aac", "mp3", "opus", "vorbis", "flac", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"}
)

# Decode this many seconds at each sample point (start, middle, end).
SAMPLE_SECONDS = 0.5
# Seek this far before a sample point: containers without a keyframe index (MPEG-TS) land
# on any packet, and decoding only starts at the next keyframe.
SEEK_PREROLL = 1.0
# A sample window must decode at least this share of the media it spans.
MIN_FRAME_SHARE = 0.5
# The last decoded frame must end this close to the stated duration (seconds or share of it).
END_TOLERANCE_SECONDS = 0.5
END_TOLERANCE_SHARE = 0.1

# How the files we accept begin; a file that starts like one but will not open is corrupt.
_CONTAINER_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"wide"),
    (4, b"free"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI, WAV
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"ID3"),
    (0, b"fLaC"),
)


class ProbeError(Exception):
    """An upload we cannot accept: `reason` is for people, `code` is stable for clients."""

    def __init__(self, reason: str, code: ProbeErrorCode) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code: ProbeErrorCode = code


@dataclass(frozen=True)
class VideoInfo:
    index: int  # the stream's index in the container (cover art is never picked)
    codec: str
    width: int  # as displayed: square pixels, after rotation
    height: int
    rotation: int  # clockwise degrees a player turns the picture: 0, 90, 180 or 270
    frame_rate: float  # average
    is_vfr: bool
    pixel_format: str | None
    bit_rate: int | None


@dataclass(frozen=True)
class AudioInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class MediaInfo:
    container_format: str
    duration: float  # seconds
    video: VideoInfo | None
    audio: AudioInfo | None
    size_bytes: int


@dataclass(frozen=True)
class _Sample:
    """What decoding the sampled windows found."""

    rotation: int  # counter-clockwise, as FFmpeg's display matrix reports it
    frame_times: tuple[float, ...]  # presentation times of the frames from the first window


def probe(path: str, *, max_duration: float) -> MediaInfo:
    """Describe the media at `path`, or raise ProbeError saying why it cannot be accepted."""
    size = os.path.getsize(path)
    if size == 0:
        raise ProbeError("The file is empty (0 bytes).", "EMPTY_FILE")
    try:
        container = av.open(path, mode="r")
    except av.error.FFmpegError as error:
        if _looks_like_container(path):
            raise ProbeError(
                "The file looks like a video container but cannot be read; "
                "it is probably truncated or damaged.",
                "CORRUPT_MEDIA",
            ) from error
        raise ProbeError("The file is not a video or audio file.", "NOT_MEDIA") from error
    with container:
        return _describe(container, path=path, size=size, max_duration=max_duration)


def _describe(container: Any, *, path: str, size: int, max_duration: float) -> MediaInfo:
    videos = [s for s in container.streams.video if not _is_cover_art(s)]
    audios = list(container.streams.audio)
    video = videos[0] if videos else None
    audio = audios[0] if audios else None
    if video is None and audio is None:
        raise ProbeError("The file has no video or audio streams.", "NO_MEDIA_STREAMS")
    for stream, allowed in ((video, SUPPORTED_VIDEO_CODECS), (audio, SUPPORTED_AUDIO_CODECS)):
        if stream is not None and _codec_name(stream) not in allowed:
            raise ProbeError(
                f"The {stream.type} codec '{_codec_name(stream)}' is not supported; "
                f"use one of: {', '.join(sorted(allowed))}.",
                "UNSUPPORTED_CODEC",
            )

    duration = _duration(container, video or audio)
    if duration is None or duration <= 0:
        raise ProbeError(
            "The file does not say how long it is; it is probably truncated or damaged.",
            "CORRUPT_MEDIA",
        )
    if duration > max_duration:
        raise ProbeError(
            f"The media is {duration:.1f} s long; the limit is {max_duration:g} s.", "TOO_LONG"
        )

    primary = video if video is not None else audio
    sample = _decode_sample(container, primary, duration)
    return MediaInfo(
        container_format=container.format.name,
        duration=duration,
        video=None if video is None else _video_info(video, sample),
        audio=None if audio is None else _audio_info(audio),
        size_bytes=size,
    )


def _looks_like_container(path: str) -> bool:
    with open(path, "rb") as file:
        head = file.read(12)
    return any(head[at : at + len(magic)] == magic for at, magic in _CONTAINER_SIGNATURES)


def _is_cover_art(stream: Any) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _codec_name(stream: Any) -> str:
    # The codec's own name (`mp3`), not its decoder's (`mp3float`, `libdav1d`).
    context = stream.codec_context
    return str(context.codec.canonical_name) if context is not None else "unknown"


def _duration(container: Any, stream: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration / av.time_base)
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _decode_sample(container: Any, stream: Any, duration: float) -> _Sample:
    """Decode short windows at the start, middle and end; raise CORRUPT_MEDIA on any failure."""
    stream.codec_context.thread_type = "AUTO"
    rate = _nominal_rate(stream)
    if duration <= 3 * SAMPLE_SECONDS:
        windows = [(0.0, duration)]
    else:
        middle = duration / 2 - SAMPLE_SECONDS / 2
        windows = [
            (0.0, SAMPLE_SECONDS),
            (middle, middle + SAMPLE_SECONDS),
            (duration - SAMPLE_SECONDS, duration),
        ]

    rotation = 0
    first_times: tuple[float, ...] = ()
    last_end = 0.0
    for index, (start, end) in enumerate(windows):
        window = _decode_window(container, stream, start, end, rate)
        if index == 0:
            first_times, rotation = tuple(window.times), window.rotation
        # Decoding starts at a keyframe, which may lie inside the window: count from there.
        expected = end - max(start, window.first if window.first is not None else start)
        if window.covered < MIN_FRAME_SHARE * expected:
            raise _corrupt(
                f"only {window.covered:.2f} s of {expected:.2f} s decoded near {start:.1f} s"
            )
        last_end = max(last_end, window.reached)

    tolerance = max(END_TOLERANCE_SECONDS, END_TOLERANCE_SHARE * duration)
    if last_end < duration - tolerance:
        raise _corrupt(f"the media stops at {last_end:.1f} s of a stated {duration:.1f} s")
    return _Sample(rotation=rotation, frame_times=first_times)


@dataclass(frozen=True)
class _Window:
    times: list[float]  # frames decoded in [start, end)
    covered: float  # seconds of media those frames cover
    rotation: int  # the first such video frame's
    reached: float  # where decoding got to
    first: float | None  # the time of the first frame decoded at all (after the seek)


def _decode_window(container: Any, stream: Any, start: float, end: float, rate: float) -> _Window:
    time_base = stream.time_base
    if start > 0:
        target = max(0.0, start - SEEK_PREROLL)
        container.seek(int(target / time_base), stream=stream, backward=True, any_frame=False)
        stream.codec_context.flush_buffers()
    times: list[float] = []
    covered = 0.0
    rotation = 0
    reached = 0.0
    first: float | None = None
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                if frame.is_corrupt:
                    raise _corrupt("a frame failed to decode")
                if frame.pts is None:
                    continue
                at = float(frame.pts * frame.time_base)
                first = at if first is None else first
                length = _frame_length(frame, stream, rate)
                reached = max(reached, at + length)
                if at < start - 1e-6 or at >= end:
                    continue
                if not times and stream.type == "video":
                    rotation = int(frame.rotation)
                times.append(at)
                covered += length
            if packet.dts is not None and float(packet.dts * time_base) >= end:
                break
    except av.error.FFmpegError as error:
        raise _corrupt(f"decoding failed near {start:.1f} s") from error
    return _Window(times, covered, rotation, reached, first)


def _frame_length(frame: Any, stream: Any, rate: float) -> float:
    if stream.type == "audio":
        return float(frame.samples / frame.sample_rate)
    if frame.duration:
        return float(frame.duration * frame.time_base)
    return 1 / rate


def _nominal_rate(stream: Any) -> float:
    """Frames (or audio frames) per second that the stream claims to have."""
    if stream.type == "audio":
        frame_size = stream.codec_context.frame_size or 1024
        return float(stream.codec_context.sample_rate / frame_size)
    rate: Fraction | None = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _corrupt(detail: str) -> ProbeError:
    return ProbeError(
        f"The file is damaged or truncated: {detail}. Re-export or re-upload it.",
        "CORRUPT_MEDIA",
    )


def _video_info(stream: Any, sample: _Sample) -> VideoInfo:
    # FFmpeg exposes rotation as a counter-clockwise angle; the phone tag and players use clockwise.
    rotation = (-sample.rotation) % 360
    if rotation == 0:
        rotation = _rotate_tag(stream)
    context = stream.codec_context
    width, height = context.width, context.height
    # Non-square pixels (anamorphic DV, some broadcast captures): report the displayed width.
    sar = context.sample_aspect_ratio or stream.sample_aspect_ratio
    if sar and sar > 0 and sar != 1:
        width = round(width * sar)
    if rotation in (90, 270):
        width, height = height, width
    average = float(stream.average_rate or stream.guessed_rate or 0)
    return VideoInfo(
        index=int(stream.index),
        codec=_codec_name(stream),
        width=width,
        height=height,
        rotation=rotation,
        frame_rate=round(average, 3),
        is_vfr=_guess_vfr(stream, sample.frame_times),
        pixel_format=context.pix_fmt,
        bit_rate=stream.bit_rate or None,
    )


def _rotate_tag(stream: Any) -> int:
    """The legacy `rotate` metadata tag, which older FFmpeg builds report instead of side data."""
    try:
        return int(stream.metadata.get("rotate", "0")) % 360
    except ValueError:
        return 0


def _guess_vfr(stream: Any, frame_times: tuple[float, ...]) -> bool:
    """VFR if frame gaps vary, or the average rate disagrees with the stream's base rate."""
    gaps = [b - a for a, b in pairwise(sorted(frame_times)) if b > a]
    if len(gaps) >= 2 and max(gaps) > 1.5 * min(gaps):
        return True
    average, base = stream.average_rate, stream.base_rate
    if average and base:
        return abs(float(average) - float(base)) > 0.02 * float(base)
    return False


def _audio_info(stream: Any) -> AudioInfo:
    context = stream.codec_context
    return AudioInfo(
        index=int(stream.index),
        codec=_codec_name(stream),
        sample_rate=int(context.sample_rate),
        channels=int(context.channels),
    )
