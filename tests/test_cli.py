"""The `reelgraph` command as an operator runs it: real processes, real files, real signals."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from reelgraph.services import service_names, up_processes
from tests.support.processes import free_port

BIN = Path(sys.executable).parent / "reelgraph"
NAMES = service_names()
CHOICES = ", ".join(f"'{name}'" for name in NAMES)
# `up` prefixes each child's lines with its name, padded to the longest.
PROCESSES = [name for name, _ in up_processes()]
WIDTH = max(len(name) for name in PROCESSES)
PREFIXES = tuple(f"{name:<{WIDTH}} | " for name in PROCESSES)
COMMAND = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "reelgraph"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGRAPH_")}
    env.update(extra)
    return env


def reelgraph(
    *args: str, data_dir: Path, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=data_dir,
        env=clean_env(REELGRAPH_DATA_DIR=str(data_dir), **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["Usage: reelgraph", "up", "serve", "migrate", "auth"]),
        (("up",), ["Usage: reelgraph up", "supervised"]),
        (("media-worker",), ["Usage: reelgraph media-worker", "transcode"]),
        (("serve",), ["Usage: reelgraph serve", f"{{{'|'.join(NAMES)}}}", "--host", "--port"]),
        (("migrate",), ["Usage: reelgraph migrate", f"[{'|'.join(NAMES)}]...", "migrations"]),
        (("auth",), ["Usage: reelgraph auth", "rotate-key", "set-role"]),
        (("auth", "rotate-key"), ["Usage: reelgraph auth rotate-key", "signing key"]),
        (("auth", "set-role"), ["Usage: reelgraph auth set-role", "HANDLE {VIEWER|CREATOR|ADMIN}"]),
    ],
    ids=[
        "reelgraph",
        "up",
        "media-worker",
        "serve",
        "migrate",
        "auth",
        "auth-rotate-key",
        "auth-set-role",
    ],
)
def test_help_of_every_command_exits_zero_and_describes_it(
    args: tuple[str, ...], expected: list[str], tmp_path: Path
) -> None:
    result = reelgraph(*args, "--help", data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout
    # --help must not do the command's work.
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("serve", "nosuch"), f"'nosuch' is not one of {CHOICES}"),
        (("serve",), "Missing argument"),
        (("migrate", "nosuch"), f"'nosuch' is not one of {CHOICES}"),
        (("auth", "set-role", "alice", "ROOT"), "'ROOT' is not one of"),
        (("nosuch",), "No such command 'nosuch'"),
    ],
    ids=["serve-unknown-service", "serve-no-service", "migrate-unknown", "bad-role", "no-command"],
)
def test_bad_arguments_are_a_usage_error(
    args: tuple[str, ...], complaint: str, tmp_path: Path
) -> None:
    result = reelgraph(*args, data_dir=tmp_path)

    assert result.returncode == 2
    assert "Usage: reelgraph" in result.stderr
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_migrate_creates_the_auth_database_in_the_data_dir(tmp_path: Path) -> None:
    result = reelgraph("migrate", data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "auth: up to date" in result.stdout
    assert "video: up to date" in result.stdout
    assert (tmp_path / "video.db").is_file()
    with sqlite3.connect(tmp_path / "auth.db") as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"users", "refresh_tokens", "login_failures", "outbox", "alembic_version"} <= tables
    assert version == ("0001",)

    again = reelgraph("migrate", "auth", data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "auth: up to date" in again.stdout


def test_set_role_of_an_unknown_handle_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = reelgraph("auth", "set-role", "ghost", "ADMIN", data_dir=tmp_path)

    assert result.returncode != 0
    assert result.returncode == 1
    assert "no user with handle 'ghost'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "is now" not in result.stdout


def test_set_role_changes_the_role_and_queues_a_user_updated_event(tmp_path: Path) -> None:
    assert reelgraph("migrate", data_dir=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "auth.db") as conn:
        conn.execute(
            "INSERT INTO users (id, email, email_normalized, handle, handle_normalized,"
            " display_name, role, password_hash, created_at, updated_at) VALUES"
            " ('u-1', 'Ann@example.com', 'ann@example.com', 'Ann', 'ann', 'Ann', 'VIEWER',"
            " 'x', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"
        )

    result = reelgraph("auth", "set-role", "ANN", "ADMIN", data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "ANN is now ADMIN" in result.stdout
    with sqlite3.connect(tmp_path / "auth.db") as conn:
        role, updated_at = conn.execute("SELECT role, updated_at FROM users").fetchone()
        events = conn.execute("SELECT topic, payload FROM outbox").fetchall()
    assert role == "ADMIN"
    assert not updated_at.startswith("2026-01-01")
    assert [(topic, orjson.loads(payload)["role"]) for topic, payload in events] == [
        ("auth.user.updated", "ADMIN")
    ]


def test_rotate_key_makes_a_new_current_key_each_time(tmp_path: Path) -> None:
    first = reelgraph("auth", "rotate-key", data_dir=tmp_path)
    second = reelgraph("auth", "rotate-key", data_dir=tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    kids = [r.stdout.strip().removeprefix("new signing key: ") for r in (first, second)]
    assert all(r.stdout.startswith("new signing key: ") for r in (first, second))
    assert kids[0] != kids[1]
    assert (tmp_path / "auth" / "keys").is_dir()


# The supervisor.


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def serve_children(pid: int, service: str) -> list[int]:
    return [
        child
        for child in children_of(pid)
        if cmdline(child)[-2:] == [service, ""] and "serve" in cmdline(child)
    ]


def serve_auth_children(pid: int) -> list[int]:
    return serve_children(pid, "auth")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Exited but not reaped yet counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Up:
    """`reelgraph up` with its output collected line by line."""

    def __init__(self, data_dir: Path, port: int, router_port: int) -> None:
        self.port = port
        self.router_port = router_port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*COMMAND, "up"],
            cwd=data_dir,
            env=clean_env(
                REELGRAPH_DATA_DIR=str(data_dir),
                REELGRAPH_AUTH_PORT=str(port),
                # Every other service on a port of its own, away from anything else running.
                **{
                    f"REELGRAPH_{name.upper()}_PORT": str(free_port())
                    for name in NAMES
                    if name != "auth"
                },
                REELGRAPH_ROUTER_PORT=str(router_port),
                REELGRAPH_BCRYPT_ROUNDS="4",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def output(self) -> str:
        if self.process.poll() is not None:
            self._reader.join(timeout=1)
        return "\n".join(self.lines)

    def wait_for(self, condition: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.process.poll() is not None:
                pytest.fail(f"reelgraph up exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.1)
        pytest.fail(f"{condition} within {timeout}s; output:\n{self.output()}")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path, free_port(), free_port())
    seen: set[int] = set()
    try:
        yield running
    finally:
        if running.process.poll() is None:
            seen.update(serve_auth_children(running.process.pid))
            seen.update(serve_children(running.process.pid, "video"))
            running.process.kill()
            running.process.wait(5)
        for child in seen:
            if alive(child):
                os.kill(child, signal.SIGKILL)


def test_up_supervises_restarts_a_killed_service_and_stops_cleanly_on_sigint(up: Up) -> None:
    up.wait_for("auth did not become healthy", lambda: healthy(up.port), timeout=30)
    up.wait_for("the router did not become healthy", lambda: healthy(up.router_port), timeout=30)
    # The router reaches auth wherever this configuration put it.
    routed = httpx.post(
        f"http://127.0.0.1:{up.router_port}/graphql",
        json={
            "query": 'mutation { register(input: {email: "up@example.com", password: "long enough", handle: "upper", displayName: "Up"}) { user { handle } } }'
        },
        timeout=10,
    ).json()
    assert routed == {"data": {"register": {"user": {"handle": "upper"}}}}, routed
    # The router verifies tokens against auth's JWKS before calling anything.
    forged = httpx.post(
        f"http://127.0.0.1:{up.router_port}/graphql",
        json={"query": "{ me { handle } }"},
        headers={"authorization": "Bearer forged.token.value"},
        timeout=10,
    )
    assert forged.status_code == 401, forged.text
    (first,) = serve_auth_children(up.process.pid)

    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        current = serve_auth_children(up.process.pid)
        return bool(current) and first not in current and healthy(up.port)

    up.wait_for("the supervisor did not restart auth", restarted, timeout=15)
    (second,) = serve_auth_children(up.process.pid)
    assert not alive(first)

    up.process.send_signal(signal.SIGINT)
    try:
        code = up.process.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reelgraph up did not stop within 20 s:\n{up.output()}")

    output = up.output()
    assert code == 0, output
    assert not alive(second)
    assert not listening(up.port)
    # Every line a child wrote carries its name; the service logs JSON.
    child_lines = [line for line in up.lines if line.strip() not in ("stopping…", "")]
    assert child_lines, output
    assert all(line.startswith(PREFIXES) for line in child_lines), output
    logged = [orjson.loads(line.split(" | ", 1)[1]) for line in child_lines if "| {" in line]
    assert {entry["service"] for entry in logged} == set(PROCESSES)
    assert all(
        entry["service"] == line.split(" ", 1)[0]
        for entry, line in zip(logged, [ln for ln in child_lines if "| {" in ln], strict=True)
    )
    assert f"{'auth':<{WIDTH}} | exited with -9; restarting in 1s" in up.lines
    assert not listening(up.router_port)
    assert "\033[" not in output  # not a terminal: no colours
