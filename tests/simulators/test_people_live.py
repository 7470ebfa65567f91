"""The simulated MES and an operator against a real collector process and a real agent status server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from simulators.mes import run_mes
from simulators.operators import OperatorModel, run_operator
from tests.collector.served_collector import served_collector
from tests.status.served import running_gateway

pytestmark = pytest.mark.timeout(60)
KEY = "people-key"


async def until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_mes_and_operator_act_through_the_real_apis(tmp_path: Path) -> None:
    async with served_collector(tmp_path / "collector.sqlite", KEY) as url:
        async with running_gateway(backfill_hours=0, interval_s=0.2) as gw:
            stop = asyncio.Event()
            mes = asyncio.create_task(run_mes(url, KEY, stop, agent_url=gw.url, history_s=900, poll_s=0.3))
            operator = asyncio.create_task(run_operator(gw.url, "olga", "shift-lead-1",
                                                        OperatorModel(3, time_scale=0.005), stop, poll_s=0.2))
            gw.plant.set_value("cnc-1", "spindle_temp", 65.0)  # above the profile's hi limit: an alarm is raised

            def acked() -> bool:
                return any(e.kind == "alarm_acknowledged" and e.attributes.get("user") == "olga"
                           for e in gw.agent.events)

            await until(acked)
            await asyncio.sleep(1.5)  # a few counter readings of the live plant
            stop.set()
            mes_stats, op_stats = await mes, await operator
        logins = [e for e in gw.agent.events if e.kind == "operator_login"]
        assert logins and logins[0].attributes["user"] == "olga"
        assert op_stats.logins >= 1 and op_stats.acks >= 1 and op_stats.errors == 0
        history_parts = 900 / 12 * 2 * 0.5  # two machines, at least half the time making parts
        assert mes_stats.parts > history_parts and mes_stats.rejected == 0 and mes_stats.failed_posts == 0
        assert mes_stats.accepted > 0
        async with httpx.AsyncClient(base_url=url, headers={"x-api-key": KEY}) as client:
            events = (await client.get("/api/v1/events", params={"gateway": "mes", "limit": 10000})).json()["events"]
            kinds = {e["kind"] for e in events}
            assert {"part_loaded", "part_machined", "part_inspected", "part_packed"} <= kinds
            assert len(events) == mes_stats.accepted
            live = [e for e in events if e["ts"] > time.time() - 30 and e["kind"] == "part_machined"]
            assert live, "parts the agent counted while the test ran"
