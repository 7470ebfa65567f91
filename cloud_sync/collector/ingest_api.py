"""``POST /api/v1/batches``: authenticate, limit, decode, validate, commit, acknowledge.

Checks run cheapest first: the key (a gateway key is also rate limited here,
before the body is read), the content coding and declared length, the streamed
size, then -- in the thread pool, never on the event loop -- gzip or zstd, JSON, the
gateway the key may write as, the batch schema and rows, and the transaction.
The answer comes only after the commit. Nothing is written for a refused
request.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Header, Request, Security
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cloud_sync.collector.api_models import ErrorBody, batch_request_body
from cloud_sync.collector.body import Coding, Rejected, check_declared_length, content_coding, decode_body, read_limited
from cloud_sync.collector.context import Collector, api_key_scheme, collector_of, json_response, log, rejection
from cloud_sync.collector.keys import Identity
from cloud_sync.collector.metrics import reason_of
from cloud_sync.collector.validation import InvalidBatch, parse_batch
from cloud_sync.schema import BatchAck


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "committed (or already stored: duplicate_batch)"},
    400: _error("body is not valid gzip, zstd or JSON"),
    401: _error("missing, unknown or revoked API key"),
    403: _error("the key may not write for the batch's gateway_id"),
    413: _error("body too large, on the wire or decompressed"),
    415: _error("content-encoding other than gzip, zstd or identity"),
    422: _error("not a valid batch; errors name each field"),
    429: _error("the gateway sends too many batches; wait Retry-After seconds"),
    503: _error("storage unavailable; retry after Retry-After seconds"),
}


router = APIRouter()
"""The batch endpoint; built once per process and shared by every app (see :func:`.app.create_app`)."""


def ingest(collector: Collector, raw: bytes, coding: Coding, identity: Identity, started: float) -> BatchAck:
    """Decode, check and commit one request body (in the thread pool); raises :class:`Rejected`."""
    data = decode_body(raw, coding, collector.max_decoded)
    if identity.gateway is not None and isinstance(data, dict):
        claimed = data.get("gateway_id")
        if claimed != identity.gateway:
            raise Rejected(403, f"this API key may not send batches for gateway {claimed!r:.140}")
    try:
        batch = parse_batch(data)
    except InvalidBatch as exc:
        raise Rejected(422, f"invalid batch: {len(exc.problems)} problem(s)", exc.problems) from None
    if identity.gateway is None:  # a key for any gateway: limit by the gateway the batch names
        collector.check_rate(batch.gateway_id)
    ack = collector.call_store(collector.store.ingest, batch)
    metrics = collector.metrics
    if ack.duplicate_batch:
        metrics.batches_duplicate.labels(batch.stream).inc()
    else:
        metrics.batches_received.labels(batch.stream).inc()
        metrics.rows_ingested.labels(batch.stream).inc(ack.accepted)
        metrics.ingest_seconds.observe(time.perf_counter() - started)
    log.debug(
        "%s: accepted %d, duplicates %d%s",
        ack.batch_id,
        ack.accepted,
        ack.duplicates,
        " (duplicate batch)" if ack.duplicate_batch else "",
    )
    return ack


@router.post(
    "/api/v1/batches",
    summary="Send one batch of a gateway's samples or events",
    tags=["ingest"],
    response_model=BatchAck,
    responses=BATCH_RESPONSES,
    openapi_extra={"requestBody": batch_request_body()},
)
async def post_batch(
    request: Request,
    api_key: str | None = Security(api_key_scheme),
    content_encoding: str | None = Header(
        None,
        description="zstd (fewest bytes), gzip or identity; anything else is 415",
        json_schema_extra={"enum": ["zstd", "gzip", "identity"]},
    ),
) -> Response:
    collector = collector_of(request)
    started = time.perf_counter()
    try:
        identity = await collector.authenticate_async(api_key)
        if identity.gateway is not None:
            collector.check_rate(identity.gateway)
        coding = content_coding(content_encoding)
        check_declared_length(request.headers.get("content-length"), collector.max_body)
        raw = await read_limited(request.stream(), collector.max_body)
        ack = await run_in_threadpool(ingest, collector, raw, coding, identity, started)
    except Rejected as exc:
        collector.metrics.batches_rejected.labels(reason_of(exc.status_code)).inc()
        return rejection(request, exc)
    return json_response(ack.model_dump())
