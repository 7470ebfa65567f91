"""The agent's local HTTP API and status page (a read-only view of the supervisor's state)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from importlib import resources
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

if TYPE_CHECKING:
    from edge_agent.supervisor import Agent

log = logging.getLogger("edge_agent.status")


def create_app(agent: Agent) -> FastAPI:
    app = FastAPI(title="edge-agent", version=agent.config.gateway_id, docs_url=None, redoc_url=None)
    page = (resources.files("edge_agent.status") / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/health")
    async def health() -> JSONResponse:
        ok = agent.ready.is_set() and not agent.stopping.is_set()
        return JSONResponse({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)

    @app.get("/api/v1/status")
    async def status() -> dict[str, Any]:
        return await agent.status()

    @app.get("/api/v1/latest")
    async def latest() -> dict[str, Any]:
        return {
            device: {tag: {"value": s.value, "ts": s.ts, "quality": int(s.quality)} for tag, s in tags.items()}
            for device, tags in agent.latest.items()
        }

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    return app


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


async def serve(agent: Agent, tg: asyncio.TaskGroup) -> uvicorn.Server:
    """Start the HTTP server as a task of the agent's task group; returns once it listens."""
    host, port = agent.config.listen
    config = uvicorn.Config(
        create_app(agent), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
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
    while not server.started:
        await asyncio.sleep(0.02)
    log.info("status page on http://%s:%d/", host, port)
    return server
