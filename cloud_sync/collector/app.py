"""The collector's HTTP API, assembled.

* ``POST /api/v1/batches`` -- one batch (see :mod:`cloud_sync.schema`); answers
  200 with a :class:`~cloud_sync.schema.BatchAck` after the batch is committed
  (:mod:`.ingest_api`).
* ``GET /api/v1/stats``, ``/api/v1/gateways``, ``/api/v1/samples``,
  ``/api/v1/events``, ``/health``, ``/metrics`` (:mod:`.query_api`).
* ``GET /api/v1/gateways/{gateway}/devices[/{device}/twin]`` -- the latest
  twin of each device (:mod:`.twin_api`, kept at ingest by :mod:`.twin`);
* ``GET /api/v1/oee`` -- fleet OEE from ``oee_rollup`` events (:mod:`.oee_api`);
* ``POST /api/v1/export`` -- samples or events as CSV, JSON lines or Parquet,
  streamed (:mod:`.export_api`).
* ``GET /openapi.json`` -- the OpenAPI document of all of them.

Errors are JSON ``{"detail": "..."}``; 422 (invalid batch) and 400 (bad query
parameter) add ``"errors": [{"field", "message"}]``. Status codes a gateway
sees: 401/403 (key), 413 (too large), 415 (coding), 400 (not gzip/JSON), 422
(not a valid batch) are final; 429 (rate limit) and 503 (store failure) come
with ``Retry-After`` and are worth retrying.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from cloud_sync.analytics.router import analytics_router
from cloud_sync.collector import export_api, ingest_api, oee_api, query_api, twin_api
from cloud_sync.collector.body import MAX_BODY, MAX_DECODED, Rejected
from cloud_sync.collector.context import Collector, rejection
from cloud_sync.collector.fleet import fleet_router
from cloud_sync.collector.keys import KeyRing
from cloud_sync.collector.metrics import Metrics, RequestMetrics
from cloud_sync.collector.params import BadParameter
from cloud_sync.collector.ratelimit import RateLimiter
from cloud_sync.collector.store import Store

DEFAULT_EXPORT_CHUNK = 5000
"""Rows per page of an export (read, encoded and sent before the next)."""
DEFAULT_RATE_LIMIT = 100.0
"""Batches per second and gateway, per collector process (burst: twice as many)."""


def create_app(
    store: Store,
    api_keys: Mapping[str, str | None] | None = None,
    *,
    max_body: int = MAX_BODY,
    max_decoded: int = MAX_DECODED,
    rate_limit: float = DEFAULT_RATE_LIMIT,
    rate_burst: float | None = None,
    limiter: RateLimiter | None = None,
    export_chunk: int = DEFAULT_EXPORT_CHUNK,
) -> FastAPI:
    """Build the collector app over ``store``.

    ``api_keys`` are keys held in memory besides those stored in the database:
    each maps to the gateway it is bound to, or to ``None`` for a key that may
    act for any gateway. The body limits are in bytes. ``rate_limit`` is in
    batches per second per gateway (``0`` disables it), ``rate_burst`` how many
    may come at once (default twice the rate); ``limiter`` replaces both (tests).
    ``export_chunk`` is the page size of ``POST /api/v1/export`` in rows: the
    most an export holds in memory at once.
    """
    if export_chunk < 1:
        raise ValueError(f"export_chunk must be at least 1, not {export_chunk}")
    collector = Collector(
        store=store,
        keys=KeyRing(store, api_keys),
        limiter=limiter or RateLimiter(rate_limit, rate_burst),
        metrics=Metrics(),
        max_body=max_body,
        max_decoded=max_decoded,
        export_chunk=export_chunk,
    )
    app = FastAPI(
        title="edge collector",
        version="1",
        summary="Receives gateway batches exactly once; serves what it stored.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.collector = collector
    app.state.store = store

    @app.exception_handler(Rejected)
    async def on_rejected(request: Request, exc: Rejected) -> Response:
        return rejection(request, exc)

    @app.exception_handler(BadParameter)
    async def on_bad_parameter(request: Request, exc: BadParameter) -> Response:
        problem = {"field": exc.name, "message": exc.message}
        return rejection(request, Rejected(400, f"invalid query parameter {exc.name}", [problem]))

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": str(err["loc"][-1]) if err.get("loc") else "query", "message": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        return rejection(request, Rejected(400, "invalid query parameter(s)", problems))

    # FastAPI builds a route's models and dependencies when it is added, which is most of the cost of an
    # app; the routes hold no state (handlers find the Collector in app.state), so every app shares them
    app.router.routes.extend(
        [
            *ingest_api.router.routes,
            *query_api.router.routes,
            *twin_api.router.routes,
            *oee_api.router.routes,
            *export_api.router.routes,
        ]
    )
    app.include_router(analytics_router(
        store.analytics_connection, authenticate=collector.authenticate,
        get_write_connection=lambda: store.analytics_connection(write=True),
    ))
    app.include_router(fleet_router())  # the fleet page at / (docs/analytics.md)
    app.add_middleware(RequestMetrics, metrics=collector.metrics)
    _describe_bad_parameters_as_400(app)
    return app


def _describe_bad_parameters_as_400(app: FastAPI) -> None:
    """Drop FastAPI's generated 422 answers from the OpenAPI document: parameter errors are 400 here."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            for operations in doc.get("paths", {}).values():
                for operation in operations.values():
                    answer = operation.get("responses", {}).get("422", {})
                    if "HTTPValidationError" in str(answer):
                        del operation["responses"]["422"]
            schemas = doc.get("components", {}).get("schemas", {})
            if "HTTPValidationError" not in str(doc.get("paths")):
                schemas.pop("HTTPValidationError", None)
                schemas.pop("ValidationError", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
