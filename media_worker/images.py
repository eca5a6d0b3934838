"""The poster thumbnail and the storyboard sprite with its WebVTT index, taken from frames
of the transcode's own decoding pass (no second decode)."""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from media_worker.transcode import build_filter_chain, transpose_filters

POSTER_NAME = "poster.jpg"
STORYBOARD_IMAGE = "storyboard.jpg"
STORYBOARD_VTT = "storyboard.vtt"

#: The poster's longer side, at most (never upscaled).
POSTER_MAX_SIDE = 1280
#: Where the poster is looked for, as shares of the duration: the first candidate that is not
#: a flat picture (a black or white frame, a fade) wins; else the first.
POSTER_CANDIDATES = (0.1, 0.25, 0.5)
#: Luma standard deviation (0-255) below which a picture counts as flat.
FLAT_LUMA_DEVIATION = 6.0

TILE_WIDTH = 160
MAX_TILE_HEIGHT = 480
STORYBOARD_COLUMNS = 10
STORYBOARD_MAX_TILES = 100
#: A tile every this many seconds at least; longer media spread 100 tiles over their length.
STORYBOARD_MIN_INTERVAL = 2.0

# JPEG quantiser bounds (2 is best): sharp posters at a modest size.
_JPEG_OPTIONS = {"qmin": "2", "qmax": "5"}


@dataclass(frozen=True)
class Storyboard:
    image: str
    vtt: str
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    interval_seconds: float
    tiles: int


@dataclass(frozen=True)
class Images:
    """What was written, as paths relative to the output directory."""

    poster: str | None
    storyboard: Storyboard | None


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def storyboard_layout(duration: float) -> tuple[float, int, int, int]:
    """Interval, tile count, columns and rows for media `duration` seconds long."""
    interval = max(STORYBOARD_MIN_INTERVAL, duration / STORYBOARD_MAX_TILES)
    count = max(1, min(STORYBOARD_MAX_TILES, math.ceil(duration / interval - 1e-6)))
    columns = min(STORYBOARD_COLUMNS, count)
    return interval, count, columns, math.ceil(count / columns)


