"""Our router and Hive Gateway side by side on canned subgraphs, in one run.

    .venv/bin/python -m bench.router.run [--duration S] [--warmup S] [--quick] [--record]

See bench/README.md for what is measured and how. Prints a Markdown report and writes it
to bench/router/results.md (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.router import procstat
from bench.router.canned import RECORDINGS_DIR, SUPERGRAPH
from bench.router.gateways import (
    RunningGateway,
    hive_gateway,
    hive_version,
    node_version,
    reelgraph_router,
)
from bench.router.load import WrkResult, run_wrk, write_script, wrk_version
from bench.router.queries import QUERIES, BenchQuery
from bench.router.record import load_expected, record, recordings_present
from tests.federation.hive import free_port
from tests.federation.testbed.compose import with_urls

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results.md"
SPOT_CHECK_INTERVAL_S = 0.5
PROBE_CLIENTS = 16
PROBE_DELAY_MS = 100
HEADROOM_MAX_S = 5.0


# --- the canned subgraph server -----------------------------------------------------------------


@dataclass
class Canned:
    base: str
    pid: int
    client: httpx.Client

    def url(self, subgraph: str) -> str:
        return f"{self.base}/{subgraph}/graphql"

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.client.get(f"{self.base}/__stats").json()
        return stats

    def reset(self) -> None:
        self.client.post(f"{self.base}/__reset").raise_for_status()

    def delay(self, ms: int) -> None:
        self.client.post(f"{self.base}/__delay?ms={ms}").raise_for_status()


@contextmanager
def canned_server(log: Path) -> Iterator[Canned]:
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.router.canned", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"canned server exited:\n{log.read_text()}")
                try:
                    if client.get(f"{base}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"canned server did not start:\n{log.read_text()}")
                time.sleep(0.1)
            yield Canned(base, process.pid, client)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- correctness --------------------------------------------------------------------------------


def request_body(query: BenchQuery) -> bytes:
    return json.dumps({"query": query.query}).encode()


def check_answer(answer: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """None if `answer` is the expected response (numbers compare by value: 2 == 2.0)."""
    if answer == expected:
        return None
    return f"got {json.dumps(answer)[:400]}"


def verify(
    client: httpx.Client, url: str, queries: Sequence[BenchQuery], expected: Mapping[str, Any]
) -> None:
    for query in queries:
        response = client.post(url, content=request_body(query), headers=_JSON)
        problem = (
            f"HTTP {response.status_code}"
            if response.status_code != 200
            else check_answer(response.json(), expected[query.name])
        )
        if problem:
            raise RuntimeError(f"{url} answers {query.name} wrongly: {problem}")


_JSON = {"content-type": "application/json", "accept": "application/json"}


class SpotChecker(threading.Thread):
    """Every SPOT_CHECK_INTERVAL_S, one more request whose body is compared in full."""

    def __init__(
        self,
        url: str,
        body: bytes,
        expected: Mapping[str, Any],
        limit_s: float,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(daemon=True)
        self.url, self.body, self.expected = url, body, expected
        self.headers = {**_JSON, **(headers or {})}
        self.max_checks = int(limit_s / SPOT_CHECK_INTERVAL_S) + 10
        self.stop_event = threading.Event()
        self.ok = 0
        self.bad = 0
        self.first_bad: str | None = None

    def run(self) -> None:
        with httpx.Client(timeout=15) as client:
            for _ in range(self.max_checks):
                if self.stop_event.wait(SPOT_CHECK_INTERVAL_S):
                    return
                try:
                    response = client.post(self.url, content=self.body, headers=self.headers)
                    problem = (
                        f"HTTP {response.status_code}: {response.text[:300]}"
                        if response.status_code != 200
                        else check_answer(response.json(), self.expected)
                    )
                except (httpx.HTTPError, ValueError) as error:
                    problem = f"{type(error).__name__}: {error}"
                if problem is None:
                    self.ok += 1
                else:
                    self.bad += 1
                    self.first_bad = self.first_bad or problem

    def finish(self) -> None:
        self.stop_event.set()
        self.join(30)


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Row:
    gateway: str
    dedupe: bool
    query: str
    connections: int
    wrk: WrkResult
    cpu_ms_per_request: float
    peak_rss_mib: float
    threads: int
    spot_ok: int
    spot_bad: int
    spot_first_bad: str | None
    subgraph_rps: float
    canned_errors: int
    canned_cpu_pct: float
    other_cpu_pct: float

    @property
    def errors(self) -> int:
        return self.wrk.errors + self.spot_bad + self.canned_errors


def _system_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / procstat.CLOCK_TICKS


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    gateway: RunningGateway,
    canned: Canned,
    query: BenchQuery,
    connections: int,
    *,
    dedupe: bool,
    duration_s: float,
    warmup_s: float,
    expected: Mapping[str, Any],
    work: Path,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    expect_body: bytes | None = None,
) -> Row:
    """One cell. `body` (default: the query as full text) and `headers` (added to every wrk
    and spot-check request) let a caller send e.g. an APQ hash with a bearer token. With
    `expect_body`, wrk compares every response body with those bytes."""
    body = request_body(query) if body is None else body
    script = write_script(  # rewritten per cell
        work / f"{query.name}.lua", body, headers, expect_body=expect_body
    )
    if warmup_s > 0:
        run_wrk(gateway.url, script, connections=connections, duration_s=warmup_s)
    canned.reset()
    gateway_cpu = procstat.CpuWindow(gateway.pid)
    canned_cpu = procstat.CpuWindow(canned.pid)
    checker = SpotChecker(gateway.url, body, expected, duration_s, headers)
    system_before, wrk_before = _system_busy_seconds(), _children_cpu_seconds()
    gateway_cpu.start()
    canned_cpu.start()
    checker.start()
    result = run_wrk(gateway.url, script, connections=connections, duration_s=duration_s)
    gateway_seconds = gateway_cpu.stop()
    canned_seconds = canned_cpu.stop()
    system_seconds = _system_busy_seconds() - system_before
    wrk_seconds = _children_cpu_seconds() - wrk_before
    checker.finish()
    stats = canned.stats()
    window = result.duration_s or duration_s
    other = max(0.0, system_seconds - gateway_seconds - canned_seconds - wrk_seconds)
    return Row(
        gateway=gateway.label,
        dedupe=dedupe,
        query=query.name,
        connections=connections,
        wrk=result,
        cpu_ms_per_request=1000 * gateway_seconds / max(1, result.requests + checker.ok),
        peak_rss_mib=procstat.peak_rss_mib(gateway.pid),
        threads=procstat.thread_count(gateway.pid),
        spot_ok=checker.ok,
        spot_bad=checker.bad,
        spot_first_bad=checker.first_bad,
        subgraph_rps=sum(stats["requests"].values()) / window,
        canned_errors=int(stats["errors"]),
        canned_cpu_pct=100 * canned_seconds / window,
        other_cpu_pct=100 * other / window,
    )


@dataclass
class Probe:
    gateway: str
    dedupe: bool
    subgraph_requests: dict[str, int]
    clients: int = PROBE_CLIENTS


def dedupe_probe(
    gateway: RunningGateway,
    canned: Canned,
    query: BenchQuery,
    expected: Mapping[str, Any],
    *,
    dedupe: bool,
) -> Probe:
    """PROBE_CLIENTS identical requests at once while subgraphs answer PROBE_DELAY_MS late:
    with in-flight dedupe the gateway sends each distinct subgraph request about once."""
    body = request_body(query)
    canned.delay(PROBE_DELAY_MS)
    canned.reset()
    try:
        with (
            httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64)) as client,
            ThreadPoolExecutor(PROBE_CLIENTS) as pool,
        ):
            barrier = threading.Barrier(PROBE_CLIENTS)

            def one(_: int) -> str | None:
                barrier.wait(10)
                response = client.post(gateway.url, content=body, headers=_JSON)
                return check_answer(response.json(), expected)

            problems = [p for p in pool.map(one, range(PROBE_CLIENTS)) if p]
        if problems:
            raise RuntimeError(f"{gateway.label} dedupe probe answered wrongly: {problems[0]}")
        return Probe(gateway.label, dedupe, dict(sorted(canned.stats()["requests"].items())))
    finally:
        canned.delay(0)


@dataclass
class Headroom:
    subgraph: str
    body_bytes: int
    rps_c16: float
    p99_ms_c16: float


def canned_headroom(canned: Canned, work: Path, duration_s: float) -> Headroom:
    """wrk straight at the canned server, with the request whose answer is the largest."""
    rows = json.loads((RECORDINGS_DIR / "subgraphs-hive.json").read_text())
    rows += json.loads((RECORDINGS_DIR / "subgraphs-reelgraph.json").read_text())
    biggest = max(rows, key=lambda r: len(json.dumps(r["response"])))
    body = json.dumps({k: biggest[k] for k in ("query", "variables", "operationName")}).encode()
    script = write_script(work / "canned.lua", body)
    url = canned.url(biggest["subgraph"])
    run_wrk(url, script, connections=16, duration_s=1)
    result = run_wrk(url, script, connections=16, duration_s=duration_s)
    if result.errors:
        raise RuntimeError(f"canned server errors under load: {result}")
    return Headroom(biggest["subgraph"], len(body), result.rps, result.p99_ms)


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    settings: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    headroom: Headroom | None = None
    notes: list[str] = field(default_factory=list)


def _mode(dedupe: bool) -> str:
    return "on" if dedupe else "off"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def render(report: Report) -> str:
    out = ["# Router benchmark: reelgraph vs Hive Gateway", ""]
    out += [f"- {k}: {v}" for k, v in report.settings.items()]
    out += [
        "",
        "## Results",
        "",
        "CPU ms/req: the gateway's whole process tree (all threads, all workers) over the "
        "measured window / requests. Peak RSS: sum of VmHWM over the tree, high-water mark "
        "since the gateway started (one process per gateway and dedupe mode). Errors: wrk "
        "socket errors + non-2xx + wrong spot-checked bodies + canned-subgraph misses. "
        "Other CPU: busy CPU on the machine not used by the gateway, the canned subgraphs or "
        "wrk (other tenants; 100% = one core).",
        "",
        "| dedupe | query | conns | gateway | req/s | CPU ms/req | p50 ms | p99 ms "
        "| peak RSS MiB | threads | errors | spot checks ok | subgraph req/s | canned CPU % "
        "| other CPU % |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report.rows:
        out.append(
            f"| {_mode(r.dedupe)} | {r.query} | {r.connections} | {r.gateway} "
            f"| {r.wrk.rps:,.0f} | {r.cpu_ms_per_request:.2f} | {r.wrk.p50_ms:.2f} "
            f"| {r.wrk.p99_ms:.2f} | {r.peak_rss_mib:.0f} | {r.threads} | {r.errors} "
            f"| {r.spot_ok}/{r.spot_ok + r.spot_bad} | {r.subgraph_rps:,.0f} "
            f"| {r.canned_cpu_pct:.0f} | {r.other_cpu_pct:.0f} |"
        )
    bad = [r for r in report.rows if r.errors]
    if bad:
        out += ["", "### Errors", ""]
        for r in bad:
            out.append(
                f"- {r.gateway} dedupe {_mode(r.dedupe)} {r.query} c{r.connections}: "
                f"wrk socket errors {r.wrk.socket_errors}, non-2xx {r.wrk.non_2xx}, "
                f"wrong bodies {r.spot_bad} ({r.spot_first_bad}), canned misses "
                f"{r.canned_errors}"
            )
    out += _ratios(report.rows)
    if report.probes:
        out += [
            "",
            f"## In-flight dedupe check ({PROBE_CLIENTS} identical concurrent requests, "
            f"subgraphs answering {PROBE_DELAY_MS} ms late)",
            "",
            "Subgraph requests the gateway sent; without dedupe each client request makes its own.",
            "",
            "| gateway | dedupe | subgraph requests |",
            "|---|---|---|",
        ]
        for p in report.probes:
            counts = ", ".join(f"{k} {v}" for k, v in p.subgraph_requests.items())
            out.append(f"| {p.gateway} | {_mode(p.dedupe)} | {counts} |")
    if report.headroom:
        h = report.headroom
        peak = max((r.subgraph_rps for r in report.rows), default=0.0)
        out += [
            "",
            "## Canned subgraph headroom",
            "",
            f"wrk -c16 straight at the canned server ({h.subgraph}, the largest recorded "
            f"answer, request {h.body_bytes} B): **{h.rps_c16:,.0f} req/s** (p99 "
            f"{h.p99_ms_c16:.2f} ms) on one core, vs a peak of {peak:,.0f} subgraph req/s "
            f"during the benchmark: {_ratio(h.rps_c16, peak)}x headroom.",
        ]
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(out) + "\n"


def _ratios(rows: list[Row]) -> list[str]:
    ours = {(r.dedupe, r.query, r.connections): r for r in rows if r.gateway == "reelgraph"}
    hive_labels = sorted({r.gateway for r in rows if r.gateway != "reelgraph"})
    out: list[str] = []
    for label in hive_labels:
        theirs = {(r.dedupe, r.query, r.connections): r for r in rows if r.gateway == label}
        keys = [k for k in ours if k in theirs]
        if not keys:
            continue
        out += [
            "",
            f"## Ours / {label}",
            "",
            "Throughput: >= 1 is good. p99 and RSS: < 1 is good.",
            "",
            "| dedupe | query | conns | throughput | p99 | peak RSS | CPU ms/req |",
            "|---|---|--:|--:|--:|--:|--:|",
        ]
        for key in keys:
            a, b = ours[key], theirs[key]
            out.append(
                f"| {_mode(key[0])} | {key[1]} | {key[2]} | {_ratio(a.wrk.rps, b.wrk.rps)} "
                f"| {_ratio(a.wrk.p99_ms, b.wrk.p99_ms)} "
                f"| {_ratio(a.peak_rss_mib, b.peak_rss_mib)} "
                f"| {_ratio(a.cpu_ms_per_request, b.cpu_ms_per_request)} |"
            )
        out += ["", f"Targets against {label}:", ""]
        for dedupe in (True, False):
            cells = [k for k in keys if k[0] == dedupe]
            if not cells:
                continue
            faster = [k for k in cells if ours[k].wrk.rps >= theirs[k].wrk.rps]
            lower = [k for k in cells if ours[k].wrk.p99_ms < theirs[k].wrk.p99_ms]
            small = [k for k in cells if ours[k].peak_rss_mib * 5 <= theirs[k].peak_rss_mib]
            for name, met in (
                ("throughput >= Hive", faster),
                ("lower p99", lower),
                ("RSS <= 1/5 of Hive", small),
            ):
                verdict = "MET" if len(met) == len(cells) else "NOT MET"
                missed = [f"{k[1]} c{k[2]}" for k in cells if k not in met]
                detail = f" (missed: {', '.join(missed)})" if missed else ""
                out.append(
                    f"- dedupe {_mode(dedupe)}, {name}: **{verdict}**, "
                    f"{len(met)}/{len(cells)} cells{detail}"
                )
    return out


# --- machine and versions -------------------------------------------------------------------------


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git_revision() -> str:
    """Read-only: `git rev-parse` and `git status --porcelain` never touch the index."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    done = subprocess.run(
        [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        [git, "status", "--porcelain", "--untracked-files=no", "supergraph"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    revision = done.stdout.strip() or "unknown"
    return revision + (" (supergraph/ has uncommitted changes)" if dirty.stdout.strip() else "")


def _subgraph_client() -> str:
    source = (ROOT / "supergraph" / "execute" / "fetcher.py").read_text()
    found = [lib for lib in ("aiohttp", "httpx") if f"import {lib}" in source]
    return ", ".join(found) or "unknown"


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def settings(args: argparse.Namespace) -> dict[str, str]:
    common = reelgraph_settings(args)
    common["reelgraph"] = common["reelgraph"].replace(
        "default settings", "default settings but rate limits `off`"
    )
    hive = (
        f"@graphql-hive/gateway {hive_version()} on Node {node_version()}, "
        "`NODE_ENV=production`, config from tests/federation/hive.py (logging warn) + "
        "`deduplicateInflightRequests`; workers: " + ", ".join(str(f) for f in args.hive_fork)
    )
    order = ["date", "machine", "reelgraph", "hive", "load", "supergraph", "queries"]
    return {key: hive if key == "hive" else common[key] for key in order}


def reelgraph_settings(args: argparse.Namespace) -> dict[str, str]:
    """The report's settings except Hive's; `args` needs `router_log_level`, `connections`,
    `warmup` and `duration`."""
    load1, load5, _ = os.getloadavg()
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{os.cpu_count()} CPUs ({_cpu_model()}), {mem_kib / 1024**2:.0f} GiB, "
            f"Linux {platform.release()}; load average at start {load1:.2f} / {load5:.2f}"
        ),
        "reelgraph": (
            f"git {_git_revision()}, Python {platform.python_version()}, uvicorn "
            f"{_package_version('uvicorn')}, uvloop {_package_version('uvloop')}, aiohttp "
            f"{_package_version('aiohttp')}, httpx {_package_version('httpx')}, graphql-core "
            f"{_package_version('graphql-core')}; subgraph client: {_subgraph_client()}; "
            "`reelgraph router` (one uvicorn process, default settings: log level "
            f"{args.router_log_level or 'INFO (default)'})"
        ),
        "load": (
            f"{wrk_version()}, 1 thread, connections {args.connections}, "
            f"{args.warmup:g} s warm-up then {args.duration:g} s measured, per cell"
        ),
        "supergraph": (
            "tests/federation/testbed/supergraph.graphql (5 subgraphs), served by "
            "bench/router/canned.py from bench/router/recordings/"
        ),
        "queries": "; ".join(f"`{q.name}`: {q.description}" for q in QUERIES),
    }


