"""The simulated plant's degrading bearing over MQTT into the agent: the health index on the twin starts at 100 and
drops as the bearing wears, and the maintenance recommendation (health below the floor) lands in the buffer.

Without a RUL model the index measures how unusual the readings are: on this steady wear it settles near 78
(the detector's smoothed score near 0.37) once the drift is detected, so the floor here is 85."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

from edge_agent.profiles import shipped_profiles_dir
from simulators.bearing import DANGER_RMS
from simulators.runner import plant_running
from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent, write_config

LIFE_S = 1800.0  # simulated seconds until failure
SPEED = 60.0     # simulated seconds per real second: the whole life in 30 s
FLOOR = 85.0


async def test_health_index_drops_on_the_twin_and_maintenance_is_recommended(tmp_path: Path, mosquitto: str) -> None:
    profile = (shipped_profiles_dir() / "vibration_sensor.toml").read_text()
    assert "warmup = 750" in profile
    profile = profile.replace("warmup = 750", f"warmup = 60\nhealth_floor = {FLOOR}")
    (tmp_path / "vib.toml").write_text(profile)
    run = uuid.uuid4().hex[:6]
    async with plant_running(seed=3, cnc=0, lines=0, sensors=1, mqtt_url=mosquitto, speed=SPEED, tick_s=0.05,
                             publish_interval_s=0.05, sensor_life_s=LIFE_S) as plant:
        sensor = plant.plant.sensors[0]
        path = write_config(tmp_path, f"""
        [status]
        oee_refresh_s = 0.5
        [[devices]]
        name = "vib-1"
        profile = "vib.toml"
        [devices.connection]
        broker = "{mosquitto}"
        client_id = "health-{run}"
        """, http_port=free_port())
        async with running_agent(path) as agent:
            tracker = agent.health_trackers["vib-1"]

            def health() -> float | None:
                figures = agent.live.twin("vib-1")["derived"]["health"]
                return None if figures is None else figures["index"]

            seen: list[tuple[float, float]] = []

            async def watch() -> None:
                while True:
                    index = health()
                    if index is not None:
                        seen.append((sensor.t, index))
                    await asyncio.sleep(0.25)

            watcher = asyncio.create_task(watch())
            try:
                await eventually(lambda: tracker.recommendations > 0 or sensor.t >= LIFE_S, 45,
                                 "a maintenance recommendation or the end of the bearing's life")
                recommended_at = sensor.t
                await eventually(lambda: any(index < FLOOR for _, index in seen), 5, "the twin's health to drop")
            finally:
                watcher.cancel()
            assert tracker.recommendations == 1, f"no recommendation before failure; health seen {seen[-5:]}"
            assert recommended_at < sensor.time_to_rms(DANGER_RMS)
            early = [index for t, index in seen if t < 300.0]  # the first sixth of its life
            assert early and min(early) >= 95.0, f"health of a young bearing: {early}"
            figures = agent.live.twin("vib-1")["derived"]["health"]
            assert "vibration_rms" in figures["detail"] or "temperature" in figures["detail"]
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        rows = conn.execute("SELECT device, attributes FROM events WHERE kind = 'maintenance_recommended'").fetchall()
    assert len(rows) == 1 and rows[0][0] == "vib-1"
    attributes = json.loads(rows[0][1])
    assert attributes["health"] < FLOOR and attributes["rul"] is None
    assert attributes["reason"].startswith("health ") and f"below the floor of {FLOOR:g}" in attributes["reason"]
