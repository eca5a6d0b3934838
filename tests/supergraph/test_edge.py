"""Edge features of the router process over real subgraph processes: JWT verification before
any subgraph is called, CORS and security headers, `/ready` and `/metrics`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.supergraph.conftest import failing_subgraph, run_router
from tests.support.processes import ServiceProcess, environment

ROOT = Path(__file__).resolve().parents[2]
FAILING = Path(__file__).parent / "failing" / "supergraph.graphql"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The auth service, and our router over the product supergraph verifying tokens."""
    tmp = tmp_path_factory.mktemp("edge")
    with environment(tmp, database="sqlite", bus="local") as env:
        auth = ServiceProcess("auth", env).start()
        try:
            sdl = re.sub(
                r'(@join__graph\(name: "auth", url: )"[^"]*"',
                rf'\1"{auth.url}/graphql"',
                (ROOT / "schema" / "supergraph.graphql").read_text(),
            )
            supergraph = tmp / "supergraph.graphql"
            supergraph.write_text(sdl)
            with run_router(
                supergraph,
                {},
                tmp,
                REELGRAPH_ROUTER_JWKS_URL=f"{auth.url}/.well-known/jwks.json",
                REELGRAPH_CORS_ORIGINS="https://app.example",
            ) as router:
                register = 'mutation { register(input: {email: "edge@example.com", password: "long enough pw", handle: "edgy", displayName: "Edge"}) { accessToken } }'
                token = httpx.post(router, json={"query": register}).json()["data"]["register"][
                    "accessToken"
                ]
                yield {"router": router, "auth": auth, "token": token, "logs": tmp}
        finally:
            auth.stop()


def test_a_bad_token_is_refused_before_any_subgraph_is_called(product: dict[str, Any]) -> None:
    ids = []
    for n, header in enumerate(("Bearer not.a.jwt", "Basic abc", f"Bearer {product['token']}x")):
        request_id = f"refused-{n}-{id(product)}"
        ids.append(request_id)
        response = httpx.post(
            product["router"],
            json={"query": "{ me { handle } }"},
            headers={"authorization": header, "x-request-id": request_id},
        )
        assert response.status_code == 401, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")
    # The same request ids on a request that does reach auth show up in its log...
    httpx.post(
        product["router"],
        json={"query": "{ me { handle } }"},
        headers={"x-request-id": "reached-auth"},
    )
    time.sleep(0.5)
    log = product["auth"].log()
    assert '"request_id":"reached-auth"' in log
    # ...while the refused ones never got there.
    assert not any(f'"request_id":"{request_id}"' in log for request_id in ids)


def test_a_good_token_reaches_the_subgraph_which_verifies_it_again(product: dict[str, Any]) -> None:
    body = httpx.post(
        product["router"],
        json={"query": "{ me { handle } }"},
        headers={"authorization": f"Bearer {product['token']}"},
    ).json()
    assert body == {"data": {"me": {"handle": "edgy"}}}
    anonymous = httpx.post(product["router"], json={"query": "{ me { handle } }"}).json()
    assert anonymous == {"data": {"me": None}}


async def test_websocket_connections_verify_the_init_token(product: dict[str, Any]) -> None:
    url = product["router"].replace("http://", "ws://")
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": "Bearer forged.token.here"},
                }
            )
        )
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": f"Bearer {product['token']}"},
                }
            )
        )
        assert json.loads(await socket.recv()) == {"type": "connection_ack"}
        await socket.send(
            json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "{ me { handle } }"}})
        )
        assert json.loads(await socket.recv())["payload"] == {"data": {"me": {"handle": "edgy"}}}