# --- main -----------------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per cell")
    parser.add_argument("--quick", action="store_true", help="3 s cells, 1 s warm-up")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per cell (alternating gateways); median"
    )
    parser.add_argument("--connections", type=_int_list, default=[1, 16])
    parser.add_argument("--queries", default=",".join(q.name for q in QUERIES))
    parser.add_argument("--modes", default="on,off", help="in-flight dedupe modes to run")
    parser.add_argument(
        "--hive-fork",
        type=_int_list,
        default=[1],
        help="Hive Gateway worker counts to run, e.g. 1,2 (default 1, its own default)",
    )
    parser.add_argument("--skip-reelgraph", action="store_true")
    parser.add_argument("--skip-hive", action="store_true")
    parser.add_argument(
        "--router-log-level", default=None, help="REELGRAPH_LOG_LEVEL for our router"
    )
    parser.add_argument("--record", action="store_true", help="re-record the subgraphs first")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.record or not recordings_present():
        record()
    expected = load_expected()
    queries = [q for q in QUERIES if q.name in args.queries.split(",")]
    modes = [m.strip() == "on" for m in args.modes.split(",")]
    report = Report(settings(args))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        work = Path(tmp)
        with canned_server(work / "canned.log") as canned, httpx.Client(timeout=30) as client:
            report.headroom = canned_headroom(canned, work, min(args.duration, HEADROOM_MAX_S))
            print(f"canned server alone: {report.headroom.rps_c16:,.0f} req/s", flush=True)
            sdl = with_urls(
                SUPERGRAPH.read_text(), {name: canned.url(name) for name in _subgraphs()}
            )
            supergraph = work / "supergraph.graphql"
            supergraph.write_text(sdl)
            for dedupe in modes:
                report.rows += run_mode(
                    args, dedupe, sdl, supergraph, work, canned, client, queries, expected, report
                )
    load1, load5, _ = os.getloadavg()
    report.settings["run time"] = (
        f"{time.monotonic() - started:.0f} s; load average at end {load1:.2f} / {load5:.2f}"
    )
    report.notes += NOTES
    text = render(report)
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 1 if any(r.errors for r in report.rows) else 0


