"""``GET /api/v1/oee``: OEE over the fleet from the gateways' ``oee_rollup`` events.

The events are read in pages (keyset on ``(ts, gateway_id, seq)``, each page
its own short read) and folded into :class:`~cloud_sync.collector.oee_rollups.FleetOee`;
nothing but the per-rollup sums is kept. A rollup counts when its period kind
is ``granularity`` and its period *starts* in ``[from, to)``; its event's ``ts``
(when the gateway reported it, never before the period started) bounds the
read from below.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import Response

from cloud_sync.collector import params
from cloud_sync.collector.api_models import FleetOee as FleetOeeBody
from cloud_sync.collector.body import Rejected
from cloud_sync.collector.context import api_key_scheme, collector_of, json_response
from cloud_sync.collector.oee_rollups import FleetOee, RollupFilter, TooManyRollups
from cloud_sync.collector.query_api import error_responses, readable_gateway
from cloud_sync.collector.store import EventQuery

OEE_ROLLUP = "oee_rollup"
PAGE = 5000
"""Events read per query."""

router = APIRouter()
"""The fleet OEE endpoint; built once per process and shared by every app (see :func:`.app.create_app`)."""


@router.get(
    "/api/v1/oee",
    summary="OEE per device and period over the fleet, with totals recomputed from summed times and counts",
    tags=["oee"],
    response_model=FleetOeeBody,
    responses=error_responses(400, 401, 403, 503),
)
def get_oee(
    request: Request,
    api_key: str | None = Security(api_key_scheme),
    gateway: str | None = Query(None, description="gateway id (exact)"),
    device: str | None = Query(None, description="device name (exact)"),
    site: str | None = Query(None, description="the rollup's site (exact)"),
    area: str | None = Query(None, description="the rollup's area (exact)"),
    line: str | None = Query(None, description="the rollup's line (exact)"),
    start: str | None = Query(
        None, alias="from", description="periods starting at or after; ISO 8601 (no offset: UTC) or epoch seconds"
    ),
    end: str | None = Query(None, alias="to", description="periods starting before; ISO 8601 or epoch seconds"),
    granularity: Literal["hour", "shift", "day"] = Query("hour", description="the period kind of the rollups"),
    group: Literal["device", "line", "area", "site", "gateway"] | None = Query(
        None, description="also aggregate per device, line (site, area, line), area, site or gateway"
    ),
    limit: int | None = Query(
        None, ge=1, description=f"rollups listed at most (default {params.DEFAULT_LIMIT}, capped at {params.MAX_LIMIT})"
    ),
) -> Response:
    collector = collector_of(request)
    identity = collector.authenticate(api_key)
    lo, hi = params.parse_range(start, end)
    rule = RollupFilter(
        granularity=granularity,
        start=lo,
        end=hi,
        site=params.parse_name("site", site),
        area=params.parse_name("area", area),
        line=params.parse_name("line", line),
    )
    query = EventQuery(
        gateway=readable_gateway(identity, params.parse_name("gateway", gateway)),
        device=params.parse_name("device", device),
        kind=OEE_ROLLUP,
        start=lo,
        limit=PAGE,
    )
    fleet = FleetOee(rule, group=group, limit=params.cap_limit(limit))
    try:
        while True:
            page = collector.call_store(collector.store.events, query)
            for event in page:
                fleet.add(event)
            if len(page) < PAGE:
                break
            last = page[-1]
            query = replace(query, after=(last["ts"], last["gateway_id"], last["seq"]))
    except TooManyRollups as exc:
        raise Rejected(400, str(exc), [{"field": "from", "message": "narrow the window"}]) from None
    return json_response({"granularity": granularity, "group": group, **fleet.result()})