def test_security_headers_and_cors_allow_list(product: dict[str, Any]) -> None:
    plain = httpx.post(product["router"], json={"query": "{ __typename }"})
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["x-frame-options"] == "DENY"
    allowed = httpx.options(
        product["router"],
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    refused = httpx.options(
        product["router"],
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = httpx.post(
        product["router"],
        json={"query": "{ __typename }"},
        headers={"origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in simple.headers


def test_metrics_count_requests_fetches_and_caches(product: dict[str, Any]) -> None:
    for _ in range(3):
        httpx.post(
            product["router"], json={"query": "query Who { me { handle } }", "operationName": "Who"}
        )
    httpx.post(product["router"], json={"query": "{ nope }"})
    text = httpx.get(product["router"].replace("/graphql", "/metrics")).text
    assert re.search(
        r'reelgraph_router_requests_total\{operation="Who",outcome="success"\} 3\.0', text
    ), text
    assert 'reelgraph_router_subgraph_fetch_duration_seconds_count{subgraph="auth"}' in text
    hits = re.search(r'reelgraph_router_cache_hits_total\{cache="plans"\} (\d+)', text)
    assert hits is not None and int(hits.group(1)) >= 2
    assert "reelgraph_router_active_subscriptions 0.0" in text


def test_ready_reports_each_subgraph(tmp_path: Path) -> None:
    with failing_subgraph("stable", "ok", tmp_path) as stable:
        with run_router(
            FAILING, {"stable": stable, "flaky": "http://127.0.0.1:9/graphql"}, tmp_path
        ) as router:
            base = router.removesuffix("/graphql")
            assert httpx.get(f"{base}/health").json() == {"status": "ok"}
            down = httpx.get(f"{base}/ready")
            assert down.status_code == 503
            assert down.json() == {
                "status": "unavailable",
                "subgraphs": {"flaky": "SUBGRAPH_UNAVAILABLE", "stable": "ok"},
            }
        with (
            failing_subgraph("flaky", "ok", tmp_path) as flaky,
            run_router(FAILING, {"stable": stable, "flaky": flaky}, tmp_path) as router,
        ):
            up = httpx.get(router.replace("/graphql", "/ready"))
            assert up.status_code == 200 and up.json()["status"] == "ready"


def _manifest_id(name: str) -> str:
    manifest = json.loads((ROOT / "schema" / "persisted" / "mobile.json").read_text())
    return next(str(o["id"]) for o in manifest["operations"] if o["name"] == name)


def test_apq_registers_then_serves_by_hash_over_get(product: dict[str, Any]) -> None:
    import hashlib

    query = "query HandleOnly { me { handle } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    auth = {"authorization": f"Bearer {product['token']}"}
    miss = httpx.get(product["router"], params={"extensions": json.dumps(extensions)}, headers=auth)
    assert miss.status_code == 200
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    wrong = httpx.post(
        product["router"], json={"query": query + " ", "extensions": extensions}, headers=auth
    )
    assert wrong.status_code == 400
    registered = httpx.post(
        product["router"], json={"query": query, "extensions": extensions}, headers=auth
    )
    assert registered.json() == {"data": {"me": {"handle": "edgy"}}}
    hit = httpx.get(product["router"], params={"extensions": json.dumps(extensions)}, headers=auth)
    assert hit.json() == {"data": {"me": {"handle": "edgy"}}}


def test_the_mobile_client_is_held_to_its_safelist(product: dict[str, Any]) -> None:
    mobile = {"apollographql-client-name": "mobile", "authorization": f"Bearer {product['token']}"}
    adhoc = httpx.post(product["router"], json={"query": "{ me { handle email } }"}, headers=mobile)
    assert adhoc.status_code == 400
    assert adhoc.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_IN_SAFELIST"
    by_id = httpx.post(product["router"], json={"documentId": _manifest_id("Me")}, headers=mobile)
    assert by_id.json()["data"]["me"]["handle"] == "edgy"
    unknown = httpx.post(product["router"], json={"documentId": "0" * 64}, headers=mobile)
    assert unknown.status_code == 400
    # Other clients are not safelisted by default.
    web = httpx.post(
        product["router"],
        json={"query": "{ me { handle } }"},
        headers={**mobile, "apollographql-client-name": "web"},
    )
    assert web.json() == {"data": {"me": {"handle": "edgy"}}}


async def test_the_safelist_holds_over_websockets_too(product: dict[str, Any]) -> None:
    url = product["router"].replace("http://", "ws://")
    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],
        additional_headers={"apollographql-client-name": "mobile"},
    ) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": f"Bearer {product['token']}"},
                }
            )
        )
        assert json.loads(await socket.recv()) == {"type": "connection_ack"}
        await socket.send(
            json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "{ me { email } }"}})
        )
        refused = json.loads(await socket.recv())
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "OPERATION_NOT_IN_SAFELIST"


