"""One auth and one engagement process per backend combination, shared by every engagement
test module, and a `Stack` to drive them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.engagement.stack import Stack, running_services
from tests.engagement.world import World, open_world
from tests.support.processes import Environment, ServiceProcess, environment

# The embedded default, and the scaled-out one.
BACKENDS = [("sqlite", "local"), ("postgres", "redis")]
BACKEND_IDS = [f"{db}+{bus}" for db, bus in BACKENDS]


@pytest.fixture(scope="package", params=BACKENDS, ids=BACKEND_IDS)
def engagement_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Environment]:
    database, bus = request.param
    with environment(
        tmp_path_factory.mktemp(f"engagement-{database}-{bus}"),
        database=database,
        bus=bus,
        # Tests send chat faster than a person; the per-user rate has its own tests.
        REELGRAPH_CHAT_MIN_INTERVAL="0",
        # A replica that dies stops counting its viewers after this long.
        REELGRAPH_PRESENCE_TTL="3",
    ) as env:
        yield env


@pytest.fixture(scope="package")
def services(engagement_env: Environment) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    with running_services(engagement_env) as (auth, (engagement,)):
        yield auth, engagement


@pytest.fixture
async def stack(
    engagement_env: Environment, services: tuple[ServiceProcess, ServiceProcess]
) -> AsyncIterator[Stack]:
    auth, engagement = services
    running = Stack(engagement_env, auth.url, engagement.url)
    yield running
    await running.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh engagement database per test: top videos and totals span the whole platform."""
    with environment(tmp_path, database=request.param, bus="local") as env:
        yield env.settings().database_url_for("engagement")


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """Engagement in this process on that database, with a scripted clock (`world.py`)."""
    async with open_world(database_url, tmp_path) as running:
        yield running
