"""Login, logout and who is logged in."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from edge_agent.status.auth import Session
from edge_agent.status.context import COOKIE, ctx_of, require, session_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/login")
async def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    ctx = ctx_of(request)
    live = ctx.live
    now = time.time()
    if live.sessions.locked(body.name, now):
        live.operator_event("operator_login_failed", body.name, reason="locked")
        raise HTTPException(429, "too many failed logins: wait a minute")
    session = await asyncio.to_thread(live.sessions.check, body.name, body.password, now)
    if session is None:
        live.operator_event("operator_login_failed", body.name, reason="wrong name or password")
        raise HTTPException(401, "wrong name or password")
    token = live.sessions.token(session)
    response.set_cookie(COOKIE, token, max_age=int(session.expires - now), httponly=True, samesite="strict",
                        secure=ctx.settings.status.cookie_secure, path="/")
    live.operator_event("operator_login", session.user, role=session.role)
    return {"user": session.user, "role": session.role, "expires": session.expires, "token": token}


@router.post("/logout")
async def logout(request: Request, response: Response, session: Session = Depends(require("view"))) -> dict[str, Any]:
    live = ctx_of(request).live
    live.sessions.revoke(session, time.time())
    response.delete_cookie(COOKIE, path="/")
    live.operator_event("operator_logout", session.user)
    return {"user": None}


@router.get("/session")
async def whoami(request: Request) -> dict[str, Any]:
    """Who is logged in, and what the gateway allows without a login."""
    ctx = ctx_of(request)
    session = session_of(request)
    return {
        "user": session.user if session else None,
        "role": session.role if session else None,
        "expires": session.expires if session else None,
        "open_viewing": ctx.settings.status.open_viewing,
        "login_enabled": bool(ctx.settings.users),
        "can": sorted(p for p in ("view", "ack", "shelve", "write") if session and session.can(p)),
    }
