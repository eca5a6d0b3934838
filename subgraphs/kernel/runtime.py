"""A service process's long-lived parts: database, bus, token verifier and background tasks,
started and stopped together by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sqlalchemy import Table

from subgraphs.kernel.bus import Bus, open_bus
from subgraphs.kernel.db import Database
from subgraphs.kernel.migrations import upgrade
from subgraphs.kernel.outbox import OutboxRelay
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import JwksClient, KeySource, TokenVerifier

log = logging.getLogger(__name__)

BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        outbox: Table,
        keys: KeySource | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.db = Database(settings.database_url_for(name))
        self.bus: Bus = open_bus(settings)
        self.keys: KeySource = keys or JwksClient(
            settings.resolved_jwks_url(), cache_seconds=settings.jwks_cache_seconds
        )
        self.verifier = TokenVerifier(
            self.keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        self.relay = OutboxRelay(self.db, outbox, self.bus)
        self.stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: list[BackgroundTask] = [self.relay.run]

    def add_background(self, task: BackgroundTask) -> None:
        self._background.append(task)

    async def start(self) -> None:
        await upgrade(self.name, self.db.url)
        self.stop_event.clear()
        self._tasks = [asyncio.create_task(task(self.stop_event)) for task in self._background]
        log.info(
            "service started",
            extra={"database": self.db.engine.dialect.name, "bus": self.settings.bus},
        )

    async def stop(self) -> None:
        self.stop_event.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.relay.flush()
        await self.bus.close()
        if isinstance(self.keys, JwksClient):
            await self.keys.close()
        await self.db.dispose()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
