"""HLS ladder transcode: playlists, segments, keyframe alignment and sizing, checked with m3u8."""

from __future__ import annotations

import array
import math
import os
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import pytest

from media_worker.ladder import Rung, choose_ladder
from media_worker.playlists import write_master_playlist
from media_worker.transcode import TranscodeResult, scaling_parents, transcode_to_hls

SEGMENT_SECONDS = 1.0
FPS = 30


def make_clip(
    path: Path,
    width: int,
    height: int,
    *,
    seconds: float = 3.0,
    audio: bool = True,
    rotation: int = 0,
) -> str:
    """A moving-colour H.264 clip with an optional 440 Hz AAC tone; with `rotation`, a bright
    top half shows which way the picture was turned."""
    # 4:4:4 so odd dimensions are encodable (4:2:0 needs even ones).
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=48_000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        for index in range(int(seconds * FPS)):
            frame = av.VideoFrame(width, height, pix_fmt)
            for number, plane in enumerate(frame.planes):
                plane.update(bytes([(index * 7 + number * 50) % 256]) * plane.buffer_size)
            if rotation:
                # A bright top half, so the test can tell which way the picture was turned.
                luma = frame.planes[0]
                half = luma.line_size * (height // 2)
                luma.update(b"\xeb" * half + b"\x10" * (luma.buffer_size - half))
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            total, size, pts = int(seconds * 48_000), 1024, 0
            while pts < total:
                tone = array.array(
                    "f",
                    (0.2 * math.sin(2 * math.pi * 440 * (pts + k) / 48_000) for k in range(size)),
                )
                frame = av.AudioFrame(format="fltp", layout="stereo", samples=size)
                for plane in frame.planes:
                    plane.update(tone.tobytes())
                frame.sample_rate, frame.pts, frame.time_base = 48_000, pts, Fraction(1, 48_000)
                container.mux(sound.encode(frame))
                pts += size
            container.mux(sound.encode(None))
    return str(path)


def transcode(tmp_path: Path, source: str, ladder: list[Rung]) -> TranscodeResult:
    return transcode_to_hls(
        source, str(tmp_path / "out"), ladder, segment_seconds=SEGMENT_SECONDS, preset="ultrafast"
    )


def segment_files(playlist_path: str) -> list[tuple[str, float]]:
    playlist = m3u8.load(playlist_path)
    base = os.path.dirname(playlist_path)
    return [(os.path.join(base, s.uri), s.duration) for s in playlist.segments]


def keyframe_times(segment: str) -> tuple[bool, list[float]]:
    """Whether the segment opens on a keyframe, and its keyframe times."""
    with av.open(segment) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        times = [float(p.pts * p.time_base) for p in packets if p.is_keyframe]
        return packets[0].is_keyframe, times


def decoded_size(segment: str) -> tuple[int, int, int]:
    with av.open(segment) as container:
        frames = list(container.decode(video=0))
        return frames[0].width, frames[0].height, len(frames)


@pytest.fixture(scope="module")
def ladder_output(tmp_path_factory: pytest.TempPathFactory) -> TranscodeResult:
    tmp_path = tmp_path_factory.mktemp("ladder")
    source = make_clip(tmp_path / "clip.mp4", 640, 360)
    progress: list[float] = []
    result = transcode_to_hls(
        source,
        str(tmp_path / "out"),
        choose_ladder(640, 360),
        segment_seconds=SEGMENT_SECONDS,
        preset="ultrafast",
        on_progress=progress.append,
    )
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) > 2
    write_master_playlist(result)
    return result


def test_ladder_is_capped_at_the_source_and_sized_to_even_dims() -> None:
    assert [(r.name, r.width, r.height) for r in choose_ladder(1920, 1080)] == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]
    assert [(r.name, r.width, r.height) for r in choose_ladder(641, 361)] == [
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]
    portrait = choose_ladder(720, 1280)
    assert (portrait[0].name, portrait[0].width, portrait[0].height) == ("720p", 720, 1280)


