"""How money enters: the `PaymentProvider` interface deposits go through, and the built-in test
provider (`tok_visa` succeeds, `tok_declined` is declined, `tok_slow` succeeds after a delay).

Providers must be idempotent per `idempotency_key`, as real ones are: a deposit whose process
died mid-payment is retried with the same key, and must not take the money twice.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from dataclasses import dataclass

from subgraphs.kernel.settings import Settings


@dataclass(frozen=True)
class PaymentResult:
    succeeded: bool
    # The provider's id for the payment, when it went through.
    reference: str | None = None
    # Why it was declined: a stable code (PAYMENT_DECLINED, INVALID_PAYMENT_TOKEN) and a
    # sentence for people.
    failure_code: str | None = None
    failure_message: str | None = None


class PaymentProviderUnavailable(Exception):
    """The provider could not be asked (network, outage); the deposit may be retried."""


class PaymentProvider(abc.ABC):
    @abc.abstractmethod
    async def collect(
        self, *, amount: int, currency: str, payment_token: str, idempotency_key: str
    ) -> PaymentResult:
        """Take `amount` minor units from what `payment_token` stands for.

        A decline is a result, not an exception; `PaymentProviderUnavailable` means nobody
        knows yet whether the payment happened.
        """


class TestPaymentProvider(PaymentProvider):
    """The built-in provider: deterministic outcomes by token, no network."""

    def __init__(self, *, delay_seconds: float) -> None:
        self.delay_seconds = delay_seconds

    async def collect(
        self, *, amount: int, currency: str, payment_token: str, idempotency_key: str
    ) -> PaymentResult:
        # The same key always yields the same reference: asking twice takes the money once.
        reference = "test_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if payment_token == "tok_visa":  # noqa: S105 - a test card name, not a secret
            return PaymentResult(succeeded=True, reference=reference)
        if payment_token == "tok_slow":  # noqa: S105
            await asyncio.sleep(self.delay_seconds)
            return PaymentResult(succeeded=True, reference=reference)
        if payment_token == "tok_declined":  # noqa: S105
            return PaymentResult(
                succeeded=False,
                failure_code="PAYMENT_DECLINED",
                failure_message="The card was declined.",
            )
        return PaymentResult(
            succeeded=False,
            failure_code="INVALID_PAYMENT_TOKEN",
            failure_message="The payment token is not recognised.",
        )


def payment_provider(settings: Settings) -> PaymentProvider:
    """The provider `REELGRAPH_BILLING_PAYMENT_PROVIDER` names."""
    if settings.billing_payment_provider == "test":
        return TestPaymentProvider(delay_seconds=settings.billing_test_provider_delay_seconds)
    raise ValueError(f"unknown payment provider {settings.billing_payment_provider!r}")
