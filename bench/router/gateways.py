"""Start the two gateways as separate processes and find their process trees.

- Ours: `.venv/bin/reelgraph router --supergraph FILE --port N [--no-dedupe]`, exactly as the
  CLI runs it (one uvicorn process, default settings).
- Hive Gateway: through `tests.federation.hive.run_hive_gateway`, whose generated config is
  extended, never replaced: the bench writes hive.py's own config to a file and serves a
  wrapper module that imports it and only sets `deduplicateInflightRequests` on every HTTP
  subgraph transport (`transportEntries["*.http"].options`). That option is read by
  `@graphql-tools/executor-http` (`handleInflightRequest`: dedupe unless it is `false`, and
  only for queries); the default is on. Worker processes come from the `FORK` environment
  variable, which hive.py passes through (`--fork`, default 1 in this release).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx

from bench.router import procstat
from tests.federation import hive, npm

ROOT = Path(__file__).resolve().parents[2]
REELGRAPH = ROOT / ".venv" / "bin" / "reelgraph"
HIVE_BIN_MARK = "@graphql-hive/gateway/dist/bin.js"
START_TIMEOUT_S = 60.0
# hive.py's own config writer, taken before any patching (gateways may be nested)
_HIVE_CONFIG = hive._gateway_config


@dataclass(frozen=True)
class RunningGateway:
    label: str
    url: str
    pid: int  # root of the process tree that serves it


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text(errors='replace')}")


@contextmanager
def reelgraph_router(
    supergraph: Path,
    port: int,
    *,
    dedupe: bool,
    log: Path,
    env: dict[str, str] | None = None,
    unset_prefixes: tuple[str, ...] = (),
) -> Iterator[RunningGateway]:
    """`env` is added to this process's environment; variables starting with one of
    `unset_prefixes` are left out first (so a setting is at its default whatever the shell
    exports)."""
    command = [str(REELGRAPH), "router", "--supergraph", str(supergraph), "--port", str(port)]
    inherited = {
        k: v for k, v in os.environ.items() if not (unset_prefixes and k.startswith(unset_prefixes))
    }
    if not dedupe:
        command.append("--no-dedupe")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**inherited, **(env or {})},
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", process, log)
        yield RunningGateway("reelgraph", f"http://127.0.0.1:{port}/graphql", process.pid)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def hive_config_wrapper(base_config: Path, *, dedupe: bool) -> str:
    """A gateway config module: hive.py's config plus the dedupe switch on HTTP transports."""
    return (
        "// Written by bench/router/gateways.py: hive.py's config + deduplicateInflightRequests\n"
        f"import {{ gatewayConfig as base }} from {json.dumps(base_config.as_uri())};\n"
        "const entries = { ...(base.transportEntries ?? {}) };\n"
        'const http = entries["*.http"] ?? {};\n'
        'entries["*.http"] = {\n'
        "  ...http,\n"
        f"  options: {{ ...(http.options ?? {{}}), deduplicateInflightRequests: "
        f"{json.dumps(dedupe)} }},\n"
        "};\n"
        "export const gatewayConfig = { ...base, transportEntries: entries };\n"
    )


def _patched_config(
    original: Callable[[int], str], workdir: Path, *, dedupe: bool
) -> Callable[[int], str]:
    def config(port: int) -> str:
        base = workdir / f"hive-base-{port}.config.mjs"
        base.write_text(original(port))
        return hive_config_wrapper(base, dedupe=dedupe)

    return config


def _exited(pid: int) -> bool:
    fields = procstat.stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def _terminate_tree(root: int, timeout: float = 20.0) -> None:
    """SIGTERM `root` (which we started); SIGKILL its tree if it outlives `timeout`."""
    tree = procstat.process_tree(root)
    os.kill(root, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _exited(root):
            return
        time.sleep(0.1)
    for pid in reversed(tree):
        if not _exited(pid):
            os.kill(pid, signal.SIGKILL)


def _hive_root_pid(port: int) -> int:
    candidates = [
        pid
        for pid in procstat.descendants_matching(os.getpid(), HIVE_BIN_MARK)
        if f"--port {port}".encode()
        in (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    ]
    parents = procstat.parent_map()
    # cluster workers run the same command line; the primary's parent is not one of them
    roots = [pid for pid in candidates if parents.get(pid) not in candidates]
    if len(roots) != 1:
        raise RuntimeError(f"cannot tell the Hive Gateway process for port {port}: {candidates}")
    return roots[0]


@contextmanager
def hive_gateway(
    supergraph_sdl: str, port: int, *, dedupe: bool, fork: int, workdir: Path
) -> Iterator[RunningGateway]:
    patched = _patched_config(_HIVE_CONFIG, workdir, dedupe=dedupe)
    saved_fork = os.environ.get("FORK")
    os.environ["FORK"] = str(fork)
    try:
        with (
            mock.patch.object(hive, "_gateway_config", patched),
            hive.run_hive_gateway(supergraph_sdl, port) as url,
        ):
            label = "hive" if fork == 1 else f"hive (fork {fork})"
            root = _hive_root_pid(port)
            try:
                yield RunningGateway(label, url, root)
            finally:
                # hive.py gives a gateway 10 s to stop, then raises; a cluster primary can
                # take longer, so stop the tree here first (hive.py then only reaps it)
                _terminate_tree(root)
    finally:
        if saved_fork is None:
            os.environ.pop("FORK", None)
        else:
            os.environ["FORK"] = saved_fork


def hive_version() -> str:
    package = hive.hive_gateway_dir() / "node_modules" / "@graphql-hive" / "gateway"
    return str(json.loads((package / "package.json").read_text())["version"])


def node_version() -> str:
    done = subprocess.run([npm.node(), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()