def test_a_source_below_240_gets_one_rung_at_its_own_size() -> None:
    [rung] = choose_ladder(320, 180)
    assert (rung.name, rung.width, rung.height) == ("180p", 320, 180)


def test_master_lists_every_rung_with_measured_attributes(ladder_output: TranscodeResult) -> None:
    master = m3u8.load(os.path.join(ladder_output.out_dir, "master.m3u8"))
    assert master.is_variant
    variants = [(p.uri, p.stream_info) for p in master.playlists]
    assert [uri for uri, _ in variants] == ["360p/index.m3u8", "240p/index.m3u8"]
    for (_, info), size in zip(variants, [(640, 360), (426, 240)], strict=True):
        assert info.bandwidth >= info.average_bandwidth > 0
        assert info.resolution == size
        # preset=ultrafast makes x264 emit Constrained Baseline: profile 66, flags 0xc0.
        assert info.codecs.startswith("avc1.42c0") and info.codecs.endswith(",mp4a.40.2")
        assert info.frame_rate == pytest.approx(30.0)


def test_media_playlists_are_vod_with_segments_summing_to_the_clip(
    ladder_output: TranscodeResult,
) -> None:
    for rendition in ladder_output.renditions:
        playlist = m3u8.load(rendition.playlist_path)
        assert playlist.playlist_type == "vod" and playlist.is_endlist
        durations = [s.duration for s in playlist.segments]
        assert all(d <= SEGMENT_SECONDS + 1 for d in durations)
        assert sum(durations) == pytest.approx(3.0, abs=0.5)


def test_every_segment_decodes_and_opens_on_an_aligned_keyframe(
    ladder_output: TranscodeResult,
) -> None:
    keyframes_per_rung = []
    for rendition in ladder_output.renditions:
        frames = 0
        keyframes: list[float] = []
        for segment, _ in segment_files(rendition.playlist_path):
            assert os.path.exists(segment)
            width, height, count = decoded_size(segment)
            assert (width, height) == (rendition.width, rendition.height)
            frames += count
            opens_on_key, times = keyframe_times(segment)
            assert opens_on_key
            keyframes += times
        assert frames == 90
        keyframes_per_rung.append(keyframes)
    assert len(keyframes_per_rung[0]) == 3
    assert all(times == keyframes_per_rung[0] for times in keyframes_per_rung)


def test_video_only_source_yields_video_only_renditions(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "silent.mp4", 320, 240, seconds=2.0, audio=False)
    result = transcode(tmp_path, source, choose_ladder(320, 240))
    master = m3u8.load(write_master_playlist(result).path)
    assert [p.stream_info.codecs for p in master.playlists] == [
        f"{master.playlists[0].stream_info.codecs}"
    ]
    assert "mp4a" not in master.playlists[0].stream_info.codecs
    for segment, _ in segment_files(result.renditions[0].playlist_path):
        with av.open(segment) as container:
            assert not container.streams.audio


def test_odd_source_dimensions_produce_even_outputs(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "odd.mp4", 641, 361, seconds=1.0, audio=False)
    result = transcode(tmp_path, source, choose_ladder(641, 361))
    for rendition in result.renditions:
        segment, _ = segment_files(rendition.playlist_path)[0]
        width, height, _ = decoded_size(segment)
        assert (width, height) == (rendition.width, rendition.height)
        assert width % 2 == 0 and height % 2 == 0


def test_small_source_is_never_upscaled(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "small.mp4", 320, 180, seconds=1.0)
    result = transcode(tmp_path, source, choose_ladder(320, 180))
    assert [(r.width, r.height) for r in result.renditions] == [(320, 180)]
    segment, _ = segment_files(result.renditions[0].playlist_path)[0]
    assert decoded_size(segment)[:2] == (320, 180)


def test_rotated_source_is_transcoded_upright(tmp_path: Path) -> None:
    # Display matrix: turn 90 degrees counter-clockwise, so the bright top ends up on the left.
    source = make_clip(tmp_path / "phone.mp4", 320, 180, seconds=1.0, audio=False, rotation=90)
    result = transcode(tmp_path, source, choose_ladder(180, 320))
    segment, _ = segment_files(result.renditions[0].playlist_path)[0]
    with av.open(segment) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (180, 320)
    luma = frame.planes[0]
    middle_row = bytes(luma)[luma.line_size * 160 : luma.line_size * 160 + frame.width]
    assert middle_row[10] > 200 and middle_row[-10] < 40


