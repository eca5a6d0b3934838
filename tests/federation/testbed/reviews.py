"""reviews: reviews and comments, attached to books (known by `@key(fields: "id")`) and users.

Features here: `@override(from: "catalog")` on `Book.averageRating`; `@provides(fields:
"username")` on `Review.author` (with `User.username @external`); `@requires` of a field
that is `@inaccessible` in its owner (`User.emailDomain @requires(fields: "email")`);
interface `Post` (Review, Comment) and union `FeedItem = Review | Book | User` whose members'
fields live in other subgraphs; arguments on entity fields; custom scalar `DateTime`;
an `_entities` item that raises (book b6) and a review pointing at a book catalog does not
know (r9 → b404); mutations `addReview`/`deleteReview`; subscription `reviewAdded`.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry

from . import fixtures
from .recording import RecordOperations

_reviews: dict[str, dict[str, Any]] = {}
_listed: list[str] = []


def reset() -> None:
    _reviews.clear()
    _reviews.update(copy.deepcopy(fixtures.REVIEWS))
    _listed[:] = fixtures.LISTED_REVIEWS


reset()


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID
    username: str = strawberry.federation.field(external=True, default="")
    email: str = strawberry.federation.field(external=True, default="")

    @strawberry.field
    def reviews(self) -> list[Review]:
        return [get_review(r) for r in _listed if _reviews[r]["author"] == self.id]

    @strawberry.federation.field(requires=["email"])
    def email_domain(self) -> str | None:
        """The part after the @ of the (inaccessible) email the router had to fetch."""
        if not self.email:
            raise ValueError("email was not provided")
        return self.email.rsplit("@", 1)[-1]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, email: str = "", **_: Any) -> User:
        return User(id=id, username=_username(id), email=email)


def _username(user_id: str) -> str:
    return str(fixtures.USERS[user_id]["username"]) if user_id in fixtures.USERS else ""


def _book_reviews(book_id: str) -> list[str]:
    return [r for r in _listed if _reviews[r]["book"] == book_id]


@strawberry.federation.type(keys=["id"])
class Book:
    id: strawberry.ID

    @strawberry.field
    def reviews(self, first: int | None = None, min_rating: int | None = None) -> list[Review]:
        found = [
            get_review(r)
            for r in _book_reviews(self.id)
            if min_rating is None or _reviews[r]["rating"] >= min_rating
        ]
        return found if first is None else found[: max(first, 0)]

    @strawberry.field
    def review_count(self) -> int:
        return len(_book_reviews(self.id))

    @strawberry.federation.field(override="catalog")
    def average_rating(self) -> float | None:
        ratings = [_reviews[r]["rating"] for r in _book_reviews(self.id)]
        return round(sum(ratings) / len(ratings), 2) if ratings else None

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Book:
        if id == "b6":
            raise ValueError("reviews for b6 are being moderated")
        return Book(id=id)


@strawberry.federation.interface
class Post:
    id: strawberry.ID
    body: str
    author: User


@strawberry.federation.type(keys=["id"])
class Review(Post):
    rating: int
    created_at: datetime.datetime
    author: User = strawberry.federation.field(provides=["username"])

    @strawberry.field
    def book(self) -> Book:
        return Book(id=strawberry.ID(_reviews[self.id]["book"]))

    @strawberry.field
    def comments(self) -> list[Comment]:
        return [
            get_comment(c)
            for c, row in sorted(fixtures.COMMENTS.items())
            if row["review"] == self.id
        ]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Review | None:
        return get_review(id) if id in _reviews else None


@strawberry.type
class Comment(Post):
    on_review: Review


def _user(user_id: str) -> User:
    return User(id=strawberry.ID(user_id), username=_username(user_id))


def get_review(review_id: str) -> Review:
    row = _reviews[review_id]
    return Review(
        id=strawberry.ID(review_id),
        body=row["body"],
        author=_user(row["author"]),
        rating=row["rating"],
        created_at=datetime.datetime.fromisoformat(row["created"]),
    )


def get_comment(comment_id: str) -> Comment:
    row = fixtures.COMMENTS[comment_id]
    return Comment(
        id=strawberry.ID(comment_id),
        body=row["body"],
        author=_user(row["author"]),
        on_review=get_review(row["review"]),
    )


FeedItem = Annotated[Review | Book | User, strawberry.union("FeedItem")]


@strawberry.input
class ReviewInput:
    book_id: strawberry.ID
    author_id: strawberry.ID
    rating: int
    body: str = ""


@strawberry.type
class Query:
    @strawberry.field
    def latest_reviews(self, first: int = 3) -> list[Review]:
        ordered = sorted(_listed, key=lambda r: _reviews[r]["created"], reverse=True)
        return [get_review(r) for r in ordered[: max(first, 0)]]

    @strawberry.field
    def reviews(self, min_rating: int | None = None) -> list[Review]:
        return [
            get_review(r)
            for r in _listed
            if min_rating is None or _reviews[r]["rating"] >= min_rating
        ]

    @strawberry.field
    def review(self, id: strawberry.ID) -> Review | None:
        return get_review(id) if id in _reviews else None

    @strawberry.field
    def posts(self) -> list[Post]:
        return [get_review("r1"), get_comment("c1"), get_review("r4"), get_comment("c2")]

    @strawberry.field
    def feed(self) -> list[FeedItem]:
        return [
            get_review("r1"),
            Book(id=strawberry.ID("b3")),
            _user("u3"),
            get_review("r4"),
            Book(id=strawberry.ID("b3")),
            _user("u1"),
        ]

    @strawberry.field
    def top_rated_books(self, first: int = 3) -> list[Book]:
        books = sorted({_reviews[r]["book"] for r in _listed})
        rated = sorted(
            books,
            key=lambda b: (-(Book(id=strawberry.ID(b)).average_rating() or 0.0), b),
        )
        return [Book(id=strawberry.ID(b)) for b in rated[: max(first, 0)]]


@strawberry.type
class Mutation:
    @strawberry.mutation
    def add_review(self, input: ReviewInput) -> Review:
        if not 1 <= input.rating <= 5:
            raise ValueError("rating must be between 1 and 5")
        review_id = f"r{len(_reviews) + 1}"
        _reviews[review_id] = {
            "book": input.book_id,
            "author": input.author_id,
            "rating": input.rating,
            "body": input.body,
            "created": f"2025-01-01T00:00:{len(_reviews):02d}+00:00",
        }
        _listed.append(review_id)
        return get_review(review_id)

    @strawberry.mutation
    def delete_review(self, id: strawberry.ID) -> bool:
        if id not in _listed:
            return False
        _listed.remove(id)
        return True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def review_added(self, count: int = 2) -> AsyncGenerator[Review, None]:
        """Replays the first `count` listed reviews, 10 ms apart."""
        for review_id in _listed[: max(count, 0)]:
            await asyncio.sleep(0.01)
            yield get_review(review_id)


schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[Comment],
    extensions=[RecordOperations],
    federation_version="2.9",
)
