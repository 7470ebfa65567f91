"""The Sparkplug B connector as a host, fed through Mosquitto by an edge node whose payloads
Eclipse Tahu's sparkplug-payload encodes and mqtt.js publishes (see node/sparkplug_edge.js)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from peer_testkit import NodePeer

from edge_agent.connectors.sparkplug.config import SparkplugConnection
from edge_agent.connectors.sparkplug.connector import SparkplugConnector
from edge_agent.model import Quality
from edge_agent.profiles import SparkplugProfile
from tests.connectors.connector_testkit import FakeSink, Ready, make_device, stop_task, wait_until

PROFILE = SparkplugProfile.model_validate(
    {
        "protocol": "sparkplug",
        "profile": {"name": "spb_line"},
        "tags": [{"name": "temp_f", "metric": "Temperature", "scale": 1.8, "offset": 32.0}],
    }
)


def nbirth(seq: int = 0, bdseq: int = 1) -> dict[str, Any]:
    return {
        "timestamp": 1_800_000_000_000,
        "seq": seq,
        "metrics": [
            {"name": "bdSeq", "type": "UInt64", "value": bdseq},
            {"name": "Node Control/Rebirth", "type": "Boolean", "value": False},
            {"name": "Temperature", "alias": 1, "type": "Double", "value": 21.5},
            {"name": "Count", "alias": 2, "type": "Int32", "value": -5},
            {"name": "Status", "alias": 3, "type": "String", "value": "ok"},
            {"name": "Running", "alias": 4, "type": "Boolean", "value": True},
        ],
    }


def dbirth(seq: int) -> dict[str, Any]:
    return {
        "timestamp": 1_800_000_000_500,
        "seq": seq,
        "metrics": [
            {"name": "Pressure", "alias": 10, "type": "Float", "value": 2.5},
            {"name": "Speed", "alias": 11, "type": "UInt32", "value": 3_000_000_000},
        ],
    }


class Edge:
    """The node peer plus the topics of one edge node of a test's own group."""

    def __init__(self, peer: NodePeer, group: str, node: str) -> None:
        self.peer = peer
        self.base = f"spBv1.0/{group}"
        self.node = node

    def topic(self, kind: str, device: str | None = None) -> str:
        return f"{self.base}/{kind}/{self.node}" + (f"/{device}" if device else "")

    async def send(self, kind: str, payload: dict[str, Any], device: str | None = None) -> None:
        topic = self.topic(kind, device)
        self.peer.send_json({"topic": topic, "payload": payload, "qos": 0})
        await asyncio.to_thread(self.peer.expect, f"sent {topic}")

    async def command(self) -> dict[str, Any]:
        line = await asyncio.to_thread(self.peer.expect, f"CMD {self.base}/NCMD/{self.node} ", 10)
        doc: dict[str, Any] = json.loads(line.split(" ", 2)[2])
        return doc


@pytest.fixture
async def edge(node_peers: Path, mosquitto: str) -> AsyncIterator[Edge]:
    group = f"g{uuid.uuid4().hex[:8]}"
    will = {"timestamp": 1_800_000_001_000, "metrics": [{"name": "bdSeq", "type": "UInt64", "value": 1}]}
    peer = NodePeer("sparkplug_edge.js", mosquitto, f"edge-{group}", f"spBv1.0/{group}/NDEATH/node1", json.dumps(will))
    await asyncio.to_thread(peer.start)
    try:
        yield Edge(peer, group, "node1")
    finally:
        await asyncio.to_thread(peer.stop)


def host(mosquitto: str, group: str, **conn: Any) -> SparkplugConnector:
    settings = {"broker": mosquitto, "group_id": group, "client_id": f"host-{uuid.uuid4().hex[:8]}",
                "rebirth_interval_s": 0.0} | conn
    return SparkplugConnector(make_device("spb", PROFILE, SparkplugConnection(**settings)), "gw-peer")


