"""What the router's edge features cost per request: our router alone, on the canned
subgraphs of `bench.router.run`, with the edge off, on, and on with APQ hash-only requests.

    .venv/bin/python -m bench.router.edge [--duration S] [--warmup S] [--quick] [--repeat N]

- **edge off**: rate limits `off`, every operation limit `0`, no JWKS, no `Authorization`.
- **edge on**: a real auth service (sqlite, local bus) issues an access token by
  `register`; the router verifies it against the service's JWKS on every request
  (`Authorization: Bearer ...` from wrk); rate limits `100000/second` per user and per
  address in memory (never reached, but counted); operation limits and persisted queries at
  their defaults.
- **edge on + APQ**: the same router; the query is registered once (text + hash), then the
  client sends only `extensions.persistedQuery.sha256Hash`, as Apollo's mobile clients do.

Request ids, security headers and Prometheus metrics have no switch: every variant pays them.
See bench/README.md. Prints a Markdown report and writes it to bench/router/results-edge.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from jose import jwt

from bench.router.canned import SUPERGRAPH
from bench.router.gateways import RunningGateway, reelgraph_router
from bench.router.load import run_wrk, write_script
from bench.router.queries import QUERIES, BenchQuery
from bench.router.record import load_expected, record, recordings_present
from bench.router.run import (
    Canned,
    Row,
    canned_server,
    check_answer,
    measure,
    reelgraph_settings,
    request_body,
)
from supergraph.edge.persisted_manifest import document_hash
from tests.federation.hive import free_port
from tests.federation.testbed.compose import with_urls
from tests.support.processes import ServiceProcess, environment

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results-edge.md"
_JSON = {"content-type": "application/json", "accept": "application/json"}

# Every router setting the variants depend on is dropped from the inherited environment
# first, so "default" means the router's default whatever the shell exports.
EDGE_PREFIXES = (
    "REELGRAPH_ROUTER_JWKS_URL",
    "REELGRAPH_JWKS_",
    "REELGRAPH_JWT_",
    "REELGRAPH_RATE_LIMIT_",
    "REELGRAPH_LIMIT_",
    "REELGRAPH_PERSISTED_",
    "REELGRAPH_APQ_",
    "REELGRAPH_CORS_",
    "REELGRAPH_HSTS",
    "REELGRAPH_TRUSTED_PROXIES",
)
OPERATION_LIMITS = ("DEPTH", "ALIASES", "ROOT_FIELDS", "DOCUMENT_BYTES", "TOKENS", "COST")
EDGE_OFF_ENV = {
    "REELGRAPH_RATE_LIMIT_USER": "off",
    "REELGRAPH_RATE_LIMIT_IP": "off",
    **{f"REELGRAPH_LIMIT_MAX_{name}": "0" for name in OPERATION_LIMITS},
}
RATE_LIMIT_ON = "100000/second"

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { accessToken expiresIn user { id } }
}
"""


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    router: str  # which router process serves it: "off" or "on"
    apq: bool


VARIANTS = (
    Variant("off", "edge off", "off", apq=False),
    Variant("on", "edge on", "on", apq=False),
    Variant("apq", "edge on + APQ", "on", apq=True),
)


# --- the auth service ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    url: str
    token: str
    subject: str
    expires_at: int

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"


@contextmanager
def auth_service(directory: Path, *, token_ttl: int) -> Iterator[Auth]:
    """`reelgraph serve auth` (sqlite, local bus) and one registered user's access token."""
    directory.mkdir(parents=True, exist_ok=True)
    extra = {"REELGRAPH_ACCESS_TOKEN_TTL": str(token_ttl)} if token_ttl != 900 else {}
    with environment(directory, database="sqlite", bus="local", **extra) as env:
        service = ServiceProcess("auth", env).start()
        try:
            tag = os.urandom(5).hex()
            user = {
                "email": f"bench_{tag}@example.com",
                "password": "correct horse battery",
                "handle": f"bench_{tag}",
                "displayName": f"Bench {tag}",
            }
            response = httpx.post(
                f"{service.url}/graphql",
                json={"query": REGISTER, "variables": {"input": user}},
                timeout=30,
            )
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise RuntimeError(f"register failed: HTTP {response.status_code} {body}")
            token = body["data"]["register"]["accessToken"]
            claims = jwt.get_unverified_claims(token)
            yield Auth(service.url, token, str(claims["sub"]), int(claims["exp"]))
        finally:
            if service.stop() != 0:
                print(f"auth service exited badly:\n{service.log()[-2000:]}", file=sys.stderr)


