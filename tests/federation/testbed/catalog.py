"""catalog: books, magazines, authors, shelves' contents.

Features here: multiple keys `Book @key(fields: "id") @key(fields: "isbn edition")`
(composite; inventory knows only the composite one, reviews only `id`); entity interface
`Media @key(fields: "id")` implemented by `Book` and `Magazine` (media adds fields to it
through `@interfaceObject`); nested key `Shelf @key(fields: "id owner { id }")`;
`User @key(fields: "id", resolvable: false)` stub; `@shareable` `Book.title`, `Dimensions`
and `Query.bookCount`; the field `Book.averageRating` that reviews `@override`s (the value
here is a deliberately stale -1.0, so a router that reads it is caught); union
`SearchResult`; enum, input object, custom scalars `Date`, `ISBN` and `JSON`; mutation
`setPrice`.
"""

from __future__ import annotations

import copy
import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.scalars import JSON

from . import fixtures
from .recording import RecordOperations
from .scalars import ISBN, SCALAR_CONFIG

_books: dict[str, dict[str, Any]] = {}


def reset() -> None:
    _books.clear()
    _books.update(copy.deepcopy(fixtures.BOOKS))


reset()


@strawberry.federation.enum
class Format(Enum):
    HARDCOVER = "HARDCOVER"
    PAPERBACK = "PAPERBACK"
    EBOOK = "EBOOK"


@strawberry.federation.enum
class WeightUnit(Enum):
    KILOGRAM = "KILOGRAM"
    GRAM = "GRAM"


@strawberry.federation.type(shareable=True)
class Dimensions:
    weight: float
    unit: WeightUnit
    height_cm: int


@strawberry.federation.type(keys=[Key(fields=FieldSet("id"), resolvable=False)])
class User:
    id: strawberry.ID


@strawberry.federation.interface(keys=["id"])
class Media:
    id: strawberry.ID
    title: str

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Media | None:
        return get_book(id) or get_magazine(id)


@strawberry.federation.type(keys=["id", "isbn edition"])
class Book(Media):
    id: strawberry.ID
    isbn: ISBN
    edition: int
    title: str = strawberry.federation.field(shareable=True)
    price_cents: int
    format: Format
    published: datetime.date
    tags: list[str]
    dimensions: Dimensions | None
    metadata: JSON | None
    average_rating: float | None = strawberry.field(
        default=-1.0, description="Moved to reviews with @override; -1.0 here is stale."
    )
    added_by: User | None

    @strawberry.field
    def author(self) -> Author:
        author = get_author(_books[self.id]["author"])
        assert author is not None
        return author

    @strawberry.field
    def related(self) -> list[Book]:
        return [b for b in map(get_book, _books[self.id]["related"]) if b is not None]

    @classmethod
    def resolve_reference(
        cls,
        id: strawberry.ID | None = None,
        isbn: str | None = None,
        edition: int | None = None,
    ) -> Book | None:
        if id is not None:
            return get_book(id)
        for book_id, row in _books.items():
            if row["isbn"] == isbn and row["edition"] == edition:
                return get_book(book_id)
        return None


@strawberry.federation.type(keys=["id"])
class Magazine(Media):
    id: strawberry.ID
    title: str
    issue: int

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Magazine | None:
        return get_magazine(id)


@strawberry.federation.type(keys=["id"])
class Author:
    id: strawberry.ID
    name: str
    user: User | None

    @strawberry.field
    def books(self) -> list[Book]:
        return [
            b
            for b in (get_book(book_id) for book_id in _books)
            if b is not None and _books[b.id]["author"] == self.id
        ]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Author | None:
        return get_author(id)


@strawberry.federation.type(keys=["id owner { id }"])
class Shelf:
    id: strawberry.ID
    owner: User

    @strawberry.field
    def books(self) -> list[Book]:
        for s in fixtures.SHELVES:
            if s["id"] == self.id and s["owner"] == self.owner.id:
                return [b for b in map(get_book, s["books"]) if b is not None]
        return []

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, owner: dict[str, Any]) -> Shelf:
        return Shelf(id=id, owner=User(id=strawberry.ID(owner["id"])))


