"""The OPC UA connector against a real asyncua server."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncua import ua
from connector_testkit import (
    FakeSink,
    OpcuaTestServer,
    Ready,
    free_port,
    make_device,
    shipped,
    stop_task,
    wait_until,
)

from edge_agent.config import Device
from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.opcua.connector import OpcuaConnector
from edge_agent.model import Quality
from edge_agent.profiles import OpcuaProfile

INITIAL: dict[str, Any] = {
    "state": 1,
    "stop_reason": 0,
    "running": True,
    "good_count": 1200,
    "reject_count": 3,
    "speed": 120.5,
    "motor_current": 4.25,
    "seal_temp": 172.5,  # found by browse path
    "recipe": "choc-bar-40g",
}


def device(url: str, name: str = "pack-1", profile: OpcuaProfile | None = None, **conn: Any) -> Device:
    settings: dict[str, Any] = {
        "url": url,
        "publishing_interval_ms": 50,
        "poll_interval_s": 0.1,
        "timeout_s": 2.0,
        "reconnect_delay_s": 0.2,
        "reconnect_delay_max_s": 1.0,
        "watchdog_interval_s": 1.0,
    } | conn
    prof = profile or shipped("packaging_line")
    assert isinstance(prof, OpcuaProfile)
    return make_device(name, prof, OpcuaConnection(**settings))


def assert_initial(sink: FakeSink, device_name: str = "pack-1") -> None:
    latest = sink.latest()
    for name, value in INITIAL.items():
        assert latest[name].value == value, name
        assert type(latest[name].value) is type(value), name
        assert latest[name].quality is Quality.GOOD
        assert latest[name].device == device_name
        assert latest[name].ts > 1.6e9


async def test_subscription_change_stop_and_restart(opcua_server: OpcuaTestServer, sink: FakeSink) -> None:
    ready = Ready()
    task = asyncio.create_task(OpcuaConnector(device(opcua_server.url), "gw-1").run(sink, ready))
    try:
        await wait_until(lambda: set(sink.latest()) == set(INITIAL), 10, "initial values")
        assert_initial(sink)
        assert ready.calls == 1
        assert sink.calls == ["connected"]
        assert sink.status.requests >= 1  # the initial read

        await opcua_server.write("Speed", 99.5)
        await wait_until(lambda: 99.5 in sink.values_of("speed"), 5, "the changed speed")
        await opcua_server.write("MotorCurrent", 9.75, status=ua.StatusCodes.BadSensorFailure)
        await wait_until(lambda: sink.latest()["motor_current"].quality is Quality.BAD, 5, "a bad value")
        assert sink.latest()["motor_current"].value == 0.0  # the server sends a Bad status without a value

        await opcua_server.stop()
        await wait_until(lambda: sink.count("disconnected") >= 1, 10, "disconnected")
        assert sink.calls[:2] == ["connected", "disconnected"]
        assert "connection lost" in sink.errors[0]

        await opcua_server.start({"Speed": 33.0})
        await wait_until(lambda: sink.count("connected") == 2, 15, "reconnected")
        await wait_until(lambda: 33.0 in sink.values_of("speed"), 5, "values after the restart")
        await opcua_server.write("GoodCount", 1300)
        await wait_until(lambda: 1300 in sink.values_of("good_count"), 5, "a change after re-subscribing")
        assert ready.calls == 1
        assert sink.calls[-1] == "connected"  # failed attempts while the server was down came before
    finally:
        await stop_task(task)


async def test_poll_mode_with_device_id(opcua_server: OpcuaTestServer, sink: FakeSink) -> None:
    dev = device(opcua_server.url, name="line-a", mode="poll", device_id="pack-1")
    task = asyncio.create_task(OpcuaConnector(dev, "gw-1").run(sink, Ready()))
    try:
        await wait_until(lambda: set(sink.latest()) == set(INITIAL), 10, "polled values")
        assert_initial(sink, "line-a")
        await wait_until(lambda: sink.status.requests >= 3, 5, "three polls")
        await opcua_server.write("State", 2)
        await wait_until(lambda: sink.latest()["state"].value == 2, 5, "the new state")
        await opcua_server.write("Speed", 0.0, status=ua.StatusCodes.UncertainLastUsableValue)
        await wait_until(lambda: sink.latest()["speed"].quality is Quality.UNCERTAIN, 5, "an uncertain value")
        assert sink.calls == ["connected"]
        assert sink.status.errors == 0
    finally:
        await stop_task(task)


async def test_missing_nodes_are_skipped_and_counted(opcua_server: OpcuaTestServer, sink: FakeSink) -> None:
    profile = OpcuaProfile.model_validate(
        {
            "protocol": "opcua",
            "profile": {"name": "partial"},
            "tags": [
                {"name": "speed", "node_id": "ns=2;s={device}.Speed"},
                {"name": "ghost", "node_id": "ns=2;s={device}.NoSuchNode"},
                {"name": "lost", "browse_path": "2:{device}/2:NoSuchChild"},
            ],
        }
    )
    task = asyncio.create_task(OpcuaConnector(device(opcua_server.url, profile=profile), "gw").run(sink, Ready()))
    try:
        await wait_until(lambda: "speed" in sink.latest(), 10, "the existing node")
        assert sink.calls == ["connected"]
        assert sink.status.errors == 2
        assert set(sink.latest()) == {"speed"}
    finally:
        await stop_task(task)


async def test_no_node_found_is_a_failure(opcua_server: OpcuaTestServer, sink: FakeSink) -> None:
    ready = Ready()
    dev = device(opcua_server.url, device_id="pack-9")  # no such object on the server
    task = asyncio.create_task(OpcuaConnector(dev, "gw").run(sink, ready))
    try:
        await wait_until(lambda: sink.count("disconnected") >= 1, 10, "the failure")
        assert ready.calls == 0
        assert "connected" not in sink.calls
        assert "could be" in sink.errors[0]
    finally:
        await stop_task(task)


async def test_unreachable_server(sink: FakeSink) -> None:
    ready = Ready()
    dev = device(f"opc.tcp://127.0.0.1:{free_port()}/", reconnect_delay_s=0.05, reconnect_delay_max_s=0.1)
    task = asyncio.create_task(OpcuaConnector(dev, "gw").run(sink, ready))
    try:
        await wait_until(lambda: sink.count("disconnected") >= 2, 5, "failed connects")
        assert ready.calls == 0
        assert sink.errors[0].startswith("ConnectError: cannot connect to opc.tcp://127.0.0.1:")
        assert sink.status.errors == sink.count("disconnected")
    finally:
        await stop_task(task)


def test_credentials_are_passed_to_the_client() -> None:
    dev = device("opc.tcp://127.0.0.1:4840/", username="operator", password="secret")
    client = OpcuaConnector(dev, "gw")._client()
    assert (client._username, client._password) == ("operator", "secret")
