"""Deterministic fixture data for the test-bed subgraphs.

Each subgraph reads only the part it owns; values that two subgraphs both serve (a
`@shareable` field, a field one subgraph `@provides`) are taken from the same row here, so
every subgraph agrees, as the federation contract requires.

Deliberate trouble makers (see docs in `tests/federation/README.md`):
- book `b5`: inventory's `Book.warehouse` (non-null) raises for it;
- book `b6`: reviews' `_entities` raises for it (the whole representation fails);
- review `r9`: points at book `b404`, which catalog does not know (entity resolves to null);
- user `u4`: has the `@inaccessible` role value `ADMIN`.
"""

from __future__ import annotations

from typing import Any

USERS: dict[str, dict[str, Any]] = {
    "u1": {
        "username": "ada",
        "name": "Ada Lovelace",
        "email": "ada@analytical.example",
        "role": "AUTHOR",
        "joined": "2020-01-15",
    },
    "u2": {
        "username": "grace",
        "name": "Grace Hopper",
        "email": "grace@cobol.example",
        "role": "READER",
        "joined": "2021-06-01",
    },
    "u3": {
        "username": "alan",
        "name": "Alan Turing",
        "email": "alan@bletchley.example",
        "role": "READER",
        "joined": "2022-11-30",
    },
    "u4": {
        "username": "root",
        "name": "Root Admin",
        "email": "root@bookshop.example",
        "role": "ADMIN",
        "joined": "2019-03-03",
    },
}

# Shelves are keyed by (id, owner id): two users both have a shelf called "favorites".
SHELVES: list[dict[str, Any]] = [
    {"id": "favorites", "owner": "u1", "name": "Ada's favourites", "books": ["b1", "b3"]},
    {"id": "to-read", "owner": "u1", "name": "Ada's reading list", "books": ["b2", "b6"]},
    {"id": "favorites", "owner": "u2", "name": "Grace's favourites", "books": ["b1", "b4", "b1"]},
]

AUTHORS: dict[str, dict[str, Any]] = {
    "a1": {"name": "Ada Lovelace", "user": "u1"},
    "a2": {"name": "Charles Babbage", "user": None},
    "a3": {"name": "Mary Shelley", "user": None},
}

# Books: `id` is catalog's key; `isbn edition` (composite) is the key inventory knows.
BOOKS: dict[str, dict[str, Any]] = {
    "b1": {
        "isbn": "978-0000000001",
        "edition": 1,
        "title": "Notes on the Analytical Engine",
        "author": "a1",
        "price_cents": 2500,
        "format": "HARDCOVER",
        "published": "1843-09-01",
        "tags": ["computing", "classic"],
        "dimensions": {"weight": 0.8, "unit": "KILOGRAM", "height_cm": 24},
        "metadata": {"pages": 66, "translator": "Ada Lovelace", "languages": ["en", "fr"]},
        "added_by": "u1",
        "related": ["b2", "b3", "b2"],
    },
    "b2": {
        "isbn": "978-0000000001",
        "edition": 2,
        "title": "Notes on the Analytical Engine (2nd ed.)",
        "author": "a1",
        "price_cents": 1800,
        "format": "PAPERBACK",
        "published": "1953-01-01",
        "tags": ["computing"],
        "dimensions": {"weight": 500.0, "unit": "GRAM", "height_cm": 20},
        "metadata": {"pages": 80},
        "added_by": "u2",
        "related": ["b1"],
    },
    "b3": {
        "isbn": "978-0000000003",
        "edition": 1,
        "title": "Passages from the Life of a Philosopher",
        "author": "a2",
        "price_cents": 3200,
        "format": "HARDCOVER",
        "published": "1864-01-01",
        "tags": ["memoir", "classic"],
        "dimensions": {"weight": 1.2, "unit": "KILOGRAM", "height_cm": 25},
        "metadata": None,
        "added_by": None,
        "related": [],
    },
    "b4": {
        "isbn": "978-0000000004",
        "edition": 1,
        "title": "Frankenstein",
        "author": "a3",
        "price_cents": 999,
        "format": "EBOOK",
        "published": "1818-01-01",
        "tags": ["fiction", "classic", "gothic"],
        "dimensions": None,
        "metadata": {"pages": 280},
        "added_by": "u3",
        "related": ["b5", "b6", "b5"],
    },
    "b5": {
        "isbn": "978-0000000005",
        "edition": 1,
        "title": "The Last Man",
        "author": "a3",
        "price_cents": 1500,
        "format": "PAPERBACK",
        "published": "1826-01-01",
        "tags": ["fiction"],
        "dimensions": {"weight": 350.0, "unit": "GRAM", "height_cm": 18},
        "metadata": {},
        "added_by": None,
        "related": ["b4"],
    },
    "b6": {
        "isbn": "978-0000000006",
        "edition": 1,
        "title": "Mathilda",
        "author": "a3",
        "price_cents": 1200,
        "format": "EBOOK",
        "published": "1959-01-01",
        "tags": [],
        "dimensions": None,
        "metadata": None,
        "added_by": None,
        "related": [],
    },
}

