"""The agent's Sparkplug B edge node, read by a host whose decoder we did not write (Eclipse Tahu's
sparkplug-payload, see node/sparkplug_host.js), through Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

from peer_testkit import NodePeer

from edge_agent.edge_node import EdgeNodeSettings
from edge_agent.edge_node.publisher import EdgeNodePublisher
from edge_agent.model import Quality, Sample


async def next_message(peer: NodePeer, kind: str) -> tuple[str, dict[str, Any]]:
    while True:
        line = await asyncio.to_thread(peer.expect, "MSG ", 10)
        _, topic, doc = line.split(" ", 2)
        if topic.split("/")[2] == kind:
            return topic, json.loads(doc)


async def test_tahu_decodes_births_and_data(node_peers: Path, mosquitto: str, tmp_path: Path) -> None:
    group = f"tahu-{uuid.uuid4().hex[:6]}"
    peer = NodePeer("sparkplug_host.js", mosquitto, f"spBv1.0/{group}/#")
    peer.start()
    settings = EdgeNodeSettings(broker=mosquitto, group_id=group, interval_s=0.05)
    publisher = EdgeNodePublisher(settings, "gw-9", tmp_path)
    publisher.offer([Sample("press-1", "force_kn", 1.0, 412.5), Sample("press-1", "strokes", 1.0, -3),
                     Sample("press-1", "running", 1.0, True), Sample("press-1", "die", 1.0, "D-17")])
    task = asyncio.create_task(publisher.run())
    try:
        topic, nbirth = await next_message(peer, "NBIRTH")
        assert topic == f"spBv1.0/{group}/NBIRTH/gw-9" and nbirth["seq"] == 0
        node_metrics = {m["name"]: (m["type"], m["value"]) for m in nbirth["metrics"]}
        assert node_metrics == {"bdSeq": ("Int64", 0), "Node Control/Rebirth": ("Boolean", False)}
        topic, dbirth = await next_message(peer, "DBIRTH")
        assert topic == f"spBv1.0/{group}/DBIRTH/gw-9/press-1" and dbirth["seq"] == 1
        born = {m["name"]: (m["type"], m["value"], m["timestamp"]) for m in dbirth["metrics"]}
        assert born == {"force_kn": ("Double", 412.5, 1000), "strokes": ("Int64", -3, 1000),
                        "running": ("Boolean", True, 1000), "die": ("String", "D-17", 1000)}
        aliases = {m["name"]: m["alias"] for m in dbirth["metrics"]}
        _, data = await next_message(peer, "DDATA")  # what waited before the connection
        assert data["seq"] == 2 and all(m.get("isHistorical") for m in data["metrics"])
        publisher.offer([Sample("press-1", "force_kn", 2.0, 413.0), Sample("press-1", "die", 2.0, "", Quality.BAD)])
        _, live = await next_message(peer, "DDATA")
        assert live["seq"] == 3
        got = {m["alias"]: m for m in live["metrics"]}
        assert got[aliases["force_kn"]]["value"] == 413.0 and not got[aliases["force_kn"]].get("isHistorical")
        assert "value" in got[aliases["die"]] and got[aliases["die"]]["value"] is None, "a BAD sample is a null metric"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    _, death = await next_message(peer, "NDEATH")
    assert {m["name"]: m["value"] for m in death["metrics"]} == {"bdSeq": 0}
    peer.stop()
