"""Our HLS output plays in a real player: hls.js in headless Chromium plays a ladder the
transcode core produced, past 2 s, with every variant parsed from our master playlist."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.ladder import choose_ladder
from media_worker.playlists import write_master_playlist
from media_worker.transcode import transcode_to_hls
from tests.media_worker.media import make_clip
from tests.support.player import CHROMIUM, play, serve_directory

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
)


def test_hls_js_plays_our_ladder_past_two_seconds(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4", width=640, height=360, seconds=6, fps=30)
    out = tmp_path / "hls"
    result = transcode_to_hls(str(source), str(out), choose_ladder(640, 360), segment_seconds=2)
    write_master_playlist(result)

    with serve_directory(out) as origin:
        playback = play(origin, f"{origin}/master.m3u8", until=2.0)

    assert playback.fatal_errors == [], playback.errors
    assert playback.current_time > 2.0, playback
    assert playback.levels is not None
    assert sorted((level["width"], level["height"]) for level in playback.levels) == [
        (426, 240),
        (640, 360),
    ]
    assert all(level["frameRate"] == 30 for level in playback.levels), playback.levels
    assert any(url.endswith(".ts") for url in playback.requests)


def test_a_broken_playlist_is_a_fatal_player_error(tmp_path: Path) -> None:
    """The harness can fail: a master naming a missing variant never plays."""
    (tmp_path / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nmissing/index.m3u8\n"
    )
    with serve_directory(tmp_path) as origin:
        playback = play(origin, f"{origin}/master.m3u8", until=2.0, timeout=30)
    assert playback.current_time < 2.0
    assert playback.fatal_errors, playback.errors
