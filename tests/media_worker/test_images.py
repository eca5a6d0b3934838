"""Poster and storyboard, taken in the transcode's own pass: where they come from, their sizes,
and a WebVTT index with relative URIs."""

from __future__ import annotations

import statistics
from pathlib import Path

import av
import pytest

from media_worker.images import FLAT_LUMA_DEVIATION, storyboard_layout
from media_worker.vod import Vod, VodOptions, make_vod
from tests.media_worker import media
from tests.media_worker.harness import decode_jpeg, vtt_cues

OPTIONS = VodOptions(max_duration=60, segment_seconds=1, preset="ultrafast")


def _vod(source: Path, tmp_path: Path) -> Vod:
    return make_vod(str(source), str(tmp_path / "out"), OPTIONS)


def _luma_deviation(picture: av.VideoFrame) -> float:
    plane = picture.planes[0]
    data = bytes(plane)
    rows = [
        data[y * plane.line_size : y * plane.line_size + picture.width]
        for y in range(0, picture.height, 3)
    ]
    return statistics.pstdev(b for row in rows for b in row[::3])


def test_poster_skips_a_black_opening(tmp_path: Path) -> None:
    source = media.make_clip(
        tmp_path / "fade.mp4", width=320, height=240, seconds=3, fps=25, black_seconds=1.2
    )
    vod = _vod(source, tmp_path)
    assert vod.images.poster == "poster.jpg"
    poster = decode_jpeg(tmp_path / "out" / "poster.jpg")
    assert (poster.width, poster.height) == (320, 240)
    assert _luma_deviation(poster) > 4 * FLAT_LUMA_DEVIATION
    # The picture at 10% (the first candidate) is black: a naive poster would be.
    with av.open(str(tmp_path / "out" / "hls" / "240p" / "segment_00000.ts")) as segment:
        first = next(segment.decode(video=0)).reformat(format="gray")
    assert _luma_deviation(first) < FLAT_LUMA_DEVIATION


def test_storyboard_sprite_and_index(tmp_path: Path) -> None:
    source = media.make_clip(tmp_path / "clip.mp4", width=320, height=240, seconds=5, fps=25)
    vod = _vod(source, tmp_path)
    board = vod.images.storyboard
    assert board is not None
    assert (board.tile_width, board.tile_height) == (160, 120)
    assert (board.columns, board.rows, board.tiles, board.interval_seconds) == (3, 1, 3, 2.0)
    sprite = decode_jpeg(tmp_path / "out" / "storyboard.jpg")
    assert (sprite.width, sprite.height) == (480, 120)
    cues = vtt_cues((tmp_path / "out" / "storyboard.vtt").read_text())
    assert cues == [
        ("00:00:00.000", "00:00:02.000", "storyboard.jpg#xywh=0,0,160,120"),
        ("00:00:02.000", "00:00:04.000", "storyboard.jpg#xywh=160,0,160,120"),
        ("00:00:04.000", "00:00:05.000", "storyboard.jpg#xywh=320,0,160,120"),
    ]
    # Each tile is its own moment of the video, not one frame repeated.
    plane, data = sprite.planes[0], bytes(sprite.planes[0])
    tiles = [
        bytes(data[y * plane.line_size + x * 160 : y * plane.line_size + x * 160 + 160][::4])
        for x in range(3)
        for y in (60,)
    ]
    assert len(set(tiles)) == 3
    assert vod.document("v")["storyboard"] == {
        "image": "storyboard.jpg",
        "vtt": "storyboard.vtt",
        "tileWidth": 160,
        "tileHeight": 120,
        "columns": 3,
        "rows": 1,
        "intervalSeconds": 2.0,
    }


def test_portrait_images_are_upright(tmp_path: Path) -> None:
    source = media.make_clip(
        tmp_path / "phone.mp4", width=640, height=360, seconds=2, fps=25, rotate=90
    )
    vod = _vod(source, tmp_path)
    poster = decode_jpeg(tmp_path / "out" / "poster.jpg")
    assert (poster.width, poster.height) == (360, 640)
    board = vod.images.storyboard
    assert board is not None and (board.tile_width, board.tile_height) == (160, 284)


def test_large_source_poster_is_capped(tmp_path: Path) -> None:
    source = media.make_clip(
        tmp_path / "wide.mp4", width=1920, height=800, seconds=1, fps=10, audio=False
    )
    _vod(source, tmp_path)
    poster = decode_jpeg(tmp_path / "out" / "poster.jpg")
    assert (poster.width, poster.height) == (1280, 534)


def test_audio_only_has_no_images(tmp_path: Path) -> None:
    vod = _vod(media.make_audio_only(tmp_path / "song.m4a", seconds=2), tmp_path)
    assert vod.images.poster is None and vod.images.storyboard is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hls"]
    document = vod.document("v")
    assert document["thumbnail"] is None and document["storyboard"] is None


@pytest.mark.parametrize(
    ("duration", "layout"),
    [
        (1.0, (2.0, 1, 1, 1)),
        (30.0, (2.0, 15, 10, 2)),
        (200.0, (2.0, 100, 10, 10)),
        (4 * 3600.0, (144.0, 100, 10, 10)),
    ],
)
def test_storyboard_layout_bounds_the_sprite(
    duration: float, layout: tuple[float, int, int, int]
) -> None:
    assert storyboard_layout(duration) == layout
