"""Auth's signing keys: the kernel's key store, signing access tokens (`typ: at+jwt`), rotated
with `reelgraph auth rotate-key`."""

from __future__ import annotations

from pathlib import Path

from subgraphs.kernel.signing_keys import KeyStore as SigningKeyStore
from subgraphs.kernel.tokens import ACCESS_TOKEN_TYPE


class KeyStore(SigningKeyStore):
    def __init__(self, directory: Path, *, token_ttl: int) -> None:
        super().__init__(directory, token_ttl=token_ttl, token_type=ACCESS_TOKEN_TYPE)
