"""The simulated turbofan engine over MQTT into the agent (profile ``turbofan_engine``): the RUL model runs on
the device's cycles at the edge, the twin shows the falling health index and a maintenance recommendation lands
in the buffer when the RUL falls below the 30-cycle horizon."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

import httpx

from simulators.turbofan import SyntheticEngine, TurbofanPublisher
from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent, write_config

LIFE = 150  # cycles to failure
CYCLE_S = 0.02


async def test_turbofan_rul_at_the_edge_recommends_maintenance(tmp_path: Path, mosquitto: str) -> None:
    name = f"engine-{uuid.uuid4().hex[:6]}"
    engine = SyntheticEngine(name, seed=5, life=LIFE)
    port = free_port()
    path = write_config(tmp_path, f"""
    [status]
    oee_refresh_s = 0.2
    [[devices]]
    name = "{name}"
    profile = "turbofan_engine"
    [devices.connection]
    broker = "{mosquitto}"
    """, http_port=port)
    async with running_agent(path) as agent:
        tracker = agent.health_trackers[name]
        assert tracker.rul is not None and tracker.rul_error is None
        await eventually(lambda: agent.sinks[name].status.state == "connected", 10, "the MQTT subscription")
        async with TurbofanPublisher([engine], mosquitto, CYCLE_S) as publisher:
            await publisher.run()
        await eventually(lambda: tracker.rul is not None and tracker.rul.cycles.cycles == LIFE, 10, "every cycle")
        estimate = tracker.rul.estimate
        assert estimate is not None and estimate.cycle == LIFE and estimate.cycles < 30.0
        await eventually(lambda: (agent.live.twin(name)["derived"]["health"] or {}).get("index") == (
            tracker.current.index if tracker.current else None), 5, "the twin's health")
        health = agent.live.twin(name)["derived"]["health"]
        assert health["index"] < 25.0 and health["detail"].startswith("RUL ")
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert f'edge_agent_device_health_index{{device="{name}"}} {health["index"]}' in metrics
        await asyncio.sleep(0.3)  # the recommendation event reaches the buffer writer
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        rows = conn.execute("SELECT ts, attributes FROM events WHERE kind = 'maintenance_recommended'").fetchall()
        cycles = conn.execute("SELECT COUNT(*) FROM samples WHERE tag = 'cycle'").fetchone()[0]
    assert cycles == LIFE
    assert len(rows) == 1
    attributes = json.loads(rows[0][1])
    assert attributes["rul"] < 30.0 and attributes["horizon"] == 30.0 and attributes["model"] == "rul_fd001"
