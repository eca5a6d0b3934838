"""Where automatic persisted queries are kept, by SHA-256: an in-process LRU, or Redis so
every router replica knows a query one of them was sent."""

from __future__ import annotations

import logging
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from supergraph.cache import LRUCache

logger = logging.getLogger(__name__)


class APQCache(Protocol):
    async def get(self, digest: str) -> str | None: ...

    async def put(self, digest: str, query: str) -> None: ...

    async def close(self) -> None: ...


class MemoryAPQCache:
    def __init__(self, capacity: int = 1000) -> None:
        self._queries: LRUCache[str, str] = LRUCache(capacity)

    async def get(self, digest: str) -> str | None:
        return self._queries.get(digest)

    async def put(self, digest: str, query: str) -> None:
        self._queries.put(digest, query)

    def __len__(self) -> int:
        return len(self._queries)

    async def close(self) -> None:
        pass


class RedisAPQCache:
    """Queries under `<prefix><sha256>`. With a TTL, each hit renews it, so queries clients
    still send stay and abandoned ones expire."""

    def __init__(
        self, redis: Redis, *, prefix: str = "reelgraph:apq:", ttl: float | None = 86400
    ) -> None:
        self._redis = redis
        self.prefix = prefix
        self._ttl_ms = max(1, round(ttl * 1000)) if ttl else None

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "reelgraph:apq:", ttl: float | None = 86400
    ) -> RedisAPQCache:
        # Short timeouts: a slow Redis must cost a cache miss, not a stalled request.
        redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return cls(redis, prefix=prefix, ttl=ttl)

    async def get(self, digest: str) -> str | None:
        key = self.prefix + digest
        try:
            if self._ttl_ms is None:
                value = await self._redis.get(key)
            else:
                value = await self._redis.getex(key, px=self._ttl_ms)
        except RedisError as error:
            # A miss makes the client send the full query, so the request still succeeds.
            logger.warning("APQ cache unavailable", extra={"error": str(error)})
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, digest: str, query: str) -> None:
        try:
            await self._redis.set(self.prefix + digest, query, px=self._ttl_ms)
        except RedisError as error:
            logger.warning("APQ cache unavailable", extra={"error": str(error)})

    async def close(self) -> None:
        await self._redis.aclose()
