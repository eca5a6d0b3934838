"""Billing's service on a real database without HTTP, for the ledger's property tests: a
migrated SQLite file or PostgreSQL database, the built-in payment provider, and a clock the
test moves forward (so hours of playback run in milliseconds)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from subgraphs.billing.app import playback_key_store
from subgraphs.billing.payments import TestPaymentProvider
from subgraphs.billing.service import BillingService
from subgraphs.kernel.db import Database
from subgraphs.kernel.migrations import upgrade
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import AccessClaims
from tests.support.processes import POSTGRES_SERVER


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def claims(user_id: str, role: str = "VIEWER") -> AccessClaims:
    now = int(time.time())
    return AccessClaims(
        subject=user_id, role=role, token_id=uuid.uuid4().hex, issued_at=now, expires_at=now + 900
    )


@contextmanager
def migrated_database(kind: str, tmp: Path) -> Iterator[str]:
    """A migrated billing database URL, dropped afterwards (PostgreSQL)."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'billing.db'}"
        asyncio.run(upgrade("billing", url))
        yield url
        return
    name = f"rgtest_billing_{uuid.uuid4().hex[:10]}"
    url = (
        make_url(POSTGRES_SERVER)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )
    asyncio.run(upgrade("billing", url))
    try:
        yield url
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(POSTGRES_SERVER)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())


@asynccontextmanager
async def billing_service(
    url: str, tmp: Path, clock: Clock, **settings: object
) -> AsyncIterator[BillingService]:
    config = Settings(data_dir=tmp, billing_test_provider_delay_seconds=0, **settings)  # type: ignore[arg-type]
    keys = playback_key_store(config)
    keys.ensure()
    db = Database(url)
    try:
        yield BillingService(
            db,
            config,
            provider=TestPaymentProvider(delay_seconds=0),
            playback_keys=keys,
            clock=clock,
        )
    finally:
        await db.dispose()
