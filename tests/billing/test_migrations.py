"""Billing's migration builds exactly the tables its models describe, on both backends, and
downgrades cleanly (ledger triggers included)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from subgraphs.billing.models import metadata
from subgraphs.kernel.db import create_engine
from subgraphs.kernel.migrations import _upgrade_serialised, alembic_config
from tests.billing.harness import migrated_database


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> list[str]:
    return sorted(inspect(connection).get_table_names())


async def _inspect(url: str) -> tuple[list[object], list[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_differences), await conn.run_sync(_tables)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migration_matches_the_models_and_downgrades(backend: str, tmp_path: Path) -> None:
    with migrated_database(backend, tmp_path) as url:
        differences, tables = asyncio.run(_inspect(url))
        assert differences == []
        assert "postings" in tables and "charges" in tables
        config = alembic_config("billing", url)
        command.downgrade(config, "base")
        assert asyncio.run(_inspect(url))[1] == ["alembic_version"]
        _upgrade_serialised(config, "head")
        assert asyncio.run(_inspect(url))[0] == []
