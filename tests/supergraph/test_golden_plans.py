"""Golden query plans: representative operations planned against fixed supergraphs.

A plan is data; printing it gives a stable text to review. Set REELGRAPH_UPDATE_GOLDEN=1 to
rewrite the files after a deliberate planner change, then review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import parse, validate

from supergraph.model import build_api_schema, load_supergraph
from supergraph.plan import plan_operation, print_plan

HERE = Path(__file__).parent
SUPERGRAPHS = {
    "shop": HERE / "fixtures" / "shop.graphql",
    "testbed": HERE.parent / "federation" / "testbed" / "supergraph.graphql",
}

CASES: dict[str, tuple[str, str]] = {
    # name: (supergraph, operation)
    "shop-entity-join": ("shop", "query Top { topProducts { name reviews { body } } }"),
    "shop-requires": ("shop", "{ topProducts { upc shippingEstimate inStock } }"),
    "shop-provides-saves-a-fetch": ("shop", "{ topProducts { reviews { author { username } } } }"),
    "shop-provides-then-join": ("shop", "{ topProducts { reviews { author { username name } } } }"),
    "shop-nested-three-hops": (
        "shop",
        "query Me { me { name reviews { product { name shippingEstimate } } } }",
    ),
    "shop-mutation-then-join": (
        "shop",
        'mutation { addReview(body: "b", upc: "1") { id product { name } } }',
    ),
    "shop-aliases-and-key-clash": ("shop", "{ topProducts { upc: name reviews { body } } }"),
    "shop-include-variable": (
        "shop",
        "query Q($withReviews: Boolean!) { topProducts { name reviews @include(if: $withReviews) { body } } }",
    ),
    "shop-parallel-roots": ("shop", "{ me { name } topProducts { name } }"),
    "testbed-composite-key": ("testbed", "{ books(first: 2) { title stock } }"),
    "testbed-nested-requires": ("testbed", "{ books(first: 2) { shippingEstimate priceWithTax } }"),
    "testbed-nested-key": ("testbed", "{ me { shelves { name books { title } } } }"),
    "testbed-override": ("testbed", "{ books(first: 2) { averageRating } }"),
    "testbed-union-explode": (
        "testbed",
        '{ search(term: "a") { ... on Book { title reviewCount } ... on Author { name } } }',
    ),
    "testbed-interface-object-field": ("testbed", "{ media { id title downloads } }"),
    "testbed-interface-object-root": (
        "testbed",
        "{ featuredMedia { __typename title coverUrl ... on Magazine { issue } } }",
    ),
    "testbed-bare-field-on-object": ("testbed", "{ books(first: 1) { coverUrl(size: 10) } }"),
    "testbed-resolvable-false": ("testbed", "{ books(first: 1) { addedBy { name } } }"),
    "testbed-multiple-keys": ("testbed", "{ lowStock { title reviewCount } }"),
    "testbed-requires-inaccessible": ("testbed", "{ reviews { author { emailDomain } } }"),
    "testbed-mutation-dependents-before-next-field": (
        "testbed",
        'mutation { a: renameUser(id: "u1", name: "A") { name } b: addReview(input: {bookId: "b2", authorId: "u1", rating: 4}) { author { name } } c: renameUser(id: "u1", name: "C") { name } }',
    ),
    "testbed-mutations-in-order": (
        "testbed",
        'mutation { a: addToCart(input: {isbn: "978-0000000001"}) { size } b: setPrice(bookId: "b1", priceCents: 100) { title } c: addToCart(input: {isbn: "978-0000000002"}) { size } }',
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_plan(name: str) -> None:
    supergraph_name, operation = CASES[name]
    sdl = SUPERGRAPHS[supergraph_name].read_text()
    document = parse(operation)
    assert validate(build_api_schema(sdl), document) == []
    printed = print_plan(plan_operation(load_supergraph(sdl), document)) + "\n"
    golden = HERE / "golden" / f"{name}.plan"
    if os.environ.get("REELGRAPH_UPDATE_GOLDEN") == "1":
        golden.write_text(printed)
    assert golden.exists(), (
        f"no golden plan for {name}; run with REELGRAPH_UPDATE_GOLDEN=1 and review it"
    )
    assert printed == golden.read_text()
