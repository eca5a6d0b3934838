"""Persisted queries at the router edge: APQ, `documentId`s and per-client safelists turn a
request into the query text to run, or into an `EdgeError`."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from supergraph.cache import LRUCache
from supergraph.edge.apq_cache import APQCache, MemoryAPQCache, RedisAPQCache
from supergraph.edge.errors import EdgeError
from supergraph.edge.persisted_manifest import Manifest, document_hash

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
# Without configuration the mobile app is held to its manifest: a safe default that a
# deployment loosens explicitly rather than one it has to remember to tighten.
DEFAULT_MANIFESTS = f"mobile={ROOT / 'schema' / 'persisted' / 'mobile.json'}"
DEFAULT_CLIENTS = "mobile=safelist"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
OPERATION_NOT_IN_SAFELIST = "OPERATION_NOT_IN_SAFELIST"
BAD_REQUEST = "BAD_REQUEST"

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class Mode(StrEnum):
    OFF = "off"  # any query; APQ; manifest ids resolve
    ALLOWLIST = "allowlist"  # the same, and queries outside the manifest are logged
    SAFELIST = "safelist"  # only the manifest's operations


class PersistedConfigError(ValueError):
    """A `REELGRAPH_PERSISTED_*` or `REELGRAPH_APQ_*` setting that cannot be used."""


@dataclass(frozen=True)
class ClientPolicy:
    mode: Mode
    manifest: Manifest | None = None


@dataclass(frozen=True)
class _Sent:
    """What a request offers: query text, an APQ hash, a document id (at least one)."""

    query: str | None
    hash: str | None
    document_id: str | None


class PersistedQueries:
    def __init__(
        self,
        cache: APQCache,
        clients: Mapping[str, ClientPolicy] | None = None,
        default_mode: Mode = Mode.OFF,
    ) -> None:
        self.cache = cache
        self.clients = dict(clients or {})
        self.default = ClientPolicy(default_mode)
        # Allowlist mode reports each unlisted operation once per process, not per request.
        self._reported: LRUCache[tuple[str, str], bool] = LRUCache(1000)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PersistedQueries:
        env = os.environ if environ is None else environ
        manifest_paths = _pairs(
            env.get("REELGRAPH_PERSISTED_MANIFESTS", DEFAULT_MANIFESTS),
            "REELGRAPH_PERSISTED_MANIFESTS",
        )
        modes = {
            client: _mode(value, "REELGRAPH_PERSISTED_CLIENTS")
            for client, value in _pairs(
                env.get("REELGRAPH_PERSISTED_CLIENTS", DEFAULT_CLIENTS),
                "REELGRAPH_PERSISTED_CLIENTS",
            ).items()
        }
        default_mode = _mode(
            env.get("REELGRAPH_PERSISTED_DEFAULT_MODE", "off"), "REELGRAPH_PERSISTED_DEFAULT_MODE"
        )
        loaded: dict[Path, Manifest] = {}  # clients may share one manifest file
        clients: dict[str, ClientPolicy] = {}
        for client in sorted(manifest_paths.keys() | modes.keys()):
            manifest = None
            if client in manifest_paths:
                path = Path(manifest_paths[client]).resolve()
                if path not in loaded:
                    loaded[path] = Manifest.load(path)
                manifest = loaded[path]
            mode = modes.get(client, default_mode)
            if mode is not Mode.OFF and manifest is None:
                raise PersistedConfigError(
                    f"client {client!r} is in {mode} mode but REELGRAPH_PERSISTED_MANIFESTS "
                    "gives it no manifest"
                )
            clients[client] = ClientPolicy(mode, manifest)
        return cls(_apq_cache(env), clients, default_mode)

    def policy(self, client_name: str | None) -> ClientPolicy:
        return self.clients.get(client_name or "", self.default)

    async def resolve(self, params: Mapping[str, Any], client_name: str | None) -> str:
        """The query text to execute for a GraphQL request's parameters (a POST body, or a
        GET's query parameters with `extensions` still a JSON string)."""
        sent = _read(params)
        policy = self.policy(client_name)
        if sent.document_id is not None:
            return self._listed_document(policy, sent.document_id)
        if sent.query is None:
            assert sent.hash is not None  # _read guarantees one of the three
            return await self._hash_alone(policy, client_name, sent.hash)
        return await self._text(policy, client_name, sent.query, sent.hash)

    def _listed_document(self, policy: ClientPolicy, document_id: str) -> str:
        listed = policy.manifest.by_id(document_id) if policy.manifest is not None else None
        if listed is None:
            raise EdgeError(
                PERSISTED_QUERY_NOT_IN_LIST, "This documentId is not in the persisted query list."
            )
        return listed.body

    async def _hash_alone(self, policy: ClientPolicy, client: str | None, sha: str) -> str:
        if policy.manifest is not None:
            listed = policy.manifest.by_hash(sha) or policy.manifest.by_id(sha)
            if listed is not None:
                return listed.body
        if not _SHA256.fullmatch(sha):
            # Only a manifest's own ids may be other than a hash; nothing else is a key.
            raise _bad_request("'persistedQuery.sha256Hash' must be a SHA-256 hex digest.")
        if policy.mode is Mode.SAFELIST:
            raise _not_in_safelist()
        query = await self.cache.get(sha)
        if query is None:
            # HTTP 200 and this exact message: Apollo clients retry with the full text on
            # it. Never cached, or a CDN would keep answering a hash that is now known.
            raise EdgeError(
                PERSISTED_QUERY_NOT_FOUND,
                "PersistedQueryNotFound",
                status=200,
                headers={"cache-control": "private, no-cache, must-revalidate"},
            )
        self._report_unlisted(policy, client, sha)
        return query

    async def _text(
        self, policy: ClientPolicy, client: str | None, query: str, sha: str | None
    ) -> str:
        """Full query text, on its own or registering an APQ hash."""
        if sha is None and policy.manifest is None and policy.mode is Mode.OFF:
            return query  # nothing to check it against: skip hashing the text
        digest = document_hash(query)
        if sha is not None and digest != sha:
            raise EdgeError(
                PERSISTED_QUERY_HASH_MISMATCH, "The sha256Hash does not match the query."
            )
        if policy.manifest is not None and policy.manifest.by_hash(digest) is not None:
            return query
        if policy.mode is Mode.SAFELIST:
            raise _not_in_safelist()
        if sha is not None:
            await self.cache.put(digest, query)
        self._report_unlisted(policy, client, digest)
        return query

    async def close(self) -> None:
        await self.cache.close()

    def _report_unlisted(self, policy: ClientPolicy, client: str | None, digest: str) -> None:
        if policy.mode is not Mode.ALLOWLIST or self._reported.get((client or "", digest)):
            return
        self._reported.put((client or "", digest), True)
        # The hash, not the text: queries can carry inline values a log must not keep.
        logger.warning(
            "operation not in the persisted query manifest",
            extra={"client": client, "operation_hash": digest},
        )


