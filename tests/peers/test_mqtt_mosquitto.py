"""The MQTT connector against Mosquitto: MQTT 3.1.1 and 5, topic mapping, plain and malformed
payloads, and TLS with a CA and client certificates on a broker of the test's own."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from peer_testkit import Mosquitto
from tls_certs import ThrowawayCA

from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.mqtt.connector import MqttConnector
from edge_agent.model import Quality
from edge_agent.profiles import MqttProfile
from tests.conftest import free_ports
from tests.connectors.connector_testkit import FakeSink, Ready, make_device, stop_task, wait_until

PROFILE = MqttProfile.model_validate(
    {
        "protocol": "mqtt",
        "profile": {"name": "sensor_fleet"},
        "mqtt": {"topic": "{device}/sensors/+/telemetry", "timestamp_field": "ts", "device_from_topic": 2},
        "tags": [
            {"name": "rms", "field": "vibration.rms"},
            {"name": "temperature", "field": "temperature"},
            {"name": "level", "type": "uint16", "topic": "{device}/sensors/+/level"},
        ],
    }
)


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(10)


def connector(broker: str, prefix: str, **conn: Any) -> MqttConnector:
    settings: dict[str, Any] = {"broker": broker, "device_id": prefix, "client_id": f"agent-{prefix}",
                                "reconnect_delay_s": 1.0, "reconnect_delay_max_s": 1.0} | conn
    return MqttConnector(make_device("fleet", PROFILE, MqttConnection(**settings)), "gw-peer")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_topic_mapping_plain_and_malformed_payloads(mosquitto: str, sink: FakeSink, protocol: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    ready = Ready()
    task = asyncio.create_task(connector(mosquitto, prefix, protocol=protocol).run(sink, ready))
    pub = publisher(port_of(mosquitto))
    try:
        await wait_until(lambda: ready.calls == 1, 10, "the subscription")
        telemetry = f"{prefix}/sensors/{{}}/telemetry"
        good = orjson.dumps({"ts": 1_800_000_000.5, "vibration": {"rms": 1.5}, "temperature": 40})
        await asyncio.to_thread(publish_all, pub, [
            (telemetry.format("vib-7"), good),
            (telemetry.format("vib-8"), orjson.dumps({"vibration": {"rms": 2.5}, "temperature": 41.5})),
            (f"{prefix}/sensors/tank-1/level", b"731"),
            (f"{prefix}/sensors/tank-2/level", b" 12\n"),
            # malformed: counted, never stop ingestion
            (telemetry.format("vib-7"), b"{not json"),
            (telemetry.format("vib-7"), orjson.dumps({"vibration": {"rms": "high"}})),
            (telemetry.format("vib-7"), orjson.dumps({"vibration": {"rms": [1, 2]}, "temperature": 3})),
            (telemetry.format("vib-7"), orjson.dumps({"ts": "yesterday", "temperature": 3})),
            (telemetry.format("vib-7"), b"x" * (2 * 1024 * 1024)),
            (f"{prefix}/sensors/tank-1/level", b"full"),
            (f"{prefix}/sensors/tank-1/level", b"\xff\xfe"),
            (f"{prefix}/sensors/tank-1/level", b"70000"),  # JSON number outside uint16: still a number
            (telemetry.format("vib-9"), orjson.dumps({"vibration": {"rms": 0.25}})),
        ])
        await wait_until(lambda: any(s.device == "vib-9" for s in sink.samples), 10, "the message after the bad ones")
        await wait_until(lambda: sink.status.malformed == 7, 5, "7 malformed messages")
        by_device = {(s.device, s.tag): s for s in sink.samples}
        assert by_device[("vib-7", "rms")].value == 1.5
        assert by_device[("vib-7", "rms")].ts == 1_800_000_000.5
        assert by_device[("vib-7", "temperature")].value == 40.0
        assert by_device[("vib-8", "temperature")].value == 41.5
        assert by_device[("tank-1", "level")].value == 70000
        assert by_device[("tank-2", "level")].value == 12
        assert type(by_device[("tank-2", "level")].value) is int
        assert by_device[("vib-9", "rms")].value == 0.25
        assert all(s.quality is Quality.GOOD for s in sink.samples)
        assert {e.attributes["topic"] for e in sink.events if e.kind == "malformed_payload"} == {
            telemetry.format("vib-7"), f"{prefix}/sensors/tank-1/level"
        }
        assert sink.calls == ["connected"]
    finally:
        pub.loop_stop()
        pub.disconnect()
        await stop_task(task)


# --------------------------------------------------------------------------- TLS


class TlsBroker:
    def __init__(self, ca: ThrowawayCA, client: tuple[Path, Path], ports: dict[str, int]) -> None:
        self.ca = ca
        self.client_cert, self.client_key = client
        self.ports = ports


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """Mosquitto with a plain listener (for the publisher), a TLS listener that requires a client
    certificate, and a TLS listener whose certificate names another host."""
    folder = tmp_path_factory.mktemp("tls-broker")
    ca = ThrowawayCA(folder)
    server_cert, server_key = ca.issue("server", ["127.0.0.1", "localhost"])
    other_cert, other_key = ca.issue("misnamed", ["broker.invalid"])
    ports = dict(zip(("plain", "mutual", "misnamed"), free_ports(3), strict=True))
    config = f"""
