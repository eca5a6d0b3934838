"""Router processes over real subgraph processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from supergraph.compose import SubgraphSource, compose
from supergraph.compose.fetch import fetch_sdl
from supergraph.config import env_name
from tests.support.processes import ROOT, free_port


@contextmanager
def process(
    argv: list[str], health: str, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited early:\n{log.read_text()}")
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def run_router(
    supergraph: Path, subgraph_urls: Mapping[str, str], log_dir: Path, *extra_args: str, **env: str
) -> Iterator[str]:
    port = free_port()
    router_env = {f"REELGRAPH_SUBGRAPH_{env_name(n)}_URL": url for n, url in subgraph_urls.items()}
    # Tests send from one address faster than any real client: rate limits are off unless a
    # test turns them on.
    router_env.update({"REELGRAPH_RATE_LIMIT_IP": "off", "REELGRAPH_RATE_LIMIT_USER": "off"})
    router_env.update(env)
    argv = [
        sys.executable,
        "-m",
        "reelgraph",
        "router",
        "--supergraph",
        str(supergraph),
        "--port",
        str(port),
        *extra_args,
    ]
    with process(
        argv, f"http://127.0.0.1:{port}/health", log_dir / f"router-{port}.log", router_env
    ):
        yield f"http://127.0.0.1:{port}/graphql"


@contextmanager
def failing_subgraph(name: str, mode: str, log_dir: Path) -> Iterator[str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "tests.supergraph.failing.serve",
        name,
        "--port",
        str(port),
        "--mode",
        mode,
    ]
    with process(argv, f"http://127.0.0.1:{port}/health", log_dir / f"{name}-{mode}-{port}.log"):
        yield f"http://127.0.0.1:{port}/graphql"


@pytest.fixture(scope="session")
def testbed() -> Iterator[dict[str, str]]:
    from tests.federation.hive import run_testbed

    with run_testbed() as urls:
        yield urls


@pytest.fixture(scope="session")
def testbed_router(
    testbed: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    supergraph = ROOT / "tests" / "federation" / "testbed" / "supergraph.graphql"
    with run_router(supergraph, testbed, tmp_path_factory.mktemp("router"), "--dev") as url:
        yield url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("subscriptions")
    with (
        failing_subgraph("stable", "ok", logs) as stable,
        failing_subgraph("events", "ok", logs) as events,
    ):
        sources = [
            SubgraphSource(name, url, fetch_sdl(url))
            for name, url in (("stable", stable), ("events", events))
        ]
        supergraph = logs / "supergraph.graphql"
        supergraph.write_text(compose(sources))
        with run_router(supergraph, {"stable": stable, "events": events}, logs) as router:
            yield {"router": router, "events": events, "stable": stable}
