"""The HLS master playlist, written by us so it carries FRAME-RATE and a chosen start variant.
Bandwidths are measured from the segments actually produced."""

from __future__ import annotations

import os
from dataclasses import dataclass

from media_worker.transcode import PLAYLIST_NAME, RenditionResult, TranscodeResult

MASTER_NAME = "master.m3u8"
#: hls.js and most players start on the first variant listed; 720p starts sharp yet quickly.
PREFERRED_START_HEIGHT = 720


@dataclass(frozen=True)
class VariantStats:
    peak_bandwidth: int
    average_bandwidth: int


def measure_variant(playlist_path: str) -> VariantStats:
    """Peak (max segment bits/duration) and average (total bits/total duration) bandwidth."""
    directory = os.path.dirname(playlist_path)
    peak = 0.0
    total_bits = 0
    total_seconds = 0.0
    duration: float | None = None
    with open(playlist_path, encoding="utf-8") as playlist:
        for raw in playlist:
            line = raw.strip()
            if line.startswith("#EXTINF:"):
                duration = float(line[len("#EXTINF:") :].split(",", 1)[0])
            elif line and not line.startswith("#") and duration is not None:
                bits = os.path.getsize(os.path.join(directory, line)) * 8
                if duration > 0:
                    peak = max(peak, bits / duration)
                total_bits += bits
                total_seconds += duration
                duration = None
    average = total_bits / total_seconds if total_seconds > 0 else 0.0
    return VariantStats(peak_bandwidth=round(peak), average_bandwidth=round(average))


def codecs_string(rendition: RenditionResult) -> str:
    # RFC 6381 avc1.PPCCLL: the SPS's profile_idc, constraint flags and level_idc in hex.
    r = rendition
    video = f"avc1.{r.profile_idc:02x}{r.constraint_flags:02x}{r.level_idc:02x}"
    return f"{video},mp4a.40.2" if rendition.has_audio else video


def start_order(renditions: list[RenditionResult]) -> list[RenditionResult]:
    """Renditions highest first, except the start variant (720p, else the top rung) leads."""
    by_height = sorted(renditions, key=lambda r: min(r.width, r.height), reverse=True)
    start = next(
        (r for r in by_height if min(r.width, r.height) <= PREFERRED_START_HEIGHT), by_height[0]
    )
    return [start, *(r for r in by_height if r is not start)]


def write_master_playlist(result: TranscodeResult) -> str:
    """Write `<out_dir>/master.m3u8` for a finished transcode and return its path."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rendition in start_order(result.renditions):
        stats = measure_variant(rendition.playlist_path)
        attributes = ",".join(
            [
                f"BANDWIDTH={stats.peak_bandwidth}",
                f"AVERAGE-BANDWIDTH={stats.average_bandwidth}",
                f"RESOLUTION={rendition.width}x{rendition.height}",
                f'CODECS="{codecs_string(rendition)}"',
                f"FRAME-RATE={rendition.frame_rate:.3f}",
            ]
        )
        lines.append(f"#EXT-X-STREAM-INF:{attributes}")
        lines.append(f"{rendition.rung.name}/{PLAYLIST_NAME}")
    path = os.path.join(result.out_dir, MASTER_NAME)
    with open(path, "w", encoding="utf-8") as master:
        master.write("\n".join(lines) + "\n")
    return path
