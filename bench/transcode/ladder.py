"""The benchmark's 3-rung ladder (1080p, 720p, 360p): our standard rungs, sized for 16:9."""

from __future__ import annotations

from media_worker.ladder import choose_ladder

BENCH_LADDER = tuple(r for r in choose_ladder(1920, 1080) if r.name in ("1080p", "720p", "360p"))
