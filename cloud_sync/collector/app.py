"""The collector's HTTP API.

* ``POST /api/v1/batches`` -- one batch (see :mod:`cloud_sync.schema`); answers
  200 with a :class:`BatchAck` after the batch is committed.
* ``GET /api/v1/stats`` -- per-gateway counts (:meth:`Store.stats`).
* ``GET /health`` -- ``{"status": "ok"}``, or 503 when the store is not usable.

Errors are JSON ``{"detail": "..."}``; 422 adds ``"errors": [{"field", "message"}]``.
Status codes a gateway sees: 401/403 (key), 413 (too large), 415 (coding),
400 (not gzip/JSON), 422 (not a valid batch) are final; 503 (store failure) is
worth retrying.

Decompression, parsing, validation and the SQLite transaction run in the thread
pool, never on the event loop.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cloud_sync.collector.body import (
    MAX_BODY,
    MAX_DECODED,
    Coding,
    Rejected,
    check_declared_length,
    content_coding,
    decode_body,
    read_limited,
)
from cloud_sync.collector.store import Store, StoreError
from cloud_sync.collector.validation import InvalidBatch, parse_batch

log = logging.getLogger(__name__)

API_KEY_HEADER = "x-api-key"
RETRY_AFTER_S = 5
"""Seconds a gateway is asked to wait after a 503 (storage failure)."""


class KeyRing:
    """API keys and the gateway each may send for (``None``: any gateway)."""

    def __init__(self, api_keys: dict[str, str | None]) -> None:
        if not api_keys:
            raise ValueError("at least one API key is required")
        if any(not key for key in api_keys):
            raise ValueError("API keys must not be empty")
        self._keys = [(key.encode(), gateway) for key, gateway in api_keys.items()]

    def authenticate(self, presented: str | None) -> tuple[bool, str | None]:
        """``(known, bound_gateway)`` for a presented key, comparing in constant time."""
        if not presented:
            return False, None
        candidate = presented.encode()
        found: tuple[bool, str | None] = (False, None)
        for key, gateway in self._keys:  # no early exit: timing does not reveal which key matched
            if hmac.compare_digest(key, candidate):
                found = (True, gateway)
        return found


def create_app(
    store: Store,
    api_keys: dict[str, str | None],
    *,
    max_body: int = MAX_BODY,
    max_decoded: int = MAX_DECODED,
) -> FastAPI:
    """Build the collector app over ``store``.

    ``api_keys`` maps each accepted key to the gateway it is bound to, or to
    ``None`` for a key that may send for any gateway. The limits are in bytes.
    """
    keys = KeyRing(api_keys)
    app = FastAPI(title="edge collector", version="1", docs_url=None, redoc_url=None)
    app.state.store = store

    def ingest(raw: bytes, coding: Coding, bound_gateway: str | None) -> dict[str, Any]:
        data = decode_body(raw, coding, max_decoded)
        if bound_gateway is not None and isinstance(data, dict):
            claimed = data.get("gateway_id")
            if claimed != bound_gateway:
                raise Rejected(403, f"this API key may not send batches for gateway {claimed!r:.140}")
        try:
            batch = parse_batch(data)
        except InvalidBatch as exc:
            raise Rejected(422, f"invalid batch: {len(exc.problems)} problem(s)", exc.problems) from None
        try:
            ack = store.ingest(batch)
        except StoreError as exc:
            log.error("store failed: %s", exc)
            raise Rejected(503, "storage unavailable, retry later") from None
        log.debug(
            "%s: accepted %d, duplicates %d%s",
            ack.batch_id,
            ack.accepted,
            ack.duplicates,
            " (duplicate batch)" if ack.duplicate_batch else "",
        )
        return ack.model_dump()

    @app.post("/api/v1/batches")
    async def post_batch(request: Request) -> JSONResponse:
        try:
            known, bound = keys.authenticate(request.headers.get(API_KEY_HEADER))
            if not known:
                raise Rejected(401, f"missing or unknown API key (header {API_KEY_HEADER})")
            coding = content_coding(request.headers.get("content-encoding"))
            check_declared_length(request.headers.get("content-length"), max_body)
            raw = await read_limited(request.stream(), max_body)
            ack = await run_in_threadpool(ingest, raw, coding, bound)
        except Rejected as exc:
            return _rejection(request, exc)
        return JSONResponse(ack)

    @app.get("/api/v1/stats")
    def get_stats() -> JSONResponse:
        try:
            return JSONResponse(store.stats())
        except StoreError as exc:
            log.error("stats failed: %s", exc)
            return JSONResponse(
                {"detail": "storage unavailable, retry later"},
                status_code=503,
                headers={"retry-after": str(RETRY_AFTER_S)},
            )

    @app.get("/health")
    def health() -> JSONResponse:
        try:
            store.ping()
        except StoreError as exc:
            return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app


def _rejection(request: Request, exc: Rejected) -> JSONResponse:
    client = request.client.host if request.client else "?"
    first = f" ({exc.errors[0]['field']}: {exc.errors[0]['message']})" if exc.errors else ""
    log.warning("rejected batch from %s: %d %s%s", client, exc.status_code, exc.detail, first)
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.errors is not None:
        body["errors"] = exc.errors
    retry = {"retry-after": str(RETRY_AFTER_S)} if exc.status_code == 503 else None
    return JSONResponse(body, status_code=exc.status_code, headers=retry)
