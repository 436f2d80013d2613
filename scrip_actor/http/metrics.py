"""Prometheus metrics for the HTTP layer, on a registry of its own that also carries the engine's and the process's.

Each app gets a fresh :class:`~prometheus_client.CollectorRegistry` (never the process-global one), so tests can
build many apps in one process. Label children are bound once per (route template, method[, status]) and cached:
``.labels()`` costs about a microsecond per call, a cached child nothing. The engine's series come from
:class:`scrip_actor.metrics.EngineMetrics` (hooks, plus ``engine.statistics()`` read at scrape time); the
process's (CPU, memory, file descriptors, GC, Python version) from prometheus_client's standard collectors.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from scrip_actor.engine import Engine
from scrip_actor.metrics import EngineMetrics

__all__ = ["CONTENT_TYPE", "HttpMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HttpMetrics:
    """Request counts by route template, method and status, and latency by route template and method."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "scrip_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "scrip_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["route", "method"],
            registry=self.registry,
            buckets=_LATENCY_BUCKETS_S,
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._latency_children: dict[tuple[str, str], Histogram] = {}
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.engine_metrics = EngineMetrics(self.registry).attach(engine) if engine is not None else None

    def bind(self, route: str, method: str, statuses: tuple[int, ...]) -> None:
        """Pre-bind the children of one route at startup, so the first request pays nothing extra."""
        self._latency_children[(route, method)] = self._latency.labels(route, method)
        for status in statuses:
            self._request_children[(route, method, status)] = self._requests.labels(route, method, str(status))

    def observe(self, route: str, method: str, status: int, duration_s: float) -> None:
        """Count one finished request and record how long it took."""
        request_child = self._request_children.get((route, method, status))
        if request_child is None:
            request_child = self._request_children[(route, method, status)] = self._requests.labels(
                route, method, str(status)
            )
        request_child.inc()
        latency_child = self._latency_children.get((route, method))
        if latency_child is None:
            latency_child = self._latency_children[(route, method)] = self._latency.labels(route, method)
        latency_child.observe(duration_s)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
