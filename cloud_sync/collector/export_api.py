"""``POST /api/v1/export``: samples or events as CSV, JSON lines or Parquet, streamed.

The store is read in pages of ``export_chunk`` rows by keyset pagination on
``(ts, gateway_id, seq)``, each page its own short read (a slow client never
holds the database), and each page is encoded and sent before the next is
read: memory is bounded by one page whatever the size of the export. The first
page is read before the answer starts, so a store failure is still a 503; a
failure later cuts the stream short (the client sees an incomplete body).
Same key rules as ``GET /api/v1/samples``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.collector import params
from cloud_sync.collector.body import Rejected
from cloud_sync.collector.context import Collector, api_key_scheme, collector_of
from cloud_sync.collector.export import CONTENT_TYPES, Format, What, encoder
from cloud_sync.collector.query_api import error_responses, readable_gateway
from cloud_sync.collector.store import EventQuery, SampleQuery

router = APIRouter()
"""The export endpoint; built once per process and shared by every app (see :func:`.app.create_app`)."""

_Name = Field(None, min_length=1, max_length=params.MAX_NAME)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ExportRequest(BaseModel):
    """What to export; ``tag`` applies to samples only, ``kind`` to events only."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    what: What
    format: Format = "csv"
    gateway: str | None = _Name
    device: str | None = _Name
    tag: str | None = _Name
    kind: str | None = _Name
    start: str | float | None = Field(
        None, alias="from", description="inclusive; ISO 8601 (no offset: UTC) or epoch seconds"
    )
    end: str | float | None = Field(None, alias="to", description="exclusive; ISO 8601 or epoch seconds")
    limit: int | None = Field(None, ge=1, le=2**62, description="rows at most (default: all)")


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the rows, streamed; Content-Disposition names the file",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **error_responses(400, 401, 403, 503),
}


@router.post(
    "/api/v1/export",
    summary="Export samples or events as CSV, JSON lines or Parquet (streamed)",
    tags=["export"],
    response_class=StreamingResponse,
    responses=EXPORT_RESPONSES,
)
def post_export(request: Request, spec: ExportRequest, api_key: str | None = Security(api_key_scheme)) -> Response:
    collector = collector_of(request)
    identity = collector.authenticate(api_key)
    lo, hi = params.parse_range(_time_text(spec.start), _time_text(spec.end))
    gateway = readable_gateway(identity, params.parse_name("gateway", spec.gateway))
    device = params.parse_name("device", spec.device)
    chunk = collector.export_chunk
    query: SampleQuery | EventQuery
    if spec.what == "samples":
        if spec.kind is not None:
            raise Rejected(400, "kind applies to events only", [{"field": "kind", "message": "not with samples"}])
        query = SampleQuery(gateway, device, params.parse_name("tag", spec.tag), lo, hi, chunk)
    else:
        if spec.tag is not None:
            raise Rejected(400, "tag applies to samples only", [{"field": "tag", "message": "not with events"}])
        query = EventQuery(gateway, device, params.parse_name("kind", spec.kind), lo, hi, chunk)
    limit = spec.limit
    first = _page(collector, query, limit)
    name = "-".join(_SAFE.sub("_", part) for part in (spec.what, gateway, device) if part)
    return StreamingResponse(
        _stream(collector, query, first, limit, spec.what, spec.format),
        media_type=CONTENT_TYPES[spec.format],
        headers={"content-disposition": f'attachment; filename="{name}.{spec.format}"'},
    )


def _time_text(value: str | float | None) -> str | None:
    return None if value is None else str(value)


def _page(collector: Collector, query: SampleQuery | EventQuery, left: int | None) -> list[dict[str, Any]]:
    if left is not None and left < query.limit:
        query = replace(query, limit=left)
    if isinstance(query, SampleQuery):
        return collector.call_store(collector.store.samples, query)
    return collector.call_store(collector.store.events, query)


def _stream(
    collector: Collector,
    query: SampleQuery | EventQuery,
    page: list[dict[str, Any]],
    limit: int | None,
    what: What,
    fmt: Format,
) -> Iterator[bytes]:
    """Encoded pages; run by Starlette in its thread pool, one page in memory at a time."""
    out = encoder(what, fmt)
    chunk = query.limit
    left = limit
    while True:
        data = out.page(page)
        if data:
            yield data
        if left is not None:
            left -= len(page)
        if len(page) < chunk or left == 0:
            break
        last = page[-1]
        query = replace(query, after=(last["ts"], last["gateway_id"], last["seq"]))
        page = _page(collector, query, left)
    tail = out.end()
    if tail:
        yield tail
