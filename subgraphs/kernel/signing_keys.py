"""Signing keys on disk: ES256 key pairs under a directory, created on first start and rotated
on demand. Retired keys stay published until every token they signed has expired, so rotation
never invalidates a live token. Auth signs access tokens with one, billing playback tokens."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jwt

from subgraphs.kernel.tokens import SIGNING_ALGORITHM

# Keep a retired key published this long past the token lifetime, for clock skew.
_GRACE_SECONDS = 60


@dataclass(frozen=True)
class SigningKey:
    kid: str
    created_at: float
    retired_at: float | None


class KeyStore:
    """Signing keys on disk: `keys.json` lists them, `<kid>.pem` holds each private key (0600)."""

    def __init__(self, directory: Path, *, token_ttl: float, token_type: str) -> None:
        self.directory = directory
        self.token_ttl = token_ttl
        # The JWT "typ" every token signed here carries, so one kind can't pass for another.
        self.token_type = token_type
        self._keys: list[SigningKey] = []
        self._private: dict[str, bytes] = {}
        self._public: dict[str, dict[str, Any]] = {}
        self._loaded_mtime: int | None = None

    @property
    def _index(self) -> Path:
        return self.directory / "keys.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ensure(self) -> None:
        """Create the first key if there is none (safe when several processes start at once)."""
        with self._locked():
            if not self._read_index():
                self._add_key(retire_current=False)
        self._reload(force=True)

    def rotate(self) -> str:
        """Make a new current key, retire the old one, and drop keys no token can still use."""
        with self._locked():
            kid = self._add_key(retire_current=True)
        self._reload(force=True)
        return kid

    def current_kid(self) -> str:
        self._reload()
        active = [k for k in self._keys if k.retired_at is None]
        if not active:
            raise RuntimeError("no active signing key; run `reelgraph auth rotate-key`")
        return active[-1].kid

    def sign(self, claims: Mapping[str, Any]) -> str:
        kid = self.current_kid()
        return jwt.encode(
            dict(claims),
            self._private[kid].decode(),
            algorithm=SIGNING_ALGORITHM,
            headers={"kid": kid, "typ": self.token_type},
        )

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        self._reload()
        return {"keys": [self._public[k.kid] for k in self._keys if k.kid in self._public]}

    async def public_key(self, kid: str, *, refresh: bool) -> Mapping[str, Any] | None:
        """`KeySource` for the signer itself: it verifies against its own keys, not over HTTP."""
        self._reload()
        return self._public.get(kid)

    # --- files -------------------------------------------------------------------------

    def _read_index(self) -> list[SigningKey]:
        try:
            raw = json.loads(self._index.read_text())
        except FileNotFoundError:
            return []
        return [SigningKey(k["kid"], k["created_at"], k.get("retired_at")) for k in raw["keys"]]

    def _write_index(self, keys: list[SigningKey]) -> None:
        body = {"keys": [k.__dict__ for k in keys]}
        tmp = self._index.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2))
        os.replace(tmp, self._index)

    def _add_key(self, *, retire_current: bool) -> str:
        now = time.time()
        keys = self._read_index()
        if retire_current:
            keys = [k if k.retired_at else SigningKey(k.kid, k.created_at, now) for k in keys]
        expired = [
            k for k in keys if k.retired_at and k.retired_at + self.token_ttl + _GRACE_SECONDS < now
        ]
        for key in expired:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{key.kid}.pem").unlink()
        keys = [k for k in keys if k not in expired]
        kid = f"{time.strftime('%Y%m%d', time.gmtime(now))}-{secrets.token_hex(4)}"
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.directory / f"{kid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        keys.append(SigningKey(kid, now, None))
        self._write_index(keys)
        return kid

    def _reload(self, *, force: bool = False) -> None:
        # A stat per call lets a running service pick up a rotation made by the CLI.
        try:
            mtime = self._index.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if not force and mtime == self._loaded_mtime:
            return
        keys = self._read_index()
        now = time.time()
        keys = [
            k
            for k in keys
            if not (k.retired_at and k.retired_at + self.token_ttl + _GRACE_SECONDS < now)
        ]
        private: dict[str, bytes] = {}
        public: dict[str, dict[str, Any]] = {}
        for key in keys:
            pem = (self.directory / f"{key.kid}.pem").read_bytes()
            private[key.kid] = pem
            exported = jwk.construct(pem.decode(), SIGNING_ALGORITHM).public_key().to_dict()
            public[key.kid] = {**exported, "kid": key.kid, "use": "sig", "alg": SIGNING_ALGORITHM}
        self._keys, self._private, self._public, self._loaded_mtime = keys, private, public, mtime
