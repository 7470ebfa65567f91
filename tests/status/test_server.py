"""The status app served by uvicorn: the live stream over HTTP and a clean stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from tests.status.served import running_gateway


class SseReader:
    """Server-Sent Events of one response, message by message."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines: AsyncIterator[str] = response.aiter_lines()

    async def next(self) -> tuple[str, Any]:
        kind = "message"
        async for line in self.lines:
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                return kind, orjson.loads(line[6:])
        raise EOFError

    async def until(self, kind: str, where: Any = lambda data: True, timeout: float = 5.0) -> Any:
        async def loop() -> Any:
            while True:
                got, data = await self.next()
                if got == kind and where(data):
                    return data

        return await asyncio.wait_for(loop(), timeout)


async def test_stream_sends_snapshot_twin_changes_and_heartbeats() -> None:
    async with (
        running_gateway(backfill_hours=0, interval_s=0.2) as gw,
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{gw.url}/api/v1/stream") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        sse = SseReader(response)
        snapshot = await sse.until("snapshot")
        assert len(snapshot["devices"]) == 5 and snapshot["gateway_id"] == "plant-a-gw1"
        status = await sse.until("status")
        assert status["devices"]["cnc-1"]["state"] == "connected" and "buffer" in status
        gw.plant.stop("cnc-2", 21)
        sent = time.time()

        def stopped(data: Any) -> bool:
            state = data["changes"].get("derived.state")
            return bool(data["device"] == "cnc-2" and state and state["category"] == "unplanned_stop")

        change = await sse.until("twin", stopped)
        assert time.time() - sent < 2.0
        assert change["changes"]["derived.state"]["reason_text"] == "spindle fault"
        assert gw.live.broadcaster.stats()["clients"] == 1


async def test_server_stops_with_open_streams() -> None:
    async with running_gateway(backfill_hours=0) as gw, httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", f"{gw.url}/api/v1/stream") as response:
            sse = SseReader(response)
            await sse.until("snapshot")
            started = time.monotonic()
            gw.stop()
            try:
                while True:
                    await asyncio.wait_for(sse.next(), 3)
            except EOFError:
                pass  # the stream ended instead of holding the server open
            assert time.monotonic() - started < 3
        assert gw.live.broadcaster.closed
