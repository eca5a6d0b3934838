"""Run the test bed and Hive Gateway (the reference router) as local processes.

- `run_testbed()` starts every test-bed subgraph on a free 127.0.0.1 port and yields
  `{name: "http://127.0.0.1:PORT/graphql"}`.
- `run_hive_gateway(supergraph_sdl, port)` serves a supergraph (whose subgraph URLs are
  already the running ones, see `testbed.compose.with_urls`) with Hive Gateway on
  127.0.0.1:`port` and yields its GraphQL endpoint URL.

Hive Gateway is installed once per machine into `/tmp/reelgraph-npm-cache/hive-<version>`
with the `@graphql-tools/batch-execute` override below. Its config disables GraphiQL and the
landing page (no CDN assets), usage reporting and telemetry (nothing is configured, and the
Hive/Apollo/OpenTelemetry variables are removed from its environment), and error masking
(so subgraph error messages reach the response). Subgraph subscriptions go over WebSocket
(graphql-transport-ws at each subgraph's `/graphql`). The `x-testbed-delay-ms` header is
forwarded to subgraphs.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from . import npm
from .testbed import SUBGRAPHS

ROOT = Path(__file__).resolve().parents[2]
HIVE_GATEWAY_VERSION = "2.15.1"
GRAPHQL_JS_VERSION = "16.11.0"
# @graphql-tools/delegate (a dependency of this release) asks for batch-execute ^10.3.2, which
# the npm registry does not serve (its latest is 10.2.0): without this override npm fails.
BATCH_EXECUTE_OVERRIDE = "10.2.0"
START_TIMEOUT_S = 60.0

# Variables that would make the gateway talk to a registry, CDN or collector.
_OUTBOUND_ENV_PREFIXES = ("HIVE_", "APOLLO_", "OTEL_", "OPENTELEMETRY")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: have the child get SIGTERM when the process that started it dies, so a killed
    test run leaves no gateway or subgraph behind. (The kernel ties this to the starting
    *thread*: start the test bed and the gateway from a thread that outlives them.)"""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def hive_gateway_dir() -> Path:
    """The npm install of Hive Gateway (installed on first use, then cached)."""
    return npm.ensure_installed(
        f"hive-{HIVE_GATEWAY_VERSION}",
        {
            "type": "module",
            "dependencies": {
                "@graphql-hive/gateway": HIVE_GATEWAY_VERSION,
                "graphql": GRAPHQL_JS_VERSION,
            },
            "overrides": {"@graphql-tools/batch-execute": BATCH_EXECUTE_OVERRIDE},
        },
    )


def _gateway_config(port: int) -> str:
    config = {
        "supergraph": "./supergraph.graphql",
        "host": "127.0.0.1",
        "port": port,
        "graphiql": False,
        "landingPage": False,
        "maskedErrors": False,
        "logging": "warn",
        "transportEntries": {
            "*.http": {"options": {"subscriptions": {"kind": "ws", "location": "/graphql"}}}
        },
    }
    return (
        "// Written by tests/federation/hive.py\n"
        f"const config = {json.dumps(config, indent=2)};\n"
        "config.propagateHeaders = {\n"
        "  fromClientToSubgraphs({ request }) {\n"
        "    const headers = {};\n"
        "    for (const name of ['x-testbed-delay-ms', 'authorization']) {\n"
        "      const value = request.headers.get(name);\n"
        "      if (value) headers[name] = value;\n"
        "    }\n"
        "    return headers;\n"
        "  },\n"
        "};\n"
        "export const gatewayConfig = config;\n"
    )


def _wait_until_up(
    url: str, process: subprocess.Popen[bytes], log: Path, ready: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text(errors='replace')}")
        try:
            if ready == "health":
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            else:
                response = httpx.post(url, json={"query": "{ __typename }"}, timeout=2)
                if response.status_code == 200 and response.json().get("data"):
                    return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass  # killed below: a slow stop is not a test failure
    finally:  # timed out, or interrupted while waiting
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def _subgraph_process(name: str, port: int, log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.federation.testbed.serve", name, "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        yield process
    finally:
        _stop(process)


@contextmanager
def run_testbed(log_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """Start every test-bed subgraph; yield name -> GraphQL URL; stop them all."""
    with ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="testbed-")))
        started: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
        for name in SUBGRAPHS:
            port = free_port()
            started[name] = (port, stack.enter_context(_subgraph_process(name, port, log_dir)))
        for name, (port, process) in started.items():
            _wait_until_up(
                f"http://127.0.0.1:{port}/health",
                process,
                log_dir / f"{name}.log",
                "health",
                START_TIMEOUT_S,
            )
        yield {name: f"http://127.0.0.1:{port}/graphql" for name, (port, _) in started.items()}


_client: httpx.Client | None = None


def _http() -> httpx.Client:
    # One pooled client: a fresh httpx client per call costs an SSL context each time.
    global _client
    if _client is None:
        _client = httpx.Client(timeout=10)
    return _client


def reset_testbed(urls: Mapping[str, str]) -> None:
    """Put every subgraph back to its fixture state and empty its request log."""
    for url in urls.values():
        _http().post(url.removesuffix("/graphql") + "/reset").raise_for_status()


def subgraph_requests(url: str) -> list[dict[str, object]]:
    """The operations one subgraph executed since the last reset."""
    response = _http().get(url.removesuffix("/graphql") + "/requests")
    response.raise_for_status()
    log: list[dict[str, object]] = response.json()
    return log


@contextmanager
def run_hive_gateway(supergraph_sdl: str, port: int) -> Iterator[str]:
    """Serve `supergraph_sdl` with Hive Gateway on 127.0.0.1:`port`; yield its GraphQL URL."""
    install = hive_gateway_dir()
    with tempfile.TemporaryDirectory(prefix="hive-gateway-") as tmp:
        work = Path(tmp)
        (work / "supergraph.graphql").write_text(supergraph_sdl)
        (work / "gateway.config.mjs").write_text(_gateway_config(port))
        log = work / "gateway.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_OUTBOUND_ENV_PREFIXES) and k not in {"DEBUG", "PORT", "HOST"}
        }
        env["NODE_ENV"] = "production"
        command = [
            npm.node(),
            str(install / "node_modules" / "@graphql-hive" / "gateway" / "dist" / "bin.js"),
            "supergraph",
            str(work / "supergraph.graphql"),
            "--config-path",
            str(work / "gateway.config.mjs"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command,
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            url = f"http://127.0.0.1:{port}/graphql"
            _wait_until_up(url, process, log, "graphql", START_TIMEOUT_S)
            yield url
        finally:
            _stop(process)
