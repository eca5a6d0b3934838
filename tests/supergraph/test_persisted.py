"""Persisted queries at the edge: APQ, documentIds, per-client safelists, the manifest
extractor and the shipped mobile manifest."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from graphql import parse, validate
from redis.asyncio import Redis

from reelgraph.cli import main
from supergraph.edge.apq_cache import MemoryAPQCache, RedisAPQCache
from supergraph.edge.errors import EdgeError
from supergraph.edge.persisted import (
    ClientPolicy,
    Mode,
    PersistedConfigError,
    PersistedQueries,
)
from supergraph.edge.persisted_manifest import (
    Manifest,
    ManifestError,
    PersistedOperation,
    document_hash,
)
from supergraph.model import build_api_schema

ROOT = Path(__file__).resolve().parents[2]
SUPERGRAPH = ROOT / "schema" / "supergraph.graphql"
MOBILE_DIR = ROOT / "schema" / "persisted" / "mobile"
MOBILE_MANIFEST = ROOT / "schema" / "persisted" / "mobile.json"

LISTED = "query Me {\n  me {\n    id\n  }\n}"
UNLISTED = "{ me { handle } }"
CUSTOM_ID_BODY = "query Handle {\n  me {\n    handle\n  }\n}"


def apq(query: str | None, digest: str | None = None, **params: Any) -> dict[str, Any]:
    """Request parameters as an Apollo client sends them: the hash, with or without text."""
    sha = digest or document_hash(query or "")
    body: dict[str, Any] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}},
        **params,
    }
    if query is not None:
        body["query"] = query
    return body


def manifest() -> Manifest:
    return Manifest(
        [
            PersistedOperation(document_hash(LISTED), "Me", "query", LISTED),
            PersistedOperation("handle-v1", "Handle", "query", CUSTOM_ID_BODY),
        ]
    )


def persisted(mode: Mode = Mode.OFF, *, default: Mode = Mode.OFF) -> PersistedQueries:
    return PersistedQueries(
        MemoryAPQCache(), {"mobile": ClientPolicy(mode, manifest())}, default_mode=default
    )


async def rejected(pq: PersistedQueries, params: dict[str, Any], client: str | None) -> EdgeError:
    with pytest.raises(EdgeError) as caught:
        await pq.resolve(params, client)
    return caught.value


# --- APQ ---------------------------------------------------------------------------------


async def test_unknown_hash_alone_asks_the_client_for_the_query_with_http_200() -> None:
    error = await rejected(persisted(), apq(None, "a" * 64), None)
    assert (error.code, error.message, error.status) == (
        "PERSISTED_QUERY_NOT_FOUND",
        "PersistedQueryNotFound",
        200,
    )
    assert error.body()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # A CDN must not keep the miss: the next hash-only GET may be known.
    assert "no-cache" in error.headers["cache-control"]


async def test_hash_with_query_registers_it_and_the_hash_alone_then_resolves() -> None:
    pq = persisted()
    digest = document_hash(UNLISTED)
    assert await pq.resolve(apq(UNLISTED), None) == UNLISTED
    assert await pq.resolve(apq(None, digest), None) == UNLISTED
    # Clients that print the hash in upper case still find it.
    assert await pq.resolve(apq(None, digest.upper()), None) == UNLISTED


async def test_hash_that_does_not_match_the_query_is_rejected_and_not_stored() -> None:
    pq = persisted()
    digest = document_hash("{ me { id } }")
    error = await rejected(pq, apq(UNLISTED, digest), None)
    assert (error.code, error.status) == ("PERSISTED_QUERY_HASH_MISMATCH", 400)
    assert (await rejected(pq, apq(None, digest), None)).code == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("version", [2, 0, "1", True, 1.5, None])
async def test_persisted_query_versions_other_than_1_are_not_supported(version: Any) -> None:
    params = apq(UNLISTED)
    params["extensions"]["persistedQuery"]["version"] = version
    error = await rejected(persisted(), params, None)
    assert (error.code, error.status) == ("PERSISTED_QUERY_NOT_SUPPORTED", 400)


async def test_get_sends_extensions_as_json_text_and_the_hash_alone_is_enough() -> None:
    pq = persisted()
    digest = document_hash(UNLISTED)
    as_get = {"extensions": json.dumps(apq(None, digest)["extensions"])}
    assert (await rejected(pq, as_get, None)).code == "PERSISTED_QUERY_NOT_FOUND"
    assert await pq.resolve({**as_get, "query": UNLISTED}, None) == UNLISTED
    assert await pq.resolve(as_get, None) == UNLISTED


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"query": "   "},
        {"query": 5},
        {"query": UNLISTED, "extensions": "{not json"},
        {"query": UNLISTED, "extensions": "[]"},
        {"query": UNLISTED, "extensions": ["persistedQuery"]},
        {"extensions": {"persistedQuery": "abc"}},
        {"extensions": {"persistedQuery": {"version": 1}}},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "g" * 64}}},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": 7}}},
        {"documentId": 5},
        {"documentId": ""},
        {"documentId": "Me", "query": LISTED},
        {"documentId": "Me", **apq(None, "a" * 64)},
    ],
    ids=[
        "nothing",
        "blank-query",
        "query-not-string",
        "extensions-not-json",
        "extensions-json-not-object",
        "extensions-not-object",
        "persisted-query-not-object",
        "hash-missing",
        "hash-too-short",
        "hash-not-hex",
        "hash-not-string",
        "document-id-not-string",
        "document-id-empty",
        "document-id-and-query",
        "document-id-and-hash",
    ],
)
async def test_malformed_requests_are_bad_requests(params: dict[str, Any]) -> None:
    error = await rejected(persisted(), params, None)
    assert (error.code, error.status) == ("BAD_REQUEST", 400)


async def test_memory_cache_evicts_the_least_recently_used_query() -> None:
    cache = MemoryAPQCache(capacity=2)
    await cache.put("a", "{ a }")
    await cache.put("b", "{ b }")
    assert await cache.get("a") == "{ a }"  # now b is the oldest
    await cache.put("c", "{ c }")
    assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (
        "{ a }",
        None,
        "{ c }",
    )
    assert len(cache) == 2


# --- the Redis APQ cache -----------------------------------------------------------------


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(redis_url)
    prefix = f"test-apq-{uuid.uuid4().hex}:"
    yield client, prefix
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_redis_cache_round_trips_queries_under_its_prefix(
    redis: tuple[Redis, str],
) -> None:
    client, prefix = redis
    cache = RedisAPQCache(client, prefix=prefix, ttl=None)
    assert await cache.get("d" * 64) is None
    await cache.put("d" * 64, "{ me { handle } }")
    assert await cache.get("d" * 64) == "{ me { handle } }"
    assert await client.get(prefix + "d" * 64) == b"{ me { handle } }"
    assert await client.pttl(prefix + "d" * 64) == -1  # no TTL: kept until evicted


async def test_redis_cache_expires_queries_after_the_ttl_and_renews_it_on_each_hit(
    redis: tuple[Redis, str],
) -> None:
    client, prefix = redis
    cache = RedisAPQCache(client, prefix=prefix, ttl=0.4)
    await cache.put("e" * 64, "{ e }")
    assert 0 < await client.pttl(prefix + "e" * 64) <= 400
    await asyncio.sleep(0.25)
    assert await cache.get("e" * 64) == "{ e }"  # renewed: 0.4 s from now
    await asyncio.sleep(0.25)
    assert await cache.get("e" * 64) == "{ e }"  # 0.5 s after put, alive because renewed
    await asyncio.sleep(0.5)
    assert await cache.get("e" * 64) is None


async def test_redis_cache_that_is_down_is_a_miss_not_a_failed_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisAPQCache.from_url("redis://127.0.0.1:1/0")
    await cache.put("f" * 64, "{ f }")
    assert await cache.get("f" * 64) is None
    assert "APQ cache unavailable" in caplog.text
    await cache.close()


async def test_replicas_configured_for_redis_share_registered_queries(
    redis: tuple[Redis, str], redis_url: str
) -> None:
    _, prefix = redis
    env = {
        "REELGRAPH_APQ_CACHE": "redis",
        "REELGRAPH_REDIS_URL": redis_url,
        "REELGRAPH_APQ_PREFIX": prefix,
        "REELGRAPH_APQ_TTL": "60",
    }
    first, second = PersistedQueries.from_env(env), PersistedQueries.from_env(env)
    try:
        assert await first.resolve(apq(UNLISTED), None) == UNLISTED
        assert await second.resolve(apq(None, document_hash(UNLISTED)), None) == UNLISTED
    finally:
        await first.close()
        await second.close()


# --- client modes ------------------------------------------------------------------------

LISTED_WAYS = {
    "document-id": {"documentId": document_hash(LISTED)},
    "document-id-custom": {"documentId": "handle-v1"},
    "document-id-sha256-prefix": {"documentId": f"sha256:{document_hash(CUSTOM_ID_BODY)}"},
    "apq-hash": apq(None, document_hash(LISTED)),
    # Apollo's persisted query clients send a manifest id where APQ sends the hash.
    "apq-hash-is-custom-id": apq(None, "handle-v1"),
    "apq-hash-and-query": apq(LISTED),
    "full-text": {"query": LISTED},
}


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("way", list(LISTED_WAYS))
async def test_every_mode_runs_manifest_operations_however_they_are_named(
    mode: Mode, way: str
) -> None:
    params = LISTED_WAYS[way]
    expected = CUSTOM_ID_BODY if "custom" in way or "sha256" in way else LISTED
    assert await persisted(mode).resolve(params, "mobile") == expected


@pytest.mark.parametrize("mode", [Mode.OFF, Mode.ALLOWLIST])
async def test_off_and_allowlist_accept_operations_outside_the_manifest(mode: Mode) -> None:
    pq = persisted(mode)
    assert await pq.resolve({"query": UNLISTED}, "mobile") == UNLISTED
    assert await pq.resolve(apq(UNLISTED), "mobile") == UNLISTED
    assert await pq.resolve(apq(None, document_hash(UNLISTED)), "mobile") == UNLISTED


@pytest.mark.parametrize(
    "params",
    [{"query": UNLISTED}, apq(UNLISTED), apq(None, document_hash(UNLISTED))],
    ids=["full-text", "apq-register", "apq-hash"],
)
async def test_safelist_rejects_anything_outside_the_manifest(params: dict[str, Any]) -> None:
    pq = persisted(Mode.SAFELIST)
    # Registered by another client: the hash alone still must not get past the safelist.
    await pq.resolve(apq(UNLISTED), "web")
    error = await rejected(pq, params, "mobile")
    assert (error.code, error.status) == ("OPERATION_NOT_IN_SAFELIST", 400)


async def test_safelist_does_not_store_rejected_apq_registrations() -> None:
    pq = persisted(Mode.SAFELIST)
    await rejected(pq, apq(UNLISTED), "mobile")
    error = await rejected(pq, apq(None, document_hash(UNLISTED)), "web")
    assert error.code == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("client", ["mobile", "web", None])
async def test_unknown_document_id_is_not_in_the_list(mode: Mode, client: str | None) -> None:
    error = await rejected(persisted(mode), {"documentId": "sha256:" + "0" * 64}, client)
    assert (error.code, error.status) == ("PERSISTED_QUERY_NOT_IN_LIST", 400)


async def test_document_ids_belong_to_their_clients_manifest() -> None:
    error = await rejected(persisted(), {"documentId": document_hash(LISTED)}, "web")
    assert error.code == "PERSISTED_QUERY_NOT_IN_LIST"


async def test_allowlist_logs_each_unlisted_operation_once_and_never_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pq = persisted(Mode.ALLOWLIST)
    with caplog.at_level(logging.WARNING, logger="supergraph.edge.persisted"):
        await pq.resolve({"query": LISTED}, "mobile")
        for _ in range(3):
            await pq.resolve({"query": UNLISTED}, "mobile")
        await pq.resolve({"query": UNLISTED}, "web")  # off for web: not reported
    records = [r for r in caplog.records if r.name == "supergraph.edge.persisted"]
    assert len(records) == 1
    assert records[0].__dict__["operation_hash"] == document_hash(UNLISTED)
    assert records[0].__dict__["client"] == "mobile"
    assert "handle" not in caplog.text


async def test_clients_without_a_name_or_a_policy_get_the_default_mode() -> None:
    pq = persisted(Mode.OFF, default=Mode.SAFELIST)
    assert await pq.resolve({"query": UNLISTED}, "mobile") == UNLISTED
    for client in (None, "", "unknown"):
        error = await rejected(pq, {"query": UNLISTED}, client)
        assert error.code == "OPERATION_NOT_IN_SAFELIST"


# --- configuration -----------------------------------------------------------------------


async def test_without_configuration_mobile_is_safelisted_to_the_shipped_manifest() -> None:
    pq = PersistedQueries.from_env({})
    policy = pq.policy("mobile")
    assert policy.mode is Mode.SAFELIST
    assert policy.manifest is not None
    assert policy.manifest.operations == Manifest.load(MOBILE_MANIFEST).operations
    sign_in = next(op for op in policy.manifest.operations if op.name == "SignIn")
    assert await pq.resolve({"documentId": sign_in.id}, "mobile") == sign_in.body
    assert await pq.resolve({"query": sign_in.body}, "mobile") == sign_in.body
    error = await rejected(pq, {"query": "{ users { totalCount } }"}, "mobile")
    assert error.code == "OPERATION_NOT_IN_SAFELIST"
    # Other clients are not held to it.
    assert await pq.resolve({"query": "{ me { id } }"}, "web") == "{ me { id } }"
    assert await pq.resolve({"query": "{ me { id } }"}, None) == "{ me { id } }"
    assert isinstance(pq.cache, MemoryAPQCache)


def test_environment_names_manifests_and_modes_per_client(tmp_path: Path) -> None:
    path = tmp_path / "apps.json"
    path.write_text(manifest().to_json())
    pq = PersistedQueries.from_env(
        {
            "REELGRAPH_PERSISTED_MANIFESTS": f"ios={path}, android={path}, tv={path}",
            "REELGRAPH_PERSISTED_CLIENTS": "ios=safelist,android=ALLOWLIST,web=off",
            "REELGRAPH_PERSISTED_DEFAULT_MODE": "off",
            "REELGRAPH_APQ_CACHE_SIZE": "5",
        }
    )
    assert {name: policy.mode for name, policy in pq.clients.items()} == {
        "android": Mode.ALLOWLIST,
        "ios": Mode.SAFELIST,
        "tv": Mode.OFF,
        "web": Mode.OFF,
    }
    assert pq.clients["ios"].manifest is pq.clients["android"].manifest  # loaded once
    assert pq.clients["web"].manifest is None
    assert "mobile" not in pq.clients


def test_empty_settings_turn_persisted_query_checks_off() -> None:
    pq = PersistedQueries.from_env(
        {"REELGRAPH_PERSISTED_MANIFESTS": "", "REELGRAPH_PERSISTED_CLIENTS": ""}
    )
    assert pq.clients == {}
    assert pq.policy("mobile").mode is Mode.OFF


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REELGRAPH_PERSISTED_MANIFESTS": ""}, "'mobile' is in safelist mode"),
        ({"REELGRAPH_PERSISTED_CLIENTS": "mobile=strict"}, "'strict' is not one of"),
        ({"REELGRAPH_PERSISTED_CLIENTS": "mobile"}, "expected client=value"),
        ({"REELGRAPH_PERSISTED_DEFAULT_MODE": "on"}, "REELGRAPH_PERSISTED_DEFAULT_MODE"),
        ({"REELGRAPH_APQ_CACHE": "memcached"}, "not memory or redis"),
        ({"REELGRAPH_APQ_CACHE_SIZE": "many"}, "not a number"),
        ({"REELGRAPH_APQ_CACHE": "redis", "REELGRAPH_APQ_TTL": "-1"}, "must not be negative"),
    ],
    ids=[
        "safelist-without-manifest",
        "bad-mode",
        "bad-pair",
        "bad-default",
        "bad-cache",
        "bad-size",
        "negative-ttl",
    ],
)
def test_unusable_settings_stop_the_router_with_a_clear_message(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(PersistedConfigError, match=message):
        PersistedQueries.from_env(env)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nope", "not JSON"),
        ('{"format": "other", "version": 1, "operations": []}', "'format' must be"),
        ('{"format": "apollo-persisted-query-manifest", "version": 2}', "version 1"),
        (
            '{"format": "apollo-persisted-query-manifest", "version": 1, '
            '"operations": [{"id": "a", "name": "A", "type": "query"}]}',
            r"operations\[0\] needs",
        ),
        (
            '{"format": "apollo-persisted-query-manifest", "version": 1, '
            '"operations": [{"id": "a", "name": "A", "type": "fetch", "body": "{ a }"}]}',
            "has type 'fetch'",
        ),
        (
            '{"format": "apollo-persisted-query-manifest", "version": 1, "operations": ['
            '{"id": "a", "name": "A", "type": "query", "body": "{ a }"},'
            '{"id": "a", "name": "B", "type": "query", "body": "{ b }"}]}',
            "appears twice",
        ),
    ],
    ids=["not-json", "format", "version", "missing-body", "bad-type", "duplicate-id"],
)
def test_broken_manifests_are_refused_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=message) as caught:
        PersistedQueries.from_env({"REELGRAPH_PERSISTED_MANIFESTS": f"mobile={path}"})
    assert str(path) in str(caught.value)


# --- reelgraph persisted extract -----------------------------------------------------------


def extract(*args: str) -> Any:
    return CliRunner().invoke(main, ["persisted", "extract", *args])


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_extract_writes_one_sorted_entry_per_operation_with_the_fragments_it_uses(
    tmp_path: Path,
) -> None:
    write(tmp_path / "app" / "profile.graphql", "query Profile { me { ...Person } }")
    write(
        tmp_path / "app" / "nested" / "auth.graphql",
        "mutation SignOut($t: String!) { logout(refreshToken: $t) }\n"
        "subscription Zeta { me { id } }",
    )
    write(
        tmp_path / "shared" / "fragments.graphql",
        "fragment Person on User { handle ...Ids }\n"
        "fragment Ids on User { id }\n"
        "fragment Unused on User { bio }",
    )
    out = tmp_path / "manifest.json"
    result = extract(str(tmp_path / "app"), str(tmp_path / "shared"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout
    data = json.loads(out.read_text())
    assert data["format"] == "apollo-persisted-query-manifest"
    assert data["version"] == 1
    operations = data["operations"]
    assert [(op["name"], op["type"]) for op in operations] == [
        ("Profile", "query"),
        ("SignOut", "mutation"),
        ("Zeta", "subscription"),
    ]
    for op in operations:
        assert op["id"] == document_hash(op["body"])
        assert list(op) == ["id", "name", "type", "body"]
    assert operations[0]["body"] == (
        "query Profile {\n  me {\n    ...Person\n  }\n}\n\n"
        "fragment Ids on User {\n  id\n}\n\n"
        "fragment Person on User {\n  handle\n  ...Ids\n}"
    )
    assert "fragment" not in operations[1]["body"]
    # The same sources always give the same bytes.
    assert extract(str(tmp_path / "shared"), str(tmp_path / "app")).stdout == out.read_text()


def test_extract_refuses_anonymous_operations(tmp_path: Path) -> None:
    write(tmp_path / "ops" / "a.graphql", "query Named { me { id } }\n\n{ me { handle } }")
    result = extract(str(tmp_path / "ops"))
    assert result.exit_code == 1
    assert "a.graphql:3: anonymous operation" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("query A { me { ...Missing } }", "A uses unknown fragment(s) Missing"),
        ("query A { me { id }", "Syntax Error"),
        ("query A { me { id } }\nquery A { me { bio } }", "operation A is also in"),
        ("type Foo { id: ID }", "only operations and fragments"),
    ],
    ids=["unknown-fragment", "syntax", "duplicate-name", "schema-definition"],
)
def test_extract_reports_broken_documents(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "ops" / "a.graphql", text)
    result = extract(str(tmp_path / "ops"))
    assert result.exit_code == 1
    assert message in result.output


def test_extract_validates_operations_against_the_supergraph_when_given(tmp_path: Path) -> None:
    write(tmp_path / "ops" / "good.graphql", "query Good { me { handle } }")
    write(tmp_path / "ops" / "bad.graphql", "query Bad { me { shoeSize } }")
    assert extract(str(tmp_path / "ops")).exit_code == 0  # no schema: syntax only
    result = extract(str(tmp_path / "ops"), "--supergraph", str(SUPERGRAPH))
    assert result.exit_code == 1
    assert "Bad: Cannot query field 'shoeSize' on type 'User'." in result.output
    assert "Good" not in result.output


# --- the shipped mobile manifest ---------------------------------------------------------


def test_mobile_manifest_is_what_extract_produces() -> None:
    result = extract(str(MOBILE_DIR), "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout == MOBILE_MANIFEST.read_text(), (
        "schema/persisted/mobile.json is stale: run `reelgraph persisted extract "
        "schema/persisted/mobile --supergraph schema/supergraph.graphql "
        "-o schema/persisted/mobile.json`"
    )


def test_mobile_manifest_holds_the_auth_operations_and_each_validates() -> None:
    api_schema = build_api_schema(SUPERGRAPH.read_text())
    operations = Manifest.load(MOBILE_MANIFEST).operations
    assert {op.name for op in operations} >= {
        "BrowseVideos",
        "SearchVideos",
        "WatchVideo",
        "VideoComments",
        "StartPlayback",
        "PlaybackHeartbeat",
        "EndPlayback",
        "TopUpWallet",
        "Wallet",
        "SignUp",
        "SignIn",
        "RefreshSession",
        "Me",
        "UpdateProfile",
        "SignOut",
    }
    for op in operations:
        assert validate(api_schema, parse(op.body)) == [], op.name
