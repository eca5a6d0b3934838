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
    """Peak (max segment bits/duration) and average (total bits/total duration) bandwidth.

    A tail segment much shorter than the others is left out of the peak: its fixed container
    overhead over a few milliseconds would overstate the rate players must sustain.
    """
    directory = os.path.dirname(playlist_path)
    segments: list[tuple[int, float]] = []
    duration: float | None = None
    with open(playlist_path, encoding="utf-8") as playlist:
        for raw in playlist:
            line = raw.strip()
            if line.startswith("#EXTINF:"):
                duration = float(line[len("#EXTINF:") :].split(",", 1)[0])
            elif line and not line.startswith("#") and duration is not None:
                segments.append((os.path.getsize(os.path.join(directory, line)) * 8, duration))
                duration = None
    total_bits = sum(bits for bits, _ in segments)
    total_seconds = sum(seconds for _, seconds in segments)
    longest = max((seconds for _, seconds in segments), default=0.0)
    rates = [bits / s for bits, s in segments if s > 0 and s >= longest / 2]
    peak = max(rates, default=0.0)
    average = total_bits / total_seconds if total_seconds > 0 else 0.0
    return VariantStats(peak_bandwidth=round(max(peak, average)), average_bandwidth=round(average))


#: RFC 6381 name of AAC-LC, the only audio we write.
AAC_LC = "mp4a.40.2"


def codecs_string(rendition: RenditionResult) -> str:
    """The CODECS attribute: `avc1.PPCCLL` (the SPS's profile_idc, constraint flags and
    level_idc in hex) and/or AAC-LC."""
    r = rendition
    codecs = []
    if r.has_video:
        codecs.append(
            f"avc1.{r.profile_idc or 0:02x}{r.constraint_flags or 0:02x}{r.level_idc or 0:02x}"
        )
    if r.has_audio:
        codecs.append(AAC_LC)
    return ",".join(codecs)


def _short_side(rendition: RenditionResult) -> int:
    return min(rendition.width or 0, rendition.height or 0)


def start_order(renditions: list[RenditionResult]) -> list[RenditionResult]:
    """Renditions highest first, except the start variant (720p, else the top rung) leads."""
    by_height = sorted(renditions, key=_short_side, reverse=True)
    start = next((r for r in by_height if _short_side(r) <= PREFERRED_START_HEIGHT), by_height[0])
    return [start, *(r for r in by_height if r is not start)]


@dataclass(frozen=True)
class Variant:
    """One line of the master playlist, as written."""

    rendition: RenditionResult
    uri: str
    stats: VariantStats
    codecs: str


@dataclass(frozen=True)
class MasterPlaylist:
    path: str
    variants: list[Variant]


def write_master_playlist(result: TranscodeResult) -> MasterPlaylist:
    """Write `<out_dir>/master.m3u8` for a finished transcode: variants in start order."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    variants = []
    for rendition in start_order(result.renditions):
        variant = Variant(
            rendition=rendition,
            uri=f"{rendition.name}/{PLAYLIST_NAME}",
            stats=measure_variant(rendition.playlist_path),
            codecs=codecs_string(rendition),
        )
        attributes = [
            f"BANDWIDTH={variant.stats.peak_bandwidth}",
            f"AVERAGE-BANDWIDTH={variant.stats.average_bandwidth}",
        ]
        if rendition.has_video:
            attributes.append(f"RESOLUTION={rendition.width}x{rendition.height}")
        attributes.append(f'CODECS="{variant.codecs}"')
        if rendition.frame_rate is not None:
            attributes.append(f"FRAME-RATE={rendition.frame_rate:.3f}")
        lines.append(f"#EXT-X-STREAM-INF:{','.join(attributes)}")
        lines.append(variant.uri)
        variants.append(variant)
    path = os.path.join(result.out_dir, MASTER_NAME)
    with open(path, "w", encoding="utf-8") as master:
        master.write("\n".join(lines) + "\n")
    return MasterPlaylist(path=path, variants=variants)
