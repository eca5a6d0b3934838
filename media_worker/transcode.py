"""Decode a source once and encode every rung of an HLS ladder into local directories.
Each rung becomes `<out_dir>/<rung.name>/index.m3u8` plus MPEG-TS segments."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import av.filter
from av.video.frame import PictureType

from media_worker.ladder import Rung

PLAYLIST_NAME = "index.m3u8"
AUDIO_SAMPLE_RATE = 48_000


class TranscodeError(Exception):
    """The source cannot be transcoded (no video stream, unsized rung, ...)."""


@dataclass(frozen=True)
class RenditionResult:
    rung: Rung
    playlist_path: str
    width: int
    height: int
    frame_rate: float
    has_audio: bool
    #: H.264 SPS profile_idc, constraint flags and level_idc as written by the encoder.
    profile_idc: int
    constraint_flags: int
    level_idc: int


@dataclass(frozen=True)
class TranscodeResult:
    out_dir: str
    duration: float
    renditions: list[RenditionResult] = field(default_factory=list)


@dataclass
class _Rendition:
    rung: Rung
    container: Any
    video: Any
    audio: Any | None
    graph: Any = None
    first_packet: bytes | None = None


def transcode_to_hls(
    source: str,
    out_dir: str,
    ladder: list[Rung],
    *,
    segment_seconds: float = 4.0,
    preset: str = "veryfast",
    on_progress: Callable[[float], None] | None = None,
) -> TranscodeResult:
    """Transcode `source` to one HLS rendition per rung, decoding the source only once."""
    if not ladder:
        raise TranscodeError("empty ladder")
    for rung in ladder:
        if rung.width <= 0 or rung.height <= 0 or rung.width % 2 or rung.height % 2:
            raise TranscodeError(f"rung {rung.name} is not sized to even dims; use choose_ladder")
    with av.open(source) as src:
        if not src.streams.video:
            raise TranscodeError(f"{source} has no video stream")
        in_video = src.streams.video[0]
        in_audio = src.streams.audio[0] if src.streams.audio else None
        in_video.thread_type = "AUTO"
        fps = _frame_rate(in_video)
        duration = _duration(src, in_video)
        renditions = [
            _open_rendition(rung, out_dir, in_video, in_audio, fps, segment_seconds, preset)
            for rung in ladder
        ]
        resampler = (
            av.AudioResampler(
                format="fltp", layout="stereo", rate=AUDIO_SAMPLE_RATE, frame_size=1024
            )
            if in_audio is not None
            else None
        )
        start = src.start_time / av.time_base if src.start_time is not None else 0.0
        next_keyframe = 0
        last_reported = -1.0
        try:
            streams = [in_video] if in_audio is None else [in_video, in_audio]
            for packet in src.demux(streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        t = (frame.time or 0.0) - start
                        # Force an IDR at each segment boundary so every rung cuts at the
                        # same instants (robust to variable frame rate, unlike GOP size).
                        force_key = t >= next_keyframe * segment_seconds - 1e-3
                        if force_key:
                            next_keyframe = math.floor(t / segment_seconds + 1e-6) + 1
                        for rendition in renditions:
                            _encode_video(rendition, frame, force_key)
                        if on_progress is not None and duration > 0:
                            fraction = min(t / duration, 1.0)
                            if fraction - last_reported >= 0.01:
                                last_reported = fraction
                                on_progress(fraction)
                    elif resampler is not None and isinstance(frame, av.AudioFrame):
                        for resampled in resampler.resample(frame):
                            for rendition in renditions:
                                _encode_audio(rendition, resampled)
            if resampler is not None:
                for resampled in resampler.resample(None):
                    for rendition in renditions:
                        _encode_audio(rendition, resampled)
            for rendition in renditions:
                _flush(rendition)
        finally:
            for rendition in renditions:
                rendition.container.close()
    if on_progress is not None:
        on_progress(1.0)
    return TranscodeResult(
        out_dir=out_dir,
        duration=duration,
        renditions=[_result(r, out_dir, fps) for r in renditions],
    )


def _frame_rate(stream: Any) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(30)


def _duration(src: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if src.duration is not None:
        return float(src.duration / av.time_base)
    return 0.0


def _open_rendition(
    rung: Rung,
    out_dir: str,
    in_video: Any,
    in_audio: Any | None,
    fps: Fraction,
    segment_seconds: float,
    preset: str,
) -> _Rendition:
    rung_dir = os.path.join(out_dir, rung.name)
    os.makedirs(rung_dir, exist_ok=True)
    container = av.open(
        os.path.join(rung_dir, PLAYLIST_NAME),
        "w",
        format="hls",
        options={
            "hls_time": f"{segment_seconds:g}",
            "hls_playlist_type": "vod",
            "hls_segment_filename": os.path.join(rung_dir, "segment_%05d.ts"),
        },
    )
    gop = max(1, round(float(fps) * segment_seconds))
    video = container.add_stream(
        "libx264",
        rate=fps,
        options={
            "preset": preset,
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "maxrate": str(int(rung.video_bitrate * 1.07)),
            "bufsize": str(int(rung.video_bitrate * 1.5)),
            # Repeat SPS/PPS in every IDR so each segment decodes on its own.
            "x264-params": "repeat-headers=1",
        },
    )
    video.width = rung.width
    video.height = rung.height
    video.pix_fmt = "yuv420p"
    video.bit_rate = rung.video_bitrate
    video.codec_context.time_base = in_video.time_base
    video.codec_context.framerate = fps
    video.thread_type = "AUTO"
    audio = None
    if in_audio is not None:
        audio = container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
        audio.layout = "stereo"
        audio.bit_rate = rung.audio_bitrate
    return _Rendition(rung=rung, container=container, video=video, audio=audio)


def _transpose_filters(rotation: int) -> list[tuple[str, str]]:
    # `rotation` is counter-clockwise degrees from the display matrix; undo it so output is upright.
    turn = round(rotation / 90) % 4
    if turn == 1:
        return [("transpose", "cclock")]
    if turn == 2:
        return [("hflip", ""), ("vflip", "")]
    if turn == 3:
        return [("transpose", "clock")]
    return []


def _build_graph(rung: Rung, frame: Any) -> Any:
    graph = av.filter.Graph()
    node = graph.add_buffer(
        width=frame.width,
        height=frame.height,
        format=frame.format.name,
        time_base=frame.time_base,
    )
    chain = [node]
    for name, args in _transpose_filters(frame.rotation or 0):
        chain.append(graph.add(name, args) if args else graph.add(name))
    chain.append(graph.add("scale", f"{rung.width}:{rung.height}:flags=bicubic"))
    chain.append(graph.add("format", "yuv420p"))
    chain.append(graph.add("buffersink"))
    for upstream, downstream in itertools.pairwise(chain):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def _scaled(rendition: _Rendition, frame: Any) -> Iterator[Any]:
    if rendition.graph is None:
        rendition.graph = _build_graph(rendition.rung, frame)
    rendition.graph.push(frame)
    while True:
        try:
            yield rendition.graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return


def _encode_video(rendition: _Rendition, frame: Any, force_key: bool) -> None:
    for scaled in _scaled(rendition, frame):
        scaled.pict_type = PictureType.I if force_key else PictureType.NONE
        _mux(rendition, rendition.video.encode(scaled))


def _encode_audio(rendition: _Rendition, frame: Any) -> None:
    if rendition.audio is not None:
        _mux(rendition, rendition.audio.encode(frame))


def _flush(rendition: _Rendition) -> None:
    _mux(rendition, rendition.video.encode(None))
    if rendition.audio is not None:
        _mux(rendition, rendition.audio.encode(None))


def _mux(rendition: _Rendition, packets: list[Any]) -> None:
    for packet in packets:
        if rendition.first_packet is None and packet.stream is rendition.video:
            rendition.first_packet = bytes(packet)
        rendition.container.mux(packet)


def _result(rendition: _Rendition, out_dir: str, fps: Fraction) -> RenditionResult:
    profile_idc, constraint_flags, level_idc = _sps_profile_level(rendition.first_packet or b"")
    return RenditionResult(
        rung=rendition.rung,
        playlist_path=os.path.join(out_dir, rendition.rung.name, PLAYLIST_NAME),
        width=rendition.rung.width,
        height=rendition.rung.height,
        frame_rate=float(fps),
        has_audio=rendition.audio is not None,
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
    )


def _sps_profile_level(annexb: bytes) -> tuple[int, int, int]:
    """profile_idc, constraint flags and level_idc from the first SPS in an Annex B packet."""
    index = 0
    while True:
        index = annexb.find(b"\x00\x00\x01", index)
        if index < 0 or index + 6 > len(annexb):
            raise TranscodeError("encoder output carries no SPS")
        nal = annexb[index + 3 :]
        if nal[0] & 0x1F == 7:
            return nal[1], nal[2], nal[3]
        index += 3
