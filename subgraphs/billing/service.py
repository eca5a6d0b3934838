"""Billing's domain logic: deposits under idempotency keys, prices set by video owners, playback
sessions that charge each started minute once, refunds, earnings, reports and the ledger
audit. No GraphQL in here; every money movement goes through `ledger.post`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import signal
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.billing import events, ledger
from subgraphs.billing.ledger import AuditReport, EntryKind, InsufficientFunds
from subgraphs.billing.models import (
    Charge,
    Deposit,
    JournalEntry,
    PlaybackSession,
    Posting,
    Price,
    Refund,
    Video,
    inbox,
)
from subgraphs.billing.payments import PaymentProvider, PaymentProviderUnavailable, PaymentResult
from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.errors import BadUserInput, Conflict, DomainError, Forbidden, NotFound
from subgraphs.kernel.outbox import first_delivery
from subgraphs.kernel.pagination import decode_cursor, encode_cursor
from subgraphs.kernel.playback import playback_claims
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.signing_keys import KeyStore
from subgraphs.kernel.tokens import AccessClaims

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 200
MAX_PAYMENT_TOKEN = 200
MAX_REASON = 200
# Positions beyond this are not a video anyone watches (about 116 days).
MAX_POSITION_SECONDS = 10_000_000
MAX_REPORT_PERIODS = 400
# Reports cover dates Reelgraph can hold charges for; far outside, date arithmetic overflows.
MIN_REPORT_DATE = date(2000, 1, 1)
MAX_REPORT_DATE = date(2999, 12, 31)
# Posting ids are signed 64-bit integers (PostgreSQL BIGINT, SQLite INTEGER).
MAX_POSTING_ID = 2**63 - 1
# How often a request that found its idempotency key in flight looks again.
_DEPOSIT_POLL_SECONDS = 0.05


class PaymentFailed(DomainError):
    """The provider declined; `code` is the provider's (PAYMENT_DECLINED, …)."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message, **extensions)
        self.code = code


class PaymentProviderError(DomainError):
    code = "PAYMENT_PROVIDER_UNAVAILABLE"


class SessionEnded(DomainError):
    code = "SESSION_ENDED"


class DepositStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"


class SessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"


class EndReason(StrEnum):
    ENDED_BY_VIEWER = "ENDED_BY_VIEWER"
    EXPIRED = "EXPIRED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    VIDEO_DELETED = "VIDEO_DELETED"
    ACCOUNT_DELETED = "ACCOUNT_DELETED"
    # The owner changed the price: the session's terms no longer hold; start a new one.
    PRICE_CHANGED = "PRICE_CHANGED"


class AccessReason(StrEnum):
    FREE = "FREE"
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    FUNDS_AVAILABLE = "FUNDS_AVAILABLE"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    SIGN_IN_REQUIRED = "SIGN_IN_REQUIRED"
    NOT_READY = "NOT_READY"
    UNAVAILABLE = "UNAVAILABLE"


class RefundTarget(StrEnum):
    CHARGE = "CHARGE"
    DEPOSIT = "DEPOSIT"


class Period(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


_STATUS_RANK = {"UPLOADING": 0, "PROCESSING": 1, "READY": 2, "FAILED": 2}


@dataclass(frozen=True)
class VideoPrice:
    video_id: str
    price_per_minute: int
    currency: str


@dataclass(frozen=True)
class Access:
    can_watch: bool
    reason: AccessReason


@dataclass(frozen=True)
class Playback:
    """A session as a client sees it, with a freshly signed token while it is active."""

    session: PlaybackSession
    token: str | None
    # ACTIVE, ENDED, or EXPIRED for an active session nobody has heartbeated in time.
    status: str


@dataclass(frozen=True)
class WalletTransaction:
    posting_id: int
    kind: str
    amount: int
    balance_after: int
    currency: str
    description: str
    reference_id: str
    created_at: datetime


@dataclass(frozen=True)
class TransactionPage:
    transactions: list[WalletTransaction]
    has_next_page: bool


@dataclass(frozen=True)
class VideoEarnings:
    video_id: str
    earned: int
    refunded: int
    minutes: int


@dataclass(frozen=True)
class RevenuePeriod:
    start: date
    end: date
    gross: int
    creator_earnings: int
    platform_revenue: int
    refunded: int
    minutes: int


# --- validation -------------------------------------------------------------------------


def _uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, AttributeError):
        raise BadUserInput("Not a valid id.", field=field) from None


def _printable(value: str, field: str, maximum: int) -> str:
    if not value or len(value) > maximum or not value.isprintable() or value != value.strip():
        raise BadUserInput(
            f"{field} must be 1 to {maximum} printable characters without surrounding spaces.",
            field=field,
        )
    return value


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except (ValueError, AttributeError):
        return False
    return True


def _visible(video: Video, viewer: AccessClaims | None) -> bool:
    """Video's own rule (docs/video.md): owners and admins see every video not deleted, anyone
    else READY videos that are not PRIVATE. A video someone may not see is, to them, missing."""
    if video.deleted:
        return False
    if viewer is not None and (viewer.is_admin or video.owner_id == viewer.subject):
        return True
    return video.status == "READY" and video.visibility != "PRIVATE"


async def _video_row(session: AsyncSession, video_id: str, *, share: bool) -> Video | None:
    """The projected video, row-locked (shared or exclusive) on PostgreSQL; SQLite transactions
    are serialised anyway."""
    query = select(Video).where(col(Video.id) == video_id).with_for_update(read=share)
    return (await session.execute(query)).scalar_one_or_none()


