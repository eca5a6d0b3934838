"""Request rate limits per verified user and per client address, on the `limits` library's
moving window (in memory or in Redis); over the limit is a 429 `EdgeError` with `Retry-After`."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from supergraph.edge.errors import EdgeError

log = logging.getLogger("reelgraph.ratelimit")

DEFAULT_USER_LIMIT = "50/second"
DEFAULT_IP_LIMIT = "100/second"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KEY_PREFIX = "reelgraph:ratelimit"
DISABLED = frozenset({"0", "off", "none", "false"})
# A rate-limit check must not hold a request up for long when Redis is slow or gone.
REDIS_TIMEOUT_SECONDS = 0.5
# While the storage fails, say so at most this often rather than once per request.
STORAGE_WARNING_INTERVAL = 30.0


class RateLimits:
    """A request counts against exactly one bucket: its user's when it carries a verified
    token, otherwise its client address's. Each bucket may hold several limits
    (`"50/second;1000/minute"`); a request must fit all of them."""

    def __init__(
        self,
        *,
        user: str | None = DEFAULT_USER_LIMIT,
        ip: str | None = DEFAULT_IP_LIMIT,
        storage: Storage | None = None,
    ) -> None:
        self.user_limits: Sequence[RateLimitItem] = parse_many(user) if user else ()
        self.ip_limits: Sequence[RateLimitItem] = parse_many(ip) if ip else ()
        self.storage = storage if storage is not None else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._warned_at = -math.inf

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RateLimits:
        """`REELGRAPH_RATE_LIMIT_USER` / `_IP` (`limits` notation, or `off`),
        `REELGRAPH_RATE_LIMIT_STORAGE` (`memory` or `redis`), `REELGRAPH_REDIS_URL` and
        `REELGRAPH_RATE_LIMIT_KEY_PREFIX`."""
        env = os.environ if environ is None else environ
        user = _limit_setting(env, "REELGRAPH_RATE_LIMIT_USER", DEFAULT_USER_LIMIT)
        ip = _limit_setting(env, "REELGRAPH_RATE_LIMIT_IP", DEFAULT_IP_LIMIT)
        kind = env.get("REELGRAPH_RATE_LIMIT_STORAGE", "").strip().lower() or "memory"
        if kind == "memory":
            storage: Storage = MemoryStorage()
        elif kind == "redis":
            storage = redis_storage(
                env.get("REELGRAPH_REDIS_URL", "").strip() or DEFAULT_REDIS_URL,
                key_prefix=env.get("REELGRAPH_RATE_LIMIT_KEY_PREFIX", "").strip()
                or DEFAULT_KEY_PREFIX,
            )
        else:
            raise ValueError(f"REELGRAPH_RATE_LIMIT_STORAGE must be memory or redis, not {kind!r}")
        return cls(user=user, ip=ip, storage=storage)

    @property
    def enabled(self) -> bool:
        return bool(self.user_limits or self.ip_limits)

    async def check(self, ip: str, user: str | None) -> None:
        """Count one request; raise `RATE_LIMITED` (429) when it does not fit. `user` is the
        verified token's subject, or None for an anonymous request."""
        if user is not None:
            await self._hit(self.user_limits, "user", user)
        else:
            await self._hit(self.ip_limits, "ip", client_network(ip))

    async def _hit(self, items: Sequence[RateLimitItem], scope: str, identity: str) -> None:
        for item in items:
            try:
                allowed = await self.limiter.hit(item, scope, identity)
                if allowed:
                    continue
                retry_after = await self._retry_after(item, scope, identity)
            except StorageError as error:
                # Fail open: losing Redis must not take the API down with it.
                self._storage_failed(error)
                return
            who = "this user" if scope == "user" else "this address"
            raise EdgeError(
                "RATE_LIMITED",
                f"Too many requests from {who}: the limit is {item}. Retry after {retry_after} s.",
                status=429,
                headers={"Retry-After": str(retry_after)},
                extensions={"retryAfter": retry_after},
            )

    async def _retry_after(self, item: RateLimitItem, scope: str, identity: str) -> int:
        """Whole seconds until the oldest request in the window leaves it and frees a slot."""
        stats = await self.limiter.get_window_stats(item, scope, identity)
        seconds = math.ceil(stats.reset_time - time.time())
        return min(max(seconds, 1), item.get_expiry())

    def _storage_failed(self, error: StorageError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= STORAGE_WARNING_INTERVAL:
            self._warned_at = now
            log.warning(
                "rate-limit storage failed; requests are let through",
                extra={"error": repr(error.storage_error)},
            )

    async def close(self) -> None:
        # `limits` has no close of its own; its redis-py client lives on the storage's bridge.
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()


def redis_storage(url: str, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> RedisStorage:
    """`limits`' Redis storage on the redis-py client we already depend on (its default
    client, coredis, is not installed). `url` is an ordinary `redis://` URL."""
    if url.startswith("unix://"):
        url = "redis+unix://" + url.removeprefix("unix://")
    return RedisStorage(
        "async+" + url,
        implementation="redispy",
        key_prefix=key_prefix,
        wrap_exceptions=True,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def client_network(ip: str) -> str:
    """The bucket for a client address: IPv4 addresses one by one, IPv6 by /64, since one
    subscriber is routinely handed a whole /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _limit_setting(env: Mapping[str, str], name: str, default: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in DISABLED:
        return None
    try:
        parse_many(raw)
    except ValueError:
        raise ValueError(f"{name} must look like '50/second' or 'off', not {raw!r}") from None
    return raw


__all__ = ["RateLimits", "client_network", "redis_storage"]