per_listener_settings false
allow_anonymous true
persistence false
listener {ports["plain"]} 127.0.0.1
listener {ports["mutual"]} 127.0.0.1
cafile {ca.path}
certfile {server_cert}
keyfile {server_key}
require_certificate true
listener {ports["misnamed"]} 127.0.0.1
cafile {ca.path}
certfile {other_cert}
keyfile {other_key}
"""
    broker = Mosquitto(folder, config, list(ports.values()))
    broker.start()
    try:
        yield TlsBroker(ca, ca.issue("edge-agent"), ports)
    finally:
        broker.stop()


async def ingests(tls: TlsBroker, sink: FakeSink, listener: str, **conn: Any) -> bool:
    """Run a connector against one TLS listener; True once a published sample arrived, False if refused."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    broker = f"mqtts://127.0.0.1:{tls.ports[listener]}"
    task = asyncio.create_task(connector(broker, prefix, ca_file=str(tls.ca.path), **conn).run(sink, Ready()))
    pub = publisher(tls.ports["plain"])
    try:
        await wait_until(lambda: sink.calls, 30, "a connection result")
        if sink.calls[0] != "connected":
            return False
        await asyncio.to_thread(publish_all, pub, [(f"{prefix}/sensors/s1/level", b"5")])
        await wait_until(lambda: sink.values_of("level") == [5], 30, "the sample over TLS")
        return True
    finally:
        pub.loop_stop()
        pub.disconnect()
        await stop_task(task)


async def test_tls_with_client_certificate(tls_broker: TlsBroker, sink: FakeSink) -> None:
    assert await ingests(tls_broker, sink, "mutual", client_cert=str(tls_broker.client_cert),
                         client_key=str(tls_broker.client_key))


async def test_tls_without_client_certificate_is_refused(tls_broker: TlsBroker, sink: FakeSink) -> None:
    assert not await ingests(tls_broker, sink, "mutual")
    assert sink.calls[0] == "disconnected" and sink.status.errors >= 1


async def test_tls_host_name_check_and_tls_insecure(tls_broker: TlsBroker) -> None:
    strict, lenient = FakeSink(), FakeSink()
    assert not await ingests(tls_broker, strict, "misnamed")
    assert await ingests(tls_broker, lenient, "misnamed", tls_insecure=True)


async def test_mqtt5_over_tls(tls_broker: TlsBroker, sink: FakeSink) -> None:
    assert await ingests(tls_broker, sink, "mutual", protocol="5", client_cert=str(tls_broker.client_cert),
                         client_key=str(tls_broker.client_key))


# --------------------------------------------------------------------------- the shipped broker config


def shipped_config(tmp: Path, ca: ThrowawayCA, plain: int, tls: int) -> str:
    """docs/mosquitto.conf with its ports, paths and password file pointed at the test's own."""
    server_cert, server_key = ca.issue("broker", ["127.0.0.1"])
    passwd = tmp / "passwd"
    passwd.write_text("edge-agent:secret\n")
    proc = subprocess.run([shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-U", str(passwd)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.skip("mosquitto_passwd is not available")
    text = (Path(__file__).parents[2] / "docs" / "mosquitto.conf").read_text()
    replacements = {
        "listener 1883 127.0.0.1": f"listener {plain} 127.0.0.1",
        "listener 8883": f"listener {tls} 127.0.0.1",
        "/var/lib/mosquitto/": f"{tmp}/",
        "/etc/mosquitto/certs/plant-ca.pem": str(ca.path),
        "/etc/mosquitto/certs/broker.pem": str(server_cert),
        "/etc/mosquitto/certs/broker.key": str(server_key),
        "/etc/mosquitto/passwd": str(passwd),
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


async def test_the_shipped_mosquitto_conf_serves_both_listeners(tmp_path: Path, sink: FakeSink) -> None:
    ca = ThrowawayCA(tmp_path)
    plain, tls = free_ports(2)
    broker = Mosquitto(tmp_path, shipped_config(tmp_path, ca, plain, tls), [plain, tls])
    broker.start()
    client_cert, client_key = ca.issue("gw1")
    try:
        prefix = f"t{uuid.uuid4().hex[:8]}"
        tasks = [
            asyncio.create_task(connector(f"mqtt://127.0.0.1:{plain}", prefix, username="edge-agent",
                                          password="secret").run(sink, Ready())),
            asyncio.create_task(connector(f"mqtts://127.0.0.1:{tls}", prefix, client_id=f"tls-{prefix}",
                                          ca_file=str(ca.path), client_cert=str(client_cert),
                                          client_key=str(client_key)).run(sink, Ready())),
        ]
        await wait_until(lambda: sink.count("connected") == 2, 10, "both connections")
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{prefix}")
        pub.username_pw_set("edge-agent", "secret")
        pub.connect("127.0.0.1", plain)
        pub.loop_start()
        try:
            await asyncio.to_thread(publish_all, pub, [(f"{prefix}/sensors/s1/level", b"9")])
            await wait_until(lambda: sink.values_of("level") == [9, 9], 10, "the sample on both connections")
        finally:
            pub.loop_stop()
            pub.disconnect()
        for task in tasks:
            await stop_task(task)
    finally:
        broker.stop()