MAGAZINES: dict[str, dict[str, Any]] = {
    "m1": {"title": "Byte", "issue": 42},
    "m2": {"title": "Wired", "issue": 7},
}

# inventory: stock per (isbn, edition); b5's warehouse lookup fails on purpose.
STOCK: dict[tuple[str, int], dict[str, Any]] = {
    ("978-0000000001", 1): {"stock": 3, "warehouse": "Leeds"},
    ("978-0000000001", 2): {"stock": 0, "warehouse": "Leeds"},
    ("978-0000000003", 1): {"stock": 12, "warehouse": "Bristol"},
    ("978-0000000004", 1): {"stock": 1000, "warehouse": "cloud"},
    ("978-0000000005", 1): {"stock": 2, "warehouse": None},
    ("978-0000000006", 1): {"stock": 7, "warehouse": "cloud"},
}

REVIEWS: dict[str, dict[str, Any]] = {
    "r1": {
        "book": "b1",
        "author": "u2",
        "rating": 5,
        "body": "A visionary text.",
        "created": "2024-01-01T10:00:00+00:00",
    },
    "r2": {
        "book": "b1",
        "author": "u3",
        "rating": 4,
        "body": "Dense but rewarding.",
        "created": "2024-01-02T11:30:00+00:00",
    },
    "r3": {
        "book": "b3",
        "author": "u2",
        "rating": 3,
        "body": "Rambling in places.",
        "created": "2024-02-10T09:15:00+00:00",
    },
    "r4": {
        "book": "b4",
        "author": "u1",
        "rating": 5,
        "body": "Terrifying and tender.",
        "created": "2024-03-05T20:00:00+00:00",
    },
    "r5": {
        "book": "b4",
        "author": "u2",
        "rating": 4,
        "body": "Still relevant.",
        "created": "2024-03-06T08:45:00+00:00",
    },
    "r6": {
        "book": "b2",
        "author": "u3",
        "rating": 2,
        "body": "Prefer the first edition.",
        "created": "2024-04-01T12:00:00+00:00",
    },
    "r7": {
        "book": "b5",
        "author": "u1",
        "rating": 4,
        "body": "Bleak.",
        "created": "2024-04-02T12:00:00+00:00",
    },
    "r8": {
        "book": "b1",
        "author": "u1",
        "rating": 5,
        "body": "I may be biased.",
        "created": "2024-05-01T07:00:00+00:00",
    },
    # Not listed by `latestReviews`; only reachable through `review(id: "r9")`.
    "r9": {
        "book": "b404",
        "author": "u3",
        "rating": 1,
        "body": "Which book was this again?",
        "created": "2024-06-01T07:00:00+00:00",
    },
}
LISTED_REVIEWS: tuple[str, ...] = ("r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8")

COMMENTS: dict[str, dict[str, Any]] = {
    "c1": {"review": "r1", "author": "u3", "body": "Agreed!"},
    "c2": {"review": "r4", "author": "u1", "body": "Thank you, Grace."},
}

# media: the @interfaceObject view of every Media (books and magazines).
MEDIA_IDS: tuple[str, ...] = ("b1", "b2", "b3", "b4", "b5", "b6", "m1", "m2")
FEATURED_MEDIA: tuple[str, ...] = ("m1", "b1", "b4", "m1", "m2")
DOWNLOADS: dict[str, int] = {
    "b1": 120,
    "b2": 45,
    "b3": 8,
    "b4": 3000,
    "b5": 17,
    "b6": 5,
    "m1": 640,
    "m2": 900,
}
