"""Operator actions run from the command line, outside any request."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from subgraphs.auth import events
from subgraphs.auth.models import User
from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.migrations import upgrade
from subgraphs.kernel.settings import Settings


async def set_role_by_handle(settings: Settings, handle: str, role: str) -> bool:
    url = settings.database_url_for("auth")
    await upgrade("auth", url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            user = (
                await session.execute(
                    select(User).where(col(User.handle_normalized) == handle.lower())
                )
            ).scalar_one_or_none()
            if user is None:
                return False
            user.role = role
            user.updated_at = utcnow()
            session.add(user)
            await session.flush()
            # The running service's outbox relay publishes this on its next tick.
            await events.user_updated(session, user)
        return True
    finally:
        await db.dispose()
