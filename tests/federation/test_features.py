"""Hand-written expected results, at least one per router feature, derived from the fixture
data (testbed/fixtures.py) rather than recorded from any router.

They run against every gateway in `GATEWAYS`; each name `x` needs a session fixture
`x_gateway` returning a `conftest.Gateway` (the router's own tests can add theirs).
`KNOWN_FAILURES` lists the cases a gateway is known to get wrong; those are strict xfails.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from .conftest import Gateway
from .hive import subgraph_requests

GATEWAYS = ["hive"]

# gateway -> case names it answers wrongly (see the hive-differs operations in the corpus)
KNOWN_FAILURES: dict[str, set[str]] = {
    "hive": {
        "alias-key-field",
        "interface-object-on-concrete-type",
        "requires-alias-collision",
        "mutation-requires-after-second-mutation",
    }
}


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    data: Any = None
    variables: dict[str, Any] | None = None
    errors: bool = False
    no_data: bool = False  # the response must have no `data` entry (request errors)
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "key-single",
        '{ book(id: "b1") { reviews { rating } } }',
        {"book": {"reviews": [{"rating": 5}, {"rating": 4}, {"rating": 5}]}},
    ),
    Case(
        "key-composite",
        '{ book(id: "b2") { isbn edition stock inStock } }',
        {"book": {"isbn": "978-0000000001", "edition": 2, "stock": 0, "inStock": False}},
    ),
    Case(
        "key-multiple-chain",
        "{ lowStock(threshold: 1) { id title reviewCount } }",
        {
            "lowStock": [
                {"id": "b2", "title": "Notes on the Analytical Engine (2nd ed.)", "reviewCount": 1}
            ]
        },
    ),
    Case(
        "key-nested",
        '{ a: shelf(id: "favorites", ownerId: "u1") { name } b: shelf(id: "favorites", ownerId: "u2") { name } }',
        {"a": {"name": "Ada's favourites"}, "b": {"name": "Grace's favourites"}},
    ),
    Case(
        "key-resolvable-false",
        '{ book(id: "b4") { addedBy { id name } } }',
        {"book": {"addedBy": {"id": "u3", "name": "Alan Turing"}}},
    ),
    Case(
        "requires-nested",
        '{ a: book(id: "b3") { shippingEstimate } b: book(id: "b2") { shippingEstimate } c: book(id: "b6") { shippingEstimate } }',
        {
            "a": {"shippingEstimate": 6.8},
            "b": {"shippingEstimate": 4.0},
            "c": {"shippingEstimate": 0.0},
        },
    ),
    Case(
        "requires-simple",
        '{ book(id: "b4") { priceWithTax } }',
        {"book": {"priceWithTax": 1199}},
    ),
    Case(
        "requires-inaccessible",
        '{ user(id: "u2") { emailDomain } }',
        {"user": {"emailDomain": "cobol.example"}},
    ),
    Case(
        "requires-alias-collision",
        '{ book(id: "b1") { priceCents: shippingEstimate cost: priceWithTax dimensions: title } }',
        {"book": {"priceCents": 5.2, "cost": 3000, "dimensions": "Notes on the Analytical Engine"}},
    ),
    Case(
        "provides",
        '{ review(id: "r3") { author { username name } } }',
        {"review": {"author": {"username": "grace", "name": "Grace Hopper"}}},
    ),
    Case(
        "shareable",
        "{ bookCount lowStock { title } }",
        {
            "bookCount": 6,
            "lowStock": [
                {"title": "Notes on the Analytical Engine (2nd ed.)"},
                {"title": "The Last Man"},
            ],
        },
    ),
    Case(
        "override",
        '{ book(id: "b3") { averageRating } }',
        {"book": {"averageRating": 3.0}},
    ),
    Case("inaccessible-field", "{ me { email } }", errors=True, no_data=True),
    Case("inaccessible-enum-value", "{ users(role: ADMIN) { id } }", errors=True, no_data=True),
    Case(
        "inaccessible-introspection",
        '{ __type(name: "Role") { enumValues { name } } hidden: __type(name: "InternalAudit") { name } }',
        {"__type": {"enumValues": [{"name": "READER"}, {"name": "AUTHOR"}]}, "hidden": None},
    ),
    Case(
        "entity-interface",
        "{ media { __typename id } }",
        {
            "media": [{"__typename": "Book", "id": f"b{i}"} for i in range(1, 7)]
            + [{"__typename": "Magazine", "id": "m1"}, {"__typename": "Magazine", "id": "m2"}]
        },
    ),
    Case(
        "interface-object-typename",
        "{ featuredMedia { __typename ... on Magazine { issue } } }",
        {
            "featuredMedia": [
                {"__typename": "Magazine", "issue": 42},
                {"__typename": "Book"},
                {"__typename": "Book"},
                {"__typename": "Magazine", "issue": 42},
                {"__typename": "Magazine", "issue": 7},
            ]
        },
    ),
    Case(
        "interface-object-on-concrete-type",
        '{ book(id: "b4") { title downloads coverUrl(size: 10) } }',
        {
            "book": {
                "title": "Frankenstein",
                "downloads": 3000,
                "coverUrl": "https://covers.testbed.invalid/b4/10.png",
            }
        },
    ),
    Case(
        "interface-value-type",
        "{ posts { __typename ... on Comment { onReview { rating } } } }",
        {
            "posts": [
                {"__typename": "Review"},
                {"__typename": "Comment", "onReview": {"rating": 5}},
                {"__typename": "Review"},
                {"__typename": "Comment", "onReview": {"rating": 5}},
            ]
        },
    ),
    Case(
        "union-named-fragments",
        "{ feed { ...U ... on Book { stock } } } fragment U on User { username }",
        {
            "feed": [
                {},
                {"stock": 12},
                {"username": "alan"},
                {},
                {"stock": 12},
                {"username": "ada"},
            ]
        },
    ),
    Case(
        "alias-key-field",
        '{ book(id: "b3") { id: title title: id stock } }',
        {"book": {"id": "Passages from the Life of a Philosopher", "title": "b3", "stock": 12}},
    ),
    Case(
        "skip-include-variables",
        'query ($a: Boolean!, $b: Boolean = true) { book(id: "b1") { title @include(if: $a) stock @skip(if: $b) reviewCount @include(if: $b) } }',
        {"book": {"reviewCount": 3}},
        variables={"a": False},
    ),
    Case(
        "variable-defaults-input-object",
        "query ($f: BookFilter = {maxPriceCents: 1000}) { books(filter: $f) { id } }",
        {"books": [{"id": "b4"}]},
    ),
    Case(
        "enum-and-custom-scalars",
        'query ($fmt: Format) { books(filter: {format: $fmt}) { id published metadata } bookByIsbn(isbn: "978-0000000005") { id } }',
        {
            "books": [
                {"id": "b2", "published": "1953-01-01", "metadata": {"pages": 80}},
                {"id": "b5", "published": "1826-01-01", "metadata": {}},
            ],
            "bookByIsbn": {"id": "b5"},
        },
        variables={"fmt": "PAPERBACK"},
    ),
    Case(
        "repeated-entities",
        '{ book(id: "b1") { related { id stock } } }',
        {
            "book": {
                "related": [
                    {"id": "b2", "stock": 0},
                    {"id": "b3", "stock": 12},
                    {"id": "b2", "stock": 0},
                ]
            }
        },
    ),
    Case(
        "null-propagation-non-null-entity-field",
        '{ book(id: "b6") { title reviewCount } bookCount }',
        {"book": None, "bookCount": 6},
        errors=True,
    ),
    Case(
        "partial-entities-error",
        '{ book(id: "b6") { title averageRating } }',
        {"book": {"title": "Mathilda", "averageRating": None}},
        errors=True,
    ),
    Case(
        "null-propagation-to-root",
        "{ lowStock { warehouse } }",
        None,
        errors=True,
    ),
    Case(
        "entity-not-found",
        '{ a: review(id: "r9") { book { id } } b: review(id: "r9") { book { title } } }',
        {"a": {"book": {"id": "b404"}}, "b": None},
        errors=True,
    ),
    Case("error-field", "{ boom ping }", {"boom": None, "ping": "pong"}, errors=True),
    Case(
        "mutation-order",
        'mutation { a: addToCart(input: {isbn: "978-0000000004"}) { size revision } b: clearCart { size revision } c: addToCart(input: {isbn: "978-0000000003", quantity: 3}) { size revision items { book { title } } } }',
        {
            "a": {"size": 1, "revision": 1},
            "b": {"size": 0, "revision": 2},
            "c": {
                "size": 3,
                "revision": 3,
                "items": [{"book": {"title": "Passages from the Life of a Philosopher"}}],
            },
        },
    ),
    Case(
        "mutation-order-across-subgraphs",
        'mutation { renameUser(id: "u3", name: "A. M. Turing") { name } addReview(input: {bookId: "b3", authorId: "u3", rating: 5}) { author { name } book { averageRating } } }',
        {
            "renameUser": {"name": "A. M. Turing"},
            "addReview": {"author": {"name": "A. M. Turing"}, "book": {"averageRating": 4.0}},
        },
    ),
    Case(
        "mutation-requires-after-second-mutation",
        'mutation { a: setPrice(bookId: "b2", priceCents: 100) { priceWithTax } b: setPrice(bookId: "b2", priceCents: 200) { priceWithTax } }',
        {"a": {"priceWithTax": 120}, "b": {"priceWithTax": 240}},
    ),
    Case("invalid-syntax", "{ books { id", errors=True, no_data=True),
    Case(
        "invalid-variable", "query ($id: ID!) { book(id: $id) { id } }", errors=True, no_data=True
    ),
]


@pytest.fixture(scope="session", params=GATEWAYS)
def gateway(request: pytest.FixtureRequest) -> tuple[str, Gateway]:
    return request.param, request.getfixturevalue(f"{request.param}_gateway")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_feature(case: Case, gateway: tuple[str, Gateway], http: httpx.Client) -> None:
    name, gw = gateway
    gw.reset()
    body: dict[str, Any] = {"query": case.query}
    if case.variables is not None:
        body["variables"] = case.variables
    answer = http.post(gw.url, json=body, headers={"accept": "application/json"}).json()
    problems = []
    if case.no_data:
        if "data" in answer:
            problems.append(f"expected no data entry, got {answer['data']!r}")
    elif answer.get("data") != case.data or "data" not in answer:
        problems.append(f"data {json.dumps(answer.get('data'))} != {json.dumps(case.data)}")
    if bool(answer.get("errors")) != case.errors:
        problems.append(
            f"errors: {answer.get('errors')!r}, expected {'some' if case.errors else 'none'}"
        )
    known = case.name in KNOWN_FAILURES.get(name, set())
    if known:
        assert problems, f"{name} now answers {case.name} correctly: drop it from KNOWN_FAILURES"
        pytest.xfail(f"known {name} bug: {problems[0]}")
    assert not problems, "\n".join(problems)


def test_subscription_over_websocket(gateway: tuple[str, Gateway]) -> None:
    """graphql-transport-ws from client to gateway; events joined with other subgraphs."""
    _, gw = gateway
    gw.reset()
    query = "subscription { reviewAdded(count: 2) { id author { name } book { title stock } } }"
    events = []
    with connect(
        gw.url.replace("http://", "ws://", 1), subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] != "next":
                assert message["type"] == "complete", message
                break
            events.append(message["payload"])
    book = {"title": "Notes on the Analytical Engine", "stock": 3}
    assert events == [
        {"data": {"reviewAdded": {"id": "r1", "author": {"name": "Grace Hopper"}, "book": book}}},
        {"data": {"reviewAdded": {"id": "r2", "author": {"name": "Alan Turing"}, "book": book}}},
    ]
    transports = {r["transport"] for r in subgraph_requests(gw.subgraphs["reviews"])}
    assert "ws" in transports, "the gateway should subscribe to the subgraph over WebSocket"


def test_slow_subgraph_field(gateway: tuple[str, Gateway], http: httpx.Client) -> None:
    _, gw = gateway
    started = time.monotonic()
    answer = http.post(gw.url, json={"query": "{ slow(ms: 250) bookCount }"}).json()
    assert answer == {"data": {"slow": 250, "bookCount": 6}}
    assert time.monotonic() - started >= 0.25
