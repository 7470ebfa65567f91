"""Prometheus metrics of one collector process, served at ``GET /metrics``.

Each app has its own registry, so several apps in one process (tests) do not
mix their counts. With several collector processes, Prometheus scrapes each and
``sum()`` adds them up; the database holds the authoritative totals
(``/api/v1/stats``).

* ``edge_collector_batches_received_total{stream}`` -- batches committed with new rows
* ``edge_collector_batches_duplicate_total{stream}`` -- batches already stored
* ``edge_collector_batches_rejected_total{reason}`` -- refused batch requests
* ``edge_collector_rows_ingested_total{stream}`` -- new rows committed
* ``edge_collector_ingest_seconds`` -- from request start to commit, per accepted batch
* ``edge_collector_http_requests_total{method,route,status}`` -- every request
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "RequestMetrics", "reason_of"]

_REASONS = {
    400: "bad_body",
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    415: "unsupported_encoding",
    422: "invalid",
    429: "rate_limited",
    503: "store_unavailable",
}
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def reason_of(status_code: int) -> str:
    """The ``reason`` label of a rejected batch answered with ``status_code``."""
    return _REASONS.get(status_code, f"http_{status_code}")


class Metrics:
    """The collector's metric objects over their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        prefix = "edge_collector"
        self.batches_received = Counter(
            f"{prefix}_batches_received", "Batches committed with new rows", ["stream"], registry=self.registry
        )
        self.batches_duplicate = Counter(
            f"{prefix}_batches_duplicate", "Batches that were already stored", ["stream"], registry=self.registry
        )
        self.batches_rejected = Counter(
            f"{prefix}_batches_rejected", "Batch requests refused, by reason", ["reason"], registry=self.registry
        )
        self.rows_ingested = Counter(
            f"{prefix}_rows_ingested", "New rows committed", ["stream"], registry=self.registry
        )
        self.ingest_seconds = Histogram(
            f"{prefix}_ingest_seconds",
            "Accepted batch: request start to commit",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            f"{prefix}_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        for reason in _REASONS.values():  # export zeros, so rates work from the first scrape
            self.batches_rejected.labels(reason)
        for stream in ("samples", "events"):
            self.batches_received.labels(stream)
            self.batches_duplicate.labels(stream)
            self.rows_ingested.labels(stream)

    def render(self) -> bytes:
        """The text exposition format (``CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware counting requests by method, route template and status code."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.http_requests.labels(scope.get("method", "?"), path, str(status)).inc()
