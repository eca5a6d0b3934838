"""Billing's tables: the double-entry ledger (accounts, journal entries, postings), deposits,
prices, the projection of video ownership, playback sessions, charges and refunds.

Amounts are signed 64-bit integers in minor units. A posting's amount is added to its
account's balance; every entry's postings sum to zero. Entries and postings are append-only
(database triggers in the migration refuse UPDATE and DELETE).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Date, Integer, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from subgraphs.kernel.db import UTCDateTime
from subgraphs.kernel.outbox import define_inbox, define_outbox


class BillingTable(SQLModel, registry=registry()):
    """Base of every billing table, so billing's metadata holds billing's tables only."""


def _money(*, index: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=False, index=index)


def _time(*, index: bool = False, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime, nullable=nullable, index=index)


class Account(BillingTable, table=True):
    """A ledger account. `balance` is a cache of the sum of its postings, kept in the same
    transaction as every posting; `ledgerAudit` proves the two agree."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("kind", "owner_id", "currency", name="uq_accounts_kind_owner_currency"),
        # The last line of defence: whatever the code does, no wallet row can go below zero.
        CheckConstraint("kind <> 'WALLET' OR balance >= 0", name="ck_accounts_wallet_not_negative"),
    )

    id: str = Field(primary_key=True, max_length=36)
    # WALLET, EARNINGS, PLATFORM_REVENUE or PAYMENT_CLEARING.
    kind: str = Field(max_length=24)
    # The user for WALLET and EARNINGS; "" for the platform's own accounts.
    owner_id: str = Field(max_length=36, index=True)
    currency: str = Field(max_length=3)
    balance: int = Field(sa_column=_money())
    created_at: datetime = Field(sa_column=_time())


class JournalEntry(BillingTable, table=True):
    __tablename__ = "journal_entries"

    id: str = Field(primary_key=True, max_length=36)
    # DEPOSIT, CHARGE or REFUND.
    kind: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    # The deposit, charge or refund this entry records.
    reference_id: str = Field(max_length=36, index=True)
    description: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_time(index=True))


class Posting(BillingTable, table=True):
    __tablename__ = "postings"

    # Increasing per account in commit order (the account row is locked while posting), so
    # a running sum by id reproduces `balance_after`.
    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    entry_id: str = Field(foreign_key="journal_entries.id", max_length=36, index=True)
    account_id: str = Field(foreign_key="accounts.id", max_length=36, index=True)
    amount: int = Field(sa_column=_money())
    balance_after: int = Field(sa_column=_money())
    currency: str = Field(max_length=3)
    created_at: datetime = Field(sa_column=_time())


class Deposit(BillingTable, table=True):
    """One deposit request under an idempotency key: PENDING while the provider is asked,
    then SUCCEEDED (with its journal entry) or DECLINED. The first result is final."""

    __tablename__ = "deposits"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_deposits_user_idempotency_key"),
    )

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(max_length=36, index=True)
    idempotency_key: str = Field(max_length=200)
    # SHA-256 of what was asked (amount, currency, token): a reused key must ask the same.
    request_fingerprint: str = Field(max_length=64)
    amount: int = Field(sa_column=_money())
    currency: str = Field(max_length=3)
    status: str = Field(max_length=16)
    provider_reference: str | None = Field(default=None, max_length=100)
    failure_code: str | None = Field(default=None, max_length=40)
    failure_message: str | None = Field(default=None, max_length=200)
    entry_id: str | None = Field(default=None, max_length=36)
    # When the current attempt to reach the provider began (epoch seconds); a PENDING deposit
    # whose attempt is older than the pending timeout may be taken over by a retry.
    attempt_started_at: float
    created_at: datetime = Field(sa_column=_time())
    completed_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))


