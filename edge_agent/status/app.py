"""The agent's local HTTP API and status page.

Routes: ``/health``, ``/api/v1/status``, ``/api/v1/latest``, the devices and their
twins (:mod:`.api_devices`), alarms (:mod:`.api_alarms`), login (:mod:`.api_auth`),
the live stream ``/api/v1/stream`` (Server-Sent Events) and the page at ``/``
with its assets under ``/static`` (all served from the package: no CDN).

The app reads a :class:`~edge_agent.status.live.LiveView`: the agent's own
``agent.live`` when it has one (and feeds it), else one made here and fed by
an :class:`~edge_agent.status.mirror.AgentMirror`. :func:`run_live` lets time
pass for it and sends status heartbeats; :func:`serve` runs both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from edge_agent.alarms import AlarmNotFound, AlarmRefused
from edge_agent.errors import EdgeError
from edge_agent.status import api_alarms, api_auth, api_devices, api_oee
from edge_agent.status.auth import Session
from edge_agent.status.context import Ctx, ctx_of, require, viewer
from edge_agent.status.live import LiveView, NotFound, Refused
from edge_agent.status.mirror import AgentMirror
from edge_agent.status.settings import settings_from
from edge_agent.status.stream import StreamClosed, TooManyClients, frame

if TYPE_CHECKING:
    from edge_agent.status.view import AgentView

__all__ = ["QuietServer", "create_app", "live_view_for", "run_live", "serve"]

log = logging.getLogger("edge_agent.status")
MIRROR_INTERVAL_S = 0.1
TICK_INTERVAL_S = 1.0


def live_view_for(agent: AgentView) -> tuple[LiveView, bool]:
    """The agent's live view (True: the agent feeds it), or a new one to be fed by mirroring the agent."""
    live = getattr(agent, "live", None)
    if isinstance(live, LiveView):
        return live, True
    config = agent.config
    view = LiveView(config.devices, settings_from(config), record=agent.record_event, gateway_id=config.gateway_id)
    return view, False


def create_app(agent: AgentView) -> FastAPI:
    """The FastAPI app of ``agent`` (see the module docstring)."""
    gateway_id = agent.config.gateway_id
    app = FastAPI(title="edge-agent", version=gateway_id, docs_url=None, redoc_url=None)
    live, fed = live_view_for(agent)
    app.state.ctx = Ctx(agent, live, live.settings, AgentMirror(agent, live), fed)
    static = resources.files("edge_agent.status") / "static"
    page = (static / "index.html").read_text(encoding="utf-8")

    @app.exception_handler(NotFound)
    @app.exception_handler(AlarmNotFound)
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc.args[0] if exc.args else exc)}, status_code=404)

    @app.exception_handler(Refused)
    @app.exception_handler(AlarmRefused)
    async def refused(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.get("/health")
    async def health() -> JSONResponse:
        ok = agent.ready.is_set() and not agent.stopping.is_set()
        return JSONResponse({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)

    @app.get("/api/v1/status")
    async def status(_: Session | None = Depends(viewer)) -> dict[str, Any]:
        return await agent.status()

    @app.post("/api/v1/reload")
    async def reload(session: Session = Depends(require("admin"))) -> JSONResponse:
        """Re-read the config file (like SIGHUP); 422 with the problems when the new config is invalid."""
        do_reload = getattr(agent, "reload", None)
        if do_reload is None:
            return JSONResponse({"detail": "this agent cannot reload"}, status_code=501)
        problems = await do_reload()
        if problems:
            return JSONResponse({"detail": "the new config is invalid; the previous one keeps running",
                                 "problems": problems}, status_code=422)
        return JSONResponse({"status": "reloaded", "by": session.user})

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format, rendered from the status snapshot (see :mod:`edge_agent.ops.metrics`)."""
        from edge_agent.ops.metrics import CONTENT_TYPE, render

        health = {name: twin.health.index for name, twin in live.registry.twins.items()
                  if twin.health is not None and twin.health.index is not None}
        shift_oee = getattr(agent, "shift_oee", None)  # the real agent has live OEE; test doubles may not
        oee = shift_oee() if callable(shift_oee) else None
        return Response(render(await agent.status(), health=health, oee=oee), media_type=CONTENT_TYPE)

    @app.get("/api/v1/latest")
    async def latest(_: Session | None = Depends(viewer)) -> dict[str, Any]:
        return {
            device: {tag: {"value": s.value, "ts": s.ts, "quality": int(s.quality)} for tag, s in tags.items()}
            for device, tags in agent.latest.items()
        }

    @app.get("/api/v1/stream")
    async def stream(request: Request, _: Session | None = Depends(viewer)) -> Response:
        """Server-Sent Events: ``snapshot`` first, then ``twin``, ``alarm``, ``event``, ``status``, ``resync``."""
        ctx = ctx_of(request)
        try:
            sub = ctx.live.broadcaster.subscribe()
        except TooManyClients as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        except StreamClosed:
            return JSONResponse({"detail": "the agent is stopping"}, status_code=503)
        hello = frame("snapshot", ctx.live.snapshot())
        body = ctx.live.broadcaster.iterate(sub, hello, ctx.settings.status.heartbeat_s)
        return StreamingResponse(body, media_type="text/event-stream", headers={
            "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
        })

    app.include_router(api_devices.router)
    app.include_router(api_alarms.router)
    app.include_router(api_auth.router)
    app.include_router(api_oee.router)
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    return app


async def run_live(app: FastAPI, until: asyncio.Event) -> None:
    """Keep the app's live view going until ``until`` is set: mirror the agent (when needed),
    tick once a second, send a status heartbeat every ``heartbeat_s``; then end the live streams."""
    ctx: Ctx = app.state.ctx
    live, agent = ctx.live, ctx.agent
    last_tick = last_beat = float("-inf")
    try:
        while not until.is_set():
            ctx.mirror.sync_states()
            if not ctx.fed:
                ctx.mirror.sync_samples()
            now = time.time()
            if now - last_tick >= TICK_INTERVAL_S:
                last_tick = now
                live.tick(now)
            if now - last_beat >= ctx.settings.status.heartbeat_s:
                last_beat = now
                try:
                    live.heartbeat(await agent.status())
                except EdgeError as exc:
                    log.debug("status heartbeat without agent status: %s", exc)
                    live.heartbeat({})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), MIRROR_INTERVAL_S)
    finally:
        live.broadcaster.close()


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


async def serve(agent: AgentView, tg: asyncio.TaskGroup) -> uvicorn.Server:
    """Start the HTTP server and the live view's ticker as tasks of the agent's task group;
    returns once the server listens."""
    host, port = agent.config.listen
    app = create_app(agent)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = QuietServer(config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"http.listen {host}:{port}: cannot listen: {exc.strerror}") from None
    tg.create_task(server.serve(sockets=[sock]), name="http")
    tg.create_task(run_live(app, agent.stopping), name="status-live")
    while not server.started:
        await asyncio.sleep(0.02)
    log.info("status page on http://%s:%d/", host, port)
    return server