def run_mode(
    args: argparse.Namespace,
    dedupe: bool,
    sdl: str,
    supergraph: Path,
    work: Path,
    canned: Canned,
    client: httpx.Client,
    queries: Sequence[BenchQuery],
    expected: Mapping[str, Any],
    report: Report,
) -> list[Row]:
    """Both gateways up at once (separate processes, one idles while the other is loaded);
    each cell measures them one after the other, alternating the order on every repeat, so
    a burst of load from elsewhere hits neither systematically."""
    rows: list[Row] = []
    with ExitStack() as stack:
        gateways = []
        for start in _gateways(args, sdl, supergraph, work, dedupe):
            gateways.append(stack.enter_context(start()))
        for gateway in gateways:
            print(f"== {gateway.label}, dedupe {_mode(dedupe)}: pid {gateway.pid}", flush=True)
            verify(client, gateway.url, queries, expected)
            report.probes.append(
                dedupe_probe(gateway, canned, queries[0], expected[queries[0].name], dedupe=dedupe)
            )
            verify(client, gateway.url, queries, expected)
        for query in queries:
            for connections in args.connections:
                measured: dict[str, list[Row]] = {g.label: [] for g in gateways}
                for repeat in range(args.repeat):
                    order = gateways if repeat % 2 == 0 else gateways[::-1]
                    for gateway in order:
                        measured[gateway.label].append(
                            measure(
                                gateway,
                                canned,
                                query,
                                connections,
                                dedupe=dedupe,
                                duration_s=args.duration,
                                warmup_s=args.warmup,
                                expected=expected[query.name],
                                work=work,
                            )
                        )
                for label, runs in measured.items():
                    row = _median(runs)
                    rows.append(row)
                    print(
                        f"   {label:<10} dedupe {_mode(dedupe):<3} {query.name} c{connections}: "
                        f"{row.wrk.rps:,.0f} req/s, p99 {row.wrk.p99_ms:.2f} ms, "
                        f"{row.cpu_ms_per_request:.2f} CPU ms/req, "
                        f"{row.peak_rss_mib:.0f} MiB, errors {row.errors}, "
                        f"other CPU {row.other_cpu_pct:.0f}%",
                        flush=True,
                    )
        for gateway in gateways:
            verify(client, gateway.url, queries, expected)
    return rows