def get_book(book_id: str) -> Book | None:
    row = _books.get(book_id)
    if row is None:
        return None
    dims = row["dimensions"]
    return Book(
        id=strawberry.ID(book_id),
        isbn=row["isbn"],
        edition=row["edition"],
        title=row["title"],
        price_cents=row["price_cents"],
        format=Format(row["format"]),
        published=datetime.date.fromisoformat(row["published"]),
        tags=list(row["tags"]),
        dimensions=None
        if dims is None
        else Dimensions(
            weight=dims["weight"], unit=WeightUnit(dims["unit"]), height_cm=dims["height_cm"]
        ),
        metadata=row["metadata"],
        added_by=None if row["added_by"] is None else User(id=strawberry.ID(row["added_by"])),
    )


def get_magazine(magazine_id: str) -> Magazine | None:
    row = fixtures.MAGAZINES.get(magazine_id)
    if row is None:
        return None
    return Magazine(id=strawberry.ID(magazine_id), title=row["title"], issue=row["issue"])


def get_author(author_id: str) -> Author | None:
    row = fixtures.AUTHORS.get(author_id)
    if row is None:
        return None
    user = None if row["user"] is None else User(id=strawberry.ID(row["user"]))
    return Author(id=strawberry.ID(author_id), name=row["name"], user=user)


@strawberry.input
class BookFilter:
    format: Format | None = None
    max_price_cents: int | None = None
    title_contains: str | None = None
    tags_any: list[str] | None = None


SearchResult = Annotated[Book | Author | Magazine, strawberry.union("SearchResult")]


def _matches(book_id: str, f: BookFilter | None) -> bool:
    if f is None:
        return True
    row = _books[book_id]
    if f.format is not None and row["format"] != f.format.value:
        return False
    if f.max_price_cents is not None and row["price_cents"] > f.max_price_cents:
        return False
    if f.title_contains is not None and f.title_contains.lower() not in row["title"].lower():
        return False
    return not (f.tags_any is not None and not set(f.tags_any) & set(row["tags"]))


@strawberry.type
class Query:
    @strawberry.field
    def books(self, filter: BookFilter | None = None, first: int | None = None) -> list[Book]:
        found = [
            b for b in map(get_book, sorted(_books)) if b is not None and _matches(b.id, filter)
        ]
        return found if first is None else found[: max(first, 0)]

    @strawberry.field
    def book(self, id: strawberry.ID) -> Book | None:
        return get_book(id)

    @strawberry.field
    def book_by_isbn(self, isbn: ISBN, edition: int = 1) -> Book | None:
        return Book.resolve_reference(isbn=isbn, edition=edition)

    @strawberry.field
    def authors(self) -> list[Author]:
        return [a for a in map(get_author, sorted(fixtures.AUTHORS)) if a is not None]

    @strawberry.field
    def search(self, term: str) -> list[SearchResult]:
        """Books, then authors, then magazines whose title or name contains `term`."""
        needle = term.lower()
        books = [b for b in map(get_book, sorted(_books)) if b and needle in b.title.lower()]
        authors = [
            a for a in map(get_author, sorted(fixtures.AUTHORS)) if a and needle in a.name.lower()
        ]
        magazines = [
            m
            for m in map(get_magazine, sorted(fixtures.MAGAZINES))
            if m and needle in m.title.lower()
        ]
        return [*books, *authors, *magazines]

    @strawberry.field
    def media(self) -> list[Media]:
        books: list[Media] = [b for b in map(get_book, sorted(_books)) if b is not None]
        magazines = [m for m in map(get_magazine, sorted(fixtures.MAGAZINES)) if m is not None]
        return books + magazines

    @strawberry.field
    def shelf(self, id: strawberry.ID, owner_id: strawberry.ID) -> Shelf | None:
        for s in fixtures.SHELVES:
            if s["id"] == id and s["owner"] == owner_id:
                return Shelf(id=id, owner=User(id=owner_id))
        return None

    @strawberry.federation.field(shareable=True)
    def book_count(self) -> int:
        return len(_books)


@strawberry.type
class Mutation:
    @strawberry.mutation
    def set_price(self, book_id: strawberry.ID, price_cents: int) -> Book:
        if book_id not in _books:
            raise ValueError(f"no book {book_id}")
        if price_cents < 0:
            raise ValueError("price must not be negative")
        _books[book_id]["price_cents"] = price_cents
        book = get_book(book_id)
        assert book is not None
        return book


schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    types=[Magazine],
    extensions=[RecordOperations],
    config=SCALAR_CONFIG,
    federation_version="2.9",
)
