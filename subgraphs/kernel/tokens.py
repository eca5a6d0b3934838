"""Access-token verification against the auth service's JWKS, with no call to auth per request.

Only the asymmetric algorithm auth signs with is accepted; the header's `alg` is checked
before any key is touched, so `none` and HS256-with-the-public-key tokens never reach a
signature check. Keys are cached and refetched when a token names an unknown `kid`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from subgraphs.kernel.errors import Unauthenticated

SIGNING_ALGORITHM = "ES256"
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT "typ" value, not a secret
ROLES = ("VIEWER", "CREATOR", "ADMIN")


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    subject: str
    role: str
    token_id: str
    issued_at: int
    expires_at: int
    # The refresh-token family (sign-in session) the token was issued for, when there is one.
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


class KeySource(Protocol):
    async def public_key(self, kid: str, *, refresh: bool) -> Mapping[str, Any] | None:
        """The public JWK for `kid`; with `refresh`, reload before giving up on an unknown kid."""
        ...


class JwksClient:
    """Fetches and caches a JWKS over HTTP; refetches on an unknown kid, at most every 2 s."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300.0,
        min_refetch_interval: float = 2.0,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refetch_interval = min_refetch_interval
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._keys: dict[str, Mapping[str, Any]] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def public_key(self, kid: str, *, refresh: bool) -> Mapping[str, Any] | None:
        stale = time.monotonic() - self._fetched_at > self.cache_seconds
        if kid not in self._keys or stale:
            await self._refresh(force=stale)
        return self._keys.get(kid)

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            # Unknown kids are attacker-controlled: do not let them drive a fetch per request.
            if not force and time.monotonic() - self._fetched_at < self.min_refetch_interval:
                return
            try:
                response = await self._client.get(self.url)
                response.raise_for_status()
                keys = response.json()["keys"]
            except (httpx.HTTPError, KeyError, ValueError):
                # Keep serving from the keys we have; a token with an unknown kid still fails.
                self._fetched_at = time.monotonic()
                return
            self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}
            self._fetched_at = time.monotonic()

    async def close(self) -> None:
        await self._client.aclose()


class TokenVerifier:
    def __init__(
        self, keys: KeySource, *, issuer: str, audience: str, cache_size: int = 10_000
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        # A client sends the same token with every request until it expires: its signature
        # is checked once. The whole token is the key, so a forged one can never hit.
        self.cache_size = cache_size
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    async def verify(self, token: str) -> AccessClaims:
        """Verify an access token, or raise `Unauthenticated` saying why in general terms."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at > time.time():
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]
            raise Unauthenticated("Access token has expired.", reason="TOKEN_EXPIRED")
        claims = await self._verify(token)
        if self.cache_size > 0:
            self._verified[token] = claims
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise Unauthenticated("Malformed access token.") from None
        if header.get("alg") != SIGNING_ALGORITHM:
            raise Unauthenticated("Access token algorithm is not allowed.")
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthenticated("Not an access token.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("Access token has no key id.")
        key = await self.keys.public_key(kid, refresh=True)
        if key is None:
            raise Unauthenticated("Access token was signed with an unknown key.")
        if key.get("kty") != "EC" or key.get("alg", SIGNING_ALGORITHM) != SIGNING_ALGORITHM:
            raise Unauthenticated("Access token key does not match the allowed algorithm.")
        try:
            claims = jwt.decode(
                token,
                dict(key),
                algorithms=[SIGNING_ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_jti": True,
                    "require_aud": True,
                    "require_iss": True,
                },
            )
        except ExpiredSignatureError:
            raise Unauthenticated("Access token has expired.", reason="TOKEN_EXPIRED") from None
        except JWTClaimsError:
            raise Unauthenticated("Access token is not valid for this service.") from None
        except JOSEError:
            raise Unauthenticated("Access token signature is invalid.") from None
        role = claims.get("role")
        if role not in ROLES:
            raise Unauthenticated("Access token carries no valid role.")
        return AccessClaims(
            subject=str(claims["sub"]),
            role=role,
            token_id=str(claims["jti"]),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            session_id=str(claims["sid"]) if claims.get("sid") else None,
        )


def bearer_token(authorization: str | None) -> str | None:
    """The token from an `Authorization: Bearer …` header; `Unauthenticated` if it is malformed."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'.")
    return token.strip()
