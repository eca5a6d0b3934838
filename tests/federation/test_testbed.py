"""The test-bed subgraphs on their own (no router): fixture answers, `_entities`, endpoints."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .hive import reset_testbed, subgraph_requests
from .testbed.app import load


def run(name: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    result = load(name).schema.execute_sync(query, variable_values=variables)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.message for e in result.errors]
    return body


ENTITIES = "query ($r: [_Any!]!) { _entities(representations: $r) { __typename %s } }"


def entities(name: str, selection: str, representations: list[dict[str, Any]]) -> dict[str, Any]:
    return run(name, ENTITIES % selection, {"r": representations})


@pytest.fixture(autouse=True)
def fresh_state() -> None:
    for name in ("accounts", "catalog", "inventory", "reviews", "media"):
        load(name).reset()


def test_catalog_resolves_books_by_either_key() -> None:
    got = entities(
        "catalog",
        "... on Book { id title }",
        [
            {"__typename": "Book", "id": "b2"},
            {"__typename": "Book", "isbn": "978-0000000001", "edition": 1},
            {"__typename": "Book", "isbn": "978-0000000001", "edition": 9},
        ],
    )
    assert got["data"]["_entities"] == [
        {"__typename": "Book", "id": "b2", "title": "Notes on the Analytical Engine (2nd ed.)"},
        {"__typename": "Book", "id": "b1", "title": "Notes on the Analytical Engine"},
        None,
    ]


def test_catalog_resolves_the_entity_interface_to_concrete_types() -> None:
    got = entities(
        "catalog",
        "... on Book { id format } ... on Magazine { id issue }",
        [{"__typename": "Media", "id": "m2"}, {"__typename": "Media", "id": "b4"}],
    )
    assert got["data"]["_entities"] == [
        {"__typename": "Magazine", "id": "m2", "issue": 7},
        {"__typename": "Book", "id": "b4", "format": "EBOOK"},
    ]


def test_nested_key_resolves_in_both_subgraphs() -> None:
    def rep() -> dict[str, Any]:  # a new one each time: _entities pops __typename
        return {"__typename": "Shelf", "id": "favorites", "owner": {"id": "u2"}}

    accounts = entities("accounts", "... on Shelf { name }", [rep()])
    catalog = entities("catalog", "... on Shelf { books { id } }", [rep()])
    assert accounts["data"]["_entities"] == [{"__typename": "Shelf", "name": "Grace's favourites"}]
    assert catalog["data"]["_entities"] == [
        {"__typename": "Shelf", "books": [{"id": "b1"}, {"id": "b4"}, {"id": "b1"}]}
    ]


def test_inventory_requires_receive_the_required_fields() -> None:
    got = entities(
        "inventory",
        "... on Book { shippingEstimate priceWithTax }",
        [
            {
                "__typename": "Book",
                "isbn": "978-0000000003",
                "edition": 1,
                "priceCents": 3200,
                "dimensions": {"weight": 1.2, "unit": "KILOGRAM"},
            },
            {
                "__typename": "Book",
                "isbn": "978-0000000004",
                "edition": 1,
                "priceCents": 999,
                "dimensions": None,
            },
        ],
    )
    assert got["data"]["_entities"] == [
        {"__typename": "Book", "shippingEstimate": 6.8, "priceWithTax": 3840},
        {"__typename": "Book", "shippingEstimate": 0.0, "priceWithTax": 1199},
    ]


def test_inventory_errors_when_a_required_field_is_missing() -> None:
    got = entities(
        "inventory",
        "... on Book { priceWithTax }",
        [{"__typename": "Book", "isbn": "978-0000000003", "edition": 1}],
    )
    assert got["data"]["_entities"] == [None]
    assert got["errors"] == ["priceCents was not provided"]


def test_planted_failures() -> None:
    warehouse = entities(
        "inventory",
        "... on Book { stock warehouse }",
        [
            {"__typename": "Book", "isbn": "978-0000000004", "edition": 1},
            {"__typename": "Book", "isbn": "978-0000000005", "edition": 1},
        ],
    )
    assert warehouse["data"]["_entities"] == [
        {"__typename": "Book", "stock": 1000, "warehouse": "cloud"},
        None,
    ]
    assert warehouse["errors"] == ["warehouse record missing for 978-0000000005/1"]
    moderated = entities(
        "reviews",
        "... on Book { reviewCount }",
        [{"__typename": "Book", "id": "b1"}, {"__typename": "Book", "id": "b6"}],
    )
    assert moderated["data"]["_entities"] == [{"__typename": "Book", "reviewCount": 3}, None]
    assert moderated["errors"] == ["reviews for b6 are being moderated"]
    assert run("media", "{ boom ping }") == {
        "data": {"boom": None, "ping": "pong"},
        "errors": ["boom: this field always fails"],
    }


def test_reviews_user_requires_the_inaccessible_email() -> None:
    got = entities(
        "reviews",
        "... on User { emailDomain }",
        [{"__typename": "User", "id": "u2", "email": "grace@cobol.example"}],
    )
    assert got["data"]["_entities"] == [{"__typename": "User", "emailDomain": "cobol.example"}]


def test_override_source_is_stale_on_purpose() -> None:
    catalog = run("catalog", '{ book(id: "b1") { averageRating } }')
    reviews = entities(
        "reviews", "... on Book { averageRating }", [{"__typename": "Book", "id": "b1"}]
    )
    assert catalog["data"]["book"]["averageRating"] == -1.0
    assert reviews["data"]["_entities"] == [{"__typename": "Book", "averageRating": 4.67}]


def test_media_interface_object_knows_only_media() -> None:
    got = entities(
        "media",
        "... on Media { id downloads coverUrl(size: 8) }",
        [{"__typename": "Media", "id": "m1"}, {"__typename": "Media", "id": "x"}],
    )
    assert got["data"]["_entities"] == [
        {
            "__typename": "Media",
            "id": "m1",
            "downloads": 640,
            "coverUrl": "https://covers.testbed.invalid/m1/8.png",
        },
        None,
    ]


def test_shareable_values_agree_between_subgraphs() -> None:
    catalog = run("catalog", "{ books { isbn edition title } bookCount }")
    inventory = run("inventory", "{ lowStock(threshold: 10000) { isbn edition title } bookCount }")
    assert sorted(map(str, catalog["data"]["books"])) == sorted(
        map(str, inventory["data"]["lowStock"])
    )
    assert catalog["data"]["bookCount"] == inventory["data"]["bookCount"] == 6


def test_mutations_change_state_until_reset() -> None:
    add = 'mutation { addToCart(input: {isbn: "978-0000000003", quantity: 2}) { size revision } }'
    assert run("inventory", add)["data"] == {"addToCart": {"size": 2, "revision": 1}}
    assert run("inventory", add)["data"] == {"addToCart": {"size": 4, "revision": 2}}
    load("inventory").reset()
    assert run("inventory", "{ cart { size revision } }")["data"] == {
        "cart": {"size": 0, "revision": 0}
    }


def test_http_endpoints(testbed: dict[str, str]) -> None:
    url = testbed["inventory"]
    add = 'mutation { addToCart(input: {isbn: "978-0000000003"}) { size } }'
    with httpx.Client(timeout=10) as client:
        reset_testbed(testbed)
        assert client.post(url, json={"query": add}).json() == {"data": {"addToCart": {"size": 1}}}
        # A router tested just before may still have late fetches in flight: look for ours only.
        logged = [r for r in subgraph_requests(url) if "addToCart" in str(r["query"])]
        assert logged == [
            {"query": add, "variables": None, "operationName": None, "transport": "http"}
        ]
        reset_testbed(testbed)
        assert not [r for r in subgraph_requests(url) if "addToCart" in str(r["query"])]
        answer = client.post(url, json={"query": "{ cart { size } }"}).json()
        assert answer == {"data": {"cart": {"size": 0}}}
        started = time.monotonic()
        delayed = client.post(
            url, json={"query": "{ bookCount }"}, headers={"x-testbed-delay-ms": "300"}
        ).json()
        assert delayed == {"data": {"bookCount": 6}}
        assert time.monotonic() - started >= 0.3
        sdl = client.post(url, json={"query": "{ _service { sdl } }"}).json()
        assert '@key(fields: "isbn edition")' in sdl["data"]["_service"]["sdl"]
