"""The agent reading MQTT JSON from a real Mosquitto broker into its SQLite buffer."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent, write_config


def publisher(url: str) -> mqtt.Client:
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(host, int(port))
    client.loop_start()
    return client


def stored(path: Path, device: str, tag: str) -> list[tuple[float, float]]:
    with sqlite3.connect(path / "data" / "buffer.sqlite") as conn:
        return list(conn.execute("SELECT ts, value FROM samples WHERE device=? AND tag=? ORDER BY seq", (device, tag)))


async def test_mqtt_json_to_buffer_with_malformed_payloads(tmp_path: Path, mosquitto: str) -> None:
    device = f"vib-{uuid.uuid4().hex[:6]}"
    path = write_config(tmp_path, f"""
    [[devices]]
    name = "{device}"
    profile = "vibration_sensor"
    [devices.connection]
    broker = "{mosquitto}"
    qos = 1
    """, http_port=free_port())
    topic = f"plant/sensors/{device}/telemetry"
    pub = publisher(mosquitto)
    try:
        async with running_agent(path, http=False) as agent:
            sink = agent.sinks[device]
            await eventually(lambda: sink.status.state == "connected", what="MQTT connection")
            infos = []
            for i in range(200):
                doc = {"ts": f"2026-11-22T08:00:{i % 60:02d}.{i:03d}Z",
                       "vibration": {"rms": 1.0 + i / 1000, "peak": 0.5, "crest": 3.0},
                       "temperature": 40.0, "battery": 90}
                infos.append(pub.publish(topic, orjson.dumps(doc), qos=1))
            pub.publish(topic, b"{not json", qos=1)
            pub.publish(topic, orjson.dumps({"vibration": {"rms": "high"}}), qos=1)
            pub.publish(topic, orjson.dumps({"something": "else"}), qos=1)
            for info in infos:
                info.wait_for_publish(5)
            await eventually(lambda: sink.status.malformed == 3, what="malformed payloads counted")
            await eventually(lambda: len(stored(tmp_path, device, "vibration_rms")) == 200, what="200 samples stored")
            assert agent.latest[device]["battery"].value == 90
            rows = stored(tmp_path, device, "vibration_rms")
            assert rows[1] == (1795334401.001, 1.001)  # payload timestamp, UTC
            assert sink.status.state == "connected"
    finally:
        pub.loop_stop()
        pub.disconnect()
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE device = ?", (device,))]
    assert kinds.count("malformed_payload") == 3
    assert "device_connected" in kinds
