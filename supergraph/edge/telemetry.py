"""Prometheus metrics for the router: requests and latency by operation and outcome,
subgraph fetch latency and errors, cache hit ratios, open subscriptions, and pass-through
requests and bytes by route."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from supergraph.cache import LRUCache

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Operation names come from clients: past this many distinct ones, the rest share a label.
_MAX_OPERATION_NAMES = 500
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _CacheCollector(Collector):
    def __init__(self, caches: Callable[[], dict[str, LRUCache[object, object]]]) -> None:
        self.caches = caches

    def collect(self) -> Iterator[CounterMetricFamily]:
        hits = CounterMetricFamily("reelgraph_router_cache_hits", "Cache hits.", labels=["cache"])
        misses = CounterMetricFamily(
            "reelgraph_router_cache_misses", "Cache misses.", labels=["cache"]
        )
        for name, cache in self.caches().items():
            hits.add_metric([name], cache.hits)
            misses.add_metric([name], cache.misses)
        yield hits
        yield misses


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "reelgraph_router_requests",
            "GraphQL requests by operation and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reelgraph_router_request_duration_seconds",
            "GraphQL request latency.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.subgraph_latency = Histogram(
            "reelgraph_router_subgraph_fetch_duration_seconds",
            "Subgraph fetch latency.",
            ["subgraph"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.subgraph_errors = Counter(
            "reelgraph_router_subgraph_errors",
            "Subgraph fetches that failed or returned errors.",
            ["subgraph", "code"],
            registry=self.registry,
        )
        self.subscriptions = Gauge(
            "reelgraph_router_active_subscriptions",
            "Subscriptions open right now.",
            registry=self.registry,
        )
        self.passthrough_requests = Counter(
            "reelgraph_router_passthrough_requests",
            "Pass-through requests by route prefix and HTTP status (499: the client left first).",
            ["route", "status"],
            registry=self.registry,
        )
        self.passthrough_bytes = Counter(
            "reelgraph_router_passthrough_bytes",
            "Pass-through body bytes by route prefix and direction (upstream, downstream).",
            ["route", "direction"],
            registry=self.registry,
        )
        self._names: set[str] = set()

    def watch_caches(self, caches: Callable[[], dict[str, LRUCache[object, object]]]) -> None:
        self.registry.register(_CacheCollector(caches))

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self._names or len(self._names) < _MAX_OPERATION_NAMES:
            self._names.add(name)
            return name
        return "other"

    def record_request(self, operation: str | None, outcome: str, seconds: float) -> None:
        label = self.operation_label(operation)
        self.requests.labels(label, outcome).inc()
        self.latency.labels(label).observe(seconds)

    def record_fetch(self, subgraph: str, seconds: float, error_code: str | None) -> None:
        self.subgraph_latency.labels(subgraph).observe(seconds)
        if error_code is not None:
            self.subgraph_errors.labels(subgraph, error_code).inc()

    def record_passthrough(self, route: str, status: int, upstream: int, downstream: int) -> None:
        self.passthrough_requests.labels(route, str(status)).inc()
        if upstream:
            self.passthrough_bytes.labels(route, "upstream").inc(upstream)
        if downstream:
            self.passthrough_bytes.labels(route, "downstream").inc(downstream)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
