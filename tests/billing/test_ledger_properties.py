"""Property tests: random sequences of deposits (succeeding, declined, retried, conflicting),
playback (heartbeats that move, paused ones, lapses, ends), price changes, refunds and
failures, run through the real service on real SQLite and PostgreSQL. Whatever happens, the
ledger invariants hold and agree with the business tables, and every session was charged
exactly the minutes its token granted: no more than the wall clock allowed, no fewer."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError

from subgraphs.billing import ledger
from subgraphs.billing.models import Charge, Deposit, PlaybackSession, Price, Refund
from subgraphs.billing.service import BillingService, RefundTarget
from subgraphs.kernel.errors import DomainError
from tests.billing.harness import Clock, billing_service, claims, migrated_database

MINUTE = 60.0
PRICES = [0, 7, 150]  # free, cheap, dear (per minute)
TOKENS = ["tok_visa", "tok_visa", "tok_declined", "tok_nonsense"]

deposit_op = st.tuples(
    st.just("deposit"),
    st.integers(0, 2),  # viewer
    st.integers(50, 2_000),  # amount (below the minimum sometimes)
    st.sampled_from(TOKENS),
    st.integers(0, 5),  # idempotency key: small pool, so keys get reused
)
start_op = st.tuples(st.just("start"), st.integers(0, 2), st.integers(0, 2))
heartbeat_op = st.tuples(
    st.just("heartbeat"),
    st.integers(0, 7),  # session
    st.one_of(st.integers(0, 100), st.sampled_from([59, 60, 61, 85])),  # seconds (TTL 90)
    # The reported position; None repeats the session's last one (a paused player).
    st.one_of(st.integers(0, 900), st.none()),
)
end_op = st.tuples(st.just("end"), st.integers(0, 7))
reprice_op = st.tuples(st.just("reprice"), st.integers(0, 2), st.sampled_from([*PRICES, 40]))
refund_op = st.tuples(st.sampled_from(["refund_charge", "refund_deposit"]), st.integers(0, 30))
sweep_op = st.tuples(st.just("sweep"))  # the background expiry of silent sessions
operations = st.lists(
    st.one_of(
        deposit_op,
        start_op,
        start_op,
        heartbeat_op,
        heartbeat_op,
        end_op,
        refund_op,
        sweep_op,
        reprice_op,
    ),
    min_size=5,
    max_size=40,
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory.mktemp("ledger")) as url:
        yield url


async def _scenario(url: str, tmp: Path, funds: list[int], ops: list[tuple[Any, ...]]) -> None:
    clock = Clock()
    async with billing_service(url, tmp, clock) as service:
        viewers = [str(uuid.uuid4()) for _ in range(3)]
        creator = str(uuid.uuid4())
        admin = claims(str(uuid.uuid4()), "ADMIN")
        videos = [str(uuid.uuid4()) for _ in PRICES]
        for video, price in zip(videos, PRICES, strict=True):
            await service.apply_event(
                "video.ready",
                uuid.uuid4().hex,
                {"videoId": video, "ownerId": creator, "visibility": "PUBLIC"},
            )
            await service.set_video_price(claims(creator), video, price, None)
        sessions: list[str] = []
        deposits: list[str] = []
        # Opening balances (0 is none), so playback and its failures start early.
        for viewer, amount in zip(viewers, funds, strict=True):
            if amount:
                row = await service.deposit(
                    claims(viewer), amount=amount, payment_token="tok_visa", idempotency_key="open"
                )
                deposits.append(row.id)
        for op in ops:
            # Declined, insufficient funds, conflicts, ended sessions: all expected failures.
            try:
                await _apply(
                    service, clock, op, viewers, videos, creator, admin, sessions, deposits
                )
            except DomainError as error:
                event(f"{op[0]} failed: {error.code}")
        await _check_invariants(service, viewers, creator)


async def _apply(
    service: BillingService,
    clock: Clock,
    op: tuple[Any, ...],
    viewers: list[str],
    videos: list[str],
    creator: str,
    admin: Any,
    sessions: list[str],
    deposits: list[str],
) -> None:
    kind = op[0]
    if kind == "deposit":
        _, viewer, amount, token, key = op
        row = await service.deposit(
            claims(viewers[viewer]),
            amount=amount,
            payment_token=token,
            idempotency_key=f"key-{key}",
        )
        deposits.append(row.id)
    elif kind == "start":
        _, viewer, video = op
        playback = await service.start_playback(claims(viewers[viewer]), videos[video])
        sessions.append(playback.session.id)
    elif kind == "heartbeat" and sessions:
        _, index, seconds, position = op
        clock.advance(seconds)
        session_id = sessions[index % len(sessions)]
        row = await _session(service, session_id)
        paused = position is None
        await service.heartbeat(
            claims(row.viewer_id), session_id, row.position_seconds if paused else position
        )
    elif kind == "end" and sessions:
        session_id = sessions[op[1] % len(sessions)]
        await service.end_playback(
            claims((await _session(service, session_id)).viewer_id), session_id
        )
    elif kind == "reprice":
        await service.set_video_price(claims(creator), videos[op[1]], op[2], None)
    elif kind == "sweep":
        await service.expire_sessions()
    elif kind == "refund_charge":
        async with service.db.transaction() as session:
            charges = (
                (
                    await session.execute(
                        select(Charge.id).where(Charge.viewer_id.in_(viewers))  # type: ignore[attr-defined]
                    )
                )
                .scalars()
                .all()
            )
        if charges:
            await service.refund(
                admin, RefundTarget.CHARGE, sorted(charges)[op[1] % len(charges)], "test"
            )
    elif kind == "refund_deposit" and deposits:
        await service.refund(admin, RefundTarget.DEPOSIT, deposits[op[1] % len(deposits)], "test")


async def _session(service: BillingService, session_id: str) -> PlaybackSession:
    async with service.db.transaction() as session:
        row = await session.get(PlaybackSession, session_id)
        assert row is not None
        return row


def _begun_by(playback: PlaybackSession, moment: datetime) -> int:
    """Minutes of the session begun by `moment` (minute 0 begins at the start)."""
    return math.floor((moment - playback.started_at).total_seconds() / MINUTE) + 1


def _begun_before(playback: PlaybackSession, end: datetime) -> int:
    """Minutes of the session begun strictly before `end`."""
    return max(1, math.ceil((end - playback.started_at).total_seconds() / MINUTE))


async def _check_invariants(service: BillingService, viewers: list[str], creator: str) -> None:
    admin = claims(str(uuid.uuid4()), "ADMIN")
    report = await service.audit(admin)
    assert report.ok, report.violations
    async with service.db.transaction() as session:
        # What the example exercised, for `--hypothesis-show-statistics`.
        for table in ("charges", "refunds"):
            count = (
                await session.execute(
                    text(
                        f"SELECT COUNT(*) FROM {table} WHERE user_col IN :ids".replace(
                            "user_col", "viewer_id" if table == "charges" else "user_id"
                        )
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": viewers},
                )
            ).scalar_one()
            event(f"{table}: {'none' if not count else 'some'}")
        for viewer in viewers:
            balance = await ledger.balance(session, ledger.wallet(viewer, "USD"))
            assert balance >= 0
            # The ledger agrees with the business records it was written from.
            deposited = await _sum(
                session, Deposit.amount, Deposit.user_id == viewer, Deposit.status == "SUCCEEDED"
            )
            spent = await _sum(session, Charge.amount, Charge.viewer_id == viewer)
            refunded_charges = await _sum(
                session, Refund.amount, Refund.user_id == viewer, Refund.target_kind == "CHARGE"
            )
            refunded_deposits = await _sum(
                session, Refund.amount, Refund.user_id == viewer, Refund.target_kind == "DEPOSIT"
            )
            assert balance == deposited - spent + refunded_charges - refunded_deposits
        earned = await _sum(session, Charge.creator_share, Charge.creator_id == creator)
        clawed_back = (
            await session.execute(
                select(func.coalesce(func.sum(Charge.creator_share), 0))
                .join(Refund, Refund.target_id == Charge.id)
                .where(Charge.creator_id == creator)
            )
        ).scalar_one()
        assert (
            await ledger.balance(session, ledger.earnings(creator, "USD")) == earned - clawed_back
        )
        # Each charged minute exists once, numbered 0..n-1, each was charged once it had begun
        # (never more than the wall clock allowed), and every session was charged exactly the
        # minutes its token granted.
        prices = {
            p.video_id: p.price_per_minute
            for p in (await session.execute(select(Price))).scalars().all()
        }
        rows = (
            (
                await session.execute(
                    select(PlaybackSession).where(PlaybackSession.viewer_id.in_(viewers))  # type: ignore[attr-defined]
                )
            )
            .scalars()
            .all()
        )
        for playback in rows:
            charges = (
                await session.execute(
                    select(Charge.minute_index, Charge.created_at).where(
                        Charge.session_id == playback.id
                    )
                )
            ).all()
            assert sorted(m for m, _ in charges) == list(range(playback.charged_minutes))
            for minute, charged_at in charges:
                assert minute < _begun_by(playback, charged_at)
            _check_paid_for(playback)
            if playback.status == "ACTIVE":
                # No session runs on at a price its video no longer has.
                assert playback.price_per_minute == prices.get(playback.video_id, 0)


def _check_paid_for(playback: PlaybackSession) -> None:
    """Charged minutes against what the session's token granted."""
    event(f"session: {playback.status} {playback.end_reason}")
    if not playback.price_per_minute:
        assert playback.charged_minutes == 0
        return
    # Each heartbeat that extended the token charged every minute begun by then.
    extended = _begun_by(playback, playback.last_heartbeat_at)
    if playback.status == "ACTIVE" or playback.end_reason in ("PRICE_CHANGED",):
        assert playback.charged_minutes == extended
    elif playback.end_reason in ("ENDED_BY_VIEWER", "EXPIRED"):
        # Ended by the viewer or lapsed: the minutes begun until then are all paid.
        assert playback.ended_at is not None
        end = min(playback.ended_at, playback.expires_at)
        assert playback.charged_minutes == max(extended, _begun_before(playback, end))
    else:
        assert playback.end_reason == "INSUFFICIENT_FUNDS"
        assert playback.ended_at is not None
        assert playback.charged_minutes <= _begun_by(playback, playback.ended_at)


