"""inventory: stock and the shopping cart; knows books only by `@key(fields: "isbn edition")`.

Features here: composite key; `@requires` with a nested field set
(`shippingEstimate @requires(fields: "dimensions { weight unit }")`, where `dimensions` is
null for e-books) and a plain one (`priceWithTax @requires(fields: "priceCents")`);
`@external`; `@shareable` `Book.title`, `Dimensions`, `Query.bookCount`; a non-null field
that errors for one entity (`Book.warehouse` for b5, so inventory's `_entities` item for it
is null with an error); mutations whose order is observable (`addToCart`, `removeFromCart`,
`clearCart`: every one bumps `Cart.revision`); input object with defaults.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from . import fixtures
from .recording import RecordOperations
from .scalars import ISBN, SCALAR_CONFIG

_cart: dict[tuple[str, int], int] = {}
_revision: list[int] = [0]


def reset() -> None:
    _cart.clear()
    _revision[0] = 0


def _stock(isbn: str, edition: int) -> int:
    return int(fixtures.STOCK[(isbn, edition)]["stock"])


def _title(isbn: str, edition: int) -> str | None:
    for row in fixtures.BOOKS.values():
        if row["isbn"] == isbn and row["edition"] == edition:
            return str(row["title"])
    return None


@strawberry.federation.enum
class WeightUnit(Enum):
    KILOGRAM = "KILOGRAM"
    GRAM = "GRAM"


@strawberry.federation.type(shareable=True)
class Dimensions:
    weight: float
    unit: WeightUnit


@strawberry.federation.type(keys=["isbn edition"])
class Book:
    isbn: ISBN
    edition: int
    title: str = strawberry.federation.field(shareable=True)
    price_cents: int = strawberry.federation.field(external=True, default=-1)
    dimensions: Dimensions | None = strawberry.federation.field(external=True, default=None)

    @strawberry.field
    def stock(self) -> int:
        return _stock(self.isbn, self.edition)

    @strawberry.field
    def in_stock(self) -> bool:
        return _stock(self.isbn, self.edition) > 0

    @strawberry.field(description="Errors for b5 (978-0000000005 ed. 1): no warehouse record.")
    def warehouse(self) -> str:
        where = fixtures.STOCK[(self.isbn, self.edition)]["warehouse"]
        if where is None:
            raise ValueError(f"warehouse record missing for {self.isbn}/{self.edition}")
        return str(where)

    @strawberry.federation.field(requires=["dimensions { weight unit }"])
    def shipping_estimate(self) -> float:
        """Kilograms times 4 plus 2; e-books (no dimensions) ship for 0."""
        if self.dimensions is None:
            return 0.0
        kilograms = self.dimensions.weight
        if self.dimensions.unit is WeightUnit.GRAM:
            kilograms = kilograms / 1000
        return round(kilograms * 4 + 2, 2)

    @strawberry.federation.field(requires=["priceCents"])
    def price_with_tax(self) -> int:
        if self.price_cents < 0:
            raise ValueError("priceCents was not provided")
        return round(self.price_cents * 1.2)

    @classmethod
    def resolve_reference(
        cls,
        isbn: str,
        edition: int,
        priceCents: int | None = None,  # the representation uses GraphQL names
        dimensions: dict[str, Any] | None = None,
    ) -> Book | None:
        title = _title(isbn, edition)
        if title is None:
            return None
        return Book(
            isbn=ISBN(isbn),
            edition=edition,
            title=title,
            price_cents=-1 if priceCents is None else priceCents,
            dimensions=None
            if dimensions is None
            else Dimensions(weight=dimensions["weight"], unit=WeightUnit(dimensions["unit"])),
        )


def _book(isbn: str, edition: int) -> Book:
    book = Book.resolve_reference(isbn=isbn, edition=edition)
    if book is None:
        raise ValueError(f"no book {isbn} edition {edition}")
    return book


@strawberry.type
class CartItem:
    book: Book
    quantity: int


@strawberry.type
class Cart:
    @strawberry.field
    def items(self) -> list[CartItem]:
        return [CartItem(book=_book(*key), quantity=q) for key, q in _cart.items()]

    @strawberry.field(description="Total quantity of all items.")
    def size(self) -> int:
        return sum(_cart.values())

    @strawberry.field(description="How many cart mutations ran since the last reset.")
    def revision(self) -> int:
        return _revision[0]


@strawberry.input
class CartItemInput:
    isbn: ISBN
    edition: int = 1
    quantity: int = 1


@strawberry.type
class Query:
    @strawberry.field
    def cart(self) -> Cart:
        return Cart()

    @strawberry.field
    def low_stock(self, threshold: int = 3) -> list[Book]:
        return [
            _book(*key) for key, row in sorted(fixtures.STOCK.items()) if row["stock"] < threshold
        ]

    @strawberry.federation.field(shareable=True)
    def book_count(self) -> int:
        return len(fixtures.STOCK)


@strawberry.type
class Mutation:
    @strawberry.mutation
    def add_to_cart(self, input: CartItemInput) -> Cart:
        if input.quantity <= 0:
            raise ValueError("quantity must be positive")
        key = (str(input.isbn), input.edition)
        _book(*key)
        _revision[0] += 1
        _cart[key] = _cart.get(key, 0) + input.quantity
        return Cart()

    @strawberry.mutation
    def remove_from_cart(self, isbn: ISBN, edition: int = 1) -> Cart:
        _revision[0] += 1
        _cart.pop((str(isbn), edition), None)
        return Cart()

    @strawberry.mutation
    def clear_cart(self) -> Cart:
        _revision[0] += 1
        _cart.clear()
        return Cart()


schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[RecordOperations],
    config=SCALAR_CONFIG,
    federation_version="2.9",
)
