"""The HLS bitrate ladder: the standard rungs and how a source's size picks its subset.
Never upscales; widths follow the display aspect ratio, rounded to even numbers."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Rung:
    """One rendition. Unsized rungs carry the nominal short side in `height` and width 0;
    `choose_ladder` returns them sized to the output frame (width x height)."""

    name: str
    height: int
    video_bitrate: int
    audio_bitrate: int
    width: int = 0


STANDARD_LADDER: tuple[Rung, ...] = (
    Rung("1080p", 1080, 5_000_000, 128_000),
    Rung("720p", 720, 2_800_000, 128_000),
    Rung("480p", 480, 1_400_000, 96_000),
    Rung("360p", 360, 800_000, 96_000),
    Rung("240p", 240, 400_000, 64_000),
)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def choose_ladder(source_width: int, source_height: int) -> list[Rung]:
    """Rungs (highest first) no taller than the source, sized to its display aspect ratio.

    Pass *display* dimensions (sample aspect ratio applied, rotation applied). The rung's
    `height` is matched against the source's short side, so a portrait 1080x1920 source gets
    a 1080p rung of 1080x1920. A source shorter than 240 gets one rung at its own (even)
    size with the 240p bitrates, so tiny uploads still play rather than fail.
    """
    if source_width <= 0 or source_height <= 0:
        raise ValueError(f"invalid source size {source_width}x{source_height}")
    short_side = min(source_width, source_height)
    landscape = source_width >= source_height
    aspect = max(source_width, source_height) / short_side
    picked = [rung for rung in STANDARD_LADDER if rung.height <= short_side]
    if not picked:
        lowest = STANDARD_LADDER[-1]
        picked = [replace(lowest, name=f"{_even_floor(short_side)}p", height=short_side)]
    sized = []
    for rung in picked:
        short = _even(rung.height) if rung.height < short_side else _even_floor(short_side)
        long = _even(short * aspect)
        width, height = (long, short) if landscape else (short, long)
        sized.append(replace(rung, width=width, height=height))
    return sized


def _even_floor(value: int) -> int:
    # At the source's own size, round down so odd dimensions never exceed the source.
    return max(2, value - value % 2)
