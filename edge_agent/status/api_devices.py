"""Devices: the overview, each twin, a tag's history, the state timeline, recent events, setpoints."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from edge_agent.model import Value
from edge_agent.status.auth import Session
from edge_agent.status.context import ctx_of, parse_instant, require, viewer

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


class SetpointRequest(BaseModel):
    tag: str
    value: float | int | bool | str


@router.get("/devices")
async def devices(request: Request, _: Session | None = Depends(viewer)) -> dict[str, Any]:
    live = ctx_of(request).live
    return {"gateway_id": live.gateway_id, "devices": live.devices(), "ts": time.time()}


@router.get("/devices/{name}")
async def device(name: str, request: Request, _: Session | None = Depends(viewer)) -> dict[str, Any]:
    return ctx_of(request).live.twin(name)


@router.get("/devices/{name}/history")
async def history(
    name: str,
    request: Request,
    tag: str,
    start: str | None = Query(default=None, alias="from"),
    end: str | None = Query(default=None, alias="to"),
    points: int = Query(default=300, ge=2),
    mode: Literal["minmax", "lttb"] = "minmax",
    _: Session | None = Depends(viewer),
) -> dict[str, Any]:
    """``from``/``to``: epoch seconds, ISO 8601, or negative seconds before now (default: the last hour)."""
    ctx = ctx_of(request)
    now = time.time()
    t_to = parse_instant(end, now, now)
    t_from = parse_instant(start, t_to - 3600.0, now)
    points = min(points, ctx.settings.status.history_max_points)
    return await ctx.live.history(name, tag, t_from, t_to, points, mode)


@router.get("/devices/{name}/timeline")
async def timeline(
    name: str,
    request: Request,
    start: str | None = Query(default=None, alias="from"),
    end: str | None = Query(default=None, alias="to"),
    _: Session | None = Depends(viewer),
) -> dict[str, Any]:
    """State segments of the machine (default: the current shift so far)."""
    live = ctx_of(request).live
    now = time.time()
    t_to = parse_instant(end, now, now)
    shift = live.registry.shift_from if live.registry.shift_from is not None else now - 8 * 3600.0
    t_from = parse_instant(start, shift, now)
    return {"device": name, "from": t_from, "to": t_to, "segments": live.timeline(name, t_from, t_to)}


@router.get("/devices/{name}/events")
async def events(name: str, request: Request, limit: int = Query(default=50, ge=1, le=1000),
                 _: Session | None = Depends(viewer)) -> dict[str, Any]:
    return {"device": name, "events": ctx_of(request).live.events(name, limit)}


@router.get("/events")
async def all_events(request: Request, limit: int = Query(default=50, ge=1, le=1000),
                     _: Session | None = Depends(viewer)) -> dict[str, Any]:
    return {"events": ctx_of(request).live.events(None, limit)}


@router.post("/devices/{name}/setpoints")
async def setpoint(name: str, body: SetpointRequest, request: Request,
                   session: Session = Depends(require("write"))) -> dict[str, Any]:
    value: Value = body.value
    return await ctx_of(request).live.request_setpoint(name, body.tag, value, session.user)
