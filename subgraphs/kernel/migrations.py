"""Alembic per service: each subgraph keeps its own migrations, applied at start."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from subgraphs.kernel.db import create_engine, ensure_database, is_sqlite

SUBGRAPHS_DIR = Path(__file__).resolve().parent.parent
# Arbitrary but fixed: serialises migrations when several replicas start at once.
_PG_MIGRATION_LOCK = 0x5265656C
# Alembic keeps the running migration's context in module globals: one command per process.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SUBGRAPHS_DIR / service / "migrations"))
    # Passed as an attribute rather than an option: option values go through
    # ConfigParser interpolation, which would mangle a '%' in a password.
    config.attributes["database_url"] = url
    return config


async def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Create the database if needed and bring it to `revision`."""
    await ensure_database(url)
    # Alembic's env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(_upgrade_serialised, alembic_config(service, url), revision)


def _upgrade_serialised(config: Config, revision: str) -> None:
    with _ALEMBIC_LOCK:
        command.upgrade(config, revision)


def run_env(target_metadata: MetaData, *, unmanaged: Iterable[str] = ()) -> None:
    """The body of every service's `migrations/env.py`.

    `unmanaged` names tables the migrations create by hand because the models cannot describe
    them (a backend-specific search index, say): autogenerate ignores them and every table
    whose name starts with `<name>_` (SQLite FTS5 keeps shadow tables named so).
    """
    url: str = context.config.attributes["database_url"]
    include_name = _excluding(tuple(unmanaged))
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=target_metadata, literal_binds=True, include_name=include_name
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, target_metadata, include_name))


# Alembic's `include_name` hook: (name, type of object, parent names) -> compare it?
IncludeName = Callable[..., bool]


def _excluding(unmanaged: tuple[str, ...]) -> IncludeName:
    def include_name(name: str | None, type_: str, _parent: Mapping[str, Any]) -> bool:
        if type_ != "table" or name is None:
            return True
        return not any(name == table or name.startswith(f"{table}_") for table in unmanaged)

    return include_name


async def _run_online(url: str, target_metadata: MetaData, include_name: IncludeName) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync, url, target_metadata, include_name)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_sync(
    connection: Connection, url: str, target_metadata: MetaData, include_name: IncludeName
) -> None:
    sqlite = is_sqlite(url)
    if not sqlite:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        include_name=include_name,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()
