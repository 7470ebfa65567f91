"""The agent as a Sparkplug B edge node: payload rules (pure), then the publisher on a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from connector_testkit import wait_until

from edge_agent.connectors.sparkplug.schema import DataType, Payload
from edge_agent.edge_node import EdgeNode, EdgeNodeSettings
from edge_agent.edge_node.publisher import EdgeNodePublisher
from edge_agent.model import Quality, Sample


def decode(payload: bytes) -> Any:
    return Payload.FromString(payload)


def metrics(payload: Any) -> dict[str, Any]:
    return {m.name: m for m in payload.metrics}


def value(m: Any) -> Any:
    return getattr(m, m.WhichOneof("value"))


# -- payload rules -------------------------------------------------------------------------------


def test_births_carry_bdseq_rebirth_and_every_metric() -> None:
    node = EdgeNode("plant", "gw-1", bdseq=7)
    node.data([Sample("cnc-1", "spindle", 10.0, 1200.5), Sample("cnc-1", "state", 10.0, 1),
               Sample("cnc-1", "running", 10.0, True), Sample("cnc-1", "program", 10.0, "O1000")], 11.0)
    assert node.will().topic == "spBv1.0/plant/NDEATH/gw-1"
    assert value(metrics(decode(node.will().payload))["bdSeq"]) == 7
    node.connected()
    nbirth, dbirth = node.births(12.0)
    assert nbirth.topic == "spBv1.0/plant/NBIRTH/gw-1"
    p = decode(nbirth.payload)
    assert p.seq == 0 and p.timestamp == 12_000
    m = metrics(p)
    assert value(m["bdSeq"]) == 7 and m["bdSeq"].datatype == DataType.Int64
    assert value(m["Node Control/Rebirth"]) is False
    assert dbirth.topic == "spBv1.0/plant/DBIRTH/gw-1/cnc-1"
    d = decode(dbirth.payload)
    assert d.seq == 1
    dm = metrics(d)
    assert {n: (x.datatype, value(x)) for n, x in dm.items()} == {
        "spindle": (DataType.Double, 1200.5), "state": (DataType.Int64, 1),
        "running": (DataType.Boolean, True), "program": (DataType.String, "O1000"),
    }
    assert len({x.alias for x in dm.values()}) == 4 and all(x.alias > 0 for x in dm.values())
    assert node.will().topic.endswith("NDEATH/gw-1") and value(metrics(decode(node.will().payload))["bdSeq"]) == 8
    assert value(metrics(decode(node.death().payload))["bdSeq"]) == 7, "the clean NDEATH is this session's"


def test_data_uses_aliases_and_counts_seq_to_255_then_0() -> None:
    node = EdgeNode("plant", "gw-1")
    node.data([Sample("m", "t", 1.0, 1.0)], 1.0)
    node.connected()
    _, dbirth = node.births(2.0)
    alias = decode(dbirth.payload).metrics[0].alias
    seqs = []
    for i in range(300):
        (msg,) = node.data([Sample("m", "t", 3.0 + i, float(i))], 3.0 + i)
        p = decode(msg.payload)
        assert msg.topic == "spBv1.0/plant/DDATA/gw-1/m"
        assert [(x.name, x.alias, x.double_value, x.timestamp) for x in p.metrics] == \
            [("", alias, float(i), round((3.0 + i) * 1000))]
        seqs.append(p.seq)
    assert seqs[:3] == [2, 3, 4] and seqs[253] == 255 and seqs[254] == 0


def test_a_new_metric_is_born_before_its_data() -> None:
    node = EdgeNode("g", "n")
    node.connected()
    node.births(1.0)
    first = node.data([Sample("m", "a", 1.0, 1)], 1.0)
    assert [x.topic.split("/")[2] for x in first] == ["DBIRTH", "DDATA"]
    assert [x.topic.split("/")[2] for x in node.data([Sample("m", "a", 2.0, 2)], 2.0)] == ["DDATA"]
    again = node.data([Sample("m", "a", 3.0, 3), Sample("m", "b", 3.0, "x")], 3.0)
    assert [x.topic.split("/")[2] for x in again] == ["DBIRTH", "DDATA"]
    assert set(metrics(decode(again[0].payload))) == {"a", "b"}, "a DBIRTH carries every metric of the device"
    seqs = [decode(x.payload).seq for x in first + again]
    assert seqs == [1, 2, 4, 5]


def test_nothing_is_published_before_the_node_is_born_and_bad_samples_are_null() -> None:
    node = EdgeNode("g", "n")
    assert node.data([Sample("m", "a", 1.0, 1.5)], 1.0) == []
    node.connected()
    node.births(2.0)
    (msg,) = node.data([Sample("m", "a", 3.0, 0.0, Quality.BAD)], 3.0, historical=True)
    (m,) = decode(msg.payload).metrics
    assert m.is_null and m.WhichOneof("value") is None and m.is_historical


def test_only_a_true_rebirth_command_asks_for_rebirth() -> None:
    node = EdgeNode("g", "n")
    ask = Payload(timestamp=1)
    m = ask.metrics.add(name="Node Control/Rebirth", datatype=DataType.Boolean)
    m.boolean_value = True
    assert node.wants_rebirth(ask.SerializeToString())
    m.boolean_value = False
    assert not node.wants_rebirth(ask.SerializeToString())
    assert not node.wants_rebirth(b"\xff\xff not protobuf")


# -- on a real broker ------------------------------------------------------------------------------


class Host:
    """A bare paho subscriber on the group's namespace, recording (topic, decoded payload)."""

    def __init__(self, url: str, group: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[str, Any]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"host-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._record
        self.client.connect(host, int(port))
        self.client.subscribe(f"spBv1.0/{group}/#", qos=1)
        self.client.loop_start()

    def _record(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if "/NCMD/" not in msg.topic:  # our own commands
            self.messages.append((msg.topic, decode(msg.payload)))

    def kinds(self) -> list[str]:
        return [t.split("/")[2] for t, _ in self.messages]

    def command_rebirth(self, group: str, node: str) -> None:
        ask = Payload(timestamp=1)
        ask.metrics.add(name="Node Control/Rebirth", datatype=DataType.Boolean).boolean_value = True
        self.client.publish(f"spBv1.0/{group}/NCMD/{node}", ask.SerializeToString(), qos=0)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def group() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


async def test_edge_node_on_mosquitto(mosquitto: str, group: str, tmp_path: Path) -> None:
    host = Host(mosquitto, group)
    await asyncio.sleep(0.3)
    settings = EdgeNodeSettings(broker=mosquitto, group_id=group, interval_s=0.05, computed_interval_s=0.05,
                                reconnect_delay_s=0.1, keepalive_s=5)
    publisher = EdgeNodePublisher(settings, "gw-1", tmp_path, computed=lambda: {"cnc-1": {"OEE/oee": 0.75}})
    publisher.offer([Sample("cnc-1", "spindle", 1000.0, 100.0), Sample("cnc-1", "spindle", 1001.0, 101.0)])
    task = asyncio.create_task(publisher.run())
    try:
        def historical() -> list[Any]:
            return [p for t, p in host.messages if t.endswith("DDATA/gw-1/cnc-1") and p.metrics[0].is_historical]

        # births first, then what waited while offline, flagged historical, with its own timestamps (the
        # computed metrics' live DDATA may come before or after it)
        await wait_until(lambda: sum(len(p.metrics) for p in historical()) >= 2, 10, "historical data")
        assert host.kinds()[:2] == ["NBIRTH", "DBIRTH"]
        nbirth = host.messages[0][1]
        assert value(metrics(nbirth)["bdSeq"]) == 0
        assert [(m.double_value, m.timestamp) for p in historical() for m in p.metrics] == \
            [(100.0, 1_000_000), (101.0, 1_001_000)]
        await wait_until(lambda: any(metrics(p).get("OEE/oee") for t, p in host.messages if "DBIRTH" in t), 5,
                         "computed OEE born as a device metric")

        publisher.offer([Sample("cnc-1", "spindle", 1002.0, 102.0)])
        await wait_until(lambda: any(m.double_value == 102.0 and not m.is_historical
                                     for t, p in host.messages if "DDATA" in t for m in p.metrics), 5, "live data")
        seqs = [p.seq for t, p in host.messages if t.split("/")[2] != "NDEATH"]
        assert seqs == [i % 256 for i in range(len(seqs))], "seq counts every message of the node from NBIRTH"

        # a host asks for a rebirth: NBIRTH (seq 0, same bdSeq) and the DBIRTH again
        n = len(host.messages)
        host.command_rebirth(group, "gw-1")
        await wait_until(lambda: host.kinds()[n:].count("DBIRTH") >= 1, 5, "rebirth")
        assert host.kinds()[n:n + 2] == ["NBIRTH", "DBIRTH"]
        assert host.messages[n][1].seq == 0 and value(metrics(host.messages[n][1])["bdSeq"]) == 0

        # the connection breaks: the broker sends our will (bdSeq 0); we come back with bdSeq 1
        n = len(host.messages)
        assert publisher._client is not None
        sock = publisher._client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)  # as a cut network cable would, without DISCONNECT
        await wait_until(lambda: "NDEATH" in host.kinds()[n:] and "NBIRTH" in host.kinds()[n:], 10, "death, rebirth")
        death = next(p for t, p in host.messages[n:] if "NDEATH" in t)
        birth = next(p for t, p in host.messages[n:] if "NBIRTH" in t)
        assert value(metrics(death)["bdSeq"]) == 0 and value(metrics(birth)["bdSeq"]) == 1
    finally:
        n = len(host.messages)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # a clean stop publishes the NDEATH of the running session itself
    await wait_until(lambda: "NDEATH" in host.kinds()[n:], 5, "NDEATH at shutdown")
    death = next(p for t, p in host.messages[n:] if "NDEATH" in t)
    assert value(metrics(death)["bdSeq"]) == 1
    host.close()
    assert (tmp_path / "sparkplug-bdseq").read_text().strip() == "2", "bdSeq survives a restart"
    assert EdgeNodePublisher(settings, "gw-1", tmp_path).node.bdseq == 2


def test_backlog_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    settings = EdgeNodeSettings(group_id="g", backlog_max=3, devices=["a"])
    publisher = EdgeNodePublisher(settings, "gw", tmp_path)
    publisher.offer([Sample("a", "t", float(i + 1), float(i)) for i in range(5)] + [Sample("b", "t", 1.0, 1.0)])
    assert [s.value for s in publisher.pending] == [2.0, 3.0, 4.0]
    assert publisher.dropped == 2
    assert publisher.status()["dropped"] == 2 and publisher.status()["backlog"] == 3
