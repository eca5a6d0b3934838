"""The router as a process over real subgraph processes: joins, batching, dedupe, errors,
introspection of the API schema, and failing subgraphs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.hive import reset_testbed, subgraph_requests
from tests.supergraph.conftest import failing_subgraph, run_router

HERE = Path(__file__).parent
FAILING = HERE / "failing" / "supergraph.graphql"


async def _post(
    url: str, query: str, variables: dict[str, Any] | None = None, **headers: str
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            url, json={"query": query, "variables": variables or {}}, headers=headers
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _entity_calls(url: str) -> list[dict[str, Any]]:
    return [r for r in subgraph_requests(url) if "_entities" in str(r["query"])]  # type: ignore[misc]


async def test_joins_keep_aliases_and_add_nothing(
    testbed_router: str, testbed: dict[str, str]
) -> None:
    body = await _post(
        testbed_router, "{ firstTwo: books(first: 2) { name: title score: averageRating stock } }"
    )
    assert "errors" not in body
    books = body["data"]["firstTwo"]
    assert len(books) == 2
    for book in books:
        assert set(book) == {"name", "score", "stock"}  # no keys, no __typename leaked
        assert isinstance(book["stock"], int)


async def test_entities_are_batched_and_deduplicated(
    testbed_router: str, testbed: dict[str, str]
) -> None:
    reset_testbed(testbed)
    body = await _post(testbed_router, "{ reviews { id book { title } } }")
    reviews = body["data"]["reviews"]
    calls = _entity_calls(testbed["catalog"])
    assert len(calls) == 1, calls
    representations = calls[0]["variables"]["representations"]
    distinct_books = {json.dumps(r, sort_keys=True) for r in representations}
    assert len(representations) == len(distinct_books) < len(reviews)
    assert all(review["book"]["title"] for review in reviews)


async def test_identical_in_flight_fetches_are_sent_once(
    testbed_router: str, testbed: dict[str, str]
) -> None:
    reset_testbed(testbed)
    query = "{ slow(ms: 400) }"
    bodies = await asyncio.gather(*(_post(testbed_router, query) for _ in range(8)))
    assert all(b == {"data": {"slow": 400}} for b in bodies)
    sent = [r for r in subgraph_requests(testbed["media"]) if "slow" in str(r["query"])]
    assert len(sent) < 8


async def test_mutations_run_in_order(testbed_router: str, testbed: dict[str, str]) -> None:
    reset_testbed(testbed)
    mutation = """mutation {
      a: addToCart(input: {isbn: "978-0000000001"}) { revision }
      b: addToCart(input: {isbn: "978-0000000003"}) { revision }
      c: clearCart { revision size }
    }"""
    body = await _post(testbed_router, mutation)
    assert "errors" not in body, body
    data = body["data"]
    assert data["a"]["revision"] < data["b"]["revision"] < data["c"]["revision"]
    assert data["c"]["size"] == 0


async def test_field_error_gives_partial_data(testbed_router: str) -> None:
    body = await _post(testbed_router, "{ ping boom }")
    assert body["data"] == {"ping": "pong", "boom": None}
    assert [e["path"] for e in body["errors"]] == [["boom"]]


async def test_null_in_non_null_position_bubbles_up(testbed_router: str) -> None:
    body = await _post(testbed_router, "{ ping boomNonNull }")
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["boomNonNull"]


async def test_entity_errors_are_repathed_to_client_paths(testbed_router: str) -> None:
    body = await _post(testbed_router, "{ everything: books { id warehouse } }")
    paths = [e["path"] for e in body["errors"]]
    assert paths and all(p[0] == "everything" and p[2] == "warehouse" for p in paths)
    assert body["data"] is None  # warehouse is String! inside [Book!]!


async def test_variables_skip_include_and_fragments(testbed_router: str) -> None:
    query = """
    query Q($with: Boolean!, $without: Boolean!) {
      search(term: "Notes") {
        __typename
        ... on Book { title reviewCount @include(if: $with) stock @skip(if: $without) }
        ...AuthorBits
      }
    }
    fragment AuthorBits on Author { name }
    """
    body = await _post(testbed_router, query, {"with": True, "without": True})
    assert "errors" not in body, body
    books = [r for r in body["data"]["search"] if r["__typename"] == "Book"]
    assert books and all(set(b) == {"__typename", "title", "reviewCount"} for b in books)


async def test_bad_variables_and_invalid_operations_are_request_errors(testbed_router: str) -> None:
    bad_variable = await _post(
        testbed_router, "query Q($id: ID!) { book(id: $id) { title } }", {"id": {"no": 1}}
    )
    assert bad_variable["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "data" not in bad_variable
    unknown_field = await _post(testbed_router, "{ books { nope } }")
    assert unknown_field["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    syntax = await _post(testbed_router, "{ books { ")
    assert syntax["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    inaccessible = await _post(testbed_router, "{ me { email } }")
    assert inaccessible["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_introspection_shows_the_api_schema_only(testbed_router: str) -> None:
    body = await _post(
        testbed_router,
        '{ __schema { types { name } directives { name } } __type(name: "User") { fields { name } } }',
    )
    type_names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert "Book" in type_names and "Query" in type_names
    assert not any(n.startswith(("join__", "link__")) for n in type_names)
    assert "InternalAudit" not in type_names  # @inaccessible type
    assert not {d["name"] for d in body["data"]["__schema"]["directives"]} & {
        "join__field",
        "link",
        "inaccessible",
    }
    user_fields = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert "email" not in user_fields and "name" in user_fields


async def test_typename_and_introspection_mix_with_subgraph_fields(testbed_router: str) -> None:
    body = await _post(testbed_router, '{ __typename ping t: __type(name: "Book") { name } }')
    assert body == {"data": {"__typename": "Query", "ping": "pong", "t": {"name": "Book"}}}


async def test_dev_mode_returns_the_plan_on_request(testbed_router: str) -> None:
    plain = await _post(testbed_router, "{ books(first: 1) { stock } }")
    assert "extensions" not in plain
    planned = await _post(
        testbed_router, "{ books(first: 1) { stock } }", **{"x-reelgraph-query-plan": "true"}
    )
    assert 'Fetch(service: "inventory")' in planned["extensions"]["queryPlan"]


async def test_get_serves_queries_but_not_mutations(testbed_router: str) -> None:
    async with httpx.AsyncClient() as client:
        query = await client.get(testbed_router, params={"query": "{ ping }"})
        mutation = await client.get(
            testbed_router, params={"query": "mutation { clearCart { size } }"}
        )
        bad_json = await client.post(
            testbed_router, content=b"{nope", headers={"content-type": "application/json"}
        )
        no_query = await client.post(testbed_router, json={"variables": {}})
    assert query.json() == {"data": {"ping": "pong"}}
    assert mutation.status_code == 405
    assert (
        bad_json.status_code == 400
        and bad_json.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    )
    assert no_query.status_code == 400


# --- failing subgraphs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("down", "SUBGRAPH_UNAVAILABLE"),
        ("slow", "SUBGRAPH_TIMEOUT"),
        ("malformed", "SUBGRAPH_BAD_RESPONSE"),
        ("http500", "SUBGRAPH_BAD_RESPONSE"),
    ],
)
async def test_a_failing_subgraph_gives_partial_data(mode: str, code: str, tmp_path: Path) -> None:
    with failing_subgraph("stable", "ok", tmp_path) as stable:
        if mode == "down":
            flaky = "http://127.0.0.1:9/graphql"  # discard port: nothing listens
            ctx = None
        else:
            ctx = failing_subgraph("flaky", mode, tmp_path)
            flaky = ctx.__enter__()
        try:
            with run_router(
                FAILING,
                {"stable": stable, "flaky": flaky},
                tmp_path,
                REELGRAPH_SUBGRAPH_FLAKY_TIMEOUT="1",
            ) as router:
                body = await _post(router, "{ stable flaky things { id name extra } }")
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
    assert body["data"]["stable"] == "stable"
    assert body["data"]["flaky"] is None
    assert [t["extra"] for t in body["data"]["things"]] == [None] * 5
    assert [t["name"] for t in body["data"]["things"]] == [f"thing {i}" for i in range(1, 6)]
    codes = {e.get("extensions", {}).get("code") for e in body["errors"]}
    assert code in codes, body["errors"]


async def test_errors_on_some_entities_keep_the_rest(tmp_path: Path) -> None:
    with (
        failing_subgraph("stable", "ok", tmp_path) as stable,
        failing_subgraph("flaky", "ok", tmp_path) as flaky,
        run_router(FAILING, {"stable": stable, "flaky": flaky}, tmp_path) as router,
    ):
        body = await _post(router, "{ things { id extra } }")
    extras = [t["extra"] for t in body["data"]["things"]]
    assert extras == ["extra 1", "extra 2", None, "extra 4", "extra 5"]
    assert [e["path"] for e in body["errors"]] == [["things", 2, "extra"]]
