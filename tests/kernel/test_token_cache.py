"""Verified tokens are cached until they expire; the cache never accepts anything else."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from subgraphs.auth.keys import KeyStore
from subgraphs.kernel.errors import Unauthenticated
from subgraphs.kernel.tokens import TokenVerifier


def _token(store: KeyStore, ttl: float) -> str:
    now = int(time.time())
    claims = {
        "sub": "u1",
        "role": "VIEWER",
        "iss": "i",
        "aud": "a",
        "iat": now,
        "exp": now + ttl,
        "jti": "j",
    }
    return store.sign(claims)


async def test_a_cached_token_still_expires(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, token_ttl=60)
    store.ensure()
    verifier = TokenVerifier(store, issuer="i", audience="a")
    token = _token(store, 2)
    assert (await verifier.verify(token)).subject == "u1"
    assert (await verifier.verify(token)).subject == "u1"  # from the cache
    assert token in verifier._verified
    await asyncio.sleep(2.2)
    with pytest.raises(Unauthenticated) as expired:
        await verifier.verify(token)
    assert expired.value.extensions.get("reason") == "TOKEN_EXPIRED"


async def test_a_tampered_token_never_hits_the_cache(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, token_ttl=60)
    store.ensure()
    verifier = TokenVerifier(store, issuer="i", audience="a")
    token = _token(store, 60)
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    with pytest.raises(Unauthenticated):
        await verifier.verify(f"{header}.{payload}.{signature[:-2]}AA")


async def test_the_cache_is_bounded(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, token_ttl=60)
    store.ensure()
    verifier = TokenVerifier(store, issuer="i", audience="a", cache_size=3)
    for n in range(5):
        now = int(time.time())
        await verifier.verify(
            store.sign(
                {
                    "sub": f"u{n}",
                    "role": "VIEWER",
                    "iss": "i",
                    "aud": "a",
                    "iat": now,
                    "exp": now + 60,
                    "jti": str(n),
                }
            )
        )
    assert len(verifier._verified) == 3
