"""One run of our pipeline, in its own process: `python -m bench.transcode.ours SRC OUT
SEGMENT PRESET [--full]`. Without --full: the ladder transcode and master playlist, the same
outputs the ffmpeg command makes. With --full: also the probe, poster and storyboard, as the
worker does them."""

from __future__ import annotations

import sys

from bench.transcode.ladder import BENCH_LADDER
from media_worker.images import ImageTap
from media_worker.playlists import write_master_playlist
from media_worker.probe import probe
from media_worker.transcode import transcode_to_hls


def main(argv: list[str]) -> None:
    source, out_dir, segment, preset = argv[:4]
    full = "--full" in argv[4:]
    tap = None
    if full:
        info = probe(source, max_duration=4 * 3600)
        assert info.video is not None
        tap = ImageTap(info.duration, info.video.width, info.video.height)
    result = transcode_to_hls(
        source,
        out_dir,
        list(BENCH_LADDER),
        segment_seconds=float(segment),
        preset=preset,
        on_frame=tap.offer if tap else None,
    )
    write_master_playlist(result)
    if tap is not None:
        tap.write(out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
