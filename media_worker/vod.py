"""From a source file to a finished VOD in a local directory: probe, transcode the ladder
while taking the images, write the master playlist, and describe the result (media.json)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from media_worker.images import Images, ImageTap
from media_worker.ladder import choose_ladder
from media_worker.playlists import MASTER_NAME, write_master_playlist
from media_worker.probe import MediaInfo, probe
from media_worker.transcode import transcode_to_hls

#: Where the renditions go under the output directory (and under the storage prefix).
HLS_DIR = "hls"


@dataclass(frozen=True)
class VodOptions:
    max_duration: float
    segment_seconds: float = 4.0
    preset: str = "veryfast"


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int | None
    height: int | None
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float | None


@dataclass(frozen=True)
class Vod:
    """A finished VOD in `out_dir`; paths are relative to it, as in storage."""

    out_dir: str
    info: MediaInfo
    master: str
    renditions: list[Rendition]
    images: Images

    def document(self, video_id: str) -> dict[str, Any]:
        """The `media.ready` payload, also stored as `media.json` (docs/events.md)."""
        storyboard = self.images.storyboard
        return {
            "videoId": video_id,
            "durationSeconds": round(self.info.duration, 3),
            "hasVideo": self.info.video is not None,
            "hasAudio": self.info.audio is not None,
            "master": self.master,
            "renditions": [
                {
                    "name": r.name,
                    "width": r.width,
                    "height": r.height,
                    "bandwidth": r.bandwidth,
                    "averageBandwidth": r.average_bandwidth,
                    "codecs": r.codecs,
                    "frameRate": None if r.frame_rate is None else round(r.frame_rate, 3),
                }
                for r in self.renditions
            ],
            "thumbnail": self.images.poster,
            "storyboard": None
            if storyboard is None
            else {
                "image": storyboard.image,
                "vtt": storyboard.vtt,
                "tileWidth": storyboard.tile_width,
                "tileHeight": storyboard.tile_height,
                "columns": storyboard.columns,
                "rows": storyboard.rows,
                "intervalSeconds": round(storyboard.interval_seconds, 3),
            },
        }


def make_vod(
    source: str,
    out_dir: str,
    options: VodOptions,
    *,
    on_progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> Vod:
    """Probe `source` (ProbeError if unfit), then transcode it into `out_dir`.

    Blocking and CPU-heavy: run it in a thread. `on_progress` gets 0..1 from that thread.
    """
    info = probe(source, max_duration=options.max_duration)
    ladder = choose_ladder(info.video.width, info.video.height) if info.video else []
    tap = ImageTap(info.duration, info.video.width, info.video.height) if info.video else None
    result = transcode_to_hls(
        source,
        os.path.join(out_dir, HLS_DIR),
        ladder,
        segment_seconds=options.segment_seconds,
        preset=options.preset,
        video_index=info.video.index if info.video else None,
        audio_index=info.audio.index if info.audio else None,
        on_progress=on_progress,
        on_frame=tap.offer if tap else None,
        cancel=cancel,
    )
    master = write_master_playlist(result)
    images = tap.write(out_dir) if tap else Images(poster=None, storyboard=None)
    by_height = sorted(
        master.variants,
        key=lambda v: min(v.rendition.width or 0, v.rendition.height or 0),
        reverse=True,
    )
    return Vod(
        out_dir=out_dir,
        info=info,
        master=f"{HLS_DIR}/{MASTER_NAME}",
        renditions=[
            Rendition(
                name=v.rendition.name,
                width=v.rendition.width,
                height=v.rendition.height,
                bandwidth=v.stats.peak_bandwidth,
                average_bandwidth=v.stats.average_bandwidth,
                codecs=v.codecs,
                frame_rate=v.rendition.frame_rate,
            )
            for v in by_height
        ],
        images=images,
    )
