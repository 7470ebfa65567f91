"""The whole agent end to end: simulated plant (Modbus, OPC UA, MQTT) -> agent -> real collector process."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.cnc import CNC_PROGRAMS
from simulators.runner import plant_running
from tests.conftest import free_port
from tests.integration.collector_proc import CollectorProcess
from tests.integration.helpers import eventually, running_agent, write_config

pytestmark = pytest.mark.e2e
GW = "test-gw"


def plant_config(tmp_path: Path, modbus: int, opcua_url: str, mqtt_url: str, collector: str, http: int) -> Path:
    return write_config(tmp_path, f"""
    [[devices]]
    name = "cnc-1"
    profile = "cnc_vmc"
    [devices.connection]
    host = "127.0.0.1"
    port = {modbus}
    unit_id = 1
    poll_interval_s = 0.2
    reconnect_delay_s = 0.2
    reconnect_delay_max_s = 1.0

    [[devices]]
    name = "cnc-2"
    profile = "cnc_vmc"
    [devices.connection]
    host = "127.0.0.1"
    port = {modbus}
    unit_id = 2
    poll_interval_s = 0.2

    [[devices]]
    name = "pack-1"
    profile = "packaging_line"
    [devices.connection]
    url = "{opcua_url}"
    publishing_interval_ms = 100

    [[devices]]
    name = "vib-1"
    profile = "vibration_sensor"
    [devices.connection]
    broker = "{mqtt_url}"
    client_id = "e2e-{free_port()}"
    """, http_port=http, collector=collector)


def collector_rows(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [seq for (seq,) in conn.execute("SELECT seq FROM samples WHERE gateway_id = ? ORDER BY seq", (GW,))]


def buffer_seqs(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        return [seq for (seq,) in conn.execute("SELECT seq FROM samples ORDER BY seq")]


async def test_all_protocols_reach_the_collector_and_the_status_api(tmp_path: Path, mosquitto: str) -> None:
    collector = CollectorProcess(free_port(), tmp_path / "collector.sqlite").start()
    http = free_port()
    try:
        async with plant_running(seed=7, cnc=2, lines=1, sensors=1, modbus_port=free_port(),
                                 opcua_port=free_port(), mqtt_url=mosquitto, publish_interval_s=0.2) as plant:
            assert plant.modbus_port and plant.opcua_url and plant.mqtt_url
            path = plant_config(tmp_path, plant.modbus_port, plant.opcua_url, plant.mqtt_url, collector.url, http)
            async with running_agent(path) as agent:
                await eventually(lambda: all(s.status.samples > 0 for s in agent.sinks.values()), 30,
                                 "samples from every device")
                await eventually(lambda: collector.stats(GW).get("samples", 0) > 50, 20, "samples at the collector")
                async with httpx.AsyncClient() as client:
                    status = (await client.get(f"http://127.0.0.1:{http}/api/v1/status")).json()
                    page = await client.get(f"http://127.0.0.1:{http}/")
                    health = await client.get(f"http://127.0.0.1:{http}/health")
                assert health.json() == {"status": "ok"}
                assert "Edge gateway" in page.text and "cdn" not in page.text.lower()
                assert set(status["devices"]) == {"cnc-1", "cnc-2", "pack-1", "vib-1"}
                assert all(d["state"] == "connected" for d in status["devices"].values()), status["devices"]
                assert status["buffer"]["samples_rows"] > 0
                assert status["sync"]["batches_sent"] > 0
                # values decoded per the profile, compared with the simulator's own state
                cnc1 = agent.latest["cnc-1"]
                assert cnc1["program"].value in {p.name for p in CNC_PROGRAMS}
                assert isinstance(cnc1["good_count"].value, int)
                assert cnc1["good_count"].value <= plant.plant.cnc[0].good_count
                assert isinstance(agent.latest["pack-1"]["speed"].value, float)
                assert "seal_temp" in agent.latest["pack-1"]
                # the twin on the local API, with live OEE from the same samples
                base = f"http://127.0.0.1:{http}/api/v1/devices"
                async with httpx.AsyncClient() as client:

                    async def twin_with_oee() -> dict[str, Any]:
                        return dict((await client.get(f"{base}/cnc-1")).json())

                    twin = await twin_with_oee()
                    for _ in range(100):
                        if twin["derived"]["oee"] is not None:
                            break
                        await asyncio.sleep(0.1)
                        twin = await twin_with_oee()
                    names = [d["name"] for d in (await client.get(base)).json()["devices"]]
                assert names == ["cnc-1", "cnc-2", "pack-1", "vib-1"]
                assert twin["reported"]["program"]["value"] in {p.name for p in CNC_PROGRAMS}
                assert twin["derived"]["connection"]["state"] == "connected"
                oee = twin["derived"]["oee"]
                assert oee is not None and 0.0 <= oee["availability"] <= 1.0
                assert agent.oee_engines["cnc-1"].size() > 0
                async with httpx.AsyncClient() as client:
                    report = (await client.get(f"http://127.0.0.1:{http}/api/v1/oee",
                                               params={"device": "pack-1", "granularity": "hour"})).json()
                    missing = await client.get(f"http://127.0.0.1:{http}/api/v1/oee", params={"device": "vib-1"})
                rows = report["devices"]["pack-1"]
                assert 1 <= len(rows) <= 2
                assert all(0.0 <= r["availability"] <= 1.0 for r in rows if "error" not in r)
                assert "error" not in rows[-1]
                assert sum(r.get("total_count", 0) for r in rows) >= 0
                assert missing.status_code == 404
        # after the agent stopped (with a final sync) the collector has exactly the buffer's rows
        assert collector_rows(tmp_path / "collector.sqlite") == buffer_seqs(tmp_path)
        assert collector.stats(GW)["duplicate_batches"] == 0
    finally:
        collector.stop()


async def test_collector_down_then_up_loses_nothing_duplicates_nothing(tmp_path: Path, mosquitto: str) -> None:
    port = free_port()
    collector = CollectorProcess(port, tmp_path / "collector.sqlite")
    http = free_port()
    try:
        async with plant_running(seed=3, cnc=2, lines=1, sensors=1, modbus_port=free_port(),
                                 opcua_port=free_port(), mqtt_url=mosquitto, publish_interval_s=0.2) as plant:
            assert plant.modbus_port and plant.opcua_url and plant.mqtt_url
            path = plant_config(tmp_path, plant.modbus_port, plant.opcua_url, plant.mqtt_url, collector.url, http)
            async with running_agent(path) as agent:
                assert agent.uploader is not None
                uploader = agent.uploader
                await eventually(lambda: uploader.status.consecutive_failures > 0, 10, "a failed sync")
                await eventually(lambda: len(buffer_seqs(tmp_path)) > 300, 30, "a backlog")
                assert collector.proc is None
                collector.start()
                await eventually(lambda: uploader.status.last_result == "ok", 20, "sync to recover")
                status = await agent.status()
                assert status["sync"]["consecutive_failures"] == 0
                await eventually(lambda: collector.stats(GW).get("samples", 0) > 300, 20, "the backlog delivered")
        rows = collector_rows(tmp_path / "collector.sqlite")
        assert rows == buffer_seqs(tmp_path)
        assert len(rows) == len(set(rows))
        with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
            kinds = [k for (k,) in conn.execute("SELECT kind FROM events")]
        assert kinds.count("device_connected") >= 4
    finally:
        collector.stop()


async def test_device_goes_away_and_comes_back(tmp_path: Path, mosquitto: str) -> None:
    http = free_port()
    async with plant_running(seed=5, cnc=2, lines=1, sensors=1, modbus_port=free_port(),
                             opcua_port=free_port(), mqtt_url=mosquitto, publish_interval_s=0.2) as plant:
        assert plant.modbus and plant.modbus_port and plant.opcua_url and plant.mqtt_url
        path = plant_config(tmp_path, plant.modbus_port, plant.opcua_url, plant.mqtt_url,
                            f"http://127.0.0.1:{free_port()}", http)
        async with running_agent(path) as agent:
            cnc1, vib = agent.sinks["cnc-1"], agent.sinks["vib-1"]
            await eventually(lambda: cnc1.status.state == "connected" and cnc1.status.samples > 0, 20, "cnc-1 up")
            await plant.modbus.stop()
            await eventually(lambda: cnc1.status.state == "disconnected", 15, "cnc-1 reported down")
            assert cnc1.status.last_error
            # the other devices keep delivering while cnc-1 is away
            before = vib.status.samples
            await eventually(lambda: vib.status.samples > before + 5, 10, "vib-1 still flowing")
            await plant.modbus.start()
            count = cnc1.status.samples
            await eventually(lambda: cnc1.status.state == "connected" and cnc1.status.samples > count, 20,
                             "cnc-1 back with data")
            assert cnc1.status.reconnects >= 1
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        kinds = [k for (k,) in conn.execute(
            "SELECT kind FROM events WHERE device = 'cnc-1' AND kind LIKE 'device%' ORDER BY seq")]
    assert kinds == ["device_connected", "device_disconnected", "device_connected"]
