"""Talks to subgraphs: one shared HTTP connection pool, per-subgraph timeouts, and in-flight
deduplication of identical requests. Transport failures become GraphQL errors, never raises."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import aiohttp
import orjson

_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
# The client's address as the router determined it, sent with every fetch.
CLIENT_ADDRESS_HEADER = "x-forwarded-for"


@dataclass(frozen=True)
class SubgraphEndpoint:
    name: str
    url: str
    timeout: float = 30.0
    # The subgraph's queries may answer differently per client address (geolocation, a
    # per-address limit on a query): identical fetches are then merged per address only.
    dedupe_per_address: bool = False


@dataclass(frozen=True)
class UploadPart:
    """One file of a multipart request: its form key, the variable paths it fills, and the
    spooled file it is streamed from."""

    key: str
    paths: tuple[str, ...]
    filename: str
    content_type: str
    file: IO[bytes]


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
        max_connections: int = 256,
        observer: Callable[[str, float, str | None], None] | None = None,
    ) -> None:
        self.endpoints = dict(endpoints)
        # Told (subgraph, seconds, error code or None) after every request: telemetry.
        self.observer = observer
        self.dedupe = dedupe
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: dict[
            tuple[str, bytes, tuple[tuple[str, str], ...]], asyncio.Future[SubgraphResponse]
        ] = {}

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the event loop that runs it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=30, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: orjson.dumps(o).decode()
            )
        return self._session

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
        key = (service, body, _dedupe_headers(endpoint, sent))
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
        started = time.perf_counter()
        result = await self._post(endpoint, body, headers)
        if self.observer is not None:
            code = None
            if result.failed:
                code = str(result.errors[0].get("extensions", {}).get("code", "FAILED"))
            elif result.errors:
                code = "GRAPHQL_ERRORS"
            self.observer(endpoint.name, time.perf_counter() - started, code)
        return result

    async def _post(
        self, endpoint: SubgraphEndpoint, body: bytes, headers: Mapping[str, str]
    ) -> SubgraphResponse:
        timeout = aiohttp.ClientTimeout(total=endpoint.timeout)
        try:
            async with self._client().post(
                endpoint.url, data=body, headers=dict(headers), timeout=timeout
            ) as response:
                status = response.status
                content = await response.read()
        except TimeoutError:
            return _failure(
                endpoint,
                "SUBGRAPH_TIMEOUT",
                f"Subgraph '{endpoint.name}' did not answer within {endpoint.timeout:g}s.",
            )
        except (aiohttp.ClientError, OSError, ValueError):
            return _failure(
                endpoint,
                "SUBGRAPH_UNAVAILABLE",
                f"Subgraph '{endpoint.name}' could not be reached.",
            )
        return _parse(endpoint, status, content)

    async def fetch_multipart(
        self,
        service: str,
        operation: str,
        variables: Mapping[str, Any],
        files: Sequence[UploadPart],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> SubgraphResponse:
        """Send one operation with its files as a GraphQL multipart request; each file is
        streamed from its spooled copy, never read whole into memory."""
        endpoint = self.endpoints[service]
        form = aiohttp.FormData()
        form.add_field(
            "operations",
            orjson.dumps({"query": operation, "variables": dict(variables)}).decode(),
            content_type="application/json",
        )
        form.add_field(
            "map",
            orjson.dumps({part.key: list(part.paths) for part in files}).decode(),
            content_type="application/json",
        )
        for part in files:
            form.add_field(
                part.key, part.file, filename=part.filename, content_type=part.content_type
            )
        sent = {k: v for k, v in (headers or {}).items() if k != "content-type"}
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=endpoint.timeout)
        try:
            async with self._client().post(
                endpoint.url, data=form, headers=sent, timeout=timeout
            ) as response:
                result = _parse(endpoint, response.status, await response.read())
        except TimeoutError:
            result = _failure(
                endpoint,
                "SUBGRAPH_TIMEOUT",
                f"Subgraph '{endpoint.name}' did not answer within {endpoint.timeout:g}s.",
            )
        except (aiohttp.ClientError, OSError, ValueError):
            result = _failure(
                endpoint,
                "SUBGRAPH_UNAVAILABLE",
                f"Subgraph '{endpoint.name}' could not be reached.",
            )
        if self.observer is not None:
            self.observer(
                endpoint.name,
                time.perf_counter() - started,
                None if not result.errors else "UPLOAD",
            )
        return result

    async def probe(self, service: str, within: float) -> str:
        """`ok` when a subgraph answers `{ __typename }` in time, otherwise why not."""
        endpoint = self.endpoints[service]
        probe = SubgraphEndpoint(endpoint.name, endpoint.url, min(endpoint.timeout, within))
        result = await self._post(probe, b'{"query":"{ __typename }"}', _JSON_HEADERS)
        if result.failed or result.data is None:
            code = result.errors[0].get("extensions", {}).get("code") if result.errors else None
            return str(code or "UNAVAILABLE")
        return "ok"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _dedupe_headers(
    endpoint: SubgraphEndpoint, sent: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """The headers that make two fetches different requests. The request id never does. The
    client address does not either unless the subgraph says its queries depend on it:
    anonymous clients asking the same thing at once are the case deduplication is for, and
    our subgraphs read the address in mutations only (never merged). Authorization and
    everything else the client sent still split fetches, so nobody gets another's answer."""
    ignored = {"x-request-id"}
    if not endpoint.dedupe_per_address:
        ignored.add(CLIENT_ADDRESS_HEADER)
    return tuple(sorted((k, v) for k, v in sent.items() if k not in ignored))


def _failure(endpoint: SubgraphEndpoint, code: str, message: str) -> SubgraphResponse:
    return SubgraphResponse(
        data=None,
        errors=[{"message": message, "extensions": {"code": code, "serviceName": endpoint.name}}],
        failed=True,
    )


def _parse(endpoint: SubgraphEndpoint, status: int, content: bytes) -> SubgraphResponse:
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        return _failure(
            endpoint,
            "SUBGRAPH_BAD_RESPONSE",
            f"Subgraph '{endpoint.name}' answered HTTP {status} with non-JSON.",
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
    failed = data is None and status >= 400 and not cleaned
    return SubgraphResponse(data=data, errors=cleaned, failed=failed)
