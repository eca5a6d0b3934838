"""The benchmark queries, against the test bed's supergraph
(`tests/federation/testbed/supergraph.graphql`, five subgraphs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchQuery:
    name: str
    description: str
    query: str


QUERIES: tuple[BenchQuery, ...] = (
    BenchQuery(
        name="a_root_entities",
        description="1 root fetch (catalog `books`) + 1 `_entities` fetch (reviews `Book`)",
        query="query BenchA { books(first: 4) { id title averageRating reviewCount } }",
    ),
    BenchQuery(
        name="b_deep",
        description=(
            "reviews root list -> accounts `User` + catalog `Book` (nested `author`) -> "
            "inventory `Book` (`@requires`); nested lists, 5 fetches, 2 levels of entities"
        ),
        query=(
            "query BenchB { latestReviews(first: 5) { id rating body"
            " author { id username name }"
            " book { id title priceCents author { name } stock inStock shippingEstimate"
            " reviews(first: 2) { rating author { name } } } } }"
        ),
    ),
)

BY_NAME = {q.name: q for q in QUERIES}
