"""Billing's migration builds exactly the tables its models describe, on both backends, and
downgrades cleanly (ledger triggers included)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command

from subgraphs.billing.models import metadata
from subgraphs.kernel.migrations import _upgrade_serialised, alembic_config
from tests.billing.harness import migrated_database
from tests.support.migrations import inspect_schema


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migration_matches_the_models_and_downgrades(backend: str, tmp_path: Path) -> None:
    with migrated_database(backend, tmp_path) as url:
        differences, tables = asyncio.run(inspect_schema(url, metadata))
        assert differences == []
        assert "postings" in tables and "charges" in tables
        config = alembic_config("billing", url)
        command.downgrade(config, "base")
        assert asyncio.run(inspect_schema(url, metadata))[1] == {"alembic_version"}
        _upgrade_serialised(config, "head")
        assert asyncio.run(inspect_schema(url, metadata))[0] == []
