"""Playback tokens: billing signs them when a session starts or heartbeats; the video service
verifies them locally (against billing's published keys) before serving a paid video's media.

A token is an ES256 JWT with `typ: playback+jwt`, `iss: reelgraph-billing`,
`aud: reelgraph-media`, `sub` (the viewer), `sid` (the playback session), `vid` (the video),
`iat` and a short `exp` that each heartbeat pushes forward. It grants one video only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from subgraphs.kernel.errors import Forbidden
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.tokens import SIGNING_ALGORITHM, JwksClient, KeySource

PLAYBACK_TOKEN_TYPE = "playback+jwt"  # noqa: S105 - a JWT "typ" value, not a secret
PLAYBACK_ISSUER = "reelgraph-billing"
PLAYBACK_AUDIENCE = "reelgraph-media"
PLAYBACK_KEYS_PATH = "/.well-known/playback-keys.json"


class InvalidPlaybackToken(Forbidden):
    """The token does not grant this video now; `reason` says why in general terms."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


@dataclass(frozen=True)
class PlaybackGrant:
    """What a verified playback token allows: `viewer_id` may stream `video_id` until then."""

    session_id: str
    video_id: str
    viewer_id: str
    expires_at: int


def playback_claims(
    *, session_id: str, video_id: str, viewer_id: str, issued_at: int, expires_at: int
) -> dict[str, Any]:
    """The claims billing signs; kept here so signer and verifier cannot drift apart."""
    return {
        "iss": PLAYBACK_ISSUER,
        "aud": PLAYBACK_AUDIENCE,
        "sub": viewer_id,
        "sid": session_id,
        "vid": video_id,
        "iat": issued_at,
        "exp": expires_at,
    }


class PlaybackTokenVerifier:
    """Checks playback tokens against a `KeySource` (billing's JWKS over HTTP, usually)."""

    def __init__(self, keys: KeySource) -> None:
        self.keys = keys

    async def verify(self, token: str, *, video_id: str) -> PlaybackGrant:
        """The grant for `video_id`, or `InvalidPlaybackToken` (reason `INVALID`, `EXPIRED`
        or `WRONG_VIDEO`)."""
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise InvalidPlaybackToken("Malformed playback token.", reason="INVALID") from None
        # Checked before any key is used, so `none` or HMAC-with-the-public-key never verify.
        if header.get("alg") != SIGNING_ALGORITHM or header.get("typ") != PLAYBACK_TOKEN_TYPE:
            raise InvalidPlaybackToken("Not a playback token.", reason="INVALID")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidPlaybackToken("Playback token has no key id.", reason="INVALID")
        key = await self.keys.public_key(kid, refresh=True)
        if key is None or key.get("kty") != "EC":
            raise InvalidPlaybackToken("Playback token key is unknown.", reason="INVALID")
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token,
                dict(key),
                algorithms=[SIGNING_ALGORITHM],
                audience=PLAYBACK_AUDIENCE,
                issuer=PLAYBACK_ISSUER,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_aud": True,
                    "require_iss": True,
                },
            )
        except ExpiredSignatureError:
            raise InvalidPlaybackToken("Playback token has expired.", reason="EXPIRED") from None
        except (JWTClaimsError, JOSEError):
            raise InvalidPlaybackToken("Playback token is not valid.", reason="INVALID") from None
        session_id, granted_video = claims.get("sid"), claims.get("vid")
        if not isinstance(session_id, str) or not isinstance(granted_video, str):
            raise InvalidPlaybackToken("Playback token is not valid.", reason="INVALID")
        if granted_video != video_id:
            raise InvalidPlaybackToken("Playback token is for another video.", reason="WRONG_VIDEO")
        expires_at = int(claims["exp"])
        # jose allows no leeway by default; re-check so a cached decode never outlives exp.
        if expires_at <= time.time():
            raise InvalidPlaybackToken("Playback token has expired.", reason="EXPIRED")
        return PlaybackGrant(
            session_id=session_id,
            video_id=granted_video,
            viewer_id=str(claims["sub"]),
            expires_at=expires_at,
        )

    async def close(self) -> None:
        if isinstance(self.keys, JwksClient):
            await self.keys.close()


def playback_verifier(settings: Settings) -> PlaybackTokenVerifier:
    """A verifier that fetches billing's keys from `REELGRAPH_PLAYBACK_KEYS_URL`."""
    return PlaybackTokenVerifier(
        JwksClient(settings.resolved_playback_keys_url(), cache_seconds=settings.jwks_cache_seconds)
    )
