"""Sign-in throttling behind our router, between real processes: auth counts failures per
client, the client being the address the router determined (never the router's own address,
and never an address an untrusted client wrote into X-Forwarded-For)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.conftest import REGISTER
from tests.supergraph.conftest import run_router
from tests.support.processes import ROOT, Environment, ServiceProcess, environment, error_codes

SUPERGRAPH = ROOT / "schema" / "supergraph.graphql"
LOGIN = "mutation L($e: String!, $p: String!) { login(email: $e, password: $p) { user { id } } }"
PER_ADDRESS = 4
# Connecting from here, a client is not one of the router's trusted proxies (127.0.0.1, ::1).
UNTRUSTED_PEER = "127.0.0.2"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("auth-behind-router")
    env: Environment
    with environment(
        tmp,
        database="sqlite",
        bus="local",
        # Only the per-address limit can trip here: each test guesses at fresh emails anyway.
        REELGRAPH_LOGIN_MAX_FAILURES_PER_IP=str(PER_ADDRESS),
        REELGRAPH_LOGIN_MAX_FAILURES_PER_ACCOUNT="50",
    ) as env:
        auth = ServiceProcess("auth", env).start()
        try:
            # The other subgraphs are nowhere: sign-in only needs auth.
            urls = {
                name: "http://127.0.0.1:9/graphql" for name in ("video", "engagement", "billing")
            }
            urls["auth"] = f"{auth.url}/graphql"
            with run_router(
                SUPERGRAPH, urls, tmp, REELGRAPH_ROUTER_JWKS_URL=f"{auth.url}/.well-known/jwks.json"
            ) as url:
                yield url
        finally:
            assert auth.stop() == 0, auth.log()


def _address() -> str:
    """A client address of its own per test (IPv6 documentation prefix, a header value only)."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


async def _post(
    router: str,
    query: str,
    variables: dict[str, Any],
    *,
    forwarded_for: str | None = None,
    peer: str = "127.0.0.1",
) -> dict[str, Any]:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    transport = httpx.AsyncHTTPTransport(local_address=peer)
    async with httpx.AsyncClient(transport=transport, timeout=30) as http:
        response = await http.post(
            router, json={"query": query, "variables": variables}, headers=headers
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _account(router: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    account = {
        "email": f"routed_{tag}@example.com",
        "password": "correct horse battery",
        "handle": f"r_{tag}",
        "displayName": "Routed",
    }
    body = await _post(router, REGISTER, {"input": account}, forwarded_for=_address())
    assert "errors" not in body, body
    return account


async def _login(router: str, email: str, password: str, **via: Any) -> dict[str, Any]:
    return await _post(router, LOGIN, {"e": email, "p": password}, **via)


async def _fail_until_throttled(router: str, **via: Any) -> None:
    for _ in range(PER_ADDRESS):
        guess = f"guess_{uuid.uuid4().hex[:10]}@example.com"
        body = await _login(router, guess, "wrong password", **via)
        assert error_codes(body) == ["UNAUTHENTICATED"], body


async def test_one_client_failing_sign_ins_does_not_lock_out_the_others(router: str) -> None:
    victim = await _account(router)
    attacker, neighbour = _address(), _address()

    await _fail_until_throttled(router, forwarded_for=attacker)

    # The attacker is stopped, even with the right password of someone else's account...
    stopped = await _login(router, victim["email"], victim["password"], forwarded_for=attacker)
    assert error_codes(stopped) == ["RATE_LIMITED"], stopped
    assert stopped["errors"][0]["extensions"]["retryAfter"] > 0
    # ...while another client behind the same router signs in: auth counted the attacker's
    # failures against the attacker's address, not against the router's.
    signed_in = await _login(router, victim["email"], victim["password"], forwarded_for=neighbour)
    assert "errors" not in signed_in, signed_in
    # So does a client with no proxy in front, counted as the router's peer itself.
    direct = await _login(router, victim["email"], victim["password"])
    assert "errors" not in direct, direct


async def test_an_untrusted_client_cannot_choose_the_address_it_is_counted_as(
    router: str,
) -> None:
    victim = await _account(router)

    # A fresh forged address on every attempt: the router replaces it with the peer's own.
    await _fail_until_throttled(router, peer=UNTRUSTED_PEER, forwarded_for=_address())
    stopped = await _login(
        router, victim["email"], victim["password"], peer=UNTRUSTED_PEER, forwarded_for=_address()
    )
    assert error_codes(stopped) == ["RATE_LIMITED"], stopped

    # The failures were counted against 127.0.0.2: a trusted proxy reporting that client is
    # stopped too, and one reporting any other client is not.
    as_reported = await _login(
        router, victim["email"], victim["password"], forwarded_for=UNTRUSTED_PEER
    )
    assert error_codes(as_reported) == ["RATE_LIMITED"], as_reported
    other = await _login(router, victim["email"], victim["password"], forwarded_for=_address())
    assert "errors" not in other, other
