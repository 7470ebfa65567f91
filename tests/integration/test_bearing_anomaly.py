"""The simulated plant's degrading bearing, over MQTT into the agent: the streaming anomaly detector
raises its alarm before the bearing reaches the danger level (ISO 10816 zone D, 7.1 mm/s)."""

from __future__ import annotations

import uuid
from pathlib import Path

from edge_agent.profiles import shipped_profiles_dir
from simulators.bearing import DANGER_RMS
from simulators.runner import plant_running
from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent, write_config

LIFE_S = 1800.0  # simulated seconds until failure
SPEED = 60.0     # simulated seconds per real second: the whole life in 30 s


async def test_degrading_bearing_raises_the_anomaly_alarm_before_danger(tmp_path: Path, mosquitto: str) -> None:
    profile = (shipped_profiles_dir() / "vibration_sensor.toml").read_text()
    assert "warmup = 750" in profile
    (tmp_path / "vib.toml").write_text(profile.replace("warmup = 750", "warmup = 60"))
    run = uuid.uuid4().hex[:6]
    async with plant_running(seed=3, cnc=0, lines=0, sensors=1, mqtt_url=mosquitto, speed=SPEED, tick_s=0.05,
                             publish_interval_s=0.05, sensor_life_s=LIFE_S) as plant:
        sensor = plant.plant.sensors[0]
        danger_at = sensor.time_to_rms(DANGER_RMS)
        assert danger_at < LIFE_S
        path = write_config(tmp_path, f"""
        [[devices]]
        name = "vib-1"
        profile = "vib.toml"
        [devices.connection]
        broker = "{mosquitto}"
        client_id = "bearing-{run}"
        """, http_port=free_port())
        async with running_agent(path, http=False) as agent:
            alarms = agent.live.alarms.alarms
            key = "vib-1:vibration_rms:anomaly"

            def raised() -> bool:
                return key in alarms and alarms[key].raised_at is not None

            await eventually(lambda: raised() or sensor.t >= danger_at, 60, "the anomaly alarm or the danger level")
            model_time_at_alarm = sensor.t
            assert raised(), f"no anomaly alarm before the danger level ({danger_at:.0f} s of {LIFE_S:.0f} s)"
            assert model_time_at_alarm < danger_at
            # a real departure, not noise right after the warm-up: the wear trend had risen by then
            learned = sensor.trend_rms(60 * 0.05 * SPEED)
            assert sensor.trend_rms(model_time_at_alarm) > learned * 1.05
            assert agent.monitors["vib-1"].scores["vibration_rms"] >= 0.0
