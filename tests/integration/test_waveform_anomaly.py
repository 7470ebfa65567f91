"""A raw-waveform vibration sensor over MQTT into the agent: the features are computed at the edge, and the
anomaly alarm on a waveform feature (BPFO energy or kurtosis) rises after the outer-race spall starts and
before the bearing's danger level and its simulated failure."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from edge_agent.profiles import shipped_profiles_dir
from simulators.bearing import ALERT_RMS, DANGER_RMS, VibrationSensor
from simulators.mqtt_sensors import SensorPublisher
from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent, write_config

LIFE_S = 1800.0  # simulated seconds until failure
SPEED = 60.0     # simulated seconds per real second: the whole life in 30 s
INTERVAL_S = 0.05  # one window every 3 simulated seconds
WARMUP = 200     # windows: the first 600 simulated seconds, before the spall starts at 630 s


async def test_degrading_bearing_raises_a_waveform_feature_alarm_before_danger(
    tmp_path: Path, mosquitto: str
) -> None:
    profile = (shipped_profiles_dir() / "vibration_waveform.toml").read_text()
    assert "warmup = 750" in profile
    (tmp_path / "vibw.toml").write_text(profile.replace("warmup = 750", f"warmup = {WARMUP}"))
    run = uuid.uuid4().hex[:6]
    name = f"vibw-{run}"
    # the bearing's random streams come from its seed and name: a fixed model name makes every run publish the
    # same windows (the alarm times of the docs); the device keeps a name of its own on the broker
    sensor = VibrationSensor("vibw", seed=3, failure_after_s=LIFE_S)
    sensor.name = name
    danger_at = sensor.time_to_rms(DANGER_RMS)
    assert WARMUP * INTERVAL_S * SPEED <= sensor.defect_onset_s < danger_at < LIFE_S
    path = write_config(tmp_path, f"""
    [[devices]]
    name = "{name}"
    profile = "vibw.toml"
    [devices.connection]
    broker = "{mosquitto}"
    client_id = "waveform-{run}"
    """, http_port=free_port())
    async with running_agent(path, http=False) as agent:
        stamps: list[tuple[float, float]] = []  # (timestamp of a window, the bearing's age then)

        def clock() -> float:  # each window ages the bearing by INTERVAL_S * SPEED, whatever the load
            sensor.step(INTERVAL_S * SPEED)
            stamps.append((time.time(), sensor.t))
            return stamps[-1][0]

        def age_at(ts: float) -> float:  # the bearing's age when the window stamped ts was taken
            return max((t for stamp, t in stamps if stamp <= ts), default=0.0)

        publisher = SensorPublisher([sensor], mosquitto, INTERVAL_S, clock=clock, waveform=True, waveform_points=2048)
        alarms = agent.live.alarms.alarms
        keys = [f"{name}:vib.bpfo_energy:anomaly", f"{name}:vib.kurtosis:anomaly"]

        def raised() -> list[str]:
            return [k for k in keys if k in alarms and alarms[k].raised_at is not None]

        async with publisher:
            assert await publisher.wait_connected(10)
            # the agent subscribes once connected: give the broker its SUBSCRIBE before the first window
            await eventually(lambda: agent.sinks[name].status.state == "connected", 10, "the agent's MQTT session")
            await asyncio.sleep(0.3)
            stop = asyncio.Event()
            publishing = asyncio.create_task(publisher.run(stop))
            try:
                await eventually(lambda: bool(raised()) or sensor.t >= danger_at, 90,
                                 "a waveform feature's anomaly alarm or the danger level")
                model_time_at_alarm = (
                    min(age_at(alarms[k].raised_at or 0.0) for k in raised()) if raised() else sensor.t
                )
            finally:
                stop.set()
                await publishing
        print(f"\nwaveform alarms {raised()} at {model_time_at_alarm:.0f} s simulated (spall from "
              f"{sensor.defect_onset_s:.0f} s, RMS trend {sensor.trend_rms(model_time_at_alarm):.2f} mm/s; "
              f"danger level at {danger_at:.0f} s, failure at {LIFE_S:.0f} s)")
        assert raised(), f"no anomaly alarm before the danger level ({danger_at:.0f} s of {LIFE_S:.0f} s)"
        assert model_time_at_alarm < danger_at
        # the defect's alarm, not noise: the healthy windows before the spall raised none
        assert model_time_at_alarm > sensor.defect_onset_s
        # the edge features see the defect while the velocity RMS is still in the normal zone
        assert sensor.trend_rms(model_time_at_alarm) < ALERT_RMS
        # the features went through the whole pipeline: latest values, and no raw array stored as a sample
        latest = agent.latest[name]
        assert {"shaft_speed", "vib.rms", "vib.kurtosis", "vib.bpfo_energy"} <= set(latest)
        assert "vib" not in latest
        assert agent.sinks[name].status.malformed == 0
        assert agent.sinks[name].status.samples > WARMUP * len(latest)
        assert agent.monitors[name].scores["vib.bpfo_energy"] >= 0.0
