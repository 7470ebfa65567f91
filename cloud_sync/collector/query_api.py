"""The read side: ``/api/v1/stats``, ``/gateways``, ``/samples``, ``/events`` and ``/health``, ``/metrics``.

``stats``, ``health`` and ``metrics`` are open (counts only, for dashboards,
load balancers and Prometheus). The data endpoints need an API key: a key
bound to a gateway reads only that gateway (``gateway`` defaults to it; another
is 403), a key for any gateway reads everything. Rows come ordered by
``(ts, gateway_id, seq)``; ``truncated`` says more rows matched than ``limit``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import Response

from cloud_sync.collector import params
from cloud_sync.collector.api_models import ErrorBody, Events, Gateways, Health, Samples, Stats
from cloud_sync.collector.body import Rejected
from cloud_sync.collector.context import api_key_scheme, collector_of, json_response
from cloud_sync.collector.keys import Identity
from cloud_sync.collector.metrics import CONTENT_TYPE_LATEST
from cloud_sync.collector.store import EventQuery, SampleQuery


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "a query parameter cannot be used; errors name it",
        401: "missing, unknown or revoked API key",
        403: "the key may read only its own gateway",
        404: "no such gateway or device",
        503: "storage unavailable; retry after Retry-After seconds",
    }
    return {code: {"model": ErrorBody, "description": descriptions[code]} for code in codes}


_FROM = Query(None, alias="from", description="inclusive; ISO 8601 (no offset: UTC) or epoch seconds")
_TO = Query(None, alias="to", description="exclusive; ISO 8601 (no offset: UTC) or epoch seconds")
_LIMIT = Query(None, ge=1, description=f"rows at most (default {params.DEFAULT_LIMIT}, capped at {params.MAX_LIMIT})")


def readable_gateway(identity: Identity, requested: str | None) -> str | None:
    """The gateway filter a key may use: its own gateway, or any for an unbound key."""
    if identity.gateway is None:
        return requested
    if requested is not None and requested != identity.gateway:
        raise Rejected(403, f"this API key may read only gateway {identity.gateway!r}")
    return identity.gateway


def _page(name: str, rows: list[dict[str, Any]], limit: int) -> Response:
    return json_response({name: rows[:limit], "limit": limit, "truncated": len(rows) > limit})


router = APIRouter()
"""The read endpoints; built once per process and shared by every app (see :func:`.app.create_app`)."""


@router.get(
    "/api/v1/stats", summary="Rows and batches stored per gateway", response_model=Stats, responses=error_responses(503)
)
def get_stats(request: Request) -> Response:
    collector = collector_of(request)
    return json_response(collector.call_store(collector.store.stats))


@router.get(
    "/api/v1/gateways",
    summary="Every gateway: last seen, reported backlog, last batch, counts",
    response_model=Gateways,
    responses=error_responses(401, 503),
)
def get_gateways(request: Request, api_key: str | None = Security(api_key_scheme)) -> Response:
    collector = collector_of(request)
    identity = collector.authenticate(api_key)
    gateways = collector.call_store(collector.store.gateways)
    if identity.gateway is not None:
        gateways = [g for g in gateways if g["gateway_id"] == identity.gateway]
    return json_response({"gateways": gateways})


@router.get(
    "/api/v1/samples",
    summary="Samples, ordered by time",
    response_model=Samples,
    responses=error_responses(400, 401, 403, 503),
)
def get_samples(
    request: Request,
    api_key: str | None = Security(api_key_scheme),
    gateway: str | None = Query(None, description="gateway id (exact)"),
    device: str | None = Query(None, description="device name (exact)"),
    tag: str | None = Query(None, description="tag name (exact)"),
    start: str | None = _FROM,
    end: str | None = _TO,
    limit: int | None = _LIMIT,
) -> Response:
    collector = collector_of(request)
    identity = collector.authenticate(api_key)
    lo, hi = params.parse_range(start, end)
    query = SampleQuery(
        gateway=readable_gateway(identity, params.parse_name("gateway", gateway)),
        device=params.parse_name("device", device),
        tag=params.parse_name("tag", tag),
        start=lo,
        end=hi,
        limit=params.cap_limit(limit) + 1,
    )
    rows = collector.call_store(collector.store.samples, query)
    return _page("samples", rows, query.limit - 1)


@router.get(
    "/api/v1/events",
    summary="Events, ordered by time",
    response_model=Events,
    responses=error_responses(400, 401, 403, 503),
)
def get_events(
    request: Request,
    api_key: str | None = Security(api_key_scheme),
    gateway: str | None = Query(None, description="gateway id (exact)"),
    device: str | None = Query(None, description="device name (exact)"),
    kind: str | None = Query(None, description="event kind (exact)"),
    start: str | None = _FROM,
    end: str | None = _TO,
    limit: int | None = _LIMIT,
) -> Response:
    collector = collector_of(request)
    identity = collector.authenticate(api_key)
    lo, hi = params.parse_range(start, end)
    query = EventQuery(
        gateway=readable_gateway(identity, params.parse_name("gateway", gateway)),
        device=params.parse_name("device", device),
        kind=params.parse_name("kind", kind),
        start=lo,
        end=hi,
        limit=params.cap_limit(limit) + 1,
    )
    rows = collector.call_store(collector.store.events, query)
    return _page("events", rows, query.limit - 1)


@router.get(
    "/health",
    summary="200 when the store answers, else 503",
    response_model=Health,
    responses={503: {"model": Health, "description": "the store does not answer"}},
)
def health(request: Request) -> Response:
    collector = collector_of(request)
    try:
        collector.call_store(collector.store.ping)
    except Rejected:
        return json_response({"status": "unavailable", "detail": "the store does not answer; see the log"}, 503)
    return json_response({"status": "ok"})


@router.get(
    "/metrics",
    summary="Prometheus metrics of this collector process",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "text format"}},
)
def metrics(request: Request) -> Response:
    return Response(collector_of(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