def _fault(settings: Settings, point: str) -> None:
    """Test-only fault injection (docs/billing.md): die at `point` as a power cut would."""
    if settings.billing_fault == point:
        log.warning("fault point reached; killing the process", extra={"fault": point})
        os.kill(os.getpid(), signal.SIGKILL)


class BillingService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        provider: PaymentProvider,
        playback_keys: KeyStore,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.provider = provider
        self.playback_keys = playback_keys
        self.clock = clock
        self.currencies = settings.billing_currency_set()

    # Validation that depends on settings ------------------------------------------------

    def currency(self, currency: str | None) -> str:
        value = (currency or self.settings.billing_currency).strip().upper()
        if value not in self.currencies:
            raise BadUserInput(
                f"Currency must be one of {', '.join(sorted(self.currencies))}.", field="currency"
            )
        return value

    @staticmethod
    def _integer(value: int, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadUserInput("Amounts are whole numbers of minor units.", field=field)
        return value

    # Deposits ----------------------------------------------------------------------------

    async def deposit(
        self,
        viewer: AccessClaims,
        *,
        amount: int,
        payment_token: str,
        idempotency_key: str,
        currency: str | None = None,
    ) -> Deposit:
        """Add money to the viewer's wallet. The same key with the same request returns the
        first result (even a decline); the same key with another request is a CONFLICT."""
        amount = self._integer(amount, "amount")
        low, high = self.settings.billing_deposit_min, self.settings.billing_deposit_max
        if not low <= amount <= high:
            raise BadUserInput(
                f"A deposit must be between {low} and {high} minor units.",
                field="amount",
                minimum=low,
                maximum=high,
            )
        currency = self.currency(currency)
        key = _printable(idempotency_key, "idempotencyKey", MAX_IDEMPOTENCY_KEY)
        token = _printable(payment_token, "paymentToken", MAX_PAYMENT_TOKEN)
        fingerprint = _fingerprint(amount, currency, token)
        now = self.clock()
        claim = Deposit(
            id=str(uuid.uuid4()),
            user_id=viewer.subject,
            idempotency_key=key,
            request_fingerprint=fingerprint,
            amount=amount,
            currency=currency,
            status=DepositStatus.PENDING,
            attempt_started_at=now.timestamp(),
            created_at=now,
        )
        try:
            async with self.db.transaction() as session:
                session.add(claim)
        except IntegrityError:
            # The key is taken: by this same request (a retry, or a concurrent duplicate), or
            # by another one.
            deposit = await self._await_deposit(viewer.subject, key, fingerprint, token)
        else:
            deposit = await self._collect(claim, token)
        if deposit.status == DepositStatus.DECLINED:
            raise PaymentFailed(
                deposit.failure_code or "PAYMENT_DECLINED",
                deposit.failure_message or "The payment was declined.",
                depositId=deposit.id,
            )
        return deposit

    async def _await_deposit(self, user_id: str, key: str, fingerprint: str, token: str) -> Deposit:
        timeout = self.settings.billing_pending_deposit_timeout
        deadline = asyncio.get_running_loop().time() + timeout + 5
        while True:
            async with self.db.transaction() as session:
                deposit = (
                    await session.execute(
                        select(Deposit).where(
                            col(Deposit.user_id) == user_id, col(Deposit.idempotency_key) == key
                        )
                    )
                ).scalar_one()
            if deposit.request_fingerprint != fingerprint:
                raise Conflict(
                    "This idempotency key was already used for a different deposit.",
                    reason="IDEMPOTENCY_KEY_REUSED",
                )
            if deposit.status != DepositStatus.PENDING:
                return deposit
            if self.clock().timestamp() - deposit.attempt_started_at > timeout:
                # Its process died mid-payment: take the attempt over. The provider is
                # idempotent per key, so asking again cannot take the money twice.
                taken = await self._take_over(deposit)
                if taken is not None:
                    return await self._collect(taken, token)
            if asyncio.get_running_loop().time() > deadline:
                raise Conflict(
                    "A deposit with this idempotency key is still in progress; retry later.",
                    reason="DEPOSIT_IN_PROGRESS",
                )
            await asyncio.sleep(_DEPOSIT_POLL_SECONDS)

    async def _take_over(self, deposit: Deposit) -> Deposit | None:
        started = self.clock().timestamp()
        async with self.db.transaction() as session:
            claimed = await session.execute(
                update(Deposit)
                .where(
                    col(Deposit.id) == deposit.id,
                    col(Deposit.status) == DepositStatus.PENDING,
                    col(Deposit.attempt_started_at) == deposit.attempt_started_at,
                )
                .values(attempt_started_at=started)
            )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        deposit.attempt_started_at = started
        return deposit

    async def _collect(self, deposit: Deposit, token: str) -> Deposit:
        try:
            result = await self.provider.collect(
                amount=deposit.amount,
                currency=deposit.currency,
                payment_token=token,
                idempotency_key=f"{deposit.user_id}:{deposit.idempotency_key}",
            )
        except PaymentProviderUnavailable:
            # Nobody knows whether money moved: free the attempt so a retry asks again now.
            async with self.db.transaction() as session:
                await session.execute(
                    update(Deposit)
                    .where(
                        col(Deposit.id) == deposit.id, col(Deposit.status) == DepositStatus.PENDING
                    )
                    .values(attempt_started_at=0.0)
                )
            raise PaymentProviderError(
                "The payment provider could not be reached; retry with the same key."
            ) from None
        return await self._settle(deposit.id, result)

    async def _settle(self, deposit_id: str, result: PaymentResult) -> Deposit:
        async with self.db.transaction() as session:
            deposit = (
                await session.execute(
                    select(Deposit).where(col(Deposit.id) == deposit_id).with_for_update()
                )
            ).scalar_one()
            if deposit.status != DepositStatus.PENDING:
                # A takeover settled it first; its outcome is the one.
                return deposit
            now = self.clock()
            deposit.completed_at = now
            if result.succeeded:
                deposit.entry_id = await ledger.post(
                    session,
                    kind=EntryKind.DEPOSIT,
                    reference_id=deposit.id,
                    description="Deposit",
                    legs=[
                        (ledger.payment_clearing(deposit.currency), -deposit.amount),
                        (ledger.wallet(deposit.user_id, deposit.currency), deposit.amount),
                    ],
                    now=now,
                )
                deposit.status = DepositStatus.SUCCEEDED
                deposit.provider_reference = result.reference
                await events.deposit_succeeded(session, deposit)
            else:
                deposit.status = DepositStatus.DECLINED
                deposit.failure_code = result.failure_code or "PAYMENT_DECLINED"
                deposit.failure_message = (result.failure_message or "Declined.")[:200]
            session.add(deposit)
        return deposit

    # Wallet ------------------------------------------------------------------------------

    async def wallet_balance(self, viewer: AccessClaims, currency: str | None) -> tuple[int, str]:
        currency = self.currency(currency)
        async with self.db.transaction() as session:
            return await ledger.balance(session, ledger.wallet(viewer.subject, currency)), currency

    async def wallet_transactions(
        self, viewer: AccessClaims, currency: str | None, *, first: int, after: str | None
    ) -> TransactionPage:
        """The wallet's postings, newest first."""
        currency = self.currency(currency)
        account = ledger.wallet(viewer.subject, currency).id
        query = (
            select(Posting, JournalEntry)
            .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
            .where(col(Posting.account_id) == account)
            .order_by(col(Posting.id).desc())
        )
        if after is not None:
            (before,) = decode_cursor(after, 1)
            # Only ids we issued: an integer the database can compare (no bool, no 2^64).
            if (
                isinstance(before, bool)
                or not isinstance(before, int)
                or not 1 <= before <= MAX_POSTING_ID
            ):
                raise BadUserInput("Invalid cursor.", field="after")
            query = query.where(col(Posting.id) < before)
        async with self.db.transaction() as session:
            rows = (await session.execute(query.limit(first + 1))).all()
        transactions = [
            WalletTransaction(
                posting_id=int(posting.id or 0),
                kind=entry.kind,
                amount=posting.amount,
                balance_after=posting.balance_after,
                currency=posting.currency,
                description=entry.description,
                reference_id=entry.reference_id,
                created_at=posting.created_at,
            )
            for posting, entry in rows[:first]
        ]
        return TransactionPage(transactions, has_next_page=len(rows) > first)

    @staticmethod
    def transaction_cursor(transaction: WalletTransaction) -> str:
        return encode_cursor(transaction.posting_id)

    # Prices and the video projection ---------------------------------------------------

    async def set_video_price(
        self, viewer: AccessClaims, video_id: str, price_per_minute: int, currency: str | None
    ) -> VideoPrice:
        """Only the video's owner, as video's events told us, may price it; 0 makes it free.
        A change ends the video's running sessions whose price it changes (PRICE_CHANGED)."""
        video_id = _uuid(video_id, "videoId")
        price = self._integer(price_per_minute, "pricePerMinute")
        maximum = self.settings.billing_max_price_per_minute
        if not 0 <= price <= maximum:
            raise BadUserInput(
                f"Price per minute must be between 0 and {maximum} minor units.",
                field="pricePerMinute",
            )
        currency = self.currency(currency)
        async with self.db.transaction() as session:
            # The video row lock orders this change against `start_playback` (which takes it
            # shared): a session starts either before the change, and is ended by it, or after
            # it, at the new price.
            video = await _video_row(session, video_id, share=False)
            if video is None or not _visible(video, viewer):
                raise NotFound("Video not found.")
            if video.owner_id != viewer.subject:
                raise Forbidden("Only the video's owner can set its price.")
            row = await session.get(Price, video_id)
            if price == 0:
                if row is not None:
                    await session.delete(row)
                row = None
            else:
                row = row or Price(
                    video_id=video_id,
                    price_per_minute=price,
                    currency=currency,
                    updated_by=viewer.subject,
                    updated_at=self.clock(),
                )
                row.price_per_minute, row.currency = price, currency
                row.updated_by, row.updated_at = viewer.subject, self.clock()
                session.add(row)
            await session.flush()
            await events.price_updated(session, video_id, row)
            # A session keeps the price it started with, so a session whose price this changes
            # ends now (its tokens stop granting once video hears of it); the viewer starts a
            # new one at the new price. The owner's own sessions are free either way.
            changed = (
                col(PlaybackSession.price_per_minute) != 0
                if price == 0
                else or_(
                    col(PlaybackSession.price_per_minute) != price,
                    col(PlaybackSession.currency) != currency,
                )
            )
            await self._end_sessions(
                session,
                and_(
                    col(PlaybackSession.video_id) == video_id,
                    col(PlaybackSession.viewer_id) != video.owner_id,
                    changed,
                ),
                EndReason.PRICE_CHANGED,
            )
        return VideoPrice(video_id, price, currency)

    async def prices(
        self, viewer: AccessClaims | None, video_ids: Sequence[str]
    ) -> list[VideoPrice]:
        """Each video's price; a video the viewer may not see is priced like a missing one
        (free), so its price does not tell that it exists."""
        valid = [i for i in video_ids if _is_uuid(i)]
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(Price, Video)
                    .join(Video, col(Video.id) == col(Price.video_id))
                    .where(col(Price.video_id).in_(valid))
                )
            ).all()
        found = {price.video_id: price for price, video in rows if _visible(video, viewer)}
        default = self.settings.billing_currency
        return [
            VideoPrice(i, found[i].price_per_minute, found[i].currency)
            if i in found
            else VideoPrice(i, 0, default)
            for i in video_ids
        ]

    async def access(self, viewer: AccessClaims | None, video_ids: Sequence[str]) -> list[Access]:
        """Whether the viewer may watch each video now, and why."""
        valid = [i for i in video_ids if _is_uuid(i)]
        async with self.db.transaction() as session:
            videos = {
                v.id: v
                for v in (await session.execute(select(Video).where(col(Video.id).in_(valid))))
                .scalars()
                .all()
            }
            prices = {
                p.video_id: p
                for p in (
                    await session.execute(select(Price).where(col(Price.video_id).in_(valid)))
                )
                .scalars()
                .all()
            }
            balances: dict[str, int] = {}
            if viewer is not None:
                for currency in {p.currency for p in prices.values()}:
                    balances[currency] = await ledger.balance(
                        session, ledger.wallet(viewer.subject, currency)
                    )
        answers: list[Access] = []
        for video_id in video_ids:
            video, price = videos.get(video_id), prices.get(video_id)
            is_owner = viewer is not None and video is not None and video.owner_id == viewer.subject
            # Admins watch any video through video's signed URLs, as its media gates allow.
            is_admin = viewer is not None and viewer.is_admin
            if video is None or not _visible(video, viewer):
                answers.append(Access(False, AccessReason.UNAVAILABLE))
            elif video.status != "READY":
                # Only those who may see an unfinished video learn that it is one.
                answers.append(Access(False, AccessReason.NOT_READY))
            elif is_owner:
                answers.append(Access(True, AccessReason.OWNER))
            elif price is None:
                answers.append(Access(True, AccessReason.FREE))
            elif is_admin:
                answers.append(Access(True, AccessReason.ADMIN))
            elif viewer is None:
                answers.append(Access(False, AccessReason.SIGN_IN_REQUIRED))
            elif balances.get(price.currency, 0) >= price.price_per_minute:
                answers.append(Access(True, AccessReason.FUNDS_AVAILABLE))
            else:
                answers.append(Access(False, AccessReason.INSUFFICIENT_FUNDS))
        return answers

    async def apply_event(
        self,
        topic: str,
        message_id: str,
        payload: dict[str, Any],
        published_at: float | None = None,
    ) -> None:
        """Fold one consumed event (published on the bus at `published_at`) into billing's
        state, once per message."""
        async with self.db.transaction() as session:
            if not await first_delivery(session, inbox, events.GROUP, topic, message_id):
                return
            if topic == events.USER_DELETED:
                user_id = payload.get("userId")
                if _is_uuid(user_id):
                    await self._end_sessions(
                        session,
                        col(PlaybackSession.viewer_id) == str(user_id),
                        EndReason.ACCOUNT_DELETED,
                    )
            else:
                at = self.clock().timestamp() if published_at is None else published_at
                await self._project_video(session, topic, payload, at)

    async def _project_video(
        self, session: AsyncSession, topic: str, payload: dict[str, Any], published_at: float
    ) -> None:
        video_id, owner_id = payload.get("videoId"), payload.get("ownerId")
        if not _is_uuid(video_id) or not _is_uuid(owner_id):
            # Nothing billing can act on; recorded in the inbox so it is not retried forever.
            log.warning("ignored a malformed video event", extra={"topic": topic})
            return
        video_id, owner_id = str(video_id), str(owner_id)
        now = self.clock()
        table: Any = Video.__table__  # type: ignore[attr-defined]
        insert: Any = (
            postgresql.insert(table)
            if session.get_bind().dialect.name == "postgresql"
            else sqlite.insert(table)
        )
        # Topics are separate streams, so `video.ready` may arrive before `video.created`:
        # whichever comes first creates the row, and the rest merge into it.
        await session.execute(
            insert.values(
                id=video_id,
                owner_id=owner_id,
                visibility="PRIVATE",
                status="UPLOADING",
                event_at=0.0,
                deleted=False,
                updated_at=now,
            ).on_conflict_do_nothing(index_elements=["id"])
        )
        video = (
            await session.execute(select(Video).where(col(Video.id) == video_id).with_for_update())
        ).scalar_one()
        if video.deleted:
            return
        video.updated_at = now
        if topic == events.VIDEO_DELETED:
            video.deleted = True
            session.add(video)
            price = await session.get(Price, video_id)
            if price is not None:
                await session.delete(price)
                await session.flush()
                await events.price_updated(session, video_id, None)
            await self._end_sessions(
                session, col(PlaybackSession.video_id) == video_id, EndReason.VIDEO_DELETED
            )
            return
        visibility = payload.get("visibility")
        # The newest event by publish time decides visibility, whatever order topics arrive in.
        if visibility in ("PUBLIC", "UNLISTED", "PRIVATE") and published_at >= video.event_at:
            video.visibility = visibility
            video.event_at = published_at
        status = "READY" if topic == events.VIDEO_READY else payload.get("status")
        # Status only moves forward (UPLOADING → PROCESSING → READY|FAILED), so a late,
        # older `video.updated` cannot undo `video.ready`.
        if status in _STATUS_RANK and _STATUS_RANK[status] >= _STATUS_RANK.get(video.status, 0):
            video.status = status
        duration = payload.get("durationSeconds")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            video.duration_seconds = float(duration)
        session.add(video)

    async def _end_sessions(self, session: AsyncSession, which: Any, reason: EndReason) -> None:
        """End the active sessions `which` selects, for a reason the platform decided (video or
        account deleted, price changed). Nothing more is charged: settling would post to many
        wallets in one transaction, and the viewer did not choose the end."""
        rows = (
            (
                await session.execute(
                    select(PlaybackSession)
                    .where(which, col(PlaybackSession.status) == SessionStatus.ACTIVE)
                    # One lock order for every bulk end, so two never wait on each other.
                    .order_by(col(PlaybackSession.id))
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        for playback in rows:
            await self._end(session, playback, reason)

    async def _end(
        self, session: AsyncSession, playback: PlaybackSession, reason: EndReason
    ) -> None:
        now = self.clock()
        playback.status = SessionStatus.ENDED
        playback.end_reason = reason
        playback.ended_at = now
        session.add(playback)
        await session.flush()
        await events.playback_ended(session, playback)

    # Playback ----------------------------------------------------------------------------

    def _minute(self) -> float:
        return self.settings.billing_minute_seconds

    def _ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.billing_session_ttl_seconds)

    def _view(self, playback: PlaybackSession) -> Playback:
        now = self.clock()
        lapsed = playback.status == SessionStatus.ACTIVE and playback.expires_at <= now
        if lapsed or playback.end_reason == EndReason.EXPIRED:
            return Playback(playback, None, "EXPIRED")
        if playback.status != SessionStatus.ACTIVE:
            return Playback(playback, None, playback.status)
        issued = int(now.timestamp())
        token = self.playback_keys.sign(
            playback_claims(
                session_id=playback.id,
                video_id=playback.video_id,
                viewer_id=playback.viewer_id,
                issued_at=issued,
                expires_at=int(playback.expires_at.timestamp()),
            )
        )
        return Playback(playback, token, playback.status)

    async def start_playback(self, viewer: AccessClaims, video_id: str) -> Playback:
        """Open a session; on a priced video the first minute is charged now, so starting
        needs a balance of at least one minute."""
        video_id = _uuid(video_id, "videoId")
        async with self.db.transaction() as session:
            # Shared with other starts, exclusive against a price change (`set_video_price`).
            video = await _video_row(session, video_id, share=True)
            is_owner = video is not None and video.owner_id == viewer.subject
            # Admins may see others' private videos, but video never opens one to a playback
            # token of anyone but its owner, so a session on one is refused as missing too.
            if (
                video is None
                or not _visible(video, viewer)
                or (video.visibility == "PRIVATE" and not is_owner)
            ):
                raise NotFound("Video not found.")
            if video.status != "READY":
                # Only its owner and admins may see an unfinished video, so only they hear this.
                raise Conflict("This video cannot be played yet.", reason="VIDEO_NOT_READY")
            price = None if is_owner else await session.get(Price, video_id)
            now = self.clock()
            playback = PlaybackSession(
                id=str(uuid.uuid4()),
                viewer_id=viewer.subject,
                video_id=video_id,
                creator_id=video.owner_id,
                price_per_minute=price.price_per_minute if price else 0,
                currency=price.currency if price else self.settings.billing_currency,
                status=SessionStatus.ACTIVE,
                started_at=now,
                last_heartbeat_at=now,
                expires_at=now + self._ttl(),
            )
            session.add(playback)
            await session.flush()
            if playback.price_per_minute > 0:
                # No savepoint: without funds for the first minute nothing is kept.
                await self._charge_minute(session, playback, 0, now)
            session.add(playback)
        return self._view(playback)

    def minutes_begun(self, playback: PlaybackSession, now: datetime) -> int:
        """Minutes of the session begun by `now` (minute 0 begins at the start): the most it
        may have been charged at `now`, since a minute is charged once it has begun."""
        elapsed = max(0.0, (now - playback.started_at).total_seconds())
        return math.floor(elapsed / self._minute()) + 1

    def minutes_begun_before(self, playback: PlaybackSession, end: datetime) -> int:
        """Minutes of the session that began before `end`: what a session open (its token
        valid) until `end` owes. A minute beginning exactly at `end` was never granted."""
        elapsed = max(0.0, (end - playback.started_at).total_seconds())
        return max(1, math.ceil(elapsed / self._minute()))

    async def heartbeat(
        self, viewer: AccessClaims, session_id: str, position_seconds: float
    ) -> Playback:
        """A player reporting its position. If the position moved since the previous
        heartbeat, the viewer is watching: every minute begun by now is charged (each exactly
        once) and the session and its token are extended. If it did not move (paused, or a
        client lying), nothing is charged and nothing extended: the session lapses."""
        session_id = _uuid(session_id, "sessionId")
        if (
            isinstance(position_seconds, bool)
            or not isinstance(position_seconds, int | float)
            or not math.isfinite(position_seconds)
            or not 0 <= position_seconds <= MAX_POSITION_SECONDS
        ):
            raise BadUserInput(
                f"positionSeconds must be between 0 and {MAX_POSITION_SECONDS}.",
                field="positionSeconds",
            )
        position = float(position_seconds)
        ended: EndReason | None = None
        # Set when the session had already lapsed: how it ended.
        lapsed: EndReason | None = None
        charged = 0
        async with self.db.transaction() as session:
            # The session row lock serialises heartbeats of one session (PostgreSQL; SQLite
            # serialises every writer), so each sees the minutes the previous one charged.
            playback = await self._own_session(session, viewer, session_id, lock=True)
            now = self.clock()
            if playback.status != SessionStatus.ACTIVE:
                raise SessionEnded("This playback session has ended.", reason=playback.end_reason)
            if playback.expires_at <= now:
                lapsed = await self._expire(session, playback)
            elif position != playback.position_seconds:
                # Extending the token is what grants media, so it is paid for: by the wall
                # clock, never by the position the client claims.
                due = self.minutes_begun(playback, now)
                chargeable = due if playback.price_per_minute > 0 else 0
                for minute in range(playback.charged_minutes, chargeable):
                    if not await self._try_charge_minute(session, playback, minute, now):
                        await self._end(session, playback, EndReason.INSUFFICIENT_FUNDS)
                        ended = EndReason.INSUFFICIENT_FUNDS
                        break
                    charged += 1
                if ended is None:
                    playback.position_seconds = position
                    playback.last_heartbeat_at = now
                    playback.expires_at = now + self._ttl()
                session.add(playback)
                if charged:
                    _fault(self.settings, "crash_before_charge_commit")
        if charged:
            _fault(self.settings, "crash_after_charge_commit")
        if lapsed is not None:
            raise SessionEnded("This playback session has expired.", reason=lapsed.value)
        if ended is EndReason.INSUFFICIENT_FUNDS:
            raise InsufficientFunds(
                "Insufficient funds: the playback session has ended.",
                sessionId=playback.id,
                chargedMinutes=playback.charged_minutes,
            )
        return self._view(playback)

    async def _try_charge_minute(
        self, session: AsyncSession, playback: PlaybackSession, minute: int, now: datetime
    ) -> bool:
        """Charge one minute in a savepoint; False (and nothing written) if the wallet cannot
        pay it, so the minutes charged before it stay."""
        try:
            async with session.begin_nested():
                await self._charge_minute(session, playback, minute, now)
        except InsufficientFunds:
            return False
        return True

    async def _charge_until(
        self, session: AsyncSession, playback: PlaybackSession, end: datetime
    ) -> bool:
        """Charge what a session open until `end` still owes: every minute begun before it (its
        token granted them). False if the wallet ran out first."""
        if playback.price_per_minute <= 0:
            return True
        now = self.clock()
        for minute in range(playback.charged_minutes, self.minutes_begun_before(playback, end)):
            if not await self._try_charge_minute(session, playback, minute, now):
                return False
        return True

    async def _expire(self, session: AsyncSession, playback: PlaybackSession) -> EndReason:
        """End a session whose token lapsed, charging the minutes its token granted."""
        paid = await self._charge_until(session, playback, playback.expires_at)
        reason = EndReason.EXPIRED if paid else EndReason.INSUFFICIENT_FUNDS
        await self._end(session, playback, reason)
        return reason

    async def _charge_minute(
        self, session: AsyncSession, playback: PlaybackSession, minute: int, now: datetime
    ) -> None:
        amount = playback.price_per_minute
        creator_share = amount * self.settings.billing_creator_share_bps // 10_000
        charge = Charge(
            id=str(uuid.uuid4()),
            session_id=playback.id,
            minute_index=minute,
            entry_id="",
            viewer_id=playback.viewer_id,
            video_id=playback.video_id,
            creator_id=playback.creator_id,
            amount=amount,
            creator_share=creator_share,
            platform_share=amount - creator_share,
            currency=playback.currency,
            created_at=now,
            day=now.date(),
        )
        # Revenue share in the same entry as the charge: the split can never be half-written.
        charge.entry_id = await ledger.post(
            session,
            kind=EntryKind.CHARGE,
            reference_id=charge.id,
            description=f"Playback minute {minute + 1}",
            legs=[
                (ledger.wallet(playback.viewer_id, playback.currency), -amount),
                (ledger.earnings(playback.creator_id, playback.currency), creator_share),
                (ledger.platform_revenue(playback.currency), amount - creator_share),
            ],
            now=now,
        )
        session.add(charge)
        # The unique (session, minute) row: a second charge of this minute cannot commit.
        await session.flush()
        playback.charged_minutes = minute + 1
        await events.charged(session, charge)

    async def expire_sessions(self, *, batch: int = 100) -> int:
        """End sessions whose heartbeats stopped, charging the minutes their tokens granted
        (reason EXPIRED, or INSUFFICIENT_FUNDS if the wallet could not pay them), and announce
        it; returns how many. Run periodically, so lapsed tokens are revoked and paid for."""
        now = self.clock()
        expired = (
            select(col(PlaybackSession.id))
            .where(
                col(PlaybackSession.status) == SessionStatus.ACTIVE,
                col(PlaybackSession.expires_at) <= now,
            )
            .order_by(col(PlaybackSession.expires_at))
            .limit(batch)
        )
        async with self.db.transaction() as session:
            candidates = list((await session.execute(expired)).scalars().all())
        ended = 0
        # One transaction per session: settling charges the session's wallet, and a
        # transaction that posted to many wallets could deadlock with heartbeats (each locks
        # its wallet before the shared platform account).
        for session_id in candidates:
            async with self.db.transaction() as session:
                query = select(PlaybackSession).where(
                    col(PlaybackSession.id) == session_id,
                    col(PlaybackSession.status) == SessionStatus.ACTIVE,
                    col(PlaybackSession.expires_at) <= now,
                )
                if not self.db.is_sqlite:
                    # Replicas sweep side by side; a session a heartbeat holds is left to it.
                    query = query.with_for_update(skip_locked=True)
                playback = (await session.execute(query)).scalar_one_or_none()
                if playback is None:
                    continue
                await self._expire(session, playback)
                ended += 1
        return ended

    async def end_playback(self, viewer: AccessClaims, session_id: str) -> Playback:
        session_id = _uuid(session_id, "sessionId")
        async with self.db.transaction() as session:
            playback = await self._own_session(session, viewer, session_id, lock=True)
            if playback.status == SessionStatus.ACTIVE:
                now = self.clock()
                if playback.expires_at <= now:
                    await self._expire(session, playback)
                else:
                    # The token granted media until now: the minutes begun so far are owed.
                    paid = await self._charge_until(session, playback, now)
                    await self._end(
                        session,
                        playback,
                        EndReason.ENDED_BY_VIEWER if paid else EndReason.INSUFFICIENT_FUNDS,
                    )
        return self._view(playback)

    async def playback_session(self, viewer: AccessClaims, session_id: str) -> Playback:
        session_id = _uuid(session_id, "sessionId")
        async with self.db.transaction() as session:
            playback = await self._own_session(session, viewer, session_id, lock=False)
        return self._view(playback)

    async def _own_session(
        self, session: AsyncSession, viewer: AccessClaims, session_id: str, *, lock: bool
    ) -> PlaybackSession:
        query = select(PlaybackSession).where(col(PlaybackSession.id) == session_id)
        if lock:
            query = query.with_for_update()
        playback = (await session.execute(query)).scalar_one_or_none()
        # Someone else's session is indistinguishable from none at all.
        if playback is None or playback.viewer_id != viewer.subject:
            raise NotFound("Playback session not found.")
        return playback

    # Refunds -----------------------------------------------------------------------------

    async def refund(
        self, viewer: AccessClaims, target: RefundTarget, target_id: str, reason: str
    ) -> Refund:
        """An admin's full refund of one charge (back to the viewer's wallet, out of the
        creator's earnings and platform revenue) or one deposit (out of the wallet, which
        must still hold it). Each can be refunded once."""
        if not viewer.is_admin:
            raise Forbidden("Only admins can refund.")
        target_id = _uuid(target_id, "id")
        reason = " ".join(reason.split())
        if not reason or len(reason) > MAX_REASON:
            raise BadUserInput(f"Reason must be 1 to {MAX_REASON} characters.", field="reason")
        try:
            async with self.db.transaction() as session:
                done = (
                    await session.execute(
                        select(col(Refund.id)).where(
                            col(Refund.target_kind) == target, col(Refund.target_id) == target_id
                        )
                    )
                ).first()
                if done is not None:
                    raise Conflict("This has already been refunded.", reason="ALREADY_REFUNDED")
                legs, user_id, amount, currency = await self._refund_legs(
                    session, target, target_id
                )
                now = self.clock()
                refund = Refund(
                    id=str(uuid.uuid4()),
                    target_kind=target,
                    target_id=target_id,
                    entry_id="",
                    user_id=user_id,
                    amount=amount,
                    currency=currency,
                    admin_id=viewer.subject,
                    reason=reason,
                    created_at=now,
                    day=now.date(),
                )
                refund.entry_id = await ledger.post(
                    session,
                    kind=EntryKind.REFUND,
                    reference_id=refund.id,
                    description=f"Refund of {target.lower()}",
                    legs=legs,
                    now=now,
                )
                session.add(refund)
                await session.flush()
                await events.refunded(session, refund)
        except IntegrityError:
            # A concurrent refund of the same target committed first.
            raise Conflict("This has already been refunded.", reason="ALREADY_REFUNDED") from None
        return refund

    async def _refund_legs(
        self, session: AsyncSession, target: RefundTarget, target_id: str
    ) -> tuple[list[ledger.Leg], str, int, str]:
        if target is RefundTarget.CHARGE:
            charge = await session.get(Charge, target_id)
            if charge is None:
                raise NotFound("Charge not found.")
            cur = charge.currency
            return (
                [
                    (ledger.wallet(charge.viewer_id, cur), charge.amount),
                    (ledger.earnings(charge.creator_id, cur), -charge.creator_share),
                    (ledger.platform_revenue(cur), -charge.platform_share),
                ],
                charge.viewer_id,
                charge.amount,
                cur,
            )
        deposit = await session.get(Deposit, target_id)
        if deposit is None:
            raise NotFound("Deposit not found.")
        if deposit.status != DepositStatus.SUCCEEDED:
            raise Conflict("Only a succeeded deposit can be refunded.", reason="NOT_REFUNDABLE")
        cur = deposit.currency
        # The wallet leg is guarded: a deposit already spent cannot be refunded.
        return (
            [
                (ledger.wallet(deposit.user_id, cur), -deposit.amount),
                (ledger.payment_clearing(cur), deposit.amount),
            ],
            deposit.user_id,
            deposit.amount,
            cur,
        )

    # Earnings and reports ----------------------------------------------------------------

    async def earnings(self, viewer: AccessClaims, currency: str | None) -> tuple[int, int, str]:
        """(balance, total earned before refunds, currency) of the viewer's own earnings."""
        currency = self.currency(currency)
        async with self.db.transaction() as session:
            balance = await ledger.balance(session, ledger.earnings(viewer.subject, currency))
            total = (
                await session.execute(
                    select(func.coalesce(func.sum(col(Charge.creator_share)), 0)).where(
                        col(Charge.creator_id) == viewer.subject, col(Charge.currency) == currency
                    )
                )
            ).scalar_one()
        return balance, int(total), currency

    async def earnings_by_video(
        self, viewer: AccessClaims, currency: str | None, *, first: int
    ) -> list[VideoEarnings]:
        currency = self.currency(currency)
        refunded = func.coalesce(
            func.sum(case((col(Refund.id).is_not(None), col(Charge.creator_share)), else_=0)), 0
        )
        earned = func.coalesce(func.sum(col(Charge.creator_share)), 0)
        query = (
            select(col(Charge.video_id), earned, refunded, func.count(col(Charge.id)))
            .outerjoin(
                Refund,
                and_(
                    col(Refund.target_kind) == RefundTarget.CHARGE,
                    col(Refund.target_id) == col(Charge.id),
                ),
            )
            .where(col(Charge.creator_id) == viewer.subject, col(Charge.currency) == currency)
            .group_by(col(Charge.video_id))
            .order_by((earned - refunded).desc(), col(Charge.video_id))
            .limit(first)
        )
        async with self.db.transaction() as session:
            rows = (await session.execute(query)).all()
        return [VideoEarnings(str(v), int(e), int(r), int(m)) for v, e, r, m in rows]

    async def revenue_report(
        self,
        viewer: AccessClaims,
        *,
        period: Period,
        start: date,
        end: date,
        creator_id: str | None,
        currency: str | None,
    ) -> list[RevenuePeriod]:
        """Revenue per period, net of refunds: the platform's (admins) or one creator's
        (their own; admins may name any creator)."""
        if creator_id is not None:
            creator_id = _uuid(creator_id, "creatorId")
        if not viewer.is_admin:
            if creator_id not in (None, viewer.subject):
                raise Forbidden("You can only read your own revenue.")
            creator_id = viewer.subject
        currency = self.currency(currency)
        for value, field in ((start, "from"), (end, "to")):
            if not MIN_REPORT_DATE <= value <= MAX_REPORT_DATE:
                raise BadUserInput(
                    f"Report dates must be between {MIN_REPORT_DATE} and {MAX_REPORT_DATE}.",
                    field=field,
                )
        if end < start:
            raise BadUserInput("`to` must not be before `from`.", field="to")
        buckets = _buckets(period, start, end)
        if len(buckets) > MAX_REPORT_PERIODS:
            raise BadUserInput(
                f"At most {MAX_REPORT_PERIODS} periods per report; narrow the range.", field="to"
            )
        charged = (
            select(
                col(Charge.day),
                func.sum(col(Charge.amount)),
                func.sum(col(Charge.creator_share)),
                func.sum(col(Charge.platform_share)),
                func.count(col(Charge.id)),
            )
            .where(
                col(Charge.day) >= start, col(Charge.day) <= end, col(Charge.currency) == currency
            )
            .group_by(col(Charge.day))
        )
        refunded = (
            select(
                col(Refund.day),
                func.sum(col(Charge.amount)),
                func.sum(col(Charge.creator_share)),
                func.sum(col(Charge.platform_share)),
            )
            .join(Charge, col(Charge.id) == col(Refund.target_id))
            .where(
                col(Refund.target_kind) == RefundTarget.CHARGE,
                col(Refund.day) >= start,
                col(Refund.day) <= end,
                col(Charge.currency) == currency,
            )
            .group_by(col(Refund.day))
        )
        if creator_id is not None:
            charged = charged.where(col(Charge.creator_id) == creator_id)
            refunded = refunded.where(col(Charge.creator_id) == creator_id)
        async with self.db.transaction() as session:
            charge_rows = (await session.execute(charged)).all()
            refund_rows = (await session.execute(refunded)).all()
        totals = {b: [0, 0, 0, 0, 0] for b in buckets}

        def bucket_of(day: date) -> date:
            return max(b for b in buckets if b <= day)

        for day, gross, creator, platform, minutes in charge_rows:
            row = totals[bucket_of(_as_date(day))]
            row[0] += int(gross)
            row[1] += int(creator)
            row[2] += int(platform)
            row[4] += int(minutes)
        for day, gross, creator, platform in refund_rows:
            row = totals[bucket_of(_as_date(day))]
            row[0] -= int(gross)
            row[1] -= int(creator)
            row[2] -= int(platform)
            row[3] += int(gross)
        report = []
        for index, bucket in enumerate(buckets):
            last = buckets[index + 1] - timedelta(days=1) if index + 1 < len(buckets) else end
            gross, creator, platform, refunds, minutes = totals[bucket]
            report.append(RevenuePeriod(bucket, last, gross, creator, platform, refunds, minutes))
        return report

    async def audit(self, viewer: AccessClaims) -> AuditReport:
        if not viewer.is_admin:
            raise Forbidden("Only admins can audit the ledger.")
        async with self.db.transaction() as session:
            return await ledger.audit(session)


def _as_date(value: date | str) -> date:
    # SQLite hands dates back as text in aggregate queries.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _buckets(period: Period, start: date, end: date) -> list[date]:
    """The first day of each period from `start` to `end`; the first is clipped to `start`.
    Stops one past MAX_REPORT_PERIODS, so the caller can refuse a range that is too long."""
    buckets = [start]
    cursor = start
    while True:
        if period is Period.DAY:
            cursor = cursor + timedelta(days=1)
        elif period is Period.WEEK:
            cursor = cursor + timedelta(days=7 - cursor.weekday())
        else:
            cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        if cursor > end or len(buckets) > MAX_REPORT_PERIODS:
            return buckets
        buckets.append(cursor)
