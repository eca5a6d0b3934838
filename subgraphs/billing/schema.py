"""Billing's GraphQL surface: wallet, deposits, prices and access on `Video`, playback sessions,
earnings, reports and the ledger audit. Thin: every decision is made in `service.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from subgraphs.billing import service as domain
from subgraphs.billing.service import BillingService
from subgraphs.kernel.errors import BadUserInput, Forbidden, NotFound
from subgraphs.kernel.graphql import RequestContext, subgraph_schema
from subgraphs.kernel.pagination import page_size
from subgraphs.kernel.tokens import AccessClaims
from subgraphs.kernel.types import Long, PageInfo

if TYPE_CHECKING:
    from subgraphs.kernel.graphql import Schema


@dataclass
class BillingContext(RequestContext):
    service: BillingService = field(kw_only=True)


BillingInfo = Info[BillingContext, None]

# GraphQL mirrors of the domain's enums (service.py stays free of GraphQL); values match.


@strawberry.enum(
    description="Why the viewer can or cannot watch a video. ADMIN: admins watch any video "
    "through its signed URLs (Video.hlsUrl), without paying."
)
class AccessReason(StrEnum):
    FREE = "FREE"
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    FUNDS_AVAILABLE = "FUNDS_AVAILABLE"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    SIGN_IN_REQUIRED = "SIGN_IN_REQUIRED"
    NOT_READY = "NOT_READY"
    UNAVAILABLE = "UNAVAILABLE"


@strawberry.enum
class DepositStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"


@strawberry.enum(
    description="Why a playback session ended. PRICE_CHANGED: the owner changed the video's "
    "price; start a new session at the new price."
)
class PlaybackEndReason(StrEnum):
    ENDED_BY_VIEWER = "ENDED_BY_VIEWER"
    EXPIRED = "EXPIRED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    VIDEO_DELETED = "VIDEO_DELETED"
    ACCOUNT_DELETED = "ACCOUNT_DELETED"
    PRICE_CHANGED = "PRICE_CHANGED"


@strawberry.enum
class RefundTarget(StrEnum):
    CHARGE = "CHARGE"
    DEPOSIT = "DEPOSIT"


@strawberry.enum(name="ReportPeriod")
class Period(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@strawberry.enum(
    description="ACTIVE until ended; EXPIRED once heartbeats stopped for the session TTL."
)
class PlaybackStatus(StrEnum):
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"
    EXPIRED = "EXPIRED"


@strawberry.enum
class TransactionKind(StrEnum):
    DEPOSIT = "DEPOSIT"
    CHARGE = "CHARGE"
    REFUND = "REFUND"


@strawberry.type(description="An exact amount: an integer of the currency's minor units.")
class Money:
    amount: Long
    currency: str

    @staticmethod
    def of(amount: int, currency: str) -> Money:
        return Money(amount=Long(amount), currency=currency)


@strawberry.type
class VideoPrice:
    price_per_minute: Long = strawberry.field(description="Minor units per minute; 0 is free.")
    currency: str


@strawberry.type
class VideoAccess:
    can_watch: bool
    reason: AccessReason


def _loader(
    info: BillingInfo, name: str, load: Callable[[list[str]], Awaitable[Sequence[Any]]]
) -> DataLoader[str, Any]:
    loader: DataLoader[str, Any] | None = info.context.loaders.get(name)
    if loader is None:
        loader = DataLoader(load_fn=load)
        info.context.loaders[name] = loader
    return loader


@strawberry.federation.type(keys=["id"], description="A video; billing adds price and access.")
class Video:
    id: strawberry.ID

    @strawberry.field(description="The price per minute; free videos cost 0.")
    async def price(self, info: BillingInfo) -> VideoPrice:
        viewer = info.context.viewer

        async def load(ids: list[str]) -> list[domain.VideoPrice]:
            return await info.context.service.prices(viewer, ids)

        price: domain.VideoPrice = await _loader(info, "prices", load).load(str(self.id))
        return VideoPrice(price_per_minute=Long(price.price_per_minute), currency=price.currency)

    @strawberry.field(description="Whether the current viewer may watch it now, and why.")
    async def access(self, info: BillingInfo) -> VideoAccess:
        viewer = info.context.viewer

        async def load(ids: list[str]) -> list[domain.Access]:
            return await info.context.service.access(viewer, ids)

        answer: domain.Access = await _loader(info, "access", load).load(str(self.id))
        return VideoAccess(can_watch=answer.can_watch, reason=AccessReason(answer.reason.value))

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Video:
        return Video(id=id)


@strawberry.type
class WalletTransaction:
    id: strawberry.ID
    kind: TransactionKind
    amount: Money = strawberry.field(description="Signed: money in is positive, out negative.")
    balance_after: Money
    description: str
    reference_id: strawberry.ID = strawberry.field(
        description="The deposit, charge or refund behind this transaction."
    )
    created_at: datetime


@strawberry.type
class WalletTransactionEdge:
    cursor: str
    node: WalletTransaction


@strawberry.type
class WalletTransactionConnection:
    edges: list[WalletTransactionEdge]
    page_info: PageInfo


@strawberry.type(description="The signed-in user's wallet in one currency.")
class Wallet:
    _viewer: strawberry.Private[AccessClaims]
    currency: str

    @strawberry.field
    async def balance(self, info: BillingInfo) -> Money:
        amount, currency = await info.context.service.wallet_balance(self._viewer, self.currency)
        return Money.of(amount, currency)

    @strawberry.field(description="Newest first.")
    async def transactions(
        self, info: BillingInfo, first: int | None = None, after: str | None = None
    ) -> WalletTransactionConnection:
        service = info.context.service
        page = await service.wallet_transactions(
            self._viewer, self.currency, first=page_size(first), after=after
        )
        edges = [
            WalletTransactionEdge(
                cursor=service.transaction_cursor(t),
                node=WalletTransaction(
                    id=strawberry.ID(str(t.posting_id)),
                    kind=TransactionKind(t.kind),
                    amount=Money.of(t.amount, t.currency),
                    balance_after=Money.of(t.balance_after, t.currency),
                    description=t.description,
                    reference_id=strawberry.ID(t.reference_id),
                    created_at=t.created_at,
                ),
            )
            for t in page.transactions
        ]
        return WalletTransactionConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


@strawberry.type
class VideoEarnings:
    video: Video
    earned: Money = strawberry.field(description="The creator's share, net of refunds.")
    refunded: Money
    minutes: int = strawberry.field(description="Minutes charged.")


@strawberry.type(description="The signed-in user's earnings as a creator, in one currency.")
class Earnings:
    _viewer: strawberry.Private[AccessClaims]
    balance: Money
    total_earned: Money = strawberry.field(description="Every share earned, before refunds.")

    @strawberry.field(description="Videos by earnings, highest first.")
    async def by_video(self, info: BillingInfo, first: int | None = None) -> list[VideoEarnings]:
        rows = await info.context.service.earnings_by_video(
            self._viewer, self.balance.currency, first=page_size(first)
        )
        currency = self.balance.currency
        return [
            VideoEarnings(
                video=Video(id=strawberry.ID(r.video_id)),
                earned=Money.of(r.earned - r.refunded, currency),
                refunded=Money.of(r.refunded, currency),
                minutes=r.minutes,
            )
            for r in rows
        ]


async def _earnings(info: BillingInfo, viewer: AccessClaims, currency: str | None) -> Earnings:
    balance, total, currency = await info.context.service.earnings(viewer, currency)
    return Earnings(
        _viewer=viewer, balance=Money.of(balance, currency), total_earned=Money.of(total, currency)
    )


def _self_only(info: BillingInfo, user_id: str) -> AccessClaims:
    viewer = info.context.require_viewer()
    if viewer.subject != user_id:
        raise Forbidden("You can only see your own wallet and earnings.")
    return viewer


@strawberry.federation.type(keys=["id"], description="A person; billing adds wallet and earnings.")
class User:
    id: strawberry.ID

    @strawberry.field(description="Only for the user themself; an error (and null) otherwise.")
    async def wallet(self, info: BillingInfo, currency: str | None = None) -> Wallet | None:
        viewer = _self_only(info, str(self.id))
        return Wallet(_viewer=viewer, currency=info.context.service.currency(currency))

    @strawberry.field(description="Only for the user themself; an error (and null) otherwise.")
    async def earnings(self, info: BillingInfo, currency: str | None = None) -> Earnings | None:
        return await _earnings(info, _self_only(info, str(self.id)), currency)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        return User(id=id)


@strawberry.federation.type(
    keys=["id"],
    description="A viewer's playback of one video. Video adds hlsUrl and storyboard, whose "
    "URLs carry the playback token.",
)
class PlaybackSession:
    id: strawberry.ID
    video: Video
    playback_token: str | None = strawberry.field(
        description="Grants this video's media until expiresAt; renewed by each heartbeat. "
        "Null once the session is no longer active."
    )
    expires_at: datetime
    charged_minutes: int
    price_per_minute: Money
    status: PlaybackStatus
    end_reason: PlaybackEndReason | None
    position_seconds: float
    started_at: datetime

    @staticmethod
    def of(view: domain.Playback) -> PlaybackSession:
        s = view.session
        return PlaybackSession(
            id=strawberry.ID(s.id),
            video=Video(id=strawberry.ID(s.video_id)),
            playback_token=view.token,
            expires_at=s.expires_at,
            charged_minutes=s.charged_minutes,
            price_per_minute=Money.of(s.price_per_minute, s.currency),
            status=PlaybackStatus(view.status),
            end_reason=PlaybackEndReason(s.end_reason) if s.end_reason else None,
            position_seconds=s.position_seconds,
            started_at=s.started_at,
        )

    @classmethod
    async def resolve_reference(
        cls, info: BillingInfo, id: strawberry.ID
    ) -> PlaybackSession | None:
        # The signed-in viewer's own sessions only; anyone else's is null, like none at all.
        viewer = info.context.viewer
        if viewer is None:
            return None
        try:
            view = await info.context.service.playback_session(viewer, str(id))
        except (NotFound, BadUserInput):
            return None
        return PlaybackSession.of(view)


@strawberry.type
class Deposit:
    id: strawberry.ID
    amount: Money
    status: DepositStatus
    created_at: datetime


@strawberry.type
class Refund:
    id: strawberry.ID
    target: RefundTarget
    target_id: strawberry.ID
    amount: Money
    reason: str
    created_at: datetime


@strawberry.type
class RevenuePeriod:
    start: date
    end: date
    gross: Money = strawberry.field(description="Charged to viewers, net of refunds.")
    creator_earnings: Money
    platform_revenue: Money
    refunded: Money
    minutes: int


@strawberry.type
class LedgerViolation:
    kind: str
    detail: str
    account_id: strawberry.ID | None
    entry_id: strawberry.ID | None


@strawberry.type(description="The ledger invariants, checked over every entry and account.")
class LedgerAudit:
    ok: bool
    entries: int
    postings: int
    accounts: int
    violations: list[LedgerViolation]
    checked_at: datetime


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user's wallet.")
    async def wallet(self, info: BillingInfo, currency: str | None = None) -> Wallet:
        viewer = info.context.require_viewer()
        return Wallet(_viewer=viewer, currency=info.context.service.currency(currency))

    @strawberry.field(description="The signed-in user's earnings as a creator.")
    async def earnings(self, info: BillingInfo, currency: str | None = None) -> Earnings:
        return await _earnings(info, info.context.require_viewer(), currency)

    @strawberry.field(description="One of the signed-in user's playback sessions.")
    async def playback_session(self, info: BillingInfo, id: strawberry.ID) -> PlaybackSession:
        view = await info.context.service.playback_session(info.context.require_viewer(), str(id))
        return PlaybackSession.of(view)

    @strawberry.field(
        description="Revenue per period, net of refunds. Admins: the platform's, or one "
        "creator's with creatorId. Creators: their own."
    )
    async def revenue_report(
        self,
        info: BillingInfo,
        period: Period,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        creator_id: strawberry.ID | None = None,
        currency: str | None = None,
    ) -> list[RevenuePeriod]:
        rows = await info.context.service.revenue_report(
            info.context.require_viewer(),
            period=domain.Period(period.value),
            start=from_,
            end=to,
            creator_id=str(creator_id) if creator_id is not None else None,
            currency=currency,
        )
        cur = info.context.service.currency(currency)
        return [
            RevenuePeriod(
                start=r.start,
                end=r.end,
                gross=Money.of(r.gross, cur),
                creator_earnings=Money.of(r.creator_earnings, cur),
                platform_revenue=Money.of(r.platform_revenue, cur),
                refunded=Money.of(r.refunded, cur),
                minutes=r.minutes,
            )
            for r in rows
        ]

    @strawberry.field(description="Admins only.")
    async def ledger_audit(self, info: BillingInfo) -> LedgerAudit:
        service = info.context.service
        report = await service.audit(info.context.require_viewer())
        return LedgerAudit(
            ok=report.ok,
            entries=report.entries,
            postings=report.postings,
            accounts=report.accounts,
            violations=[
                LedgerViolation(
                    kind=v.kind,
                    detail=v.detail,
                    account_id=strawberry.ID(v.account_id) if v.account_id else None,
                    entry_id=strawberry.ID(v.entry_id) if v.entry_id else None,
                )
                for v in report.violations
            ],
            checked_at=service.clock(),
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Add money to your wallet. Retrying with the same idempotencyKey and the "
        "same request returns the first result; a different request with it is a CONFLICT."
    )
    async def deposit(
        self,
        info: BillingInfo,
        amount: Long,
        payment_token: str,
        idempotency_key: str,
        currency: str | None = None,
    ) -> Deposit:
        row = await info.context.service.deposit(
            info.context.require_viewer(),
            amount=amount,
            payment_token=payment_token,
            idempotency_key=idempotency_key,
            currency=currency,
        )
        return Deposit(
            id=strawberry.ID(row.id),
            amount=Money.of(row.amount, row.currency),
            status=DepositStatus(row.status),
            created_at=row.created_at,
        )

    @strawberry.mutation(
        description="The video's owner only; 0 makes it free. Other viewers' running sessions "
        "at another price end (PRICE_CHANGED)."
    )
    async def set_video_price(
        self,
        info: BillingInfo,
        video_id: strawberry.ID,
        price_per_minute: Long,
        currency: str | None = None,
    ) -> Video:
        price = await info.context.service.set_video_price(
            info.context.require_viewer(), str(video_id), price_per_minute, currency
        )
        return Video(id=strawberry.ID(price.video_id))

    @strawberry.mutation(
        description="Open a playback session; on a priced video the first minute is charged."
    )
    async def start_playback(self, info: BillingInfo, video_id: strawberry.ID) -> PlaybackSession:
        view = await info.context.service.start_playback(
            info.context.require_viewer(), str(video_id)
        )
        return PlaybackSession.of(view)

    @strawberry.mutation(
        description="Report the player's position while it plays. A position that moved since "
        "the last heartbeat charges every minute begun since the start (wall clock) and "
        "extends the session and its token; an unchanged one (paused) charges and extends "
        "nothing, and the session lapses, charged until then. When the viewer pauses, call "
        "endPlayback (and startPlayback on resume)."
    )
    async def playback_heartbeat(
        self, info: BillingInfo, session_id: strawberry.ID, position_seconds: float
    ) -> PlaybackSession:
        view = await info.context.service.heartbeat(
            info.context.require_viewer(), str(session_id), position_seconds
        )
        return PlaybackSession.of(view)

    @strawberry.mutation(
        description="End the session: the minutes begun so far are charged, its token stops "
        "granting."
    )
    async def end_playback(self, info: BillingInfo, session_id: strawberry.ID) -> PlaybackSession:
        view = await info.context.service.end_playback(
            info.context.require_viewer(), str(session_id)
        )
        return PlaybackSession.of(view)

    @strawberry.mutation(description="Admins only: refund one charge or one deposit in full.")
    async def refund(
        self, info: BillingInfo, target: RefundTarget, id: strawberry.ID, reason: str
    ) -> Refund:
        row = await info.context.service.refund(
            info.context.require_viewer(), domain.RefundTarget(target.value), str(id), reason
        )
        return Refund(
            id=strawberry.ID(row.id),
            target=RefundTarget(row.target_kind),
            target_id=strawberry.ID(row.target_id),
            amount=Money.of(row.amount, row.currency),
            reason=row.reason,
            created_at=row.created_at,
        )


schema: Schema = subgraph_schema(query=Query, mutation=Mutation, types=[Video, User])