def latest(sink: FakeSink, device: str) -> dict[str, Any]:
    return {s.tag: s for s in sink.samples if s.device == device}


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_births_data_gap_rebirth_and_deaths(edge: Edge, mosquitto: str, sink: FakeSink, protocol: str) -> None:
    connector = host(mosquitto, edge.base.split("/")[1], protocol=protocol)
    ready = Ready()
    task = asyncio.create_task(connector.run(sink, ready))
    try:
        await wait_until(lambda: ready.calls == 1, 10, "the host to subscribe")

        # data from a node the host has no birth of: the host asks for a rebirth
        await edge.send("NDATA", {"seq": 4, "metrics": [{"alias": 1, "type": "Double", "value": 1.0}]})
        command = await edge.command()
        assert [(m["name"], m["value"]) for m in command["metrics"]] == [("Node Control/Rebirth", True)]

        await edge.send("NBIRTH", nbirth())
        await edge.send("DBIRTH", dbirth(1), device="pump1")
        await wait_until(lambda: "Speed" in latest(sink, "node1/pump1"), 10, "the births")
        node = latest(sink, "node1")
        assert node["temp_f"].value == pytest.approx(21.5 * 1.8 + 32)
        assert node["Count"].value == -5  # Int32 in a uint32 field
        assert node["Status"].value == "ok" and node["Running"].value is True
        assert "bdSeq" not in node and "Node Control/Rebirth" not in node
        assert node["temp_f"].ts == 1_800_000_000.0
        pump = latest(sink, "node1/pump1")
        assert pump["Pressure"].value == 2.5 and pump["Speed"].value == 3_000_000_000
        assert all(s.quality is Quality.GOOD for s in sink.samples)

        # data by alias only
        await edge.send("NDATA", {"timestamp": 1_800_000_002_000, "seq": 2,
                                  "metrics": [{"alias": 1, "type": "Double", "value": 22.25}]})
        await edge.send("DDATA", {"seq": 3, "metrics": [{"alias": 10, "type": "Float", "value": 3.5}]}, "pump1")
        await wait_until(lambda: latest(sink, "node1/pump1")["Pressure"].value == 3.5, 10, "alias data")
        assert latest(sink, "node1")["temp_f"].value == pytest.approx(22.25 * 1.8 + 32)
        assert latest(sink, "node1")["temp_f"].ts == 1_800_000_002.0

        # a seq gap: the data still counts and a rebirth is requested
        await edge.send("NDATA", {"seq": 9, "metrics": [{"alias": 2, "type": "Int32", "value": 7}]})
        command = await edge.command()
        assert command["metrics"][0]["name"] == "Node Control/Rebirth"
        await wait_until(lambda: latest(sink, "node1")["Count"].value == 7, 5, "data after the gap")
        gaps = [e for e in sink.events if e.kind == "sparkplug_seq_gap"]
        assert gaps and gaps[-1].attributes["expected"] == 4 and gaps[-1].attributes["got"] == 9

        await edge.send("NBIRTH", nbirth())  # the rebirth
        await edge.send("DBIRTH", dbirth(1), device="pump1")
        await edge.send("DDEATH", {"timestamp": 1_800_000_003_000, "seq": 2}, device="pump1")
        await wait_until(lambda: latest(sink, "node1/pump1")["Pressure"].quality is Quality.BAD, 10, "device death")
        assert latest(sink, "node1/pump1")["Speed"].quality is Quality.BAD
        assert latest(sink, "node1")["Count"].quality is Quality.GOOD

        # the edge node dies without disconnecting: the broker publishes its NDEATH will
        await asyncio.to_thread(edge.peer.stop)
        await wait_until(lambda: latest(sink, "node1")["Count"].quality is Quality.BAD, 15, "node death")
        assert latest(sink, "node1")["Status"].value == ""
        deaths = [e.device for e in sink.events if e.kind == "sparkplug_death"]
        assert deaths == ["node1/pump1", "node1"]
        births = [e.device for e in sink.events if e.kind == "sparkplug_birth"]
        assert births == ["node1", "node1/pump1"] * 2
        assert sink.status.malformed == 0
        assert sink.status.errors == 1  # the alias-only metric that came before any birth
    finally:
        await stop_task(task)