def _median(runs: list[Row]) -> Row:
    """The run with the median throughput (all its metrics together); errors summed."""
    ordered = sorted(runs, key=lambda r: r.wrk.rps)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(runs) > 1:
        chosen.spot_bad = sum(r.spot_bad for r in runs)
        chosen.canned_errors = sum(r.canned_errors for r in runs)
        chosen.spot_first_bad = next((r.spot_first_bad for r in runs if r.spot_first_bad), None)
    return chosen


def _subgraphs() -> list[str]:
    from tests.federation.testbed import SUBGRAPHS

    return list(SUBGRAPHS)


GatewayStarter = Callable[[], AbstractContextManager[RunningGateway]]
NO_RATE_LIMITS = {"REELGRAPH_RATE_LIMIT_USER": "off", "REELGRAPH_RATE_LIMIT_IP": "off"}


def _gateways(
    args: argparse.Namespace, sdl: str, supergraph: Path, work: Path, dedupe: bool
) -> list[GatewayStarter]:
    starts: list[GatewayStarter] = []
    if not args.skip_reelgraph:
        # One client address sends everything: the default 100/second per address would
        # turn most requests into 429s. Hive Gateway has no rate limit configured either.
        env = dict(NO_RATE_LIMITS)
        if args.router_log_level:
            env["REELGRAPH_LOG_LEVEL"] = args.router_log_level
        log = work / f"router-{_mode(dedupe)}.log"
        starts.append(
            lambda: reelgraph_router(supergraph, free_port(), dedupe=dedupe, log=log, env=env)
        )
    if not args.skip_hive:
        for fork in args.hive_fork:
            starts.append(
                partial(hive_gateway, sdl, free_port(), dedupe=dedupe, fork=fork, workdir=work)
            )
    return starts


