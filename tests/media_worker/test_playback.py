"""The worker's less common outputs play in a real player (hls.js in headless Chromium):
an audio-only ladder and a portrait, variable-frame-rate one, as `make_vod` lays them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.vod import VodOptions, make_vod
from tests.media_worker import media
from tests.support.player import CHROMIUM, play, serve_directory

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
)

OPTIONS = VodOptions(max_duration=60, segment_seconds=2, preset="ultrafast")


def test_hls_js_plays_the_audio_only_rendition(tmp_path: Path) -> None:
    source = media.make_audio_only(tmp_path / "song.m4a", seconds=5)
    make_vod(str(source), str(tmp_path / "out"), OPTIONS)
    with serve_directory(tmp_path / "out") as origin:
        playback = play(origin, f"{origin}/hls/master.m3u8", until=2.0)
    assert playback.fatal_errors == [], playback.errors
    assert playback.current_time > 2.0, playback
    assert playback.levels is not None and len(playback.levels) == 1
    assert playback.levels[0]["codecs"] == "mp4a.40.2"


def test_hls_js_plays_a_portrait_variable_frame_rate_ladder(tmp_path: Path) -> None:
    source = media.make_clip(
        tmp_path / "phone.mp4", width=640, height=360, seconds=5, fps=30, rotate=90, vfr=True
    )
    make_vod(str(source), str(tmp_path / "out"), OPTIONS)
    with serve_directory(tmp_path / "out") as origin:
        playback = play(origin, f"{origin}/hls/master.m3u8", until=2.0)
    assert playback.fatal_errors == [], playback.errors
    assert playback.current_time > 2.0, playback
    assert playback.levels is not None
    assert sorted((level["width"], level["height"]) for level in playback.levels) == [
        (240, 426),
        (360, 640),
    ]
