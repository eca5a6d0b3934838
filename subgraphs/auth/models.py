"""The auth service's tables: users, refresh tokens and login failures. Nobody else's data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, String, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from subgraphs.kernel.db import UTCDateTime
from subgraphs.kernel.outbox import define_outbox


class AuthTable(SQLModel, registry=registry()):
    """Base of every auth table, so auth's metadata holds auth's tables only."""


class User(AuthTable, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(max_length=254)
    # Lower-cased copies carry the case-insensitive uniqueness.
    email_normalized: str = Field(max_length=254, unique=True)
    handle: str = Field(max_length=30)
    handle_normalized: str = Field(max_length=30, unique=True)
    display_name: str = Field(max_length=50)
    avatar_url: str | None = Field(default=None, max_length=2048)
    bio: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=100)
    suspended_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime, nullable=True)
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class RefreshToken(AuthTable, table=True):
    """One issued refresh token. A family is one sign-in; rotation adds a token to it."""

    __tablename__ = "refresh_tokens"

    id: str = Field(primary_key=True, max_length=36)
    family_id: str = Field(max_length=36, index=True)
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True, max_length=36)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    rotated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class LoginFailure(AuthTable, table=True):
    """A failed password check, counted per account and per client address for throttling."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_scope_subject_at", "scope", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)
    subject: str = Field(max_length=254)
    at: float


metadata = AuthTable.metadata
outbox = define_outbox(metadata)