async def _sum(session: Any, column: Any, *where: Any) -> int:
    return int(
        (
            await session.execute(select(func.coalesce(func.sum(column), 0)).where(*where))
        ).scalar_one()
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    funds=st.lists(st.sampled_from([0, 100, 320, 1_000]), min_size=3, max_size=3),
    ops=operations,
)
def test_ledger_invariants_hold_for_any_sequence(
    database: str, tmp_path: Path, funds: list[int], ops: list[Any]
) -> None:
    asyncio.run(_scenario(database, tmp_path, funds, ops))


async def _tamper_and_audit(url: str, tmp: Path) -> None:
    clock = Clock()
    async with billing_service(url, tmp, clock) as service:
        viewer = str(uuid.uuid4())
        await service.deposit(
            claims(viewer), amount=500, payment_token="tok_visa", idempotency_key="k"
        )
        wallet_id = ledger.wallet(viewer, "USD").id
        # Entries and postings are append-only, whoever connects.
        for statement in (
            "UPDATE postings SET amount = amount + 1 WHERE account_id = :a",
            "DELETE FROM postings WHERE account_id = :a",
        ):
            with pytest.raises(DBAPIError):
                async with service.db.transaction() as session:
                    await session.execute(text(statement), {"a": wallet_id})
        # A balance that drifts from its postings, and a posting slipped into an entry, are
        # both reported.
        async with service.db.transaction() as session:
            await session.execute(
                text("UPDATE accounts SET balance = balance + 7 WHERE id = :a"), {"a": wallet_id}
            )
        report = await service.audit(claims(str(uuid.uuid4()), "ADMIN"))
        assert not report.ok
        assert {(v.kind, v.account_id) for v in report.violations} == {
            ("BALANCE_MISMATCH", wallet_id)
        }
        async with service.db.transaction() as session:
            entry = (
                await session.execute(
                    text("SELECT entry_id FROM postings WHERE account_id = :a"), {"a": wallet_id}
                )
            ).scalar_one()
            await session.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount, balance_after, currency,"
                    " created_at) VALUES (:e, :a, 7, 507, 'USD', CURRENT_TIMESTAMP)"
                ),
                {"e": entry, "a": wallet_id},
            )
        kinds = {
            v.kind for v in (await service.audit(claims(str(uuid.uuid4()), "ADMIN"))).violations
        }
        assert "UNBALANCED_ENTRY" in kinds
        assert "BALANCE_MISMATCH" not in kinds  # the balance now matches the tampered postings
        with pytest.raises(DomainError) as forbidden:
            await service.audit(claims(viewer))
        assert forbidden.value.code == "FORBIDDEN"


def test_the_audit_reports_tampering_and_the_ledger_refuses_edits(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for kind in ("sqlite", "postgres"):
        tmp = tmp_path_factory.mktemp(f"tamper-{kind}")
        with migrated_database(kind, tmp) as url:
            asyncio.run(_tamper_and_audit(url, tmp))
