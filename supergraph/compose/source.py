"""The input of composition: one subgraph's name, routing URL and SDL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubgraphSource:
    name: str
    url: str
    sdl: str