class ImageTap:
    """Fed every kept video frame of the transcode (`offer`), it keeps the few it needs;
    `write` then encodes the poster and the storyboard as JPEG files."""

    def __init__(self, duration: float, display_width: int, display_height: int) -> None:
        """`display_*`: the picture's upright size with square pixels (the probe's)."""
        self.duration = duration
        self.display_size = (display_width, display_height)
        self.interval, self.tile_count, self.columns, self.rows = storyboard_layout(duration)
        self._poster_times = [share * duration for share in POSTER_CANDIDATES]
        self._poster: Any = None  # the chosen (or fallback) poster, upright and scaled
        self._poster_done = False
        self._poster_graph: Any = None
        self._tile_graph: Any = None
        self._tiles = 0
        self._tile_size: tuple[int, int] = (0, 0)
        # The latest frame while no poster is chosen: media that end before the first
        # candidate time (a stated duration longer than the picture) still get a poster.
        self._latest: Any = None

    def offer(self, frame: Any, t: float) -> None:
        """Called from the decoding thread with each frame and its time in seconds."""
        if self._poster is None:
            self._latest = frame
        if not self._poster_done and self._poster_times and t >= self._poster_times[0]:
            while self._poster_times and t >= self._poster_times[0]:
                self._poster_times.pop(0)
            self._consider_poster(frame)
        if self._tiles < self.tile_count and t >= self._tiles * self.interval - 1e-3:
            self._add_tile(frame)

    def _consider_poster(self, frame: Any) -> None:
        if self._poster_graph is None:
            width, height = self.display_size
            scale = min(1.0, POSTER_MAX_SIDE / max(width, height))
            self._poster_graph = _image_graph(frame, _even(width * scale), _even(height * scale))
        picture = _run_graph(self._poster_graph, frame)
        if picture is None:
            return
        if self._poster is None:
            self._poster = picture
            self._latest = None
        if not _is_flat(picture):
            self._poster = picture
            self._poster_done = True
        elif not self._poster_times:
            self._poster_done = True

    def _add_tile(self, frame: Any) -> None:
        if self._tile_graph is None:
            width, height = self.display_size
            tile_height = min(MAX_TILE_HEIGHT, _even(TILE_WIDTH * height / width))
            self._tile_size = (TILE_WIDTH, tile_height)
            self._tile_graph = build_filter_chain(
                frame,
                [
                    *transpose_filters(frame.rotation or 0),
                    ("scale", f"{TILE_WIDTH}:{tile_height}:flags=bicubic"),
                    ("setsar", "1"),
                    (
                        "tile",
                        f"layout={self.columns}x{self.rows}:nb_frames={self.tile_count}"
                        ":padding=0:margin=0",
                    ),
                    ("format", "yuvj420p"),
                ],
            )
        self._tile_graph.push(frame)
        self._tiles += 1

    def write(self, out_dir: str) -> Images:
        """Encode what was gathered into `out_dir`; call once the decoding pass is over."""
        poster = None
        if self._poster is None and self._latest is not None:
            self._consider_poster(self._latest)
        if self._poster is not None:
            _write_jpeg(self._poster, os.path.join(out_dir, POSTER_NAME))
            poster = POSTER_NAME
        storyboard = None
        if self._tile_graph is not None and self._tiles:
            self._tile_graph.push(None)
            sprites = _drain(self._tile_graph)
            if sprites:
                _write_jpeg(sprites[0], os.path.join(out_dir, STORYBOARD_IMAGE))
                with open(os.path.join(out_dir, STORYBOARD_VTT), "w", encoding="utf-8") as vtt:
                    vtt.write(self._vtt())
                width, height = self._tile_size
                storyboard = Storyboard(
                    image=STORYBOARD_IMAGE,
                    vtt=STORYBOARD_VTT,
                    tile_width=width,
                    tile_height=height,
                    columns=self.columns,
                    rows=self.rows,
                    interval_seconds=self.interval,
                    tiles=self._tiles,
                )
        return Images(poster=poster, storyboard=storyboard)

    def _vtt(self) -> str:
        # Relative URIs: the index is served beside the sprite, under the same signed path.
        width, height = self._tile_size
        lines = ["WEBVTT", ""]
        for index in range(self._tiles):
            start = index * self.interval
            end = self.duration if index == self._tiles - 1 else (index + 1) * self.interval
            x, y = (index % self.columns) * width, (index // self.columns) * height
            lines += [
                f"{_timestamp(start)} --> {_timestamp(max(end, start + 0.001))}",
                f"{STORYBOARD_IMAGE}#xywh={x},{y},{width},{height}",
                "",
            ]
        return "\n".join(lines)


def _image_graph(frame: Any, width: int, height: int) -> Any:
    return build_filter_chain(
        frame,
        [
            *transpose_filters(frame.rotation or 0),
            ("scale", f"{width}:{height}:flags=bicubic"),
            ("setsar", "1"),
            ("format", "yuvj420p"),
        ],
    )


def _run_graph(graph: Any, frame: Any) -> Any | None:
    graph.push(frame)
    pictures = _drain(graph)
    return pictures[-1] if pictures else None


def _drain(graph: Any) -> list[Any]:
    pictures = []
    while True:
        try:
            pictures.append(graph.pull())
        except (av.BlockingIOError, av.EOFError):
            return pictures


def _is_flat(picture: Any) -> bool:
    """A picture with almost no luma variation: black, white, or one colour."""
    luma = picture.planes[0]
    rows = bytes(luma)
    # Sample about 20 000 pixels on a stride coprime with the line size, skipping padding.
    step = max(1, (picture.width * picture.height) // 20_000) | 1
    samples = [
        rows[i]
        for i in range(0, luma.line_size * picture.height, step)
        if i % luma.line_size < picture.width
    ]
    return len(samples) < 2 or statistics.pstdev(samples) < FLAT_LUMA_DEVIATION


def _write_jpeg(picture: Any, path: str) -> None:
    context = av.CodecContext.create("mjpeg", "w")
    context.width, context.height = picture.width, picture.height
    context.pix_fmt = "yuvj420p"
    context.time_base = Fraction(1, 1)
    context.options = dict(_JPEG_OPTIONS)
    picture.pts = 0
    packets = context.encode(picture) + context.encode(None)
    with open(path, "wb") as image:
        for packet in packets:
            image.write(bytes(packet))


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
