"""Rate limits per user and per client address, in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import pytest
from limits.aio.storage import MemoryStorage, Storage
from redis.asyncio import Redis

from supergraph.edge.errors import EdgeError
from supergraph.edge.ratelimit import RateLimits, client_network, redis_storage
from tests.support.processes import free_port

Make = Callable[..., RateLimits]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Make]:
    """Builds `RateLimits` on one storage per test: a fresh memory one, or Redis under a key
    prefix of its own that is deleted afterwards."""
    prefix = f"test-ratelimit-{uuid4().hex}"
    storage: Storage = (
        MemoryStorage()
        if request.param == "memory"
        else redis_storage(redis_url, key_prefix=prefix)
    )

    def build(*, user: str | None = "3/second", ip: str | None = "3/second") -> RateLimits:
        return RateLimits(user=user, ip=ip, storage=storage)

    yield build
    await build().close()
    if request.param == "redis":
        client = Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def allowed(limits: RateLimits, ip: str, user: str | None, times: int) -> None:
    for _ in range(times):
        await limits.check(ip, user)


async def rejected(limits: RateLimits, ip: str, user: str | None) -> EdgeError:
    with pytest.raises(EdgeError) as caught:
        await limits.check(ip, user)
    return caught.value


async def test_an_address_is_limited_and_let_through_again_after_the_window(make: Make) -> None:
    limits = make(ip="3/second")
    await allowed(limits, "203.0.113.7", None, 3)
    error = await rejected(limits, "203.0.113.7", None)
    assert error.code == "RATE_LIMITED"
    assert error.status == 429
    assert error.headers == {"Retry-After": "1"}
    assert error.message.startswith("Too many requests from this address: the limit is 3 per 1")
    assert error.body()["errors"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}
    await asyncio.sleep(1.05)
    await allowed(limits, "203.0.113.7", None, 3)


async def test_a_user_is_limited_and_let_through_again_after_the_window(make: Make) -> None:
    limits = make(user="3/second")
    await allowed(limits, "203.0.113.7", "user-1", 3)
    error = await rejected(limits, "203.0.113.7", "user-1")
    assert error.status == 429
    assert "this user" in error.message
    await asyncio.sleep(1.05)
    await allowed(limits, "203.0.113.7", "user-1", 3)


async def test_users_do_not_share_buckets(make: Make) -> None:
    limits = make()
    await allowed(limits, "203.0.113.7", "user-1", 3)
    await rejected(limits, "203.0.113.7", "user-1")
    await allowed(limits, "203.0.113.7", "user-2", 3)


async def test_addresses_do_not_share_buckets(make: Make) -> None:
    limits = make()
    await allowed(limits, "203.0.113.7", None, 3)
    await rejected(limits, "203.0.113.7", None)
    await allowed(limits, "203.0.113.8", None, 3)
    await allowed(limits, "2001:db8:0:1::1", None, 3)


async def test_ipv6_addresses_share_a_bucket_per_64(make: Make) -> None:
    limits = make()
    await allowed(limits, "2001:db8:0:1::1", None, 2)
    await allowed(limits, "2001:db8:0:1:ffff::2", None, 1)
    await rejected(limits, "2001:db8:0:1::3", None)
    await allowed(limits, "2001:db8:0:2::1", None, 3)


async def test_a_request_counts_for_its_user_or_else_its_address_never_both(make: Make) -> None:
    limits = make()
    await allowed(limits, "203.0.113.7", "user-1", 3)
    await rejected(limits, "203.0.113.7", "user-1")
    # Anonymous requests from the same address are still let through, and the other way round.
    await allowed(limits, "203.0.113.7", None, 3)
    await rejected(limits, "203.0.113.7", None)
    await allowed(limits, "203.0.113.7", "user-2", 3)


async def test_retry_after_counts_down_to_when_the_oldest_request_leaves_the_window(
    make: Make,
) -> None:
    single = make(ip="1 per 3 seconds")
    await single.check("203.0.113.7", None)
    assert (await rejected(single, "203.0.113.7", None)).headers == {"Retry-After": "3"}
    limits = make(ip="2 per 3 seconds")
    await limits.check("203.0.113.7", None)
    await asyncio.sleep(1.1)
    await limits.check("203.0.113.7", None)
    # The first request leaves the window ~1.9 s from now, which frees a slot.
    assert (await rejected(limits, "203.0.113.7", None)).headers == {"Retry-After": "2"}


async def test_every_limit_of_a_bucket_applies(make: Make) -> None:
    limits = make(user="10/second;2/minute")
    await allowed(limits, "203.0.113.7", "user-1", 2)
    error = await rejected(limits, "203.0.113.7", "user-1")
    assert "2 per 1 minute" in error.message
    assert 58 <= int(error.headers["Retry-After"]) <= 60


async def test_concurrent_requests_get_exactly_the_limit(make: Make) -> None:
    limits = make(ip="10/second")
    results = await asyncio.gather(
        *(limits.check("203.0.113.7", None) for _ in range(25)), return_exceptions=True
    )
    assert sum(result is None for result in results) == 10
    assert all(isinstance(r, EdgeError) for r in results if r is not None)


async def test_a_disabled_limit_never_counts(make: Make) -> None:
    limits = make(user=None, ip=None)
    assert not limits.enabled
    await allowed(limits, "203.0.113.7", None, 20)
    await allowed(limits, "203.0.113.7", "user-1", 20)


# --- configuration ----------------------------------------------------------------------------


def test_defaults_are_50_per_second_per_user_and_100_per_address_in_memory() -> None:
    limits = RateLimits.from_env({})
    assert [str(item) for item in limits.user_limits] == ["50 per 1 second"]
    assert [str(item) for item in limits.ip_limits] == ["100 per 1 second"]
    assert isinstance(limits.storage, MemoryStorage)


def test_off_disables_one_or_both_limits() -> None:
    assert not RateLimits.from_env({"REELGRAPH_RATE_LIMIT_USER": "off"}).user_limits
    limits = RateLimits.from_env(
        {"REELGRAPH_RATE_LIMIT_USER": "0", "REELGRAPH_RATE_LIMIT_IP": "OFF"}
    )
    assert not limits.enabled


@pytest.mark.parametrize(
    "environ",
    [
        {"REELGRAPH_RATE_LIMIT_USER": "fifty a second"},
        {"REELGRAPH_RATE_LIMIT_IP": "100/fortnight"},
        {"REELGRAPH_RATE_LIMIT_STORAGE": "memcached"},
    ],
)
def test_bad_settings_fail_at_startup(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="REELGRAPH_RATE_LIMIT_"):
        RateLimits.from_env(environ)


async def test_redis_storage_from_the_environment_is_shared_between_instances(
    redis_url: str,
) -> None:
    prefix = f"test-ratelimit-{uuid4().hex}"
    environ = {
        "REELGRAPH_RATE_LIMIT_IP": "3/minute",
        "REELGRAPH_RATE_LIMIT_STORAGE": "redis",
        "REELGRAPH_REDIS_URL": redis_url,
        "REELGRAPH_RATE_LIMIT_KEY_PREFIX": prefix,
    }
    first, second = RateLimits.from_env(environ), RateLimits.from_env(environ)
    client = Redis.from_url(redis_url)
    try:
        await allowed(first, "203.0.113.7", None, 2)
        await allowed(second, "203.0.113.7", None, 1)
        await rejected(first, "203.0.113.7", None)
        assert [key async for key in client.scan_iter(match=f"{prefix}:*")]
    finally:
        await client.delete(*[key async for key in client.scan_iter(match=f"{prefix}:*")])
        await client.aclose()
        await first.close()
        await second.close()


async def test_requests_are_let_through_when_redis_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = RateLimits(ip="1/minute", storage=redis_storage(f"redis://127.0.0.1:{free_port()}/0"))
    started = time.perf_counter()
    await allowed(limits, "203.0.113.7", None, 3)
    assert time.perf_counter() - started < 2
    assert [r.message for r in caplog.records if r.name == "reelgraph.ratelimit"] == [
        "rate-limit storage failed; requests are let through"
    ]
    await limits.close()


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("unknown", "unknown"),
    ],
)
def test_client_network(address: str, bucket: str) -> None:
    assert client_network(address) == bucket
