"""The double-entry ledger: accounts, balanced journal entries, and the audit that proves the
invariants (entries sum to zero, balances equal their postings, no wallet below zero).

Concurrency: balances change only through `UPDATE accounts SET balance = balance + :amount`
with a guard for wallets, taken in account-id order inside the caller's transaction. On
PostgreSQL that row lock serialises writers of one account (READ COMMITTED re-checks the
guard against the committed balance after waiting), and the fixed order means two entries
never wait on each other in a cycle. On SQLite every transaction is BEGIN IMMEDIATE, so
writers are serialised anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from subgraphs.billing.models import Account, JournalEntry, Posting
from subgraphs.kernel.errors import DomainError

# Fixed namespace: an account's id is derived from what it is, so creating it is idempotent.
_ACCOUNT_NAMESPACE = uuid.UUID("6f1d3c2a-51b4-4c8e-9a57-2f0b7c1e9d40")
PLATFORM_OWNER = ""


class AccountKind(StrEnum):
    WALLET = "WALLET"
    EARNINGS = "EARNINGS"
    PLATFORM_REVENUE = "PLATFORM_REVENUE"
    PAYMENT_CLEARING = "PAYMENT_CLEARING"


class EntryKind(StrEnum):
    DEPOSIT = "DEPOSIT"
    CHARGE = "CHARGE"
    REFUND = "REFUND"


class InsufficientFunds(DomainError):
    code = "INSUFFICIENT_FUNDS"


class UnbalancedEntry(Exception):
    """A programming error: an entry that would break double entry is never written."""


@dataclass(frozen=True)
class AccountKey:
    kind: AccountKind
    owner_id: str
    currency: str

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_ACCOUNT_NAMESPACE, f"{self.kind}:{self.owner_id}:{self.currency}"))


def wallet(user_id: str, currency: str) -> AccountKey:
    return AccountKey(AccountKind.WALLET, user_id, currency)


def earnings(user_id: str, currency: str) -> AccountKey:
    return AccountKey(AccountKind.EARNINGS, user_id, currency)


def platform_revenue(currency: str) -> AccountKey:
    return AccountKey(AccountKind.PLATFORM_REVENUE, PLATFORM_OWNER, currency)


def payment_clearing(currency: str) -> AccountKey:
    return AccountKey(AccountKind.PAYMENT_CLEARING, PLATFORM_OWNER, currency)


Leg = tuple[AccountKey, int]


async def post(
    session: AsyncSession,
    *,
    kind: EntryKind,
    reference_id: str,
    description: str,
    legs: Sequence[Leg],
    now: datetime,
) -> str:
    """Write one balanced journal entry in the caller's transaction and return its id.

    Raises `InsufficientFunds` (and writes nothing, once the caller rolls back) when a leg
    would take a wallet below zero.
    """
    merged: dict[AccountKey, int] = {}
    for key, amount in legs:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise UnbalancedEntry("amounts are integers in minor units")
        merged[key] = merged.get(key, 0) + amount
    merged = {key: amount for key, amount in merged.items() if amount != 0}
    currencies = {key.currency for key in merged}
    if len(merged) < 2 or sum(merged.values()) != 0 or len(currencies) != 1:
        raise UnbalancedEntry(f"entry {kind} for {reference_id} does not balance")
    (currency,) = currencies
    await _ensure_accounts(session, list(merged), now)
    entry_id = str(uuid.uuid4())
    session.add(
        JournalEntry(
            id=entry_id,
            kind=kind.value,
            currency=currency,
            reference_id=reference_id,
            description=description[:200],
            created_at=now,
        )
    )
    await session.flush()
    for key in sorted(merged, key=lambda k: k.id):
        amount = merged[key]
        guarded = update(Account).where(col(Account.id) == key.id)
        if key.kind is AccountKind.WALLET and amount < 0:
            guarded = guarded.where(col(Account.balance) + amount >= 0)
        balance_after = (
            await session.execute(
                guarded.values(balance=col(Account.balance) + amount).returning(
                    col(Account.balance)
                )
            )
        ).scalar_one_or_none()
        if balance_after is None:
            raise InsufficientFunds("Insufficient funds.", currency=currency)
        session.add(
            Posting(
                entry_id=entry_id,
                account_id=key.id,
                amount=amount,
                balance_after=balance_after,
                currency=currency,
                created_at=now,
            )
        )
    await session.flush()
    return entry_id


async def _ensure_accounts(session: AsyncSession, keys: list[AccountKey], now: datetime) -> None:
    rows = [
        {
            "id": key.id,
            "kind": key.kind.value,
            "owner_id": key.owner_id,
            "currency": key.currency,
            "balance": 0,
            "created_at": now,
        }
        for key in keys
    ]
    table: Any = Account.__table__  # type: ignore[attr-defined]
    insert: Any = (
        postgresql.insert(table)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(table)
    )
    # Concurrent first uses of one account: the loser's insert does nothing.
    await session.execute(insert.values(rows).on_conflict_do_nothing(index_elements=["id"]))


async def balance(session: AsyncSession, key: AccountKey) -> int:
    value = (
        await session.execute(select(col(Account.balance)).where(col(Account.id) == key.id))
    ).scalar_one_or_none()
    return int(value or 0)


# --- the audit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str
    account_id: str | None = None
    entry_id: str | None = None


@dataclass(frozen=True)
class AuditReport:
    entries: int
    postings: int
    accounts: int
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        return not self.violations


_CHECKS: list[tuple[str, str]] = [
    (
        "UNBALANCED_ENTRY",
        """SELECT p.entry_id AS entry_id, NULL AS account_id, SUM(p.amount) AS got, 0 AS want
           FROM postings p GROUP BY p.entry_id HAVING SUM(p.amount) <> 0""",
    ),
    (
        "TOO_FEW_POSTINGS",
        """SELECT e.id AS entry_id, NULL AS account_id, COUNT(p.id) AS got, 2 AS want
           FROM journal_entries e LEFT JOIN postings p ON p.entry_id = e.id
           GROUP BY e.id HAVING COUNT(p.id) < 2""",
    ),
    (
        "CURRENCY_MISMATCH",
        """SELECT p.entry_id AS entry_id, p.account_id AS account_id, 0 AS got, 0 AS want
           FROM postings p
           JOIN journal_entries e ON e.id = p.entry_id
           JOIN accounts a ON a.id = p.account_id
           WHERE p.currency <> e.currency OR p.currency <> a.currency""",
    ),
    (
        "BALANCE_MISMATCH",
        """SELECT NULL AS entry_id, a.id AS account_id,
                  a.balance AS got, COALESCE(SUM(p.amount), 0) AS want
           FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
           GROUP BY a.id, a.balance HAVING a.balance <> COALESCE(SUM(p.amount), 0)""",
    ),
    (
        "NEGATIVE_WALLET",
        """SELECT NULL AS entry_id, a.id AS account_id, a.balance AS got, 0 AS want
           FROM accounts a WHERE a.kind = 'WALLET' AND a.balance < 0""",
    ),
    # Postings replayed in order: every recorded balance_after is the running sum, and no
    # wallet was ever below zero at any point in its history.
    (
        "RUNNING_BALANCE_MISMATCH",
        """SELECT r.entry_id AS entry_id, r.account_id AS account_id,
                  r.balance_after AS got, r.running AS want
           FROM (SELECT p.entry_id, p.account_id, p.balance_after,
                        SUM(p.amount) OVER (PARTITION BY p.account_id ORDER BY p.id
                                            ROWS UNBOUNDED PRECEDING) AS running
                 FROM postings p) r
           WHERE r.balance_after <> r.running""",
    ),
    (
        "NEGATIVE_WALLET",
        """SELECT p.entry_id AS entry_id, p.account_id AS account_id,
                  p.balance_after AS got, 0 AS want
           FROM postings p JOIN accounts a ON a.id = p.account_id
           WHERE a.kind = 'WALLET' AND p.balance_after < 0""",
    ),
]


async def audit(session: AsyncSession) -> AuditReport:
    """Check every ledger invariant over the whole ledger; an empty list means all hold."""
    violations: list[Violation] = []
    for kind, query in _CHECKS:
        for row in (await session.execute(text(query))).mappings():
            violations.append(
                Violation(
                    kind=kind,
                    detail=f"found {row['got']}, expected {row['want']}",
                    account_id=row["account_id"],
                    entry_id=row["entry_id"],
                )
            )
    counts = (
        await session.execute(
            text(
                "SELECT (SELECT COUNT(*) FROM journal_entries), (SELECT COUNT(*) FROM postings),"
                " (SELECT COUNT(*) FROM accounts)"
            )
        )
    ).one()
    return AuditReport(
        entries=int(counts[0]),
        postings=int(counts[1]),
        accounts=int(counts[2]),
        violations=violations,
    )
