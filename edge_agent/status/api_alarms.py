"""Alarm list and the operator actions on alarms: acknowledge, shelve, unshelve."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from edge_agent.status.auth import Session
from edge_agent.status.context import ctx_of, require, viewer

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alarms")


class Ack(BaseModel):
    note: str = Field(default="", max_length=500)


class Shelve(BaseModel):
    duration_s: float | None = Field(default=None, gt=0)
    note: str = Field(default="", max_length=500)


@router.get("")
async def alarms(request: Request, state: Literal["active", "all"] = "active", device: str | None = None,
                 _: Session | None = Depends(viewer)) -> dict[str, Any]:
    chosen = ctx_of(request).live.alarms.select(state, device)
    return {"state": state, "alarms": [a.as_dict() for a in chosen]}


@router.get("/{alarm_id}")
async def alarm(alarm_id: str, request: Request, _: Session | None = Depends(viewer)) -> dict[str, Any]:
    return ctx_of(request).live.alarms.get(alarm_id).as_dict()


@router.post("/{alarm_id}/ack")
async def ack(alarm_id: str, body: Ack, request: Request, session: Session = Depends(require("ack"))) -> dict[str, Any]:
    return ctx_of(request).live.acknowledge(alarm_id, session.user, body.note)


@router.post("/{alarm_id}/shelve")
async def shelve(alarm_id: str, body: Shelve, request: Request,
                 session: Session = Depends(require("shelve"))) -> dict[str, Any]:
    return ctx_of(request).live.shelve(alarm_id, session.user, body.duration_s, body.note)


@router.post("/{alarm_id}/unshelve")
async def unshelve(alarm_id: str, request: Request, session: Session = Depends(require("shelve"))) -> dict[str, Any]:
    return ctx_of(request).live.unshelve(alarm_id, session.user)
