"""The playback-token verifier the video service will call on `/media` requests: it accepts
billing's tokens for their own video until they expire, and nothing else."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import pytest
from jose import jwt

from subgraphs.kernel.playback import (
    PLAYBACK_TOKEN_TYPE,
    InvalidPlaybackToken,
    PlaybackTokenVerifier,
    playback_claims,
)
from subgraphs.kernel.signing_keys import KeyStore
from subgraphs.kernel.tokens import ACCESS_TOKEN_TYPE


def _store(path: Path, token_type: str = PLAYBACK_TOKEN_TYPE) -> KeyStore:
    store = KeyStore(path, token_ttl=60, token_type=token_type)
    store.ensure()
    return store


def _claims(video_id: str, *, expires_in: int = 60, **override: object) -> dict[str, object]:
    now = int(time.time())
    claims = playback_claims(
        session_id="s-1",
        video_id=video_id,
        viewer_id="u-1",
        issued_at=now,
        expires_at=now + expires_in,
    )
    return {**claims, **override}


async def _reason(verifier: PlaybackTokenVerifier, token: str, video_id: str) -> str:
    with pytest.raises(InvalidPlaybackToken) as refused:
        await verifier.verify(token, video_id=video_id)
    assert refused.value.code == "FORBIDDEN"
    return refused.value.reason


async def test_a_valid_token_grants_its_video(tmp_path: Path) -> None:
    store = _store(tmp_path)
    video = str(uuid.uuid4())
    grant = await PlaybackTokenVerifier(store).verify(store.sign(_claims(video)), video_id=video)
    assert (grant.session_id, grant.video_id, grant.viewer_id) == ("s-1", video, "u-1")
    assert grant.expires_at > time.time()


async def test_an_expired_token_grants_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    video = str(uuid.uuid4())
    token = store.sign(_claims(video, expires_in=-1))
    assert await _reason(PlaybackTokenVerifier(store), token, video) == "EXPIRED"


async def test_a_token_for_another_video_grants_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    token = store.sign(_claims(str(uuid.uuid4())))
    assert await _reason(PlaybackTokenVerifier(store), token, str(uuid.uuid4())) == "WRONG_VIDEO"


async def test_forged_and_foreign_tokens_grant_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path / "billing")
    verifier = PlaybackTokenVerifier(store)
    video = str(uuid.uuid4())
    genuine = store.sign(_claims(video))

    # Signed by someone else's key under billing's key id.
    forger = _store(tmp_path / "forger")
    forged = jwt.encode(
        _claims(video),
        forger._private[forger.current_kid()].decode(),
        algorithm="ES256",
        headers={"kid": store.current_kid(), "typ": PLAYBACK_TOKEN_TYPE},
    )
    # A genuine token whose payload was edited to name another video.
    header, payload, signature = genuine.split(".")
    edited = json.loads(base64.urlsafe_b64decode(payload + "=="))
    edited["vid"] = "other"
    tampered = ".".join(
        [
            header,
            base64.urlsafe_b64encode(json.dumps(edited).encode()).decode().rstrip("="),
            signature,
        ]
    )
    # An access token from the same kind of key store is not a playback token.
    access_store = _store(tmp_path / "auth", ACCESS_TOKEN_TYPE)
    access = PlaybackTokenVerifier(access_store)
    as_access = access_store.sign(_claims(video))
    # HMAC with the public key, and no signature at all.
    public = json.dumps(store.jwks()["keys"][0])
    hmac = jwt.encode(
        _claims(video),
        public,
        algorithm="HS256",
        headers={"kid": store.current_kid(), "typ": PLAYBACK_TOKEN_TYPE},
    )
    unsigned = ".".join(
        [
            base64.urlsafe_b64encode(
                json.dumps({"alg": "none", "typ": PLAYBACK_TOKEN_TYPE}).encode()
            )
            .decode()
            .rstrip("="),
            payload,
            "",
        ]
    )
    wrong_audience = store.sign(_claims(video, aud="reelgraph"))
    for token, checker in (
        (forged, verifier),
        (tampered, verifier),
        (as_access, access),
        (hmac, verifier),
        (unsigned, verifier),
        (wrong_audience, verifier),
        ("not a token", verifier),
    ):
        assert await _reason(checker, token, video) == "INVALID", token
