"""The Modbus connector against a real pymodbus TCP server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from connector_testkit import (
    FakeSink,
    ModbusTestServer,
    Ready,
    SilentServer,
    free_port,
    make_device,
    register_image,
    shipped,
    stop_task,
    wait_until,
)

from edge_agent.config import Device
from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.modbus.connector import ModbusConnector
from edge_agent.model import Quality
from edge_agent.profiles import ModbusProfile

CNC_VALUES: dict[str, Any] = {
    "state": 1,
    "stop_reason": 0,
    "good_count": 123456,  # > 65535: both words matter
    "scrap_count": 7,
    "spindle_speed": 8000.0,
    "spindle_load": 42.5,
    "spindle_temp": 42.5,  # int16 x 0.1
    "coolant_temp": -3.5,  # negative int16 x 0.1
    "cycle_time": 12.25,
    "feed_rate": 1500.5,  # CDAB
    "alarm_code": 0,
    "program": "O1234",
    "running": True,
    "power": 7.75,
    "energy": 12345.678,  # float64
}
SCALED = ("spindle_temp", "coolant_temp")


def cnc_profile() -> ModbusProfile:
    profile = shipped("cnc_vmc")
    assert isinstance(profile, ModbusProfile)
    return profile


def device(port: int, profile: ModbusProfile | None = None, **conn: Any) -> Device:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "poll_interval_s": 0.1,
        "timeout_s": 1.0,
        "reconnect_delay_s": 0.1,
        "reconnect_delay_max_s": 0.5,
    } | conn
    return make_device("cnc-1", profile or cnc_profile(), ModbusConnection(**settings))


def assert_cnc_values(sink: FakeSink, expected: dict[str, Any]) -> None:
    latest = sink.latest()
    assert set(latest) == set(expected)
    for name, value in expected.items():
        sample = latest[name]
        assert sample.device == "cnc-1"
        assert sample.quality is Quality.GOOD
        if name in SCALED:
            assert sample.value == pytest.approx(value)
        else:
            assert sample.value == value, name
            assert type(sample.value) is type(value), name


async def test_reads_the_cnc_profile_with_exact_values(modbus_server: ModbusTestServer, sink: FakeSink) -> None:
    await modbus_server.start(register_image(cnc_profile(), CNC_VALUES))
    ready = Ready()
    task = asyncio.create_task(ModbusConnector(device(modbus_server.port), "gw-1").run(sink, ready))
    try:
        await wait_until(lambda: len(sink.latest()) == len(CNC_VALUES), 10, "all tags")
        assert_cnc_values(sink, CNC_VALUES)
        assert ready.calls == 1
        assert sink.calls == ["connected"]
        # one poll = 3 requests; keep polling and check the count grows by whole polls
        await wait_until(lambda: sink.status.requests >= 9, 5, "three polls")
        assert sink.status.errors == 0
        first_poll = [s for s in sink.samples[: len(CNC_VALUES)]]
        assert {s.tag for s in first_poll} == set(CNC_VALUES)
    finally:
        await stop_task(task)


async def test_exception_response_skips_only_that_requests_tags(
    modbus_server: ModbusTestServer, sink: FakeSink
) -> None:
    profile = ModbusProfile.model_validate(
        {
            "protocol": "modbus",
            "profile": {"name": "partial"},
            "tags": [
                {"name": "ok", "type": "uint16", "address": 0},
                {"name": "ok2", "type": "float32", "address": 2},
                {"name": "missing_a", "type": "uint16", "address": 500},  # beyond the server's block
                {"name": "missing_b", "type": "uint16", "address": 501},
            ],
        }
    )
    await modbus_server.start(register_image(profile, {"ok": 17, "ok2": 2.5}))
    task = asyncio.create_task(ModbusConnector(device(modbus_server.port, profile), "gw-1").run(sink, Ready()))
    try:
        await wait_until(lambda: sink.status.requests >= 6, 5, "three polls")
        assert sink.status.errors >= 2 and sink.status.errors % 2 == 0  # two tags per failed request
        assert {s.tag for s in sink.samples} == {"ok", "ok2"}  # no BAD placeholder samples
        assert sink.latest()["ok"].value == 17
        assert sink.latest()["ok2"].value == 2.5
        assert sink.calls == ["connected"]  # an exception response is not a lost connection
    finally:
        await stop_task(task)


async def test_server_stop_and_restart(modbus_server: ModbusTestServer, sink: FakeSink) -> None:
    profile = cnc_profile()
    await modbus_server.start(register_image(profile, CNC_VALUES))
    ready = Ready()
    task = asyncio.create_task(ModbusConnector(device(modbus_server.port), "gw-1").run(sink, ready))
    try:
        await wait_until(lambda: len(sink.latest()) == len(CNC_VALUES), 10, "all tags")
        await modbus_server.stop()
        await wait_until(lambda: sink.count("disconnected") >= 1, 10, "disconnected")
        assert sink.calls[:2] == ["connected", "disconnected"]
        assert sink.errors[0] == "ConnectError: connection lost"
        assert sink.status.errors >= 1
        # the server comes back on the same port with a new count
        changed = CNC_VALUES | {"good_count": 123999, "program": "O9000"}
        await modbus_server.start(register_image(profile, changed))
        await wait_until(lambda: sink.count("connected") == 2, 10, "reconnected")
        await wait_until(lambda: sink.latest()["good_count"].value == 123999, 5, "new data")
        assert_cnc_values(sink, changed)
        assert ready.calls == 1
        assert sink.calls[-1] == "connected"  # failed attempts while the server was down came before
    finally:
        await stop_task(task)


async def test_unreachable_at_start_then_device_appears(modbus_server: ModbusTestServer, sink: FakeSink) -> None:
    ready = Ready()
    task = asyncio.create_task(ModbusConnector(device(modbus_server.port), "gw-1").run(sink, ready))
    try:
        await wait_until(lambda: sink.count("disconnected") >= 2, 5, "failed connects")
        assert ready.calls == 0
        assert "cannot connect" in sink.errors[0]
        assert sink.status.errors >= 2
        await modbus_server.start(register_image(cnc_profile(), CNC_VALUES))
        await wait_until(lambda: len(sink.latest()) == len(CNC_VALUES), 10, "all tags")
        assert ready.calls == 1
        assert sink.count("connected") == 1
    finally:
        await stop_task(task)


async def test_silent_device_times_out_and_is_retried(sink: FakeSink) -> None:
    server = SilentServer(free_port())
    await server.start()
    dev = device(server.port, timeout_s=0.2, retries=1, reconnect_delay_s=5.0, reconnect_delay_max_s=5.0)
    task = asyncio.create_task(ModbusConnector(dev, "gw-1").run(sink, Ready()))
    try:
        await wait_until(lambda: sink.count("disconnected") == 1, 5, "timeout")
        assert sink.calls == ["connected", "disconnected"]
        assert "did not answer" in sink.errors[0]
        assert sink.status.requests == 2  # the first request and one retry
        assert sink.samples == []
    finally:
        await stop_task(task)
        await server.stop()


def test_rejects_a_device_of_another_protocol() -> None:
    profile = shipped("packaging_line")
    with pytest.raises(TypeError):
        ModbusConnector(make_device("x", profile, ModbusConnection(host="h")), "gw")
