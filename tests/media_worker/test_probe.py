"""Probe real generated media: what it reports for good uploads, and which code rejects bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.probe import MediaInfo, ProbeError, probe
from tests.media_worker import media

LIMIT = 600.0


def _probe(path: Path, max_duration: float = LIMIT) -> MediaInfo:
    return probe(str(path), max_duration=max_duration)


def _rejects(path: Path, max_duration: float = LIMIT) -> ProbeError:
    with pytest.raises(ProbeError) as raised:
        _probe(path, max_duration)
    assert raised.value.reason
    return raised.value


def test_full_hd_with_audio(tmp_path: Path) -> None:
    path = media.make_clip(tmp_path / "hd.mp4", width=1920, height=1080, seconds=2, fps=30)
    info = _probe(path)
    assert info.container_format.startswith("mov,mp4")
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.size_bytes == path.stat().st_size
    assert info.video is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 1920, 1080)
    assert info.video.rotation == 0
    assert info.video.frame_rate == pytest.approx(30.0)
    assert not info.video.is_vfr
    assert info.video.pixel_format == "yuv420p"
    assert info.video.bit_rate is not None and info.video.bit_rate > 0
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 2)


def test_rotated_portrait_reports_displayed_size(tmp_path: Path) -> None:
    path = media.make_clip(
        tmp_path / "phone.mp4", width=640, height=360, seconds=2, fps=30, rotate=90
    )
    info = _probe(path)
    assert info.video is not None
    assert info.video.rotation == 90
    assert (info.video.width, info.video.height) == (360, 640)


def test_upside_down_keeps_size(tmp_path: Path) -> None:
    path = media.make_clip(
        tmp_path / "flip.mp4", width=320, height=240, seconds=1, fps=25, rotate=180
    )
    info = _probe(path)
    assert info.video is not None
    assert info.video.rotation == 180
    assert (info.video.width, info.video.height) == (320, 240)


def test_odd_dimensions(tmp_path: Path) -> None:
    path = media.make_clip(tmp_path / "odd.mp4", width=641, height=359, seconds=2, fps=24)
    info = _probe(path)
    assert info.video is not None
    assert (info.video.width, info.video.height) == (641, 359)
    assert info.video.frame_rate == pytest.approx(24.0)
    assert info.audio is not None


def test_variable_frame_rate(tmp_path: Path) -> None:
    path = media.make_clip(tmp_path / "vfr.mp4", width=320, height=240, seconds=2, fps=30, vfr=True)
    info = _probe(path)
    assert info.video is not None
    assert info.video.is_vfr
    # Frames alternate between 1/30 s and 3/30 s: 15 fps on average.
    assert info.video.frame_rate == pytest.approx(15.0, rel=0.05)
    assert info.duration == pytest.approx(2.0, abs=0.1)


def test_video_without_audio(tmp_path: Path) -> None:
    path = media.make_clip(
        tmp_path / "mute.mp4", width=320, height=240, seconds=2, fps=25, audio=False
    )
    info = _probe(path)
    assert info.video is not None and info.video.frame_rate == pytest.approx(25.0)
    assert info.audio is None


def test_audio_only_is_accepted(tmp_path: Path) -> None:
    info = _probe(media.make_audio_only(tmp_path / "song.m4a", seconds=2))
    assert info.video is None
    assert info.audio is not None and info.audio.codec == "aac"
    assert info.duration == pytest.approx(2.0, abs=0.1)


def test_one_second_clip(tmp_path: Path) -> None:
    path = media.make_clip(tmp_path / "short.mp4", width=320, height=240, seconds=1, fps=25)
    info = _probe(path)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert info.video is not None and info.audio is not None


def test_longer_clip_is_sampled_not_rejected(tmp_path: Path) -> None:
    path = media.make_clip(tmp_path / "long.mp4", width=320, height=240, seconds=4, fps=25)
    assert _probe(path).duration == pytest.approx(4.0, abs=0.1)


def test_too_long(tmp_path: Path) -> None:
    path = media.make_clip(tmp_path / "long.mp4", width=320, height=240, seconds=2, fps=25)
    error = _rejects(path, max_duration=1.5)
    assert error.code == "TOO_LONG"
    assert "1.5 s" in error.reason


def test_corrupt_middle(tmp_path: Path) -> None:
    assert _rejects(media.make_corrupt(tmp_path / "corrupt.mp4")).code == "CORRUPT_MEDIA"


def test_cut_short_after_index(tmp_path: Path) -> None:
    assert _rejects(media.make_cut_short(tmp_path / "cut.mp4")).code == "CORRUPT_MEDIA"


def test_truncated_upload_without_index(tmp_path: Path) -> None:
    assert _rejects(media.make_truncated(tmp_path / "half.mp4")).code == "CORRUPT_MEDIA"


def test_text_renamed_mp4(tmp_path: Path) -> None:
    assert _rejects(media.make_text_as_mp4(tmp_path / "notes.mp4")).code == "NOT_MEDIA"


def test_zero_byte_file(tmp_path: Path) -> None:
    assert _rejects(media.make_empty(tmp_path / "empty.mp4")).code == "EMPTY_FILE"


def test_unsupported_codec(tmp_path: Path) -> None:
    error = _rejects(media.make_unsupported_codec(tmp_path / "lossless.mkv"))
    assert error.code == "UNSUPPORTED_CODEC"
    assert "ffv1" in error.reason


def test_no_media_streams(tmp_path: Path) -> None:
    path = media.make_subtitles_only(tmp_path / "captions.srt")
    assert _rejects(path).code == "NO_MEDIA_STREAMS"
