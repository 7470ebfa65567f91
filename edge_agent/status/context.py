"""What every route reads: the live view, the agent, the settings; and the access checks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import HTTPException, Request

from edge_agent.status.auth import Session
from edge_agent.status.live import LiveView
from edge_agent.status.mirror import AgentMirror
from edge_agent.status.settings import PageSettings
from edge_agent.status.view import AgentView

__all__ = ["COOKIE", "Ctx", "ctx_of", "parse_instant", "require", "session_of", "viewer"]

COOKIE = "edge_session"


@dataclass
class Ctx:
    agent: AgentView
    live: LiveView
    settings: PageSettings
    mirror: AgentMirror
    fed: bool = False
    """True when the agent feeds the live view itself; else the mirror polls its samples too."""


def ctx_of(request: Request) -> Ctx:
    ctx: Ctx = request.app.state.ctx
    return ctx


def session_of(request: Request) -> Session | None:
    """The session of the request's cookie or ``Authorization: Bearer`` token, if valid."""
    live = ctx_of(request).live
    token = request.cookies.get(COOKIE)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    return live.sessions.verify(token, time.time())


def viewer(request: Request) -> Session | None:
    """Dependency of read routes: open by default, else a login is needed."""
    session = session_of(request)
    if session is None and not ctx_of(request).settings.status.open_viewing:
        raise HTTPException(401, "log in to view this gateway")
    return session


def require(permission: str) -> Callable[[Request], Session]:
    """Dependency of routes that act: a login with a role that has ``permission``."""

    def check(request: Request) -> Session:
        session = session_of(request)
        if session is None:
            raise HTTPException(401, "log in first")
        if not session.can(permission):
            raise HTTPException(403, f"role '{session.role}' may not {permission}")
        return session

    return check


def parse_instant(text: str | None, default: float, now: float) -> float:
    """Epoch seconds, ISO 8601, or a negative number of seconds before now."""
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise HTTPException(422, f"not an instant: {text!r} (epoch seconds, ISO 8601 or -seconds)") from None
    if not math.isfinite(value):
        raise HTTPException(422, f"not an instant: {text!r}")
    return now + value if value < 0 else value
