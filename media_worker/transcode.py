"""Decode a source once and encode every rung of an HLS ladder, each rung in its own thread.
Each rendition becomes `<out_dir>/<name>/index.m3u8` plus MPEG-TS segments."""

from __future__ import annotations

import itertools
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import av.filter
from av.video.frame import PictureType

from media_worker.ladder import Rung

PLAYLIST_NAME = "index.m3u8"
SEGMENT_PATTERN = "segment_%05d.ts"
AUDIO_SAMPLE_RATE = 48_000
AUDIO_FRAME_SIZE = 1024
#: The one rendition of an audio-only source (as PeerTube does): AAC, stereo.
AUDIO_ONLY_NAME = "audio"
AUDIO_ONLY_BITRATE = 128_000
#: Faster sources (slow-motion phone clips, broken timestamps) are thinned to this rate.
MAX_FRAME_RATE = 60.0
# Frames and audio chunks queued ahead of each rung's encoder: enough to keep it busy while
# the decoder stalls on a keyframe, small enough to bound memory at 1080p.
QUEUE_DEPTH = 24

#: Called from the decoding thread with each kept video frame (as decoded, not rotated) and
#: its time in seconds from the start; used to take images in the same pass.
FrameTap = Callable[[Any, float], None]


class TranscodeError(Exception):
    """The transcode failed (an encoder or the muxer failed, or the ladder is unusable)."""


class SourceDecodeError(TranscodeError):
    """The source stopped decoding part-way: it is damaged, and retrying will not help."""


class TranscodeCancelled(Exception):
    """The caller asked the transcode to stop (the worker is shutting down)."""


@dataclass(frozen=True)
class RenditionResult:
    name: str
    playlist_path: str
    has_video: bool
    has_audio: bool
    #: Output picture size and frame rate; None for the audio-only rendition.
    width: int | None
    height: int | None
    frame_rate: float | None
    #: H.264 SPS profile_idc, constraint flags and level_idc as written by the encoder.
    profile_idc: int | None = None
    constraint_flags: int | None = None
    level_idc: int | None = None


@dataclass(frozen=True)
class TranscodeResult:
    out_dir: str
    duration: float
    renditions: list[RenditionResult] = field(default_factory=list)


def transcode_to_hls(
    source: str,
    out_dir: str,
    ladder: list[Rung],
    *,
    segment_seconds: float = 4.0,
    preset: str = "veryfast",
    max_frame_rate: float = MAX_FRAME_RATE,
    video_index: int | None = None,
    audio_index: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    on_frame: FrameTap | None = None,
    cancel: threading.Event | None = None,
) -> TranscodeResult:
    """Transcode `source` to one HLS rendition per rung, decoding the source only once.

    `video_index`/`audio_index` pick streams (the probe's choice; default: the first of each).
    An empty `ladder` means audio-only: one AAC rendition named `audio`. Setting `cancel`
    stops the work soon after with `TranscodeCancelled`.
    """
    for rung in ladder:
        if rung.width <= 0 or rung.height <= 0 or rung.width % 2 or rung.height % 2:
            raise TranscodeError(f"rung {rung.name} is not sized to even dims; use choose_ladder")
    with av.open(source) as src:
        in_video = _pick(src.streams.video, video_index) if ladder else None
        in_audio = _pick(src.streams.audio, audio_index)
        if ladder and in_video is None:
            raise TranscodeError("the source has no video stream to scale to a ladder")
        if in_video is None and in_audio is None:
            raise TranscodeError("the source has no audio stream for an audio-only rendition")
        source_rate = _source_rate(in_video)
        fps = _output_rate(source_rate, max_frame_rate) if in_video is not None else None
        duration = _duration(src, in_video or in_audio)
        encoders: list[_RenditionEncoder] = []
        try:
            if in_video is not None:
                in_video.thread_type = "AUTO"
                assert fps is not None
                for rung in ladder:
                    encoders.append(
                        _RenditionEncoder.for_rung(
                            rung, out_dir, in_video, in_audio, fps, segment_seconds, preset
                        )
                    )
            else:
                encoders.append(_RenditionEncoder.audio_only(out_dir, segment_seconds))
            _cascade(encoders)
        except BaseException:
            for encoder in encoders:
                encoder.container.close()
            raise
        decoder = _Decoder(
            src=src,
            video=in_video,
            audio=in_audio,
            encoders=encoders,
            fps=fps,
            duration=duration,
            segment_seconds=segment_seconds,
            thin_to=max_frame_rate if source_rate > max_frame_rate + 0.5 else None,
            on_progress=on_progress,
            on_frame=on_frame,
            cancel=cancel,
        )
        for encoder in encoders:
            encoder.start()
        try:
            decoder.run()
            for encoder in encoders:
                if encoder.parent is None:
                    encoder.finish()  # a parent finishes its children after its last frame
            for encoder in encoders:
                encoder.join()
            for encoder in encoders:
                encoder.raise_error()
        except BaseException:
            for encoder in encoders:
                encoder.abort()
            for encoder in encoders:
                encoder.join()
            raise
    if on_progress is not None:
        on_progress(1.0)
    return TranscodeResult(
        out_dir=out_dir, duration=duration, renditions=[e.result() for e in encoders]
    )


