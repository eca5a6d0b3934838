"""Engagement's migrations build exactly the tables its models describe, on both backends, and
the newest one downgrades and upgrades again cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command

from subgraphs.engagement.models import metadata
from subgraphs.kernel.migrations import _upgrade_serialised, alembic_config, upgrade
from tests.support.migrations import inspect_schema
from tests.support.processes import environment


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migrations_match_the_models_and_the_newest_downgrades(
    backend: str, tmp_path: Path
) -> None:
    with environment(tmp_path, database=backend, bus="local") as env:
        url = env.settings().database_url_for("engagement")
        asyncio.run(upgrade("engagement", url))
        differences, tables = asyncio.run(inspect_schema(url, metadata))
        assert differences == []
        assert "anonymous_viewers" in tables and "video_viewers" in tables

        config = alembic_config("engagement", url)
        command.downgrade(config, "0001")
        assert "anonymous_viewers" not in asyncio.run(inspect_schema(url, metadata))[1]
        _upgrade_serialised(config, "head")
        assert asyncio.run(inspect_schema(url, metadata))[0] == []
