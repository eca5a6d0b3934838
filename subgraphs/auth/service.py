"""Auth's domain logic: accounts, credentials, sessions and roles. No GraphQL in here."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from subgraphs.auth import events
from subgraphs.auth.keys import KeyStore
from subgraphs.auth.models import LoginFailure, RefreshToken, User
from subgraphs.auth.passwords import MAX_LENGTH, MIN_LENGTH, check_password, hash_password
from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.errors import (
    BadUserInput,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from subgraphs.kernel.pagination import decode_cursor, encode_cursor
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import ROLES, AccessClaims

HANDLE_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,30}$")
RESERVED_HANDLES = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "support",
        "reelgraph",
        "api",
        "graphql",
        "moderator",
        "staff",
        "help",
        "security",
        "null",
        "undefined",
        "me",
        "settings",
    }
)
DISPLAY_NAME_MAX = 50
BIO_MAX = 500
AVATAR_URL_MAX = 2048


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True)
class AccessToken:
    access_token: str
    expires_in: int
    user: User


@dataclass(frozen=True)
class ProfileChanges:
    """Fields a user may change on their own profile; `None` in `changed` means untouched."""

    handle: str | None = None
    display_name: str | None = None
    avatar_url: str | None = None
    bio: str | None = None
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserPage:
    users: Sequence[User]
    has_next_page: bool
    total_count: int


def _hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _has_control_chars(text: str, allow_newlines: bool = False) -> bool:
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text)


# --- validation -------------------------------------------------------------------------


def normalize_email(email: str) -> tuple[str, str]:
    """The email as the user wrote it (domain normalised) and its lower-cased lookup key."""
    email = email.strip()
    if len(email) > 254:
        raise BadUserInput("Email address is too long.", field="email")
    try:
        checked = validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        raise BadUserInput("Email address is not valid.", field="email") from None
    return checked.normalized, checked.normalized.lower()


def validate_password(password: str, field: str = "password") -> str:
    if len(password) < MIN_LENGTH:
        raise BadUserInput(f"Password must be at least {MIN_LENGTH} characters.", field=field)
    if len(password) > MAX_LENGTH:
        raise BadUserInput(f"Password must be at most {MAX_LENGTH} characters.", field=field)
    if not password.strip():
        raise BadUserInput("Password cannot be only whitespace.", field=field)
    return password


def validate_handle(handle: str) -> str:
    handle = handle.strip()
    if not HANDLE_PATTERN.match(handle):
        raise BadUserInput("Handle must be 3 to 30 letters, digits or underscores.", field="handle")
    if handle.lower() in RESERVED_HANDLES:
        raise BadUserInput("That handle is reserved.", field="handle")
    return handle


def validate_display_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise BadUserInput("Display name cannot be empty.", field="displayName")
    if len(name) > DISPLAY_NAME_MAX:
        raise BadUserInput(
            f"Display name must be at most {DISPLAY_NAME_MAX} characters.", field="displayName"
        )
    if _has_control_chars(name):
        raise BadUserInput("Display name contains control characters.", field="displayName")
    return name


def validate_avatar_url(url: str | None) -> str | None:
    if url is None or not url.strip():
        return None
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > AVATAR_URL_MAX or parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadUserInput("Avatar URL must be an http(s) URL.", field="avatarUrl")
    return url


def validate_bio(bio: str | None) -> str | None:
    if bio is None:
        return None
    bio = bio.strip()
    if len(bio) > BIO_MAX:
        raise BadUserInput(f"Bio must be at most {BIO_MAX} characters.", field="bio")
    if _has_control_chars(bio, allow_newlines=True):
        raise BadUserInput("Bio contains control characters.", field="bio")
    return bio or None


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise BadUserInput(f"Role must be one of {', '.join(ROLES)}.", field="role")
    return role


def _uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError):
        raise BadUserInput("Not a valid id.", field=field) from None


# --- the service ------------------------------------------------------------------------


class AuthService:
    def __init__(
        self,
        db: Database,
        keys: KeyStore,
        settings: Settings,
    ) -> None:
        self.db = db
        self.keys = keys
        self.settings = settings
        self._dummy_hash: str | None = None

    # Registration and sign-in -----------------------------------------------------------

    async def register(
        self, *, email: str, password: str, handle: str, display_name: str
    ) -> IssuedTokens:
        email, email_key = normalize_email(email)
        validate_password(password)
        handle = validate_handle(handle)
        display_name = validate_display_name(display_name)
        password_hash = await hash_password(password, rounds=self.settings.bcrypt_rounds)
        now = utcnow()
        user = User(
            id=str(uuid.uuid4()),
            email=email,
            email_normalized=email_key,
            handle=handle,
            handle_normalized=handle.lower(),
            display_name=display_name,
            role="VIEWER",
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.db.transaction() as session:
                await self._check_unique(session, email_key=email_key, handle_key=handle.lower())
                session.add(user)
                await session.flush()
                await events.user_registered(session, user)
                tokens = await self._open_session(session, user)
        except IntegrityError:
            # Lost a race with a concurrent registration of the same email or handle.
            raise Conflict("That email or handle is already registered.") from None
        return tokens

    async def login(self, *, email: str, password: str, client_ip: str) -> IssuedTokens:
        try:
            _, email_key = normalize_email(email)
        except BadUserInput:
            email_key = email.strip().lower()[:254]
        if len(password) > MAX_LENGTH:
            raise BadUserInput(
                f"Password must be at most {MAX_LENGTH} characters.", field="password"
            )
        await self._check_throttle(email_key, client_ip)
        async with self.db.transaction() as session:
            user = await self._user_by_email(session, email_key)
        if user is None:
            # Spend the same time as a real check, so timing does not reveal accounts.
            await check_password(password, await self._dummy())
            await self._record_failure(email_key, client_ip)
            raise Unauthenticated("Email or password is incorrect.")
        if not await check_password(password, user.password_hash):
            await self._record_failure(email_key, client_ip)
            raise Unauthenticated("Email or password is incorrect.")
        if user.suspended_at is not None:
            raise Forbidden("This account is suspended.", reason="ACCOUNT_SUSPENDED")
        async with self.db.transaction() as session:
            await session.execute(
                delete(LoginFailure).where(
                    col(LoginFailure.scope) == "account", col(LoginFailure.subject) == email_key
                )
            )
            return await self._open_session(session, user)

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        if not refresh_token or len(refresh_token) > 200:
            raise Unauthenticated("Refresh token is not valid.")
        token_hash = _hash_refresh_token(refresh_token)
        now = utcnow()
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    select(RefreshToken).where(col(RefreshToken.token_hash) == token_hash)
                )
            ).scalar_one_or_none()
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("Refresh token is not valid.")
            # Claim the rotation atomically: of two concurrent uses, exactly one wins.
            claimed = await session.execute(
                update(RefreshToken)
                .where(col(RefreshToken.id) == row.id, col(RefreshToken.rotated_at).is_(None))
                .values(rotated_at=now)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                reused = True
            else:
                reused = False
                if row.expires_at <= now:
                    raise Unauthenticated("Refresh token has expired.")
                user = await session.get(User, row.user_id)
                if user is None or user.suspended_at is not None:
                    raise Unauthenticated("Refresh token is not valid.")
                return await self._issue(session, user, family_id=row.family_id)
        if reused:
            # A rotated token came back: it was stolen or replayed. End the whole sign-in.
            async with self.db.transaction() as session:
                await self._revoke(session, col(RefreshToken.family_id) == row.family_id)
            raise Unauthenticated(
                "Refresh token was already used; this session has been revoked.",
                reason="REFRESH_TOKEN_REUSED",
            )
        raise AssertionError("unreachable")

    async def logout(self, refresh_token: str) -> None:
        """End the sign-in the token belongs to. Unknown tokens are ignored: nothing to end."""
        if not refresh_token or len(refresh_token) > 200:
            return
        async with self.db.transaction() as session:
            family = (
                await session.execute(
                    select(col(RefreshToken.family_id)).where(
                        col(RefreshToken.token_hash) == _hash_refresh_token(refresh_token)
                    )
                )
            ).scalar_one_or_none()
            if family is not None:
                await self._revoke(session, col(RefreshToken.family_id) == family)

    async def logout_all(self, claims: AccessClaims) -> int:
        async with self.db.transaction() as session:
            user = await self._active_user(session, claims)
            return await self._revoke(session, col(RefreshToken.user_id) == user.id)

    async def change_password(
        self, claims: AccessClaims, *, current_password: str, new_password: str, client_ip: str
    ) -> None:
        validate_password(new_password, field="newPassword")
        async with self.db.transaction() as session:
            user = await self._active_user(session, claims)
        await self._check_throttle(user.email_normalized, client_ip)
        if len(current_password) > MAX_LENGTH or not await check_password(
            current_password, user.password_hash
        ):
            await self._record_failure(user.email_normalized, client_ip)
            raise BadUserInput("Current password is incorrect.", field="currentPassword")
        if current_password == new_password:
            raise BadUserInput(
                "New password must differ from the current one.", field="newPassword"
            )
        new_hash = await hash_password(new_password, rounds=self.settings.bcrypt_rounds)
        async with self.db.transaction() as session:
            user = await self._active_user(session, claims)
            user.password_hash = new_hash
            user.updated_at = utcnow()
            session.add(user)
            # Every other sign-in ends; the one that changed the password stays.
            others = col(RefreshToken.user_id) == user.id
            if claims.session_id:
                others = others & (col(RefreshToken.family_id) != claims.session_id)
            await self._revoke(session, others)

    # Profile and roles ---------------------------------------------------------------------

    async def update_profile(self, claims: AccessClaims, changes: ProfileChanges) -> User:
        values: dict[str, str | None] = {}
        if "handle" in changes.changed:
            if changes.handle is None:
                raise BadUserInput("Handle cannot be removed.", field="handle")
            values["handle"] = validate_handle(changes.handle)
        if "display_name" in changes.changed:
            if changes.display_name is None:
                raise BadUserInput("Display name cannot be removed.", field="displayName")
            values["display_name"] = validate_display_name(changes.display_name)
        if "avatar_url" in changes.changed:
            values["avatar_url"] = validate_avatar_url(changes.avatar_url)
        if "bio" in changes.changed:
            values["bio"] = validate_bio(changes.bio)
        try:
            async with self.db.transaction() as session:
                user = await self._active_user(session, claims)
                if "handle" in values and values["handle"] != user.handle:
                    handle = str(values["handle"])
                    if handle.lower() != user.handle_normalized:
                        await self._check_unique(session, handle_key=handle.lower())
                    user.handle, user.handle_normalized = handle, handle.lower()
                if "display_name" in values:
                    user.display_name = str(values["display_name"])
                if "avatar_url" in values:
                    user.avatar_url = values["avatar_url"]
                if "bio" in values:
                    user.bio = values["bio"]
                user.updated_at = utcnow()
                session.add(user)
                await session.flush()
                await events.user_updated(session, user)
        except IntegrityError:
            raise Conflict("That handle is already taken.", field="handle") from None
        return user

    async def become_creator(self, claims: AccessClaims) -> AccessToken:
        async with self.db.transaction() as session:
            user = await self._active_user(session, claims)
            if user.role == "VIEWER":
                user.role = "CREATOR"
                user.updated_at = utcnow()
                session.add(user)
                await session.flush()
                await events.user_updated(session, user)
            token, expires_in = self._access_token(user, session_id=claims.session_id)
        return AccessToken(access_token=token, expires_in=expires_in, user=user)

    async def set_role(self, claims: AccessClaims, user_id: str, role: str) -> User:
        role = validate_role(role)
        user_id = _uuid(user_id, "userId")
        async with self.db.transaction() as session:
            await self._require_admin(session, claims)
            if user_id == claims.subject:
                raise Forbidden("Admins cannot change their own role.")
            user = await self._get_or_404(session, user_id)
            if user.role != role:
                user.role = role
                user.updated_at = utcnow()
                session.add(user)
                await session.flush()
                await events.user_updated(session, user)
        return user

    async def set_suspended(self, claims: AccessClaims, user_id: str, *, suspended: bool) -> User:
        user_id = _uuid(user_id, "userId")
        async with self.db.transaction() as session:
            await self._require_admin(session, claims)
            if user_id == claims.subject:
                raise Forbidden("Admins cannot suspend themselves.")
            user = await self._get_or_404(session, user_id)
            if suspended and user.suspended_at is None:
                user.suspended_at = utcnow()
                await self._revoke(session, col(RefreshToken.user_id) == user.id)
            elif not suspended:
                user.suspended_at = None
            user.updated_at = utcnow()
            session.add(user)
            await session.flush()
            await events.user_updated(session, user)
        return user

    async def delete_user(self, claims: AccessClaims, user_id: str) -> None:
        user_id = _uuid(user_id, "userId")
        async with self.db.transaction() as session:
            await self._require_admin(session, claims)
            if user_id == claims.subject:
                raise Forbidden("Use deleteAccount to delete your own account.")
            user = await self._get_or_404(session, user_id)
            await self._delete(session, user)

    async def delete_account(self, claims: AccessClaims, *, password: str, client_ip: str) -> None:
        async with self.db.transaction() as session:
            user = await self._active_user(session, claims)
        await self._check_throttle(user.email_normalized, client_ip)
        if len(password) > MAX_LENGTH or not await check_password(password, user.password_hash):
            await self._record_failure(user.email_normalized, client_ip)
            raise BadUserInput("Password is incorrect.", field="password")
        async with self.db.transaction() as session:
            user = await self._active_user(session, claims)
            await self._delete(session, user)

    # Reads -------------------------------------------------------------------------------

    async def users_by_id(self, ids: Sequence[str]) -> list[User | None]:
        valid = [i for i in ids if _is_uuid(i)]
        async with self.db.transaction() as session:
            rows = (
                (await session.execute(select(User).where(col(User.id).in_(valid)))).scalars().all()
            )
        found = {u.id: u for u in rows}
        return [found.get(i) for i in ids]

    async def user_by_handle(self, handle: str) -> User | None:
        if len(handle) > 64:
            return None
        async with self.db.transaction() as session:
            return (
                await session.execute(
                    select(User).where(col(User.handle_normalized) == handle.strip().lower())
                )
            ).scalar_one_or_none()

    async def current_user(self, claims: AccessClaims) -> User:
        async with self.db.transaction() as session:
            return await self._active_user(session, claims)

    async def list_users(self, claims: AccessClaims, *, first: int, after: str | None) -> UserPage:
        async with self.db.transaction() as session:
            await self._require_admin(session, claims)
            query = select(User).order_by(col(User.created_at), col(User.id))
            if after is not None:
                created, user_id = decode_cursor(after, 2)
                try:
                    created_at = datetime.fromisoformat(str(created))
                except ValueError:
                    raise BadUserInput("Invalid cursor.", field="after") from None
                query = query.where(
                    tuple_(col(User.created_at), col(User.id)) > tuple_(created_at, str(user_id))
                )
            rows = (await session.execute(query.limit(first + 1))).scalars().all()
            total = (await session.execute(select(func.count()).select_from(User))).scalar_one()
        return UserPage(users=rows[:first], has_next_page=len(rows) > first, total_count=total)

    @staticmethod
    def cursor_for(user: User) -> str:
        return encode_cursor(user.created_at.isoformat(), user.id)

    # Internals -------------------------------------------------------------------------

    def _access_token(self, user: User, *, session_id: str | None) -> tuple[str, int]:
        now = int(time.time())
        ttl = self.settings.access_token_ttl
        claims = {
            "sub": user.id,
            "role": user.role,
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if session_id:
            claims["sid"] = session_id
        return self.keys.sign(claims), ttl

    async def _open_session(self, session: AsyncSession, user: User) -> IssuedTokens:
        return await self._issue(session, user, family_id=str(uuid.uuid4()))

    async def _issue(self, session: AsyncSession, user: User, *, family_id: str) -> IssuedTokens:
        refresh_token = secrets.token_urlsafe(32)
        now = utcnow()
        session.add(
            RefreshToken(
                id=str(uuid.uuid4()),
                family_id=family_id,
                user_id=user.id,
                token_hash=_hash_refresh_token(refresh_token),
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl),
            )
        )
        access_token, expires_in = self._access_token(user, session_id=family_id)
        return IssuedTokens(access_token, refresh_token, expires_in, user)

    async def _revoke(self, session: AsyncSession, condition: ColumnElement[bool]) -> int:
        result = await session.execute(
            update(RefreshToken)
            .where(condition, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
        return int(getattr(result, "rowcount", 0))

    async def _delete(self, session: AsyncSession, user: User) -> None:
        await session.execute(delete(RefreshToken).where(col(RefreshToken.user_id) == user.id))
        await session.delete(user)
        await events.user_deleted(session, user.id)

    async def _user_by_email(self, session: AsyncSession, email_key: str) -> User | None:
        return (
            await session.execute(select(User).where(col(User.email_normalized) == email_key))
        ).scalar_one_or_none()

    async def _check_unique(
        self, session: AsyncSession, *, email_key: str | None = None, handle_key: str | None = None
    ) -> None:
        conditions = []
        if email_key is not None:
            conditions.append(col(User.email_normalized) == email_key)
        if handle_key is not None:
            conditions.append(col(User.handle_normalized) == handle_key)
        clashes = (await session.execute(select(User).where(or_(*conditions)))).scalars().all()
        for user in clashes:
            if email_key is not None and user.email_normalized == email_key:
                raise Conflict("That email is already registered.", field="email")
            raise Conflict("That handle is already taken.", field="handle")

    async def _active_user(self, session: AsyncSession, claims: AccessClaims) -> User:
        user = await session.get(User, claims.subject)
        if user is None:
            raise Unauthenticated("This account no longer exists.")
        if user.suspended_at is not None:
            raise Forbidden("This account is suspended.", reason="ACCOUNT_SUSPENDED")
        return user

    async def _require_admin(self, session: AsyncSession, claims: AccessClaims) -> User:
        # The role is checked against the database, not only the token, so a demoted admin
        # loses admin powers here at once.
        user = await self._active_user(session, claims)
        if user.role != "ADMIN":
            raise Forbidden("Only admins can do this.")
        return user

    async def _get_or_404(self, session: AsyncSession, user_id: str) -> User:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("User not found.")
        return user

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await hash_password(
                secrets.token_hex(16), rounds=self.settings.bcrypt_rounds
            )
        return self._dummy_hash

    # Throttling ----------------------------------------------------------------------------

    async def _check_throttle(self, email_key: str, client_ip: str) -> None:
        window = self.settings.login_failure_window
        since = time.time() - window
        limits = (
            ("account", email_key, self.settings.login_max_failures_per_account),
            ("ip", client_ip, self.settings.login_max_failures_per_ip),
        )
        async with self.db.transaction() as session:
            for scope, subject, limit in limits:
                count, oldest = (
                    await session.execute(
                        select(func.count(), func.min(col(LoginFailure.at))).where(
                            col(LoginFailure.scope) == scope,
                            col(LoginFailure.subject) == subject,
                            col(LoginFailure.at) > since,
                        )
                    )
                ).one()
                if count >= limit:
                    retry_after = max(1, int((oldest or time.time()) + window - time.time()) + 1)
                    raise RateLimited(
                        "Too many failed sign-in attempts. Try again later.",
                        retry_after=retry_after,
                    )

    async def _record_failure(self, email_key: str, client_ip: str) -> None:
        now = time.time()
        async with self.db.transaction() as session:
            session.add(LoginFailure(scope="account", subject=email_key, at=now))
            session.add(LoginFailure(scope="ip", subject=client_ip, at=now))
            await session.execute(
                delete(LoginFailure).where(
                    col(LoginFailure.at) < now - self.settings.login_failure_window
                )
            )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True