def scaling_parents(short_sides: list[int]) -> list[int | None]:
    """For rungs highest first (by their short side), the index of the rung each one is
    scaled from, or None for the source.

    A rung is scaled from the smallest larger rung at least twice its size, if there is one:
    a 2x (or larger) step keeps the quality of a direct downscale, and scaling 360p from
    720p costs half of scaling it from 1080p.
    """
    parents: list[int | None] = []
    for index, short in enumerate(short_sides):
        larger = [(side, at) for at, side in enumerate(short_sides[:index]) if side >= 2 * short]
        parents.append(min(larger)[1] if larger else None)
    return parents


def _cascade(encoders: list[_RenditionEncoder]) -> None:
    sized = [encoder for encoder in encoders if encoder.spec is not None]
    parents = scaling_parents([encoder.spec.short_side for encoder in sized if encoder.spec])
    for encoder, parent in zip(sized, parents, strict=True):
        if parent is not None:
            sized[parent].children.append(encoder)
            encoder.parent = sized[parent]


def _pick(streams: Any, index: int | None) -> Any | None:
    if index is None:
        return streams[0] if streams else None
    for stream in streams:
        if stream.index == index:
            return stream
    raise TranscodeError(f"the source has no stream #{index} of that type")


def _source_rate(stream: Any | None) -> Fraction:
    """The stream's frame rate as HLS's FRAME-RATE means it: the maximum.

    For constant frame rate that is the average. Variable frame rate averages lower than its
    fastest stretches; its base rate (the finest rate its timestamps need) is the maximum,
    when it is a plausible frame rate at all.
    """
    if stream is None:
        return Fraction(0)
    average = stream.average_rate or stream.guessed_rate or stream.base_rate
    rate = Fraction(average) if average else Fraction(30)
    base = stream.base_rate
    if base and rate * Fraction(102, 100) < base <= 2 * MAX_FRAME_RATE:
        rate = Fraction(base)
    return rate


def _output_rate(source_rate: Fraction, max_frame_rate: float) -> Fraction:
    if source_rate > max_frame_rate + 0.5:
        return Fraction(max_frame_rate).limit_denominator(1001)
    return source_rate


