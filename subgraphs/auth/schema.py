"""Auth's GraphQL surface: the `User` entity, sign-in mutations and admin user management.
Thin: every decision is made in `service.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from subgraphs.auth import models
from subgraphs.auth.service import AuthService, IssuedTokens, ProfileChanges
from subgraphs.kernel.graphql import RequestContext, subgraph_schema
from subgraphs.kernel.pagination import page_size
from subgraphs.kernel.types import PageInfo

if TYPE_CHECKING:
    from subgraphs.kernel.graphql import Schema


@dataclass
class AuthContext(RequestContext):
    service: AuthService = field(kw_only=True)


AuthInfo = Info[AuthContext, None]


@strawberry.enum
class Role(Enum):
    VIEWER = "VIEWER"
    CREATOR = "CREATOR"
    ADMIN = "ADMIN"


def _users_loader(info: AuthInfo) -> DataLoader[str, models.User | None]:
    loader: DataLoader[str, models.User | None] | None = info.context.loaders.get("users")
    if loader is None:
        loader = DataLoader(load_fn=info.context.service.users_by_id)
        info.context.loaders["users"] = loader
    return loader


def _may_see_private(info: AuthInfo, user_id: str) -> bool:
    viewer = info.context.viewer
    return viewer is not None and (viewer.subject == user_id or viewer.is_admin)


@strawberry.federation.type(keys=["id"], description="A person with an account.")
class User:
    id: strawberry.ID
    handle: str
    display_name: str
    avatar_url: str | None
    bio: str | None
    role: Role
    created_at: datetime
    _email: strawberry.Private[str]
    _suspended: strawberry.Private[bool]

    @strawberry.field(description="Visible to the user themself and to admins; null otherwise.")
    def email(self, info: AuthInfo) -> str | None:
        return self._email if _may_see_private(info, str(self.id)) else None

    @strawberry.field(description="Visible to the user themself and to admins; null otherwise.")
    def suspended(self, info: AuthInfo) -> bool | None:
        return self._suspended if _may_see_private(info, str(self.id)) else None

    @classmethod
    async def resolve_reference(cls, info: AuthInfo, id: strawberry.ID) -> User | None:
        row = await _users_loader(info).load(str(id))
        return User.from_row(row) if row else None

    @staticmethod
    def from_row(row: models.User) -> User:
        return User(
            id=strawberry.ID(row.id),
            handle=row.handle,
            display_name=row.display_name,
            avatar_url=row.avatar_url,
            bio=row.bio,
            role=Role(row.role),
            created_at=row.created_at,
            _email=row.email,
            _suspended=row.suspended_at is not None,
        )


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")
    user: User

    @staticmethod
    def of(tokens: IssuedTokens) -> AuthPayload:
        return AuthPayload(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            user=User.from_row(tokens.user),
        )


@strawberry.type(description="A fresh access token for the current sign-in, after a role change.")
class AccessTokenPayload:
    access_token: str
    expires_in: int
    user: User


@strawberry.type
class UserEdge:
    cursor: str
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class RegisterInput:
    email: str
    password: str
    handle: str
    display_name: str


@strawberry.input(
    description="Only the fields you send change; send null to clear avatarUrl or bio."
)
class UpdateProfileInput:
    handle: str | None = strawberry.UNSET
    display_name: str | None = strawberry.UNSET
    avatar_url: str | None = strawberry.UNSET
    bio: str | None = strawberry.UNSET


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user, or null when anonymous.")
    async def me(self, info: AuthInfo) -> User | None:
        viewer = info.context.viewer
        if viewer is None:
            return None
        return User.from_row(await info.context.service.current_user(viewer))

    @strawberry.field
    async def user(self, info: AuthInfo, id: strawberry.ID) -> User | None:
        row = await _users_loader(info).load(str(id))
        return User.from_row(row) if row else None

    @strawberry.field
    async def user_by_handle(self, info: AuthInfo, handle: str) -> User | None:
        row = await info.context.service.user_by_handle(handle)
        return User.from_row(row) if row else None

    @strawberry.field(description="Every account, oldest first. Admins only.")
    async def users(
        self, info: AuthInfo, first: int | None = None, after: str | None = None
    ) -> UserConnection:
        viewer = info.context.require_viewer()
        service = info.context.service
        page = await service.list_users(viewer, first=page_size(first), after=after)
        edges = [UserEdge(cursor=service.cursor_for(u), node=User.from_row(u)) for u in page.users]
        return UserConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def register(self, info: AuthInfo, input: RegisterInput) -> AuthPayload:
        tokens = await info.context.service.register(
            email=input.email,
            password=input.password,
            handle=input.handle,
            display_name=input.display_name,
        )
        return AuthPayload.of(tokens)

    @strawberry.mutation
    async def login(self, info: AuthInfo, email: str, password: str) -> AuthPayload:
        tokens = await info.context.service.login(
            email=email, password=password, client_ip=info.context.client_ip
        )
        return AuthPayload.of(tokens)

    @strawberry.mutation(
        description="Trade a refresh token for new tokens; the old one stops working."
    )
    async def refresh_token(self, info: AuthInfo, refresh_token: str) -> AuthPayload:
        return AuthPayload.of(await info.context.service.refresh(refresh_token))

    @strawberry.mutation(description="End the sign-in this refresh token belongs to.")
    async def logout(self, info: AuthInfo, refresh_token: str) -> bool:
        await info.context.service.logout(refresh_token)
        return True

    @strawberry.mutation(description="End every sign-in of the current user.")
    async def logout_all(self, info: AuthInfo) -> bool:
        await info.context.service.logout_all(info.context.require_viewer())
        return True

    @strawberry.mutation(description="Change the password; every other sign-in is ended.")
    async def change_password(
        self, info: AuthInfo, current_password: str, new_password: str
    ) -> bool:
        await info.context.service.change_password(
            info.context.require_viewer(),
            current_password=current_password,
            new_password=new_password,
            client_ip=info.context.client_ip,
        )
        return True

    @strawberry.mutation
    async def update_profile(self, info: AuthInfo, input: UpdateProfileInput) -> User:
        fields = {
            "handle": input.handle,
            "display_name": input.display_name,
            "avatar_url": input.avatar_url,
            "bio": input.bio,
        }
        changed = frozenset(k for k, v in fields.items() if v is not strawberry.UNSET)
        values: dict[str, Any] = {k: fields[k] for k in changed}
        row = await info.context.service.update_profile(
            info.context.require_viewer(), ProfileChanges(changed=changed, **values)
        )
        return User.from_row(row)

    @strawberry.mutation(description="Upgrade the signed-in viewer to CREATOR.")
    async def become_creator(self, info: AuthInfo) -> AccessTokenPayload:
        result = await info.context.service.become_creator(info.context.require_viewer())
        return AccessTokenPayload(
            access_token=result.access_token,
            expires_in=result.expires_in,
            user=User.from_row(result.user),
        )

    @strawberry.mutation(description="Admins only.")
    async def set_user_role(self, info: AuthInfo, user_id: strawberry.ID, role: Role) -> User:
        row = await info.context.service.set_role(
            info.context.require_viewer(), str(user_id), role.value
        )
        return User.from_row(row)

    @strawberry.mutation(description="Admins only. Ends every sign-in the user holds.")
    async def suspend_user(self, info: AuthInfo, user_id: strawberry.ID) -> User:
        row = await info.context.service.set_suspended(
            info.context.require_viewer(), str(user_id), suspended=True
        )
        return User.from_row(row)

    @strawberry.mutation(description="Admins only.")
    async def reinstate_user(self, info: AuthInfo, user_id: strawberry.ID) -> User:
        row = await info.context.service.set_suspended(
            info.context.require_viewer(), str(user_id), suspended=False
        )
        return User.from_row(row)

    @strawberry.mutation(description="Admins only.")
    async def delete_user(self, info: AuthInfo, user_id: strawberry.ID) -> bool:
        await info.context.service.delete_user(info.context.require_viewer(), str(user_id))
        return True

    @strawberry.mutation(description="Delete the signed-in user's own account.")
    async def delete_account(
        self, info: AuthInfo, password: Annotated[str, strawberry.argument()]
    ) -> bool:
        await info.context.service.delete_account(
            info.context.require_viewer(), password=password, client_ip=info.context.client_ip
        )
        return True


schema: Schema = subgraph_schema(query=Query, mutation=Mutation, types=[User])
