"""What the collector's routes share, and how they answer: the :class:`Collector` context and JSON responses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from cloud_sync.collector.body import Rejected
from cloud_sync.collector.keys import Identity, KeyRing
from cloud_sync.collector.metrics import Metrics
from cloud_sync.collector.ratelimit import RateLimiter, retry_after_header
from cloud_sync.collector.store import Store, StoreError

log = logging.getLogger("cloud_sync.collector.app")

API_KEY_HEADER = "x-api-key"
RETRY_AFTER_S = 5
"""Seconds a gateway is asked to wait after a 503 (storage failure)."""

T = TypeVar("T")

api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A gateway's key (edge-collector keys add) or one given with --api-key",
)


@dataclass
class Collector:
    """The state of one collector app: storage, keys, rate limit, metrics, body limits, export page size."""

    store: Store
    keys: KeyRing
    limiter: RateLimiter
    metrics: Metrics
    max_body: int
    max_decoded: int
    export_chunk: int = 5000
    store_failing: bool = False

    def call_store(self, fn: Callable[..., T], *args: Any, proves_health: bool = True) -> T:
        """``fn(*args)``, with a storage failure turned into the 503 answer (see :meth:`unavailable`).

        ``proves_health``: a success shows the store works again (false for calls that may not touch it).
        """
        try:
            result = fn(*args)
        except StoreError as exc:
            raise self.unavailable(exc) from None
        if proves_health and self.store_failing:
            self.store_failing = False
            log.info("storage is available again")
        return result

    def unavailable(self, exc: StoreError) -> Rejected:
        """The 503 for a storage failure, which gateways retry; logged as an error once, then at debug level."""
        if self.store_failing:
            log.debug("store still failing: %s", exc)
        else:
            self.store_failing = True
            log.error("store failed: %s (answering 503 until it recovers)", exc)
        return Rejected(503, "storage unavailable, retry later", headers={"retry-after": str(RETRY_AFTER_S)})

    def authenticate(self, presented: str | None) -> Identity:
        """The identity of a presented key; 401 if there is none, 503 if keys cannot be read."""
        identity = self.call_store(self.keys.authenticate, presented, proves_health=False)
        if identity is None:
            raise Rejected(401, f"missing, unknown or revoked API key (header {API_KEY_HEADER})")
        return identity

    async def authenticate_async(self, presented: str | None) -> Identity:
        """:meth:`authenticate` in the thread pool (it may query the database)."""
        return await run_in_threadpool(self.authenticate, presented)

    def check_rate(self, gateway: str) -> None:
        """429 with ``Retry-After`` when ``gateway`` has no batch token left."""
        wait = self.limiter.acquire(gateway)
        if wait > 0:
            raise Rejected(
                429,
                f"gateway {gateway!r:.140} sends more than {self.limiter.rate:g} batches/s; retry later",
                headers={"retry-after": retry_after_header(wait)},
            )


def collector_of(request: Request) -> Collector:
    """The :class:`Collector` of the app serving ``request``."""
    collector: Collector = request.app.state.collector
    return collector


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status_code=status_code, headers=headers, media_type="application/json")


def rejection(request: Request, exc: Rejected) -> Response:
    """The JSON error answer for ``exc``: ``{"detail"}``, plus ``"errors"`` when there are field problems."""
    client = request.client.host if request.client else "?"
    first = f" ({exc.errors[0]['field']}: {exc.errors[0]['message']})" if exc.errors else ""
    level = logging.DEBUG if exc.status_code in (429, 503) else logging.WARNING  # 503 is logged where it happens
    log.log(
        level, "%s %s from %s: %d %s%s", request.method, request.url.path, client, exc.status_code, exc.detail, first
    )
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.errors is not None:
        body["errors"] = exc.errors
    return json_response(body, exc.status_code, exc.headers)
