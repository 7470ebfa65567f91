"""Modbus: request pause, staggered starts, RTU over a serial line (a pty pair) and the guarded
write path. Several units behind one address are tested against pyModbusTCP (tests/peers)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from connector_testkit import (
    FakeSink,
    ModbusTestServer,
    PtyPair,
    Ready,
    device_context,
    make_device,
    register_image,
    stop_task,
    wait_until,
)
from pydantic import ValidationError
from pymodbus.datastore import ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.server import ServerAsyncStop, StartAsyncSerialServer

from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.modbus.connector import ModbusConnector, start_offset
from edge_agent.connectors.modbus.write import WriteFailed, WriteRefused, plan_write
from edge_agent.errors import ConnectError
from edge_agent.profiles import ModbusProfile

PROFILE = ModbusProfile.model_validate(
    {
        "protocol": "modbus",
        "profile": {"name": "setpoints"},
        "tags": [
            {"name": "count", "type": "uint32", "address": 0},
            {"name": "speed_sp", "type": "float32", "order": "CDAB", "address": 2, "writable": True,
             "min": 0.0, "max": 3000.0, "unit": "rpm"},
            {"name": "temp_sp", "type": "int16", "scale": 0.1, "address": 4, "writable": True,
             "min": -20.0, "max": 120.0},
            {"name": "mode", "type": "uint16", "address": 5, "writable": True},
            {"name": "recipe", "type": "string", "length": 2, "address": 6, "writable": True},
            {"name": "far", "type": "uint16", "address": 60, "writable": True},  # beyond the server's block
            {"name": "enable", "type": "bool", "table": "coil", "address": 0, "writable": True},
            {"name": "power", "type": "float32", "table": "input", "address": 0},
        ],
    }
)
VALUES: dict[str, Any] = {"count": 7, "speed_sp": 1000.0, "temp_sp": 20.0, "mode": 1, "recipe": "AB",
                          "enable": False, "power": 1.5}


def connector(port: int, name: str = "m-1", profile: ModbusProfile = PROFILE, **conn: Any) -> ModbusConnector:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "poll_interval_s": 0.1, "timeout_s": 1.0,
                                "reconnect_delay_s": 0.1, "reconnect_delay_max_s": 0.5, "max_gap": 0} | conn
    return ModbusConnector(make_device(name, profile, ModbusConnection(**settings)), "gw")


# --------------------------------------------------------------------------- pacing


async def test_request_pause_spaces_the_requests_of_a_poll(modbus_server: ModbusTestServer, sink: FakeSink) -> None:
    await modbus_server.start(register_image(PROFILE, VALUES))
    modbus = connector(modbus_server.port, request_pause_s=0.15, poll_interval_s=5.0)
    reads = len(modbus.plan)
    assert reads >= 3
    task = asyncio.create_task(modbus.run(sink, Ready()))
    try:
        await wait_until(lambda: "power" in sink.latest(), 10, "one whole poll")
        stamps = sorted({s.ts for s in sink.samples})
        assert len(stamps) == sink.status.requests - 1  # 'far' is rejected: no sample
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert min(gaps) >= 0.14
    finally:
        await stop_task(task)


def test_start_offsets_are_stable_spread_and_bounded() -> None:
    offsets = [start_offset(f"cnc-{i}", 1.0, 1.0) for i in range(50)]
    assert offsets == [start_offset(f"cnc-{i}", 1.0, 1.0) for i in range(50)]
    assert all(0 <= o < 1.0 for o in offsets)
    assert len({round(o, 3) for o in offsets}) > 40
    assert max(offsets) - min(offsets) > 0.8
    assert start_offset("cnc-1", 0.2, 1.0) < 0.2  # never more than one poll interval
    assert start_offset("cnc-1", 1.0, 0.0) == 0.0
    assert connector(502, "cnc-3").start_delay_s == start_offset("cnc-3", 0.1, 1.0)


# --------------------------------------------------------------------------- RTU


async def test_rtu_over_a_serial_line(sink: FakeSink) -> None:
    pty = PtyPair()
    agent_end, device_end = pty.open()
    context = ModbusServerContext(devices={5: device_context(register_image(PROFILE, VALUES))}, single=False)
    server = asyncio.create_task(
        StartAsyncSerialServer(context, port=device_end, framer=FramerType.RTU, baudrate=38400)
    )
    await asyncio.sleep(0.2)
    modbus = connector(502, transport="rtu", host=None, serial_port=agent_end, baudrate=38400, unit_id=5)
    task = asyncio.create_task(modbus.run(sink, Ready()))
    try:
        await wait_until(lambda: "power" in sink.latest(), 10, "values over RTU")
        latest = sink.latest()
        assert {k: latest[k].value for k in VALUES} == VALUES
        await modbus.write("speed_sp", 1234.5)
        await wait_until(lambda: sink.latest()["speed_sp"].value == 1234.5, 5, "the written value read back")
    finally:
        await stop_task(task)
        await ServerAsyncStop()
        await asyncio.wait_for(server, 5)
        pty.close()


def test_transport_needs_its_address() -> None:
    with pytest.raises(ValidationError, match="host: required"):
        ModbusConnection()
    with pytest.raises(ValidationError, match="serial_port: required"):
        ModbusConnection(transport="rtu")
    rtu = ModbusConnection(transport="rtu", serial_port="/dev/ttyUSB0", parity="E", stopbits=1)
    assert rtu.endpoint == "/dev/ttyUSB0 (19200 8E1)"


# --------------------------------------------------------------------------- writes


async def test_guarded_writes(modbus_server: ModbusTestServer, sink: FakeSink) -> None:
    await modbus_server.start(register_image(PROFILE, VALUES))
    modbus = connector(modbus_server.port)
    with pytest.raises(ConnectError, match="not connected"):
        await modbus.write("mode", 2)
    task = asyncio.create_task(modbus.run(sink, Ready()))
    try:
        await wait_until(lambda: "power" in sink.latest(), 10, "the first poll")
        await modbus.write("speed_sp", 2500.25)
        await modbus.write("temp_sp", -12.5)
        await modbus.write("mode", 3)
        await modbus.write("recipe", "XY")
        await modbus.write("enable", True)
        expected = {"speed_sp": 2500.25, "temp_sp": -12.5, "mode": 3, "recipe": "XY", "enable": True}

        def written() -> bool:
            latest = sink.latest()
            return all(latest[k].value == pytest.approx(v) for k, v in expected.items())

        await wait_until(written, 5, "the written values read back")
        assert [e.attributes["tag"] for e in sink.events if e.kind == "setpoint_written"] == list(expected)
        with pytest.raises(WriteFailed, match=r"exception response 2 \(illegal data address\)"):
            await modbus.write("far", 1)
        assert sink.calls == ["connected"]  # a refused request is not a lost connection
    finally:
        await stop_task(task)


@pytest.mark.parametrize(
    ("tag", "value", "reason"),
    [
        ("nope", 1, "has no tag 'nope'"),
        ("count", 1, "'count' is read-only"),
        ("power", 1.0, "'power' is read-only"),
        ("speed_sp", 3000.5, "above the maximum 3000 rpm"),
        ("speed_sp", -1, "below the minimum 0 rpm"),
        ("speed_sp", "fast", "expects a number"),
        ("speed_sp", True, "expects a number"),
        ("speed_sp", float("nan"), "not a finite number"),
        ("temp_sp", 20.05, "must be a multiple of 0.1"),
        ("mode", 1.5, "must be a whole number"),
        ("mode", 70000, "does not fit"),
        ("mode", -1, "does not fit"),
        ("recipe", "ABCDE", "does not fit"),
        ("recipe", "é", "ASCII"),
        ("recipe", 12, "expects a string"),
        ("enable", 1, "expects true or false"),
    ],
)
def test_refused_writes_say_why(tag: str, value: Any, reason: str) -> None:
    with pytest.raises(WriteRefused, match="write refused") as info:
        plan_write(PROFILE, tag, value)
    assert reason in str(info.value)


def test_planned_writes_pick_the_function_code() -> None:
    assert plan_write(PROFILE, "enable", True).function == 5
    assert plan_write(PROFILE, "mode", 65535).function == 6
    assert plan_write(PROFILE, "temp_sp", 42.5).words == [425]
    assert plan_write(PROFILE, "speed_sp", 1.0).words == [0x0000, 0x3F80]  # CDAB
    assert plan_write(PROFILE, "speed_sp", 1.0).function == 16


@pytest.mark.parametrize(
    ("tag", "error"),
    [
        ({"table": "input", "type": "uint16", "writable": True}, "read-only"),
        ({"table": "discrete", "type": "bool", "writable": True}, "read-only"),
        ({"type": "bool", "bit": 2, "writable": True}, "not atomic"),
        ({"type": "uint16", "min": 0}, "need 'writable = true'"),
        ({"type": "uint16", "writable": True, "min": 5, "max": 1}, "above 'max'"),
        ({"type": "string", "length": 2, "writable": True, "max": 1}, "apply to numbers"),
    ],
)
def test_profile_rejects_impossible_write_settings(tag: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ModbusProfile.model_validate(
            {"protocol": "modbus", "profile": {"name": "x"}, "tags": [{"name": "t", "address": 0} | tag]}
        )


def test_request_latency_histogram_is_cumulative_per_upper_bound() -> None:
    from edge_agent.connectors.base import LATENCY_BUCKETS_S, Latency

    latency = Latency()
    for seconds in (0.001, 0.005, 0.0051, 0.3, 11.0):  # 0.005 is on a bound; 11 s is past the last one
        latency.observe(seconds)
    doc = latency.as_dict()
    assert doc["buckets_s"] == list(LATENCY_BUCKETS_S)
    assert doc["counts"] == [2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4]
    assert doc["count"] == 5 and doc["sum_s"] == pytest.approx(11.3111)