def _duration(src: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if src.duration is not None:
        return float(src.duration / av.time_base)
    return 0.0


@dataclass
class _Decoder:
    """The decoding side: demux and decode once, pick keyframe instants, hand out frames."""

    src: Any
    video: Any | None
    audio: Any | None
    encoders: list[_RenditionEncoder]
    fps: Fraction | None
    duration: float
    segment_seconds: float
    thin_to: float | None
    on_progress: Callable[[float], None] | None
    on_frame: FrameTap | None
    cancel: threading.Event | None
    _next_keyframe: int = 0
    _last_slot: int = -1
    _last_pts: int | None = None
    _reported: float = -1.0
    _audio_next: int | None = None  # the next audio sample's time, in samples

    def run(self) -> None:
        start = self.src.start_time / av.time_base if self.src.start_time is not None else 0.0
        resampler = (
            av.AudioResampler(
                format="fltp", layout="stereo", rate=AUDIO_SAMPLE_RATE, frame_size=AUDIO_FRAME_SIZE
            )
            if self.audio is not None
            else None
        )
        streams = [s for s in (self.video, self.audio) if s is not None]
        try:
            for packet in self.src.demux(streams):
                self._check_running()
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        self._video_frame(frame, start)
                    elif resampler is not None and isinstance(frame, av.AudioFrame):
                        for chunk in resampler.resample(self._audio_frame(frame)):
                            self._audio_chunk(chunk, start)
            if resampler is not None:
                for chunk in resampler.resample(None):
                    self._audio_chunk(chunk, start)
        except av.error.FFmpegError as error:
            raise SourceDecodeError(f"the source stopped decoding: {error}") from error

    def _check_running(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise TranscodeCancelled()
        for encoder in self.encoders:
            encoder.raise_error()

    def _video_frame(self, frame: Any, start: float) -> None:
        if frame.pts is None or (self._last_pts is not None and frame.pts <= self._last_pts):
            # No usable timestamp, or a repeated one: the encoder and muxer need strictly
            # increasing times, and a repeated instant shows nothing new.
            return
        t = float(frame.pts * frame.time_base) - start
        if self.thin_to is not None:
            slot = math.floor(t * self.thin_to + 0.5)
            if slot <= self._last_slot:
                return
            self._last_slot = slot
        self._last_pts = frame.pts
        # Force an IDR at each segment boundary so every rung cuts at the same instants
        # (robust to variable frame rate, unlike a GOP size).
        force_key = t >= self._next_keyframe * self.segment_seconds - 1e-3
        if force_key:
            self._next_keyframe = math.floor(t / self.segment_seconds + 1e-6) + 1
        if self.on_frame is not None:
            self.on_frame(frame, t)
        for encoder in self.encoders:
            if encoder.parent is None:  # the others get their parent's scaled frame
                encoder.submit(("video", frame, force_key))
        self._progress(t)

    def _audio_frame(self, frame: Any) -> Any:
        # Audio is timed by its samples from the first frame's timestamp on: containers
        # such as AVI carry overlapping or repeated audio timestamps, which the encoder and
        # the muxer refuse, and a continuous track keeps its sync with the picture.
        if self._audio_next is None:
            at = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            self._audio_next = round(at * AUDIO_SAMPLE_RATE)
        frame.pts = None
        return frame

    def _audio_chunk(self, chunk: Any, start: float) -> None:
        assert self._audio_next is not None
        chunk.pts, chunk.time_base = self._audio_next, Fraction(1, AUDIO_SAMPLE_RATE)
        self._audio_next += chunk.samples
        for encoder in self.encoders:
            encoder.submit(("audio", chunk, False))
        if self.video is None and chunk.pts is not None and chunk.time_base is not None:
            self._progress(float(chunk.pts * chunk.time_base) - start)

    def _progress(self, t: float) -> None:
        if self.on_progress is None or self.duration <= 0:
            return
        fraction = min(max(t / self.duration, 0.0), 1.0)
        if fraction - self._reported >= 0.01:
            self._reported = fraction
            self.on_progress(fraction)


_END: Any = object()


@dataclass(frozen=True)
class _VideoSpec:
    """What one rung's H.264 encoder is asked to make."""

    rung: Rung
    fps: Fraction
    time_base: Fraction
    preset: str

    @property
    def short_side(self) -> int:
        return min(self.rung.width, self.rung.height)

    def x264_options(self, segment_seconds: float) -> dict[str, str]:
        gop = max(1, round(float(self.fps) * segment_seconds))
        return {
            "preset": self.preset,
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "maxrate": str(int(self.rung.video_bitrate * 1.07)),
            "bufsize": str(int(self.rung.video_bitrate * 1.5)),
            # Repeat SPS/PPS in every IDR so each segment decodes on its own.
            "x264-params": "repeat-headers=1",
        }


class _RenditionEncoder:
    """One rendition: scale, encode and mux in its own thread, fed by a bounded queue.

    PyAV releases the GIL inside filtering, encoding and muxing, so the rungs and the
    decoder run truly in parallel.
    """

    def __init__(
        self,
        *,
        name: str,
        out_dir: str,
        segment_seconds: float,
        video: _VideoSpec | None,
        audio_bitrate: int | None,
    ) -> None:
        self.name = name
        self.spec = video
        self.rung_dir = os.path.join(out_dir, name)
        os.makedirs(self.rung_dir, exist_ok=True)
        self.container = av.open(
            os.path.join(self.rung_dir, PLAYLIST_NAME),
            "w",
            format="hls",
            options={
                "hls_time": f"{segment_seconds:g}",
                "hls_playlist_type": "vod",
                "hls_segment_filename": os.path.join(self.rung_dir, SEGMENT_PATTERN),
            },
        )
        self.video: Any = None
        if video is not None:
            self.video = self.container.add_stream(
                "libx264", rate=video.fps, options=video.x264_options(segment_seconds)
            )
            context = self.video.codec_context
            context.width, context.height = video.rung.width, video.rung.height
            context.pix_fmt = "yuv420p"
            context.bit_rate = video.rung.video_bitrate
            context.time_base = video.time_base
            context.framerate = video.fps
            self.video.thread_type = "AUTO"
        self.audio: Any = None
        if audio_bitrate is not None:
            self.audio = self.container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
            self.audio.layout = "stereo"
            self.audio.bit_rate = audio_bitrate
        self.graph: Any = None
        # Cascaded scaling (`_cascade`): the rung this one's frames come from, and those fed by it.
        self.parent: _RenditionEncoder | None = None
        self.children: list[_RenditionEncoder] = []
        self.first_video_packet: bytes | None = None
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.thread = threading.Thread(target=self._run, name=f"rung-{name}", daemon=True)
        self.error: BaseException | None = None
        self.aborted = False

    @classmethod
    def for_rung(
        cls,
        rung: Rung,
        out_dir: str,
        in_video: Any,
        in_audio: Any | None,
        fps: Fraction,
        segment_seconds: float,
        preset: str,
    ) -> _RenditionEncoder:
        return cls(
            name=rung.name,
            out_dir=out_dir,
            segment_seconds=segment_seconds,
            video=_VideoSpec(rung=rung, fps=fps, time_base=in_video.time_base, preset=preset),
            audio_bitrate=rung.audio_bitrate if in_audio is not None else None,
        )

    @classmethod
    def audio_only(cls, out_dir: str, segment_seconds: float) -> _RenditionEncoder:
        return cls(
            name=AUDIO_ONLY_NAME,
            out_dir=out_dir,
            segment_seconds=segment_seconds,
            video=None,
            audio_bitrate=AUDIO_ONLY_BITRATE,
        )

    # --- the decoding thread's side ---------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def submit(self, item: tuple[str, Any, bool]) -> None:
        self.queue.put(item)

    def finish(self) -> None:
        if self.thread.is_alive():
            self.queue.put(_END)

    def abort(self) -> None:
        # The thread skips whatever is still queued; _END may already be queued (finish ran).
        self.aborted = True
        if self.thread.is_alive():
            self.queue.put(_END)

    def join(self) -> None:
        self.thread.join()

    def raise_error(self) -> None:
        if self.error is not None:
            raise TranscodeError(f"rendition {self.name} failed: {self.error}") from self.error

    def result(self) -> RenditionResult:
        profile: tuple[int | None, int | None, int | None] = (None, None, None)
        if self.video is not None:
            profile = _sps_profile_level(self.first_video_packet or b"")
        return RenditionResult(
            name=self.name,
            playlist_path=os.path.join(self.rung_dir, PLAYLIST_NAME),
            has_video=self.video is not None,
            has_audio=self.audio is not None,
            width=self.spec.rung.width if self.spec is not None else None,
            height=self.spec.rung.height if self.spec is not None else None,
            frame_rate=float(self.spec.fps) if self.spec is not None else None,
            profile_idc=profile[0],
            constraint_flags=profile[1],
            level_idc=profile[2],
        )

    # --- the rendition's own thread ---------------------------------------------------------

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not _END:
                # After a failure or an abort, keep draining so the decoder never blocks.
                if self.error is None and not self.aborted:
                    try:
                        self._encode(*item)
                    except BaseException as error:
                        self.error = error
            if self.error is None and not self.aborted:
                self._flush()
        except BaseException as error:
            self.error = self.error or error
        finally:
            # Every frame a child gets from this rung has been handed over by now.
            for child in self.children:
                child.finish()
            try:
                self.container.close()
            except BaseException as error:
                if not self.aborted:
                    self.error = self.error or error

    def _encode(self, kind: str, frame: Any, force_key: bool) -> None:
        if kind == "video":
            for scaled in self._scaled(frame):
                # Children only read the frame, as the encoder does: share it, don't copy.
                for child in self.children:
                    child.submit(("video", scaled, force_key))
                scaled.pict_type = PictureType.I if force_key else PictureType.NONE
                self._mux(self.video.encode(scaled))
        elif self.audio is not None:
            self._mux(self.audio.encode(frame))

    def _scaled(self, frame: Any) -> Iterator[Any]:
        assert self.spec is not None
        if self.graph is None:
            # A parent's frames are upright already.
            rotation = 0 if self.parent is not None else frame.rotation or 0
            self.graph = _build_graph(self.spec.rung, frame, rotation)
        self.graph.push(frame)
        while True:
            try:
                yield self.graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return

    def _flush(self) -> None:
        if self.video is not None:
            self._mux(self.video.encode(None))
        if self.audio is not None:
            self._mux(self.audio.encode(None))

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            if self.first_video_packet is None and packet.stream is self.video:
                self.first_video_packet = bytes(packet)
            self.container.mux(packet)


def transpose_filters(rotation: int) -> list[tuple[str, str]]:
    """Filters that turn a decoded picture upright, given the frame's `rotation`
    (counter-clockwise degrees, from its display matrix)."""
    turn = round(rotation / 90) % 4
    if turn == 1:
        return [("transpose", "cclock")]
    if turn == 2:
        return [("hflip", ""), ("vflip", "")]
    if turn == 3:
        return [("transpose", "clock")]
    return []


def build_filter_chain(frame: Any, filters: list[tuple[str, str]]) -> Any:
    """A configured graph: buffer (shaped like `frame`) → filters → buffersink."""
    graph = av.filter.Graph()
    chain = [
        graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format.name,
            time_base=frame.time_base,
        )
    ]
    for name, args in filters:
        chain.append(graph.add(name, args) if args else graph.add(name))
    chain.append(graph.add("buffersink"))
    for upstream, downstream in itertools.pairwise(chain):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def _build_graph(rung: Rung, frame: Any, rotation: int) -> Any:
    return build_filter_chain(
        frame,
        [
            *transpose_filters(rotation),
            ("scale", f"{rung.width}:{rung.height}:flags=bicubic"),
            # The rung's size already has the display aspect; make its pixels square.
            ("setsar", "1"),
            ("format", "yuv420p"),
        ],
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
