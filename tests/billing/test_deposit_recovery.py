"""Deposits when the payment provider fails or the process dies mid-payment: the key can be
retried, the provider is asked again with the same idempotency key, and money moves once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from subgraphs.billing.payments import (
    PaymentProvider,
    PaymentProviderUnavailable,
    PaymentResult,
)
from subgraphs.billing.service import BillingService, DepositStatus
from subgraphs.kernel.errors import DomainError
from tests.billing.harness import Clock, billing_service, claims, migrated_database


class FlakyProvider(PaymentProvider):
    """A provider that is down, then hangs (as if our process died waiting), then works.
    It records every idempotency key it was asked with, and charges each key once."""

    def __init__(self) -> None:
        self.plan = ["down", "hang", "ok"]
        self.asked: list[str] = []
        self.charged: dict[str, int] = {}

    async def collect(
        self, *, amount: int, currency: str, payment_token: str, idempotency_key: str
    ) -> PaymentResult:
        self.asked.append(idempotency_key)
        step = self.plan.pop(0) if self.plan else "ok"
        if step == "down":
            raise PaymentProviderUnavailable("connection refused")
        if step == "hang":
            await asyncio.Event().wait()
        self.charged.setdefault(idempotency_key, amount)
        return PaymentResult(succeeded=True, reference=f"ref-{idempotency_key}")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with migrated_database(request.param, tmp_path) as url:
        yield url


async def _balance(service: BillingService, user: str) -> int:
    amount, _ = await service.wallet_balance(claims(user), None)
    return amount


async def test_a_deposit_stuck_by_an_outage_or_a_dead_process_completes_once(
    database: str, tmp_path: Path
) -> None:
    clock = Clock()
    async with billing_service(database, tmp_path, clock) as service:
        provider = FlakyProvider()
        service.provider = provider
        user = str(uuid.uuid4())
        request = {"amount": 700, "payment_token": "tok_visa", "idempotency_key": "k1"}

        # 1. The provider is down: a clear, retryable error, and nothing in the wallet.
        with pytest.raises(DomainError) as down:
            await service.deposit(claims(user), **request)
        assert down.value.code == "PAYMENT_PROVIDER_UNAVAILABLE"
        assert await _balance(service, user) == 0

        # 2. The retry reaches a provider that never answers, and "the process dies" (the
        # request is cancelled): the deposit stays PENDING.
        attempt = asyncio.create_task(service.deposit(claims(user), **request))
        while len(provider.asked) < 2:
            await asyncio.sleep(0.01)
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt

        # 3. Once the pending timeout has passed, a retry takes the attempt over and asks the
        # provider again with the same idempotency key.
        service.settings.billing_pending_deposit_timeout = 0.5
        clock.advance(1)
        deposit = await service.deposit(claims(user), **request)
        assert deposit.status == DepositStatus.SUCCEEDED
        assert len(set(provider.asked)) == 1 and len(provider.asked) == 3
        assert await _balance(service, user) == 700

        # And afterwards the key answers with that same deposit, without asking again.
        again = await service.deposit(claims(user), **request)
        assert again.id == deposit.id and len(provider.asked) == 3
        assert await _balance(service, user) == 700
        assert (await service.audit(claims(str(uuid.uuid4()), "ADMIN"))).ok