# --- requests -----------------------------------------------------------------------------------


def persisted_query(sha: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


def apq_body(query: BenchQuery) -> bytes:
    """Hash only, as an APQ client sends once the router knows the query."""
    return json.dumps({"extensions": persisted_query(document_hash(query.query))}).encode()


def apq_registration(query: BenchQuery) -> bytes:
    sha = document_hash(query.query)
    return json.dumps({"query": query.query, "extensions": persisted_query(sha)}).encode()


@dataclass(frozen=True)
class Sent:
    body: bytes
    headers: dict[str, str]


def sent(variant: Variant, query: BenchQuery, auth: Auth) -> Sent:
    headers = {} if variant.router == "off" else {"authorization": f"Bearer {auth.token}"}
    return Sent(apq_body(query) if variant.apq else request_body(query), headers)


def post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
    return client.post(url, content=body, headers={**_JSON, **headers})


def expect_answer(response: httpx.Response, expected: Mapping[str, Any], what: str) -> bytes:
    """The response's exact bytes, once they are HTTP 200 and the expected answer."""
    problem = (
        f"HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code != 200
        else check_answer(response.json(), expected)
    )
    if problem:
        raise RuntimeError(f"{what}: {problem}")
    return response.content


def expect_error(response: httpx.Response, status: int, code: str, what: str) -> None:
    body = response.json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
    if response.status_code != status or codes != [code]:
        raise RuntimeError(
            f"{what}: expected HTTP {status} {code}, got {response.status_code} {body}"
        )


def check_edges(
    client: httpx.Client,
    routers: Mapping[str, RunningGateway],
    queries: Sequence[BenchQuery],
    expected: Mapping[str, Any],
    auth: Auth,
) -> dict[tuple[str, str], bytes]:
    """Each router does what its variant says, and every variant answers every query
    correctly, with the same bytes twice. Registers the APQ hashes on the edge-on router.
    Returns the exact response bytes per (variant, query), which wrk then checks on every
    request."""
    off, on = routers["off"].url, routers["on"].url
    bad_token = {"authorization": "Bearer not.a.token"}
    bearer = {"authorization": f"Bearer {auth.token}"}
    first = queries[0]
    # edge on: tokens are verified; edge off: nothing looks at them
    expect_error(
        post(client, on, request_body(first), bad_token), 401, "UNAUTHENTICATED", "edge on"
    )
    expect_answer(
        post(client, off, request_body(first), bad_token), expected[first.name], "edge off"
    )
    # edge on: a deeper operation than the default depth limit (15) is refused; off: not
    # 16 fields deep on the test bed's schema: latestReviews, then 7 x (book, reviews), id
    deep = (
        "query Deep { latestReviews(first: 1) { "
        + "book { reviews(first: 1) { " * 7
        + "id"
        + " } }" * 7
        + " } }"
    )
    deep_body = json.dumps({"query": deep}).encode()
    expect_error(
        post(client, on, deep_body, {**bearer, "accept": "application/graphql-response+json"}),
        400,
        "MAX_DEPTH_EXCEEDED",
        "edge on, 16 deep",
    )
    off_deep = post(client, off, deep_body, {"accept": "application/graphql-response+json"})
    if off_deep.json().get("errors", [{}])[0].get("extensions", {}).get("code") == (
        "MAX_DEPTH_EXCEEDED"
    ):
        raise RuntimeError("edge off still enforces the depth limit")
    answers: dict[tuple[str, str], bytes] = {}
    for query in queries:
        want = expected[query.name]
        # APQ: unknown hash first, then registration (text + hash), then the hash alone
        expect_error(
            post(client, on, apq_body(query), bearer),
            200,
            "PERSISTED_QUERY_NOT_FOUND",
            f"edge on, {query.name} hash before registration",
        )
        expect_answer(
            post(client, on, apq_registration(query), bearer),
            want,
            f"edge on, {query.name} APQ registration",
        )
        for variant in VARIANTS:
            request = sent(variant, query, auth)
            url = routers[variant.router].url
            what = f"{variant.label}, {query.name}"
            one = expect_answer(post(client, url, request.body, request.headers), want, what)
            two = expect_answer(post(client, url, request.body, request.headers), want, what)
            if one != two:
                raise RuntimeError(f"{what}: two answers differ byte for byte")
            answers[(variant.key, query.name)] = one
    return answers


def check_wrk_sends_token(url: str, work: Path, query: BenchQuery) -> None:
    """wrk's script really sends the `Authorization` header: with a malformed token every
    answer of the edge-on router must be a 401 (without the header they would be 200s)."""
    script = write_script(
        work / "bad-token.lua", request_body(query), {"authorization": "Bearer not.a.token"}
    )
    result = run_wrk(url, script, connections=1, duration_s=1)
    if result.requests == 0 or result.non_2xx != result.requests:
        raise RuntimeError(f"wrk with a bad token: {result.non_2xx}/{result.requests} refused")


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    settings: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def render(report: Report) -> str:
    out = ["# Router edge features: what they cost", ""]
    out += [f"- {k}: {v}" for k, v in report.settings.items()]
    out += [
        "",
        "## Results",
        "",
        "Our router only. CPU ms/req: the router process over the measured window "
        "/ requests. Errors: wrk socket errors + non-2xx + response bodies differing from the "
        "verified answer (wrk compares every body byte for byte) + wrong spot-checked bodies "
        "+ canned-subgraph misses. Other CPU: busy CPU not used by the router, the canned "
        "subgraphs or wrk (100% = one core); the auth service counts there, but it is idle "
        "during the cells (the router fetched the JWKS once and caches it).",
        "",
        "| query | conns | variant | req/s | CPU ms/req | p50 ms | p99 ms | peak RSS MiB "
        "| errors | bodies checked | spot checks ok | subgraph req/s | subgraph fetches/req "
        "| other CPU % |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report.rows:
        checked = "n/a" if r.wrk.bad_bodies is None else f"{r.wrk.requests:,}"
        out.append(
            f"| {r.query} | {r.connections} | {r.gateway} | {r.wrk.rps:,.0f} "
            f"| {r.cpu_ms_per_request:.3f} | {r.wrk.p50_ms:.2f} | {r.wrk.p99_ms:.2f} "
            f"| {r.peak_rss_mib:.0f} | {r.errors} | {checked} "
            f"| {r.spot_ok}/{r.spot_ok + r.spot_bad} | {r.subgraph_rps:,.0f} "
            f"| {r.subgraph_rps / r.wrk.rps if r.wrk.rps else 0:.2f} | {r.other_cpu_pct:.0f} |"
        )
    bad = [r for r in report.rows if r.errors]
    if bad:
        out += ["", "### Errors", ""]
        for r in bad:
            out.append(
                f"- {r.gateway} {r.query} c{r.connections}: wrk socket errors "
                f"{r.wrk.socket_errors}, non-2xx {r.wrk.non_2xx}, wrong bodies (wrk) "
                f"{r.wrk.bad_bodies}, wrong spot checks {r.spot_bad} ({r.spot_first_bad}), "
                f"canned misses {r.canned_errors}"
            )
    out += _ratios(report.rows)
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(out) + "\n"


def _ratios(rows: Sequence[Row]) -> list[str]:
    base = {(r.query, r.connections): r for r in rows if r.gateway == VARIANTS[0].label}
    out = [
        "",
        "## Edge on / edge off",
        "",
        "Throughput: 1 = free, below 1 = slower. CPU, p50, p99: above 1 = costlier. "
        "Extra CPU: µs of router CPU per request over edge off.",
        "",
        "| query | conns | variant | throughput | CPU ms/req | extra CPU µs/req | p50 | p99 |",
        "|---|--:|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        off = base.get((r.query, r.connections))
        if off is None or r is off:
            continue
        out.append(
            f"| {r.query} | {r.connections} | {r.gateway} | {_ratio(r.wrk.rps, off.wrk.rps)} "
            f"| {_ratio(r.cpu_ms_per_request, off.cpu_ms_per_request)} "
            f"| {1000 * (r.cpu_ms_per_request - off.cpu_ms_per_request):+.0f} "
            f"| {_ratio(r.wrk.p50_ms, off.wrk.p50_ms)} | {_ratio(r.wrk.p99_ms, off.wrk.p99_ms)} |"
        )
    return out


NOTES = [
    "edge off: `REELGRAPH_RATE_LIMIT_USER=off`, `REELGRAPH_RATE_LIMIT_IP=off`, "
    "`REELGRAPH_LIMIT_MAX_{DEPTH,ALIASES,ROOT_FIELDS,DOCUMENT_BYTES,TOKENS,COST}=0`, no "
    "JWKS, no `Authorization`. Persisted queries stay at their defaults (the bench sends no "
    "client name, so the `off` mode: full text is run without hashing).",
    f"edge on: `REELGRAPH_ROUTER_JWKS_URL` = the auth service's JWKS, "
    f"`REELGRAPH_RATE_LIMIT_USER` = `REELGRAPH_RATE_LIMIT_IP` = `{RATE_LIMIT_ON}`, "
    "`REELGRAPH_RATE_LIMIT_STORAGE=memory`; operation limits and persisted queries at their "
    "defaults. Every request carries the registered user's access token, so it is verified "
    "(ES256) and counted in that user's moving window.",
    "edge on + APQ: the same router process as edge on; each query was registered once "
    "(text + `sha256Hash`) during the checks, then wrk sends "
    '`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": ...}}}` only.',
    "Checked before the cells: the edge-on router refuses a malformed token (401 "
    "UNAUTHENTICATED) and a 16-deep operation (MAX_DEPTH_EXCEEDED), the edge-off router "
    "ignores both; an unregistered hash is PERSISTED_QUERY_NOT_FOUND; every variant gives "
    "the same bytes twice (those bytes are what wrk then expects); and wrk's script does "
    "send the header (1 s of wrk with a malformed token: every answer a 401). After the "
    "cells every variant is checked again.",
    "Request ids, security headers and Prometheus request/fetch metrics cannot be switched "
    "off, so edge off pays them too: the ratios are the cost of auth + rate limits + "
    "operation limits (+ APQ lookup) on top of them.",
    "Both routers run at once (one idles while the other is measured); variants alternate "
    "order on each repeat.",
    "With in-flight dedupe on, 16 connections sending one identical query share subgraph "
    "fetches; how many depends on how closely requests overlap. A slower edge spreads them "
    "out, so 'subgraph fetches/req' rises with the edge on and the c16 cells charge it some "
    "subgraph work edge off did not do. The c1 cells (no sharing), or a run with "
    "`--no-dedupe`, show the edge's own cost per request.",
]


# --- main -----------------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per cell")
    parser.add_argument("--quick", action="store_true", help="3 s cells, 1 s warm-up")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; median")
    parser.add_argument("--connections", type=_int_list, default=[1, 16])
    parser.add_argument("--queries", default=",".join(q.name for q in QUERIES))
    parser.add_argument(
        "--variants",
        default=",".join(v.key for v in VARIANTS),
        help="off,on,apq (ratios need off)",
    )
    parser.add_argument(
        "--router-log-level", default=None, help="REELGRAPH_LOG_LEVEL for both routers"
    )
    parser.add_argument(
        "--no-dedupe",
        action="store_true",
        help="routers without in-flight dedupe (every request makes its own subgraph fetches)",
    )
    parser.add_argument("--record", action="store_true", help="re-record the subgraphs first")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    return args


def _settings(args: argparse.Namespace, auth_ttl: int) -> dict[str, str]:
    base = reelgraph_settings(args)
    return {
        "date": base["date"],
        "machine": base["machine"],
        "reelgraph": base["reelgraph"].replace("default settings", "edge settings per variant"),
        "auth": (
            "`reelgraph serve auth` (sqlite, local bus), one user registered through its "
            f"`register` mutation; access token TTL {auth_ttl} s"
        ),
        "load": (
            base["load"]
            + f", in-flight dedupe {'off' if args.no_dedupe else 'on'}, {args.repeat} run(s) "
            "per cell (median)"
        ),
        "supergraph": base["supergraph"],
        "queries": base["queries"],
    }


def _subgraphs() -> list[str]:
    from tests.federation.testbed import SUBGRAPHS

    return list(SUBGRAPHS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.record or not recordings_present():
        record()
    expected = load_expected()
    queries = [q for q in QUERIES if q.name in args.queries.split(",")]
    variants = [v for v in VARIANTS if v.key in args.variants.split(",")]
    cells = len(queries) * len(args.connections) * len(variants) * args.repeat
    planned = cells * (args.warmup + args.duration + 3) + 60
    # The default 15 min is plenty for a default run; a long one gets a longer-lived token.
    token_ttl = max(900, int(planned * 1.5))
    report = Report(_settings(args, token_ttl))
    print(f"{cells} cells, about {planned / 60:.1f} min", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        work = Path(tmp)
        with (
            canned_server(work / "canned.log") as canned,
            auth_service(work / "auth", token_ttl=token_ttl) as auth,
            httpx.Client(timeout=30) as client,
        ):
            print(f"auth at {auth.url}, user {auth.subject}", flush=True)
            sdl = with_urls(
                SUPERGRAPH.read_text(), {name: canned.url(name) for name in _subgraphs()}
            )
            supergraph = work / "supergraph.graphql"
            supergraph.write_text(sdl)
            report.rows = run_cells(
                args, supergraph, work, canned, client, queries, variants, expected, auth
            )
    report.settings["run time"] = f"{time.monotonic() - started:.0f} s"
    report.notes += NOTES
    text = render(report)
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 1 if any(r.errors for r in report.rows) else 0


def run_cells(
    args: argparse.Namespace,
    supergraph: Path,
    work: Path,
    canned: Canned,
    client: httpx.Client,
    queries: Sequence[BenchQuery],
    variants: Sequence[Variant],
    expected: Mapping[str, Any],
    auth: Auth,
) -> list[Row]:
    log_env = {"REELGRAPH_LOG_LEVEL": args.router_log_level} if args.router_log_level else {}
    envs = {
        "off": {**EDGE_OFF_ENV, **log_env},
        "on": {
            "REELGRAPH_ROUTER_JWKS_URL": auth.jwks_url,
            "REELGRAPH_RATE_LIMIT_USER": RATE_LIMIT_ON,
            "REELGRAPH_RATE_LIMIT_IP": RATE_LIMIT_ON,
            "REELGRAPH_RATE_LIMIT_STORAGE": "memory",
            **log_env,
        },
    }
    rows: list[Row] = []
    with ExitStack() as stack:
        routers = {
            name: stack.enter_context(
                reelgraph_router(
                    supergraph,
                    free_port(),
                    dedupe=not args.no_dedupe,
                    log=work / f"router-edge-{name}.log",
                    env=env,
                    unset_prefixes=EDGE_PREFIXES,
                )
            )
            for name, env in envs.items()
        }
        for name, router in routers.items():
            print(f"== router, edge {name}: pid {router.pid}", flush=True)
        answers = check_edges(client, routers, queries, expected, auth)
        check_wrk_sends_token(routers["on"].url, work, queries[0])
        for query in queries:
            for connections in args.connections:
                measured: dict[str, list[Row]] = {v.key: [] for v in variants}
                for repeat in range(args.repeat):
                    order = variants if repeat % 2 == 0 else variants[::-1]
                    for variant in order:
                        request = sent(variant, query, auth)
                        gateway = replace(routers[variant.router], label=variant.label)
                        measured[variant.key].append(
                            measure(
                                gateway,
                                canned,
                                query,
                                connections,
                                dedupe=not args.no_dedupe,
                                duration_s=args.duration,
                                warmup_s=args.warmup,
                                expected=expected[query.name],
                                work=work,
                                body=request.body,
                                headers=request.headers,
                                expect_body=answers[(variant.key, query.name)],
                            )
                        )
                for variant in variants:
                    row = _median(measured[variant.key])
                    rows.append(row)
                    print(
                        f"   {variant.label:<14} {query.name} c{connections}: "
                        f"{row.wrk.rps:,.0f} req/s, {row.cpu_ms_per_request:.3f} CPU ms/req, "
                        f"p50 {row.wrk.p50_ms:.2f} ms, p99 {row.wrk.p99_ms:.2f} ms, "
                        f"errors {row.errors}, other CPU {row.other_cpu_pct:.0f}%",
                        flush=True,
                    )
        # still right after all the load
        for variant in variants:
            for query in queries:
                request = sent(variant, query, auth)
                url = routers[variant.router].url
                got = post(client, url, request.body, request.headers)
                expect_answer(got, expected[query.name], f"{variant.label}, {query.name}, after")
    return rows


def _median(runs: list[Row]) -> Row:
    """The run with the median throughput (all its metrics together); errors summed."""
    ordered = sorted(runs, key=lambda r: r.wrk.rps)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(runs) > 1:
        bodies = [r.wrk.bad_bodies for r in runs if r.wrk.bad_bodies is not None]
        chosen.wrk = replace(
            chosen.wrk,
            socket_errors=sum(r.wrk.socket_errors for r in runs),
            non_2xx=sum(r.wrk.non_2xx for r in runs),
            bad_bodies=sum(bodies) if bodies else None,
        )
        chosen.spot_bad = sum(r.spot_bad for r in runs)
        chosen.canned_errors = sum(r.canned_errors for r in runs)
        chosen.spot_first_bad = next((r.spot_first_bad for r in runs if r.spot_first_bad), None)
    return chosen


if __name__ == "__main__":
    sys.exit(main())
