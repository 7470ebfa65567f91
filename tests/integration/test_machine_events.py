"""The agent's machine events, OEE rollups and behaviour profiles, end to end.

A simulated CNC (Modbus TCP, running 10x faster than real time so it stops and produces within seconds) ->
the agent -> its buffer -> a real collector process. The behaviour tick runs on a test clock: it starts just
before the hour holding the samples and is then moved past that hour's end, so the hour (and a one-hour
shift of the test calendar) is rolled up without waiting for it.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from edge_agent.behaviour import validate_attributes
from edge_agent.config import load_config
from edge_agent.supervisor import Agent
from simulators.plant import Plant
from simulators.runner import plant_running
from tests.conftest import free_port
from tests.integration.collector_proc import CollectorProcess
from tests.integration.helpers import eventually

pytestmark = pytest.mark.e2e
GW = "test-gw"


def events(db: Path, table: str = "events", where: str = "") -> list[tuple[str, str, float, dict[str, Any]]]:
    with sqlite3.connect(db) as conn:
        return [(kind, device, ts, orjson.loads(attrs)) for kind, device, ts, attrs in conn.execute(
            f"SELECT kind, device, ts, attributes FROM {table} {where} ORDER BY seq")]


def kinds(rows: list[tuple[str, str, float, dict[str, Any]]]) -> set[str]:
    return {kind for kind, *_ in rows}


async def test_machine_events_rollups_and_profiles_reach_the_buffer_and_the_collector(tmp_path: Path) -> None:
    now = time.time()
    hour_end = math.floor(now / 3600) * 3600 + 3600
    hour_start = hour_end - 3600
    clock = {"now": hour_start - 1.0}
    start_hm, end_hm = (time.strftime("%H:%M", time.gmtime(t)) for t in (hour_start, hour_end))
    (tmp_path / "shifts.toml").write_text(f"""
timezone = "UTC"
[[shifts]]
name = "test"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "{start_hm}"
end = "{end_hm}"
""")
    collector = CollectorProcess(free_port(), tmp_path / "collector.sqlite").start()
    buffer = tmp_path / "data" / "buffer.sqlite"
    try:
        plant = Plant(seed=4, cnc=1, lines=0, sensors=0)
        async with plant_running(plant=plant, modbus_port=free_port(), mqtt_url=None, tick_s=0.05,
                                 speed=10.0) as handle:
            path = tmp_path / "agent.toml"
            path.write_text(textwrap.dedent(f"""
            gateway_id = "{GW}"
            data_dir = "data"
            calendar = "shifts.toml"

            [collector]
            url = "{collector.url}"
            api_key = "test-key"
            interval_s = 0.3
            backoff_max_s = 1.0

            [behaviour]
            tick_interval_s = 0.2
            rollup_delay_s = 0
            part_count_interval_s = 0

            [[devices]]
            name = "cnc-1"
            profile = "cnc_vmc"
            [devices.location]
            site = "plant-a"
            line = "L1"
            [devices.connection]
            host = "127.0.0.1"
            port = {handle.modbus_port}
            unit_id = 1
            poll_interval_s = 0.1
            """))
            agent = Agent(load_config(path), clock=lambda: clock["now"])
            task = asyncio.create_task(agent.run(http=False))
            try:
                await asyncio.wait_for(agent.ready.wait(), 20)

                def machine_kinds() -> set[str]:
                    return kinds(events(buffer, where="WHERE device = 'cnc-1'"))

                await eventually(lambda: {"state_changed", "stop_ended", "part_count"} <= machine_kinds(), 20,
                                 "state_changed, stop_ended and part_count of cnc-1")
                assert handle.modbus is not None
                await handle.modbus.stop()  # no more samples: the hour is over for the machine too
                await eventually(lambda: agent.sinks["cnc-1"].status.state == "disconnected", 10, "cnc-1 gone")
                clock["now"] = hour_end + 1.0  # the hour (and the test shift) ended
                await eventually(lambda: {"oee_rollup", "machine_profile"} <= machine_kinds(), 10,
                                 "the rollups of the hour")
            finally:
                agent.stop()
                await asyncio.wait_for(task, 30)
        stored = events(buffer)
        machine = [(k, ts, a) for k, d, ts, a in stored if d == "cnc-1"]
        for kind, _, attributes in machine:
            validate_attributes(kind, attributes)
        first = next(a for k, _, a in machine if k == "state_changed")
        assert "previous" not in first  # the first state seen
        stops = [a for k, _, a in machine if k == "stop_ended"]
        assert all(a["duration_s"] > 0 and a["category"] != "running" for a in stops)
        rollups = {a["period"]: a for k, _, a in machine if k == "oee_rollup"}
        assert set(rollups) >= {"hour", "shift"}
        hour = rollups["hour"]
        assert (hour["period_start"], hour["period_end"]) == (hour_start, hour_end)
        assert hour["site"] == "plant-a" and hour["line"] == "L1"
        assert rollups["shift"]["shift"] == "test" and rollups["shift"]["total_count"] == hour["total_count"]
        # the same parts, counted by the OEE engine and by the part_count events of the hour
        in_hour = [a for k, ts, a in machine if k == "part_count" and hour_start <= ts < hour_end]
        assert hour["total_count"] == sum(a["good"] + a["scrap"] for a in in_hour) > 0
        assert hour["planned_time_s"] > 0 and 0 < hour["availability"] <= 1
        profiles = {a["period"]: a for k, _, a in machine if k == "machine_profile"}
        assert profiles["hour"]["good"] == sum(a["good"] for a in in_hour)
        assert profiles["hour"]["site"] == "plant-a" and profiles["shift"]["shift"] == "test"
        # the run session open at shutdown was closed with end_of_data
        assert any(k == "run_session" for k, _, _ in machine)
        # everything reached the collector, once
        central = events(tmp_path / "collector.sqlite", where=f"WHERE gateway_id = '{GW}'")
        assert kinds(central) >= {"state_changed", "stop_ended", "part_count", "oee_rollup", "machine_profile"}
        assert len(central) == len(stored)
    finally:
        collector.stop()