def test_introspection_can_be_switched_off(tmp_path: Path) -> None:
    with (
        failing_subgraph("stable", "ok", tmp_path) as stable,
        run_router(
            FAILING,
            {"stable": stable, "flaky": "http://127.0.0.1:9/graphql"},
            tmp_path,
            "--no-introspection",
        ) as router,
    ):
        refused = httpx.post(router, json={"query": "{ __schema { types { name } } }"}).json()
        assert refused["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
        assert "data" not in refused
        assert httpx.post(router, json={"query": "{ stable __typename }"}).json() == {
            "data": {"stable": "stable", "__typename": "Query"}
        }


def test_router_logs_carry_the_request_id_but_never_variables_or_tokens(
    product: dict[str, Any],
) -> None:
    secret = "correct horse battery staple 7d1f"
    response = httpx.post(
        product["router"],
        json={
            "query": "mutation L($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            "variables": {"e": "edge@example.com", "p": secret},
        },
        headers={"authorization": f"Bearer {product['token']}", "x-request-id": "trace-edge-logs"},
    )
    assert response.headers["x-request-id"] == "trace-edge-logs"
    time.sleep(0.5)
    router_log = "".join(p.read_text() for p in product["logs"].glob("router-*.log"))
    assert '"request_id":"trace-edge-logs"' in router_log
    assert '"request_id":"trace-edge-logs"' in product["auth"].log()  # forwarded to the subgraph
    for leaked in (secret, product["token"], product["token"].split(".")[2]):
        assert leaked not in router_log


def test_rate_limits_and_operation_limits_bite(tmp_path: Path) -> None:
    with (
        failing_subgraph("stable", "ok", tmp_path) as stable,
        run_router(
            FAILING,
            {"stable": stable, "flaky": "http://127.0.0.1:9/graphql"},
            tmp_path,
            REELGRAPH_RATE_LIMIT_IP="4/minute",
            REELGRAPH_LIMIT_MAX_DEPTH="3",
            REELGRAPH_LIMIT_MAX_ALIASES="2",
            REELGRAPH_LIMIT_MAX_DOCUMENT_BYTES="2000",
            REELGRAPH_LIMIT_MAX_COST="12",
        ) as router,
    ):
        deep = httpx.post(
            router,
            json={
                "query": "{ things { id name } t: things { id } u: things { id } v: things { id } }"
            },
        ).json()
        assert deep["errors"][0]["extensions"]["code"] == "MAX_ALIASES_EXCEEDED"
        big = httpx.post(router, json={"query": "{ stable " + " " * 3000 + "}"}).json()
        assert big["errors"][0]["extensions"]["code"] == "DOCUMENT_TOO_LARGE"
        costly = httpx.post(router, json={"query": "{ things { id name } }"}).json()  # 1 + 20 x 2
        assert costly["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
        fine = httpx.post(router, json={"query": "{ stable }"})
        assert fine.json() == {"data": {"stable": "stable"}}
        limited = httpx.post(router, json={"query": "{ stable }"})
        assert limited.status_code == 429
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) >= 1
        other_client = httpx.post(
            router, json={"query": "{ stable }"}, headers={"x-forwarded-for": "203.0.113.9"}
        )
        assert other_client.status_code == 200  # a different address has its own bucket
