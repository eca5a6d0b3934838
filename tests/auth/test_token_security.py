"""Hostile access tokens are refused before any resolver trusts them, and rotation is seamless."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jwt

from subgraphs.auth.keys import KeyStore
from subgraphs.kernel.errors import Unauthenticated
from subgraphs.kernel.tokens import JwksClient, TokenVerifier
from tests.auth.conftest import Accounts
from tests.support.processes import Environment, GraphQLClient, ServiceProcess, error_codes, run_cli

ME = "{ me { id } }"


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "role": "ADMIN",
        "iss": "reelgraph-auth",
        "aud": "reelgraph",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _store(env: Environment) -> KeyStore:
    return KeyStore(env.data_dir / "auth" / "keys", token_ttl=900)


async def _me_codes(gql: GraphQLClient, token: str) -> list[str]:
    return error_codes(await gql.execute(ME, token=token))


async def test_alg_none_is_refused(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    user = await accounts.register()
    kid = _store(auth_env).current_kid()
    token = (
        f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': kid})}.{_b64(_claims(user['user']['id']))}."
    )
    assert await _me_codes(gql, token) == ["UNAUTHENTICATED"]


async def test_hs256_signed_with_the_public_key_is_refused(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment, auth_service: ServiceProcess
) -> None:
    user = await accounts.register()
    store = _store(auth_env)
    kid = store.current_kid()
    public = httpx.get(f"{auth_service.url}/.well-known/jwks.json").json()["keys"][0]
    pem = jwk.construct(public, "ES256").to_pem()
    # python-jose refuses to HMAC with a PEM key, which is the point; forge it by hand.
    import hashlib
    import hmac

    signing_input = (
        f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid})}.{_b64(_claims(user['user']['id']))}"
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert await _me_codes(gql, f"{signing_input}.{_b64(signature)}") == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 10, "iat": int(time.time()) - 1000},
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"role": "SUPERUSER"},
        {"jti": None},
    ],
    ids=["expired", "wrong-iss", "wrong-aud", "bad-role", "no-jti"],
)
async def test_tokens_with_bad_claims_are_refused(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment, overrides: dict[str, Any]
) -> None:
    user = await accounts.register()
    claims = {k: v for k, v in _claims(user["user"]["id"], **overrides).items() if v is not None}
    token = _store(auth_env).sign(claims)
    assert await _me_codes(gql, token) == ["UNAUTHENTICATED"]


async def test_a_token_signed_with_the_real_key_is_accepted(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment
) -> None:
    # The control for the cases above: the same construction with good claims works.
    user = await accounts.register()
    token = _store(auth_env).sign(_claims(user["user"]["id"], role="VIEWER"))
    body = await gql.execute(ME, token=token)
    assert body["data"]["me"]["id"] == user["user"]["id"]


async def test_tampered_payload_is_refused(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    header, payload, signature = user["accessToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "ADMIN"
    forged = f"{header}.{_b64(claims)}.{signature}"
    assert await _me_codes(gql, forged) == ["UNAUTHENTICATED"]


async def test_unknown_kid_is_refused(gql: GraphQLClient, accounts: Accounts) -> None:
    user = await accounts.register()
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    token = jwt.encode(
        _claims(user["user"]["id"]),
        stranger.decode(),
        algorithm="ES256",
        headers={"kid": "not-a-key-we-have", "typ": "at+jwt"},
    )
    assert await _me_codes(gql, token) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.jwt", "Bearer a.b.c.d"]
)
async def test_malformed_authorization_is_refused(gql: GraphQLClient, header: str) -> None:
    body = await gql.execute(ME, headers={"authorization": header})
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_anonymous_me_is_null(gql: GraphQLClient) -> None:
    assert (await gql.execute(ME))["data"]["me"] is None


async def test_jwks_verification_over_http(
    accounts: Accounts, auth_service: ServiceProcess
) -> None:
    user = await accounts.register()
    keys = JwksClient(f"{auth_service.url}/.well-known/jwks.json")
    try:
        claims = await TokenVerifier(keys, issuer="reelgraph-auth", audience="reelgraph").verify(
            user["accessToken"]
        )
        assert claims.subject == user["user"]["id"]
        assert claims.role == "VIEWER"
        assert claims.expires_at - claims.issued_at == 900
        header = jwt.get_unverified_header(user["accessToken"])
        assert header["alg"] == "ES256" and header["kid"] and header["typ"] == "at+jwt"
        with pytest.raises(Unauthenticated):
            await TokenVerifier(keys, issuer="reelgraph-auth", audience="someone-else").verify(
                user["accessToken"]
            )
    finally:
        await keys.close()


async def test_key_rotation_keeps_old_tokens_valid(
    gql: GraphQLClient, accounts: Accounts, auth_env: Environment, auth_service: ServiceProcess
) -> None:
    before = await accounts.register()
    old_kid = jwt.get_unverified_header(before["accessToken"])["kid"]
    keys = JwksClient(f"{auth_service.url}/.well-known/jwks.json", min_refetch_interval=0)
    verifier = TokenVerifier(keys, issuer="reelgraph-auth", audience="reelgraph")
    try:
        await verifier.verify(before["accessToken"])  # caches the JWKS as it was
        result = run_cli(auth_env, "auth", "rotate-key")
        assert result.returncode == 0, result.stderr
        after = await accounts.register()
        new_kid = jwt.get_unverified_header(after["accessToken"])["kid"]
        assert new_kid != old_kid
        published = {
            k["kid"] for k in httpx.get(f"{auth_service.url}/.well-known/jwks.json").json()["keys"]
        }
        assert {old_kid, new_kid} <= published
        # The cached verifier meets an unknown kid, refetches, and accepts it.
        assert (await verifier.verify(after["accessToken"])).subject == after["user"]["id"]
        assert (await verifier.verify(before["accessToken"])).subject == before["user"]["id"]
        assert (await gql.execute(ME, token=before["accessToken"]))["data"]["me"]["id"] == before[
            "user"
        ]["id"]
    finally:
        await keys.close()
