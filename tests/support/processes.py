"""Real service processes for integration tests: each gets its own data dir, database and bus,
is reached over HTTP, and is stopped with SIGTERM as an operator would stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SERVER = os.environ.get(
    "REELGRAPH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REELGRAPH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# (database, bus) combinations every integration suite runs against.
BACKENDS = [("sqlite", "local"), ("postgres", "redis"), ("sqlite", "redis"), ("postgres", "local")]
BACKEND_IDS = [f"{db}+{bus}" for db, bus in BACKENDS]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _drop_databases(prefix: str) -> None:
    conn = await asyncpg.connect(POSTGRES_SERVER)
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
        )
        for row in rows:
            name = row["datname"].replace('"', '""')
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Environment:
    """The REELGRAPH_* settings one test stack shares between its processes."""

    data_dir: Path
    database: str
    bus: str
    env: dict[str, str]
    db_prefix: str | None

    def settings(self) -> Any:
        from subgraphs.kernel.settings import Settings

        return Settings(
            **{
                k[len("REELGRAPH_") :].lower(): v
                for k, v in self.env.items()
                if k.startswith("REELGRAPH_")
            }
        )


@contextmanager
def environment(tmp: Path, *, database: str, bus: str, **extra: str) -> Iterator[Environment]:
    token = uuid.uuid4().hex[:10]
    env = {
        "REELGRAPH_DATA_DIR": str(tmp),
        "REELGRAPH_BUS": bus,
        "REELGRAPH_REDIS_URL": REDIS_URL,
        "REELGRAPH_BUS_NAMESPACE": f"test-{token}",
        "REELGRAPH_BCRYPT_ROUNDS": "4",
        "REELGRAPH_LOG_LEVEL": "INFO",
        **extra,
    }
    db_prefix = None
    if database == "postgres":
        db_prefix = f"rgtest_{token}"
        base = POSTGRES_SERVER.rsplit("/", 1)[0]
        env["REELGRAPH_DATABASE_URL"] = f"{base}/{db_prefix}"
    try:
        yield Environment(tmp, database, bus, env, db_prefix)
    finally:
        if db_prefix:
            asyncio.run(_drop_databases(db_prefix))
        if bus == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"test-{token}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


class ServiceProcess:
    """`reelgraph serve <name>` as a child process with its log captured to a file."""

    def __init__(
        self,
        name: str,
        environment: Environment,
        *,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.environment = environment
        # Settings of this process only (e.g. one replica configured differently).
        self.extra_env = dict(extra_env or {})
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = environment.data_dir / f"{name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        env = {
            **os.environ,
            **self.environment.env,
            **self.extra_env,
            f"REELGRAPH_{self.name.upper()}_PORT": str(self.port),
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelgraph", "serve", self.name],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def run_cli(
    environment: Environment, *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reelgraph", *args],
        cwd=ROOT,
        env={**os.environ, **environment.env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class GraphQLClient:
    """A small GraphQL-over-HTTP client that keeps the raw response for header checks."""

    def __init__(self, url: str, *, client_ip: str | None = None) -> None:
        self.url = url
        # Each test speaks from its own address (through the trusted-proxy header) so
        # per-IP login throttling in one test cannot spill into another.
        # (IPv6 documentation prefix: only ever a header value, never a destination.)
        self.client_ip = client_ip or f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
        self.http = httpx.AsyncClient(timeout=30)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        sent = {"x-forwarded-for": self.client_ip, **(headers or {})}
        if token:
            sent["authorization"] = f"Bearer {token}"
        response = await self.http.post(
            self.url, json={"query": query, "variables": variables or {}}, headers=sent
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def close(self) -> None:
        await self.http.aclose()


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
