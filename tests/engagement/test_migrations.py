"""Engagement's migrations build exactly the tables its models describe, on both backends, and
the newest one downgrades and upgrades again cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from subgraphs.engagement.models import metadata
from subgraphs.kernel.db import create_engine
from subgraphs.kernel.migrations import _upgrade_serialised, alembic_config, upgrade
from tests.support.processes import environment


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _inspect(url: str) -> tuple[list[object], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_differences), await conn.run_sync(_tables)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migrations_match_the_models_and_the_newest_downgrades(
    backend: str, tmp_path: Path
) -> None:
    with environment(tmp_path, database=backend, bus="local") as env:
        url = env.settings().database_url_for("engagement")
        asyncio.run(upgrade("engagement", url))
        differences, tables = asyncio.run(_inspect(url))
        assert differences == []
        assert "anonymous_viewers" in tables and "video_viewers" in tables

        config = alembic_config("engagement", url)
        command.downgrade(config, "0001")
        assert "anonymous_viewers" not in asyncio.run(_inspect(url))[1]
        _upgrade_serialised(config, "head")
        assert asyncio.run(_inspect(url))[0] == []
