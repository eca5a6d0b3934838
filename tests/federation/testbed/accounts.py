"""accounts: users (entity `User @key(id)`), their shelves (nested key), roles.

Features here: single key; nested key `Shelf @key(fields: "id owner { id }")`; `@shareable`
`User.username`; `@inaccessible` field (`User.email`, still usable by `@requires` elsewhere),
type (`InternalAudit`) and enum value (`Role.ADMIN`); custom scalar `Date`; mutation
`renameUser`.
"""

from __future__ import annotations

import copy
import datetime
from enum import Enum
from typing import Any

import strawberry

from . import fixtures
from .recording import RecordOperations

_users: dict[str, dict[str, Any]] = {}


def reset() -> None:
    _users.clear()
    _users.update(copy.deepcopy(fixtures.USERS))


reset()


@strawberry.federation.enum
class Role(Enum):
    READER = "READER"
    AUTHOR = "AUTHOR"
    ADMIN = strawberry.federation.enum_value("ADMIN", inaccessible=True)


@strawberry.federation.type(inaccessible=True)
class InternalAudit:
    flagged: bool
    note: str


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID
    username: str = strawberry.federation.field(shareable=True)
    name: str
    email: str = strawberry.federation.field(inaccessible=True)
    role: Role
    joined: datetime.date

    @strawberry.federation.field(inaccessible=True)
    def audit(self) -> InternalAudit:
        return InternalAudit(flagged=self.role is Role.ADMIN, note=f"audit of {self.id}")

    @strawberry.field
    def shelves(self) -> list[Shelf]:
        return [
            Shelf(id=strawberry.ID(s["id"]), owner=self, name=s["name"])
            for s in fixtures.SHELVES
            if s["owner"] == self.id
        ]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User | None:
        return get_user(id)


def get_user(user_id: str) -> User | None:
    row = _users.get(user_id)
    if row is None:
        return None
    return User(
        id=strawberry.ID(user_id),
        username=row["username"],
        name=row["name"],
        email=row["email"],
        role=Role(row["role"]),
        joined=datetime.date.fromisoformat(row["joined"]),
    )


@strawberry.federation.type(keys=["id owner { id }"])
class Shelf:
    id: strawberry.ID
    owner: User
    name: str

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, owner: dict[str, Any]) -> Shelf | None:
        for s in fixtures.SHELVES:
            if s["id"] == id and s["owner"] == owner.get("id"):
                user = get_user(s["owner"])
                assert user is not None
                return Shelf(id=id, owner=user, name=s["name"])
        return None


@strawberry.type
class Query:
    @strawberry.field
    def me(self) -> User:
        user = get_user("u1")
        assert user is not None
        return user

    @strawberry.field
    def user(self, id: strawberry.ID) -> User | None:
        return get_user(id)

    @strawberry.field
    def users(self, role: Role | None = None) -> list[User]:
        found = [get_user(user_id) for user_id in sorted(_users)]
        return [u for u in found if u is not None and (role is None or u.role is role)]


@strawberry.type
class Mutation:
    @strawberry.mutation
    def rename_user(self, id: strawberry.ID, name: str) -> User:
        if id not in _users:
            raise ValueError(f"no user {id}")
        if not name.strip():
            raise ValueError("name must not be blank")
        _users[id]["name"] = name
        user = get_user(id)
        assert user is not None
        return user


schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[RecordOperations],
    federation_version="2.9",
)
