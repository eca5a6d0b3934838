"""Talks to subgraphs: one shared HTTP connection pool, per-subgraph timeouts, and in-flight
deduplication of identical requests. Transport failures become GraphQL errors, never raises."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


@dataclass(frozen=True)
class SubgraphEndpoint:
    name: str
    url: str
    timeout: float = 30.0


@dataclass
class SubgraphResponse:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    # A transport-level failure (timeout, refused, malformed body): the whole fetch failed.
    failed: bool = False


class Fetcher:
    def __init__(
        self,
        endpoints: Mapping[str, SubgraphEndpoint],
        *,
        dedupe: bool = True,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 200,
    ) -> None:
        self.endpoints = dict(endpoints)
        self.dedupe = dedupe
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # Per-subgraph timeouts are applied around each request instead.
            timeout=None,  # noqa: S113
        )
        self._in_flight: dict[
            tuple[str, bytes, tuple[tuple[str, str], ...]], asyncio.Future[SubgraphResponse]
        ] = {}

    async def fetch(
        self,
        service: str,
        operation: str,
        variables: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        dedupable: bool = True,
    ) -> SubgraphResponse:
        endpoint = self.endpoints[service]
        body = orjson.dumps({"query": operation, "variables": variables})
        sent = {**_JSON_HEADERS, **(headers or {})}
        if not (self.dedupe and dedupable):
            return await self._send(endpoint, body, sent)
        # Requests differing only in their request id are the same request.
        key = (service, body, tuple(sorted((k, v) for k, v in sent.items() if k != "x-request-id")))
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[SubgraphResponse] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await self._send(endpoint, body, sent)
            future.set_result(result)
            return result
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: other waiters may not exist
            raise
        finally:
            del self._in_flight[key]

    async def _send(
        self, endpoint: SubgraphEndpoint, body: bytes, headers: Mapping[str, str]
    ) -> SubgraphResponse:
        try:
            response = await asyncio.wait_for(
                self._client.post(endpoint.url, content=body, headers=headers), endpoint.timeout
            )
        except TimeoutError:
            return _failure(
                endpoint,
                "SUBGRAPH_TIMEOUT",
                f"Subgraph '{endpoint.name}' did not answer within {endpoint.timeout:g}s.",
            )
        except httpx.HTTPError:
            return _failure(
                endpoint,
                "SUBGRAPH_UNAVAILABLE",
                f"Subgraph '{endpoint.name}' could not be reached.",
            )
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return _failure(
                endpoint,
                "SUBGRAPH_BAD_RESPONSE",
                f"Subgraph '{endpoint.name}' answered HTTP {response.status_code} with non-JSON.",
            )
        if not isinstance(payload, dict) or not ("data" in payload or "errors" in payload):
            return _failure(
                endpoint,
                "SUBGRAPH_BAD_RESPONSE",
                f"Subgraph '{endpoint.name}' answered with no GraphQL response.",
            )
        data = payload.get("data")
        errors = payload.get("errors") or []
        if not isinstance(errors, list) or (data is not None and not isinstance(data, dict)):
            return _failure(
                endpoint,
                "SUBGRAPH_BAD_RESPONSE",
                f"Subgraph '{endpoint.name}' answered with a malformed GraphQL response.",
            )
        cleaned = [e if isinstance(e, dict) else {"message": str(e)} for e in errors]
        return SubgraphResponse(
            data=data,
            errors=cleaned,
            failed=data is None and response.status_code >= 400 and not cleaned,
        )

    async def close(self) -> None:
        await self._client.aclose()


def _failure(endpoint: SubgraphEndpoint, code: str, message: str) -> SubgraphResponse:
    return SubgraphResponse(
        data=None,
        errors=[{"message": message, "extensions": {"code": code, "serviceName": endpoint.name}}],
        failed=True,
    )