NOTES = [
    "In-flight dedupe here means subgraph-fetch dedupe: ours `--no-dedupe`; Hive "
    "`transportEntries['*.http'].options.deduplicateInflightRequests` (read in "
    "@graphql-tools/executor-http `handleInflightRequest`; default on, queries only). Hive's "
    "separate `inboundInflightRequestDeduplication` (whole client requests, default off) "
    "stays off: our router has no counterpart.",
    "Hive Gateway 2.x runs one process by default (`--fork`/`FORK`, default 1: its changelog "
    "says forking is disabled even with NODE_ENV=production), so the default comparison is "
    "already one process each; Node's extra threads (GC, libuv) are counted in its CPU.",
    "Hive's RSS follows V8's heap sizing, whose default old-space limit scales with the "
    "machine's memory; `NODE_OPTIONS=--max-old-space-size=...` would cap it at some GC cost. "
    "It is not set: the gateway runs as tests/federation/hive.py configures it.",
    "Everything (gateway, canned subgraphs, wrk) shares the same CPUs; other tenants' load is "
    "shown per cell as 'other CPU %'. Numbers from a busy machine are noisy.",
    "The canned subgraphs answer from a cache keyed by the request body; each gateway's "
    "responses are checked against the recorded expected answer before, during (spot "
    "checks) and after the measured runs.",
]


if __name__ == "__main__":
    sys.exit(main())