class Video(BillingTable, table=True):
    """What billing knows of a video, from video's events: who owns it and whether it plays."""

    __tablename__ = "videos"

    id: str = Field(primary_key=True, max_length=36)
    owner_id: str = Field(max_length=36, index=True)
    visibility: str = Field(max_length=16)
    status: str = Field(max_length=16)
    duration_seconds: float | None = None
    # When the event whose visibility we hold was published (bus time): topics are separate
    # streams, so a late `video.created` must not undo a later `video.updated`.
    event_at: float = 0.0
    # A tombstone: a late `video.updated` must not bring a deleted video back.
    deleted: bool = False
    updated_at: datetime = Field(sa_column=_time())


class Price(BillingTable, table=True):
    __tablename__ = "prices"
    __table_args__ = (CheckConstraint("price_per_minute > 0", name="ck_prices_positive"),)

    # No row means free.
    video_id: str = Field(primary_key=True, max_length=36)
    price_per_minute: int = Field(sa_column=_money())
    currency: str = Field(max_length=3)
    updated_by: str = Field(max_length=36)
    updated_at: datetime = Field(sa_column=_time())


class PlaybackSession(BillingTable, table=True):
    __tablename__ = "playback_sessions"

    id: str = Field(primary_key=True, max_length=36)
    viewer_id: str = Field(max_length=36, index=True)
    video_id: str = Field(max_length=36, index=True)
    creator_id: str = Field(max_length=36)
    # The price when the session started; a price change ends the session (PRICE_CHANGED).
    price_per_minute: int = Field(sa_column=_money())
    currency: str = Field(max_length=3)
    # ACTIVE, ENDED; `end_reason` says why it ended (ENDED_BY_VIEWER, EXPIRED,
    # INSUFFICIENT_FUNDS, VIDEO_DELETED, ACCOUNT_DELETED, PRICE_CHANGED).
    status: str = Field(max_length=16, index=True)
    end_reason: str | None = Field(default=None, max_length=24)
    charged_minutes: int = 0
    # The position of the last heartbeat that extended the session (0 at the start); a
    # heartbeat reporting the same one is a paused player and extends nothing.
    position_seconds: float = 0.0
    started_at: datetime = Field(sa_column=_time())
    # The last heartbeat that extended the session; it lapses a TTL after it.
    last_heartbeat_at: datetime = Field(sa_column=_time())
    expires_at: datetime = Field(sa_column=_time(index=True))
    ended_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))


class Charge(BillingTable, table=True):
    """One billed minute of one session. The unique (session, minute) pair is what makes a
    minute chargeable once, whatever retries or races happen."""

    __tablename__ = "charges"
    __table_args__ = (
        UniqueConstraint("session_id", "minute_index", name="uq_charges_session_minute"),
    )

    id: str = Field(primary_key=True, max_length=36)
    session_id: str = Field(foreign_key="playback_sessions.id", max_length=36)
    minute_index: int
    entry_id: str = Field(foreign_key="journal_entries.id", max_length=36)
    viewer_id: str = Field(max_length=36, index=True)
    video_id: str = Field(max_length=36, index=True)
    creator_id: str = Field(max_length=36, index=True)
    amount: int = Field(sa_column=_money())
    creator_share: int = Field(sa_column=_money())
    platform_share: int = Field(sa_column=_money())
    currency: str = Field(max_length=3)
    created_at: datetime = Field(sa_column=_time())
    day: date = Field(sa_column=Column(Date, nullable=False, index=True))


class Refund(BillingTable, table=True):
    """An admin's full refund of one charge or one deposit; each can be refunded once."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("target_kind", "target_id", name="uq_refunds_target"),)

    id: str = Field(primary_key=True, max_length=36)
    # CHARGE or DEPOSIT.
    target_kind: str = Field(max_length=16)
    target_id: str = Field(max_length=36)
    entry_id: str = Field(foreign_key="journal_entries.id", max_length=36)
    user_id: str = Field(max_length=36, index=True)
    amount: int = Field(sa_column=_money())
    currency: str = Field(max_length=3)
    admin_id: str = Field(max_length=36)
    reason: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_time())
    day: date = Field(sa_column=Column(Date, nullable=False, index=True))


metadata = BillingTable.metadata
outbox = define_outbox(metadata)
inbox = define_inbox(metadata)
