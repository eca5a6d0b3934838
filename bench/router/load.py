"""Load generation with wrk: a Lua script POSTing one JSON body, results read as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK_MARK = "WRK_JSON "

_LUA = """-- written by bench/router/load.py
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = [==[%(body)s]==]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(mark)s{\\"requests\\": %%f, \\"duration_us\\": %%f, \\"connect\\": %%f, " ..
    "\\"read\\": %%f, \\"write\\": %%f, \\"status\\": %%f, \\"timeout\\": %%f, " ..
    "\\"p50_us\\": %%f, \\"p90_us\\": %%f, \\"p99_us\\": %%f, \\"mean_us\\": %%f, " ..
    "\\"max_us\\": %%f}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


class WrkMissing(RuntimeError):
    """wrk is not installed (apt-get install -y wrk)."""


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not on PATH: apt-get update && apt-get install -y wrk")
    return path


def wrk_version() -> str:
    done = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def write_script(path: Path, body: bytes) -> Path:
    text = body.decode()
    if "]==]" in text:
        raise ValueError("request body contains the Lua long-string terminator ]==]")
    path.write_text(_LUA % {"body": text, "mark": WRK_MARK})
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    socket_errors: int  # connect + read + write + timeout
    non_2xx: int  # wrk's "status" errors: HTTP status > 399

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx


def run_wrk(
    url: str, script: Path, *, connections: int, duration_s: float, threads: int = 1
) -> WrkResult:
    command = [
        wrk_path(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(WRK_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[len(WRK_MARK) :])
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        socket_errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
        non_2xx=int(raw["status"]),
    )
