"""The agent publishing a simulated CNC (Modbus) as a Sparkplug B edge node on Mosquitto, with its live OEE."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent.connectors.sparkplug.schema import Payload
from simulators.runner import plant_running
from tests.conftest import free_port
from tests.integration.helpers import cnc_device, eventually, running_agent, write_config


async def test_agent_publishes_its_devices_as_an_edge_node(mosquitto: str, tmp_path: Path) -> None:
    group = f"plant-{uuid.uuid4().hex[:6]}"
    seen: list[tuple[str, Any]] = []
    host, port = mosquitto.removeprefix("mqtt://").split(":")
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"host-{group}")
    sub.on_message = lambda _c, _u, msg: seen.append((msg.topic, Payload.FromString(msg.payload)))
    sub.connect(host, int(port))
    sub.subscribe(f"spBv1.0/{group}/#", qos=1)
    sub.loop_start()
    try:
        async with plant_running(seed=5, cnc=1, lines=0, sensors=0, modbus_port=free_port(), mqtt_url=None) as plant:
            path = write_config(tmp_path, f"""
            [sparkplug_node]
            broker = "{mosquitto}"
            group_id = "{group}"
            interval_s = 0.2
            computed_interval_s = 0.2

            """ + cnc_device(plant.modbus_port, poll_interval_s=0.2), http_port=free_port())
            async with running_agent(path, http=False) as agent:
                def born() -> dict[str, Any]:
                    births = [p for t, p in seen if t == f"spBv1.0/{group}/DBIRTH/test-gw/cnc-1"]
                    return {m.name: m for m in births[-1].metrics} if births else {}

                await eventually(lambda: "OEE/oee" in born() and "spindle_speed" in born(), 20,
                                 "a DBIRTH with the CNC's tags and its OEE")
                await eventually(lambda: any(t.endswith("DDATA/test-gw/cnc-1") for t, _ in seen), 10, "DDATA")
                status = (await agent.status())["sparkplug_node"]
                assert status["online"] and status["edge_node_id"] == "test-gw" and status["dropped"] == 0
            # the agent stopped cleanly: its own NDEATH, with the bdSeq of its NBIRTH
            nbirth = next(p for t, p in seen if t.endswith("NBIRTH/test-gw"))
            await eventually(lambda: any(t.endswith("NDEATH/test-gw") for t, _ in seen), 5, "NDEATH at shutdown")
            ndeath = next(p for t, p in seen if t.endswith("NDEATH/test-gw"))
            bdseq = {m.name: m.long_value for m in nbirth.metrics}["bdSeq"]
            assert {m.name: m.long_value for m in ndeath.metrics}["bdSeq"] == bdseq
    finally:
        sub.loop_stop()
        sub.disconnect()
