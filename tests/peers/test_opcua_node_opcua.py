"""The OPC UA connector against node-opcua's server (another implementation), security None."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from peer_testkit import NodeOpcuaServer

from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.opcua.connector import OpcuaConnector
from edge_agent.model import Quality
from edge_agent.profiles import OpcuaProfile
from tests.connectors.connector_testkit import FakeSink, Ready, free_port, make_device, stop_task, wait_until

PROFILE = OpcuaProfile.model_validate(
    {
        "protocol": "opcua",
        "profile": {"name": "node_opcua_line"},
        "tags": [
            {"name": "speed", "node_id": "ns=1;s={device}.Speed"},
            {"name": "good_count", "type": "uint32", "node_id": "ns=1;s={device}.GoodCount"},
            {"name": "running", "type": "bool", "node_id": "ns=1;s={device}.Running"},
            {"name": "state", "type": "int32", "node_id": "ns=1;s={device}.State"},
            {"name": "recipe", "type": "string", "node_id": "ns=1;s={device}.Recipe"},
            {"name": "oven_temp", "browse_path": "1:{device}/1:Oven/1:Temperature"},
        ],
    }
)
INITIAL: dict[str, Any] = {
    "speed": 120.5,
    "good_count": 1200,
    "running": True,
    "state": 1,
    "recipe": "choc-bar-40g",
    "oven_temp": 172.5,
}


def connector(url: str, **conn: Any) -> OpcuaConnector:
    settings: dict[str, Any] = {
        "url": url,
        "device_id": "Line1",
        "publishing_interval_ms": 50,
        "poll_interval_s": 0.1,
        "timeout_s": 2.0,
        "reconnect_delay_s": 0.2,
        "reconnect_delay_max_s": 1.0,
        "watchdog_interval_s": 1.0,
    } | conn
    return OpcuaConnector(make_device("line-1", PROFILE, OpcuaConnection(**settings)), "gw-peer")


def assert_initial(sink: FakeSink) -> None:
    latest = sink.latest()
    for name, value in INITIAL.items():
        assert latest[name].value == value, name
        assert type(latest[name].value) is type(value), name
        assert latest[name].quality is Quality.GOOD, name
        assert latest[name].device == "line-1"


async def test_subscription_values_changes_and_bad_status(node_opcua: NodeOpcuaServer, sink: FakeSink) -> None:
    ready = Ready()
    task = asyncio.create_task(connector(node_opcua.url).run(sink, ready))
    try:
        await wait_until(lambda: set(sink.latest()) == set(INITIAL), 15, "initial values from node-opcua")
        assert_initial(sink)
        assert ready.calls == 1 and sink.calls == ["connected"]
        assert sink.status.errors == 0

        await asyncio.to_thread(node_opcua.set, "Speed", 99.25)
        await wait_until(lambda: 99.25 in sink.values_of("speed"), 5, "the changed speed")
        await asyncio.to_thread(node_opcua.set, "Recipe", "mint-20g")
        await wait_until(lambda: sink.latest()["recipe"].value == "mint-20g", 5, "the changed recipe")
        await asyncio.to_thread(node_opcua.bad, "GoodCount")
        await wait_until(lambda: sink.latest()["good_count"].quality is Quality.BAD, 5, "a Bad status")
        await asyncio.to_thread(node_opcua.set, "GoodCount", 1201)
        await wait_until(lambda: sink.latest()["good_count"].value == 1201, 5, "good again")
        assert sink.latest()["good_count"].quality is Quality.GOOD
    finally:
        await stop_task(task)
        for name, value in (("Speed", 120.5), ("Recipe", "choc-bar-40g"), ("GoodCount", 1200)):
            await asyncio.to_thread(node_opcua.set, name, value)


async def test_poll_mode(node_opcua: NodeOpcuaServer, sink: FakeSink) -> None:
    task = asyncio.create_task(connector(node_opcua.url, mode="poll").run(sink, Ready()))
    try:
        await wait_until(lambda: set(sink.latest()) == set(INITIAL), 15, "polled values")
        assert_initial(sink)
        await wait_until(lambda: sink.status.requests >= 3, 5, "three polls")
        assert sink.calls == ["connected"] and sink.status.errors == 0
    finally:
        await stop_task(task)


async def test_server_restart_reconnects_and_resubscribes(node_peers: Path, opcua_pki: Path, sink: FakeSink) -> None:
    server = NodeOpcuaServer(free_port(), opcua_pki)
    await asyncio.to_thread(server.start)
    ready = Ready()
    task = asyncio.create_task(connector(server.url).run(sink, ready))
    try:
        await wait_until(lambda: set(sink.latest()) == set(INITIAL), 15, "initial values")
        await asyncio.to_thread(server.stop)
        await wait_until(lambda: sink.count("disconnected") >= 1, 10, "the lost connection")
        await asyncio.to_thread(server.start)
        await wait_until(lambda: sink.count("connected") == 2, 20, "the reconnect")
        await asyncio.to_thread(server.set, "State", 5)
        await wait_until(lambda: sink.latest()["state"].value == 5, 5, "a change after re-subscribing")
        assert ready.calls == 1
        assert sink.calls[0] == "connected" and sink.calls[-1] == "connected"
    finally:
        await stop_task(task)
        await asyncio.to_thread(server.stop)
