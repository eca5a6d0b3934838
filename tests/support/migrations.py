"""What a migrated database holds, compared with a service's models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from subgraphs.kernel.db import create_engine


async def inspect_schema(url: str, metadata: MetaData) -> tuple[list[object], set[str]]:
    """The differences between the database at `url` and `metadata`, and its table names."""

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(differences), await conn.run_sync(tables)
    finally:
        await engine.dispose()