def _not_in_safelist() -> EdgeError:
    return EdgeError(
        OPERATION_NOT_IN_SAFELIST,
        "This client may only send the operations in its persisted query manifest.",
    )


def _bad_request(message: str) -> EdgeError:
    return EdgeError(BAD_REQUEST, message)


def _read(params: Mapping[str, Any]) -> _Sent:
    query = params.get("query")
    if query is not None and not isinstance(query, str):
        raise _bad_request("'query' must be a string.")
    if query is not None and not query.strip():
        query = None  # some clients send "" next to a hash
    document_id = params.get("documentId")
    if document_id is not None and (not isinstance(document_id, str) or not document_id):
        raise _bad_request("'documentId' must be a non-empty string.")
    extensions = params.get("extensions")
    if isinstance(extensions, str):  # GET: JSON in the query string
        try:
            extensions = orjson.loads(extensions)
        except orjson.JSONDecodeError:
            raise _bad_request("'extensions' is not valid JSON.") from None
    if extensions is not None and not isinstance(extensions, dict):
        raise _bad_request("'extensions' must be an object.")
    persisted = (extensions or {}).get("persistedQuery")
    digest = None
    if persisted is not None:
        if not isinstance(persisted, dict):
            raise _bad_request("'extensions.persistedQuery' must be an object.")
        version = persisted.get("version")
        if type(version) is not int or version != 1:
            raise EdgeError(
                PERSISTED_QUERY_NOT_SUPPORTED, "Unsupported persisted query version: use 1."
            )
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not digest:
            raise _bad_request("'persistedQuery.sha256Hash' must be a SHA-256 hex digest.")
        if _SHA256.fullmatch(digest):
            digest = digest.lower()
    if document_id is not None and (query is not None or digest is not None):
        raise _bad_request("Send a 'documentId' or a query, not both.")
    if query is None and digest is None and document_id is None:
        raise _bad_request(
            "A GraphQL request needs a 'query' string, a persisted query hash or a 'documentId'."
        )
    return _Sent(query, digest, document_id)


def _pairs(value: str, variable: str) -> dict[str, str]:
    """`a=x,b=y` as a mapping; an empty value is an empty mapping."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, val = (s.strip() for s in item.partition("="))
        if not sep or not key or not val:
            raise PersistedConfigError(f"{variable}: expected client=value, got {item!r}")
        pairs[key] = val
    return pairs


def _mode(value: str, variable: str) -> Mode:
    try:
        return Mode(value.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise PersistedConfigError(f"{variable}: mode {value!r} is not one of {choices}") from None


def _apq_cache(env: Mapping[str, str]) -> APQCache:
    kind = env.get("REELGRAPH_APQ_CACHE", "memory").strip().lower()
    if kind == "memory":
        return MemoryAPQCache(int(_number(env, "REELGRAPH_APQ_CACHE_SIZE", 1000)))
    if kind == "redis":
        ttl = _number(env, "REELGRAPH_APQ_TTL", 86400)
        return RedisAPQCache.from_url(
            env.get("REELGRAPH_REDIS_URL", DEFAULT_REDIS_URL),
            prefix=env.get("REELGRAPH_APQ_PREFIX", "reelgraph:apq:"),
            ttl=ttl or None,
        )
    raise PersistedConfigError(f"REELGRAPH_APQ_CACHE: {kind!r} is not memory or redis")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        number = float(env.get(name, default))
    except ValueError:
        raise PersistedConfigError(f"{name}: {env[name]!r} is not a number") from None
    if number < 0:
        raise PersistedConfigError(f"{name}: must not be negative")
    return number
