"""Access-token verification at the edge: a bad token is refused before any subgraph is
called. The `Authorization` header still travels on, and subgraphs verify it again."""

from __future__ import annotations

from collections.abc import Mapping

from subgraphs.kernel.errors import Unauthenticated
from subgraphs.kernel.tokens import AccessClaims, JwksClient, TokenVerifier, bearer_token
from supergraph.edge.errors import EdgeError


class EdgeAuth:
    """Verifies bearer tokens against a JWKS when one is configured; a router over a
    supergraph with no JWKS configured forwards tokens untouched."""

    def __init__(self, verifier: TokenVerifier | None, keys: JwksClient | None = None) -> None:
        self.verifier = verifier
        self._keys = keys

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> EdgeAuth:
        url = environ.get("REELGRAPH_ROUTER_JWKS_URL") or environ.get("REELGRAPH_JWKS_URL")
        if not url:
            return cls(None)
        keys = JwksClient(
            url, cache_seconds=float(environ.get("REELGRAPH_JWKS_CACHE_SECONDS", "300"))
        )
        verifier = TokenVerifier(
            keys,
            issuer=environ.get("REELGRAPH_JWT_ISSUER", "reelgraph-auth"),
            audience=environ.get("REELGRAPH_JWT_AUDIENCE", "reelgraph"),
        )
        return cls(verifier, keys)

    async def authenticate(self, authorization: str | None) -> AccessClaims | None:
        if self.verifier is None:
            return None
        try:
            token = bearer_token(authorization)
            return await self.verifier.verify(token) if token is not None else None
        except Unauthenticated as error:
            raise EdgeError(
                "UNAUTHENTICATED",
                error.message,
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                extensions=error.extensions,
            ) from None

    async def close(self) -> None:
        if self._keys is not None:
            await self._keys.close()
