"""Load generation with wrk: a Lua script POSTing one JSON body, results read as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

WRK_MARK = "WRK_JSON "

_LUA = """-- written by bench/router/load.py
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
%(headers)swrk.body = [==[%(body)s]==]
%(check)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(mark)s{\\"requests\\": %%f, \\"duration_us\\": %%f, \\"connect\\": %%f, " ..
    "\\"read\\": %%f, \\"write\\": %%f, \\"status\\": %%f, \\"timeout\\": %%f, " ..
    "\\"p50_us\\": %%f, \\"p90_us\\": %%f, \\"p99_us\\": %%f, \\"mean_us\\": %%f, " ..
    "\\"max_us\\": %%f, \\"bad_bodies\\": %%f}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, bad_bodies()))
end
"""

# Without an expected body, wrk does not hand responses to the script at all.
_NO_CHECK = """bad_bodies = function() return -1 end
"""

# With one, every response body is compared byte for byte (each wrk thread counts in its own
# Lua state; `done` runs in the main one and adds the threads' counts up).
_CHECK = """local expected = [==[%(expected)s]==]
local threads = {}
mismatches = 0
setup = function(thread) table.insert(threads, thread) end
response = function(status, headers, body)
  if body ~= expected then mismatches = mismatches + 1 end
end
bad_bodies = function()
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("mismatches") end
  return total
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


def write_script(
    path: Path,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    expect_body: bytes | None = None,
) -> Path:
    """A wrk script POSTing `body` with `headers` (e.g. `Authorization`) on every request.
    With `expect_body`, every response body must be exactly those bytes; the others are
    counted (`WrkResult.bad_bodies`)."""
    text = body.decode()
    pairs = list((headers or {}).items())
    expected = expect_body.decode() if expect_body is not None else ""
    parts = [text, expected, *(part for pair in pairs for part in pair)]
    if any("]==]" in part for part in parts):
        raise ValueError("request, header or expected body contains the Lua terminator ]==]")
    if expected.startswith(("\n", "\r")):
        raise ValueError("a Lua long string drops a leading newline")
    extra = "".join(f"wrk.headers[ [==[{name}]==] ] = [==[{value}]==]\n" for name, value in pairs)
    check = _CHECK % {"expected": expected} if expect_body is not None else _NO_CHECK
    path.write_text(_LUA % {"body": text, "headers": extra, "check": check, "mark": WRK_MARK})
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
    bad_bodies: int | None = None  # responses unlike the expected body; None: not checked

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx + (self.bad_bodies or 0)


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
        bad_bodies=int(raw["bad_bodies"]) if raw["bad_bodies"] >= 0 else None,
    )
