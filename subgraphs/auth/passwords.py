"""Password hashing: bcrypt over a SHA-256 pre-hash, so any length works and nothing is
silently truncated at bcrypt's 72-byte limit."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import bcrypt

MIN_LENGTH = 8
MAX_LENGTH = 1024  # bounds the pre-hash work an attacker can ask for


def _prehash(password: str) -> bytes:
    # Base64 of the digest: 44 ASCII bytes, under bcrypt's limit and free of NUL bytes.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def _hash_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode()


def _check_sync(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode())
    except ValueError:
        return False


async def hash_password(password: str, *, rounds: int) -> str:
    # bcrypt is deliberately slow; keep it off the event loop.
    return await asyncio.to_thread(_hash_sync, password, rounds)


async def check_password(password: str, hashed: str) -> bool:
    return await asyncio.to_thread(_check_sync, password, hashed)
