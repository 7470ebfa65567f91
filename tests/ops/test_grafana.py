"""docs/grafana/edge-gateway.json: valid, and every metric its queries use is one the agent or the collector exports.

The metric names come from real scrapes: an agent reading a simulated CNC machine over Modbus TCP and
syncing to a real collector process, each answering ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulators.bearing import VibrationSensor
from simulators.cnc import CncMachine
from simulators.modbus_server import CncModbusServer
from simulators.mqtt_sensors import SensorPublisher
from tests.conftest import free_ports
from tests.integration.collector_proc import CollectorProcess
from tests.integration.helpers import eventually, running_agent, write_config

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs" / "grafana" / "edge-gateway.json"
METRIC = re.compile(r"\b((?:edge_agent|edge_collector|process)_[a-z0-9_]+)\b")

pytestmark = pytest.mark.timeout(60)


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def queries(dash: dict[str, Any]) -> list[str]:
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    out += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return out


def exported(text: str) -> set[str]:
    """Every name a query may use: family names and sample names (``_total``, ``_bucket``, ...)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        names.update(sample.name for sample in family.samples)
    return names


def test_dashboard_is_well_formed() -> None:
    dash = dashboard()
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "instance", "device", "agent_job", "collector_job"} <= variables
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    for query in queries(dash):
        assert query.count("(") == query.count(")") and query.count("{") == query.count("}"), query
        for used in re.findall(r"\$(\w+)", query):
            assert used in variables or used.startswith("__"), f"{query}: unknown variable ${used}"
    titles = " ".join(p["title"] for p in panels).lower()
    for subject in ("samples read", "errors", "data age", "buffer", "backlog", "dropped", "sync", "memory", "cpu"):
        assert subject in titles, subject


async def test_every_metric_of_the_dashboard_is_exported(tmp_path: Path, mosquitto: str) -> None:
    collector_port, modbus_port, http_port = free_ports(3)
    collector = CollectorProcess(collector_port, tmp_path / "collector.sqlite").start()
    sensor = f"vib-{tmp_path.name[-12:]}"  # its own MQTT topic on a shared broker
    stop = asyncio.Event()
    try:
        async with CncModbusServer([CncMachine("cnc-1", seed=7)], port=modbus_port) as server, \
                SensorPublisher([VibrationSensor(sensor, 7, failure_after_s=3600.0)], mosquitto, 0.2) as publisher:
            await server.update()
            publishing = asyncio.create_task(publisher.run(stop))
            config = write_config(tmp_path, f"""
            [[devices]]
            name = "cnc-1"
            profile = "cnc_vmc"
            [devices.connection]
            host = "127.0.0.1"
            port = {modbus_port}
            poll_interval_s = 0.2

            [[devices]]
            name = "{sensor}"
            profile = "vibration_sensor"
            [devices.connection]
            broker = "{mosquitto}"
            """, http_port=http_port, collector=collector.url)
            async with running_agent(config) as agent:
                await eventually(lambda: agent.uploader is not None and agent.uploader.status.last_success is not None,
                                 what="a first good sync")
                health = agent.live.registry.twins[sensor]
                await eventually(lambda: health.health is not None and health.health.index is not None,
                                 what="a health index of the sensor")
                async with httpx.AsyncClient(timeout=10) as client:
                    agent_text = (await client.get(f"http://127.0.0.1:{http_port}/metrics")).text
                    collector_text = (await client.get(f"{collector.url}/metrics")).text
            stop.set()
            await publishing
    finally:
        stop.set()
        collector.stop()
    names = exported(agent_text) | exported(collector_text)
    used = {name for query in queries(dashboard()) for name in METRIC.findall(query)}
    assert len(used) >= 25
    missing = sorted(used - names)
    assert missing == [], f"the dashboard queries metrics nobody exports: {missing}"