def test_fast_sources_are_thinned_to_60_fps(tmp_path: Path) -> None:
    from tests.media_worker import media

    source = media.make_clip(tmp_path / "slowmo.mp4", width=160, height=120, seconds=1, fps=120)
    result = transcode(tmp_path, str(source), choose_ladder(160, 120))
    [rendition] = result.renditions
    assert rendition.frame_rate == 60.0
    frames = sum(decoded_size(segment)[2] for segment, _ in segment_files(rendition.playlist_path))
    # Every other frame of 120: 60 slots, plus one when the last frame rounds up to 1.0 s.
    assert frames in (60, 61)


def test_anamorphic_source_comes_out_with_square_pixels(tmp_path: Path) -> None:
    from tests.media_worker import media

    source = media.make_clip(
        tmp_path / "dv.mp4", width=480, height=360, seconds=1, fps=25, sar=Fraction(4, 3)
    )
    result = transcode(tmp_path, str(source), choose_ladder(640, 360))
    segment, _ = segment_files(result.renditions[0].playlist_path)[0]
    with av.open(segment) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
        assert stream.sample_aspect_ratio in (None, Fraction(1, 1))


def test_cancel_stops_the_work_and_every_rung_thread(tmp_path: Path) -> None:
    import threading

    from media_worker.transcode import TranscodeCancelled

    source = make_clip(tmp_path / "clip.mp4", 640, 360, seconds=3.0)
    cancel = threading.Event()
    seen: list[float] = []

    def on_progress(fraction: float) -> None:
        seen.append(fraction)
        if fraction >= 0.2:
            cancel.set()

    before = {t.name for t in threading.enumerate()}
    with pytest.raises(TranscodeCancelled):
        transcode_to_hls(
            source,
            str(tmp_path / "out"),
            choose_ladder(640, 360),
            segment_seconds=SEGMENT_SECONDS,
            preset="ultrafast",
            on_progress=on_progress,
            cancel=cancel,
        )
    assert max(seen) < 1.0
    assert not [t for t in threading.enumerate() if t.name.startswith("rung-")]
    assert {t.name for t in threading.enumerate()} <= before | {"MainThread"}


def test_each_rung_is_scaled_from_the_smallest_rung_at_least_twice_its_size() -> None:
    # 1080, 720, 480, 360, 240: 480 comes from 1080, 360 from 720, 240 from 480.
    assert scaling_parents([1080, 720, 480, 360, 240]) == [None, None, 0, 1, 2]
    assert scaling_parents([1080, 720, 360]) == [None, None, 1]
    assert scaling_parents([2160, 1080, 720, 480, 360, 240]) == [None, 0, 0, 1, 2, 3]
    assert scaling_parents([360, 240]) == [None, None]
    assert scaling_parents([]) == []


def test_cascaded_rungs_of_a_rotated_source_are_upright_and_sized(tmp_path: Path) -> None:
    # Display 540x960: rungs 480, 360 and 240 (scaled from the upright 480 rung, not turned again).
    source = make_clip(tmp_path / "phone.mp4", 960, 540, seconds=1.0, audio=False, rotation=90)
    ladder = choose_ladder(540, 960)
    assert [r.name for r in ladder] == ["480p", "360p", "240p"]
    result = transcode(tmp_path, source, ladder)
    for rendition in result.renditions:
        segment, _ = segment_files(rendition.playlist_path)[0]
        with av.open(segment) as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (rendition.width, rendition.height)
        assert frame.width < frame.height
        luma = frame.planes[0]
        row = frame.height // 2
        middle_row = bytes(luma)[luma.line_size * row : luma.line_size * row + frame.width]
        assert middle_row[5] > 200 and middle_row[-5] < 40, rendition.name
