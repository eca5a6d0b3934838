"""What every part of engagement shares: who the caller is (from the token and the user
projection), who may see a video, input checks, and dialect-neutral SQL pieces."""

from __future__ import annotations

import hashlib
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col

from subgraphs.engagement.models import ChatRoom, KnownUser, KnownVideo
from subgraphs.kernel.db import Database
from subgraphs.kernel.errors import BadUserInput, Forbidden, NotFound, Unauthenticated
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import AccessClaims

Clock = Callable[[], float]

VISIBLE_TO_ALL = ("PUBLIC", "UNLISTED")


@dataclass
class Parts:
    """What each part of the service is built from."""

    db: Database
    settings: Settings
    clock: Clock = time.time
    # Called after a transaction that wrote outbox rows commits: publish them now.

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


@dataclass(frozen=True)
class Member:
    """A signed-in caller as engagement sees them."""

    id: str
    is_admin: bool


async def member(
    session: AsyncSession, claims: AccessClaims, *, writing: bool = False, lock: bool = False
) -> Member:
    """The caller behind a verified token, checked against what auth last told us.

    Admin rights need both the token and the projection (when it knows the user), so a
    demoted admin loses them as soon as `auth.user.updated` arrives. A write (`writing`, or
    `lock` for one a suspended account may still make) holds the user's row until it commits.
    """
    user = await known_user(session, claims.subject, lock=writing or lock)
    if user is not None and user.deleted:
        raise Unauthenticated("This account no longer exists.")
    if writing and user is not None and user.suspended:
        raise Forbidden("This account is suspended.", reason="ACCOUNT_SUSPENDED")
    is_admin = claims.is_admin and (user is None or user.role == "ADMIN")
    return Member(id=claims.subject, is_admin=is_admin)


async def optional_member(
    session: AsyncSession, claims: AccessClaims | None, *, lock: bool = False
) -> Member | None:
    return None if claims is None else await member(session, claims, lock=lock)


async def known_user(
    session: AsyncSession, user_id: str, *, lock: bool = False
) -> KnownUser | None:
    """A user as auth's events described them; `lock` holds the row (FOR SHARE) until commit.

    Applying `auth.user.deleted` locks the row FOR UPDATE first, so a write holding it either
    finishes before the deletion starts (which then deletes what it wrote) or starts after it
    and finds the account deleted: nothing is written for a user after their data went.
    """
    query = select(KnownUser).where(col(KnownUser.id) == user_id)
    if lock:
        query = query.with_for_update(read=True)
    return (await session.execute(query)).scalar_one_or_none()


def require(claims: AccessClaims | None) -> AccessClaims:
    if claims is None:
        raise Unauthenticated("You must be signed in.")
    return claims


def may_see(video: KnownVideo | None, who: Member | None) -> bool:
    """Public and unlisted READY videos for everyone; anything but deleted for owner and admins."""
    if video is None or video.deleted:
        return False
    if who is not None and (who.is_admin or who.id == video.owner_id):
        return True
    return video.status == "READY" and video.visibility in VISIBLE_TO_ALL


def visible_to(who: Member | None) -> ColumnElement[bool]:
    """`may_see` as a condition on `KnownVideo`, for lists."""
    shown: ColumnElement[bool] = and_(
        col(KnownVideo.status) == "READY", col(KnownVideo.visibility).in_(VISIBLE_TO_ALL)
    )
    if who is not None:
        shown = (
            or_(shown, true()) if who.is_admin else or_(shown, col(KnownVideo.owner_id) == who.id)
        )
    return and_(col(KnownVideo.deleted).is_(False), shown)


async def visible_video(session: AsyncSession, video_id: str, who: Member | None) -> KnownVideo:
    """The video, or NOT_FOUND: one the caller may not see does not exist for them."""
    video = await session.get(KnownVideo, video_id)
    if not may_see(video, who):
        raise NotFound("Video not found.")
    assert video is not None
    return video


async def live_room(session: AsyncSession, stream_id: str) -> ChatRoom:
    room = await session.get(ChatRoom, stream_id)
    if room is None or room.deleted:
        raise NotFound("Live stream not found.")
    return room


# --- input -------------------------------------------------------------------------------


def parse_id(value: str, field: str) -> str:
    """A UUID in its canonical form, or BAD_USER_INPUT."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError):
        raise BadUserInput("Not a valid id.", field=field) from None


def cursor_id(value: Any) -> str:
    """An id read back from a cursor: a UUID (canonical), or BAD_USER_INPUT on `after`."""
    if not isinstance(value, str) or not is_id(value):
        raise BadUserInput("Invalid cursor.", field="after")
    return str(uuid.UUID(value))


def is_id(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def clean_text(text: str, *, field: str, max_length: int, multiline: bool) -> str:
    """Trimmed text that is not empty, not too long and free of control characters."""
    text = text.strip()
    if not text:
        raise BadUserInput("Text cannot be empty.", field=field)
    if len(text) > max_length:
        raise BadUserInput(f"Text must be at most {max_length} characters.", field=field)
    allowed = {"\n", "\t"} if multiline else set()
    text = text.replace("\r\n", "\n") if multiline else text
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        raise BadUserInput("Text contains control characters.", field=field)
    return text


# --- SQL ---------------------------------------------------------------------------------


def insert(session: AsyncSession, target: type[SQLModel] | Table) -> Any:
    """INSERT with ON CONFLICT support, in the session's dialect."""
    table = target if isinstance(target, Table) else target.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def address_tag(address: str) -> str:
    """A client address as engagement stores it: a fixed-size digest, good for telling
    addresses apart, not for reading them at a glance (it is not anonymous)."""
    return hashlib.blake2b(address.encode(), digest_size=16).hexdigest()


async def serialise(session: AsyncSession, *names: str) -> None:
    """Hold a lock on `names` until the transaction ends, for a count-then-insert that has no
    row to lock. PostgreSQL takes an advisory lock; SQLite serialises writers already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b("\0".join(names).encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
