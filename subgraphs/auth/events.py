"""What auth publishes on the bus. Payloads carry no email, password or token."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from subgraphs.auth.models import User, outbox
from subgraphs.kernel.outbox import enqueue

USER_REGISTERED = "auth.user.registered"
USER_UPDATED = "auth.user.updated"
USER_DELETED = "auth.user.deleted"


def user_payload(user: User) -> dict[str, Any]:
    return {
        "userId": user.id,
        "handle": user.handle,
        "displayName": user.display_name,
        "avatarUrl": user.avatar_url,
        "role": user.role,
        "suspended": user.suspended_at is not None,
        "createdAt": user.created_at.isoformat(),
    }


async def user_registered(session: AsyncSession, user: User) -> None:
    await enqueue(session, outbox, USER_REGISTERED, user_payload(user))


async def user_updated(session: AsyncSession, user: User) -> None:
    await enqueue(session, outbox, USER_UPDATED, user_payload(user))


async def user_deleted(session: AsyncSession, user_id: str) -> None:
    await enqueue(session, outbox, USER_DELETED, {"userId": user_id})
