"""A real `moto_server` S3 endpoint for tests: `from tests.support.s3 import moto_s3_endpoint`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

# moto does not check signatures, but botocore refuses to sign without some credentials.
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"

_START_TIMEOUT = 30.0


def _moto_server_command() -> str:
    beside_python = Path(sys.executable).parent / "moto_server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server not found; install moto[server]")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def run_moto_server(attempts: int = 3) -> Iterator[str]:
    """Start `moto_server` on a free local port and yield its URL; stop it on exit.

    The port is picked before the server binds it, so another process may take it in between:
    a server that exits during start-up is retried on a new port.
    """
    last_error = ""
    for _ in range(attempts):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(
                [_moto_server_command(), "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                if _wait_until_up(process, url):
                    yield url
                    return
                log.seek(0)
                last_error = log.read().decode(errors="replace")[-2000:]
            finally:
                _stop(process)
    raise RuntimeError(f"moto_server did not start after {attempts} attempts:\n{last_error}")


def _wait_until_up(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        return True  # any HTTP answer means it is serving
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """The URL of a `moto_server` shared by the whole test session; use a fresh bucket per test."""
    with run_moto_server() as url:
        yield url
