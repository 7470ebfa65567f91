"""A real uvicorn server of the status app, driven by the fake plant, for stream and browser tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from edge_agent.status.app import serve
from edge_agent.status.live import LiveView
from tests.conftest import free_port
from tests.status.fakeplant import FakeAgent, FakePlant, wire


@dataclass
class Gateway:
    agent: FakeAgent
    plant: FakePlant
    live: LiveView
    server: uvicorn.Server
    url: str

    def stop(self) -> None:
        """Stop as the supervisor does: the agent is stopping, then the HTTP server exits."""
        self.agent.stopping.set()
        self.server.should_exit = True


@contextlib.asynccontextmanager
async def running_gateway(backfill_hours: float = 2.0, interval_s: float = 0.5) -> AsyncIterator[Gateway]:
    """The fake plant's gateway serving on a free loopback port, samples every ``interval_s``."""
    agent = FakeAgent(port=free_port())
    plant = FakePlant(agent)
    live = wire(agent, plant)
    if backfill_hours:
        plant.backfill(hours=backfill_hours)
    async with asyncio.TaskGroup() as tg:
        server = await serve(agent, tg)
        feeder = tg.create_task(plant.run(interval_s), name="fake-plant")
        gw = Gateway(agent, plant, live, server, f"http://127.0.0.1:{agent.config.port}")
        try:
            yield gw
        finally:
            feeder.cancel()
            gw.stop()
