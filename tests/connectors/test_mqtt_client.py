"""The MQTT client's own read path (buffered reads, PUBLISH packets parsed without paho's message
objects) and its batched acknowledgements, against a scripted broker that sends a byte stream cut
at awkward places; paho's own path on the same stream is the reference."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest

from edge_agent.connectors.mqtt.client import RECV_SIZE, Client, make_client, run_session
from edge_agent.connectors.mqtt.config import MqttConnection
from tests.connectors.connector_testkit import wait_until

Publish = tuple[str, bytes, int, int, bool]


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, qos: int, mid: int, dup: bool) -> bytes:
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name + (struct.pack("!H", mid) if qos else b"") + payload
    return bytes([0x30 | (0x08 if dup else 0) | qos << 1]) + remaining_length(len(body)) + body


def script() -> list[Publish]:
    """Messages whose sizes cross the one-, two- and three-byte remaining lengths and the read size."""
    sizes = [0, 1, 100, 121, 122, 123, 16_370, 16_400, RECV_SIZE - 10, RECV_SIZE + 10, 200_000, 5, 7]
    out: list[Publish] = []
    for i, size in enumerate(sizes * 3):
        qos = i % 2
        payload = bytes((i + k) % 251 for k in range(size))
        topic = f"plant/ümlaut/{i}" if i % 5 == 0 else f"t/{i}"
        out.append((topic, payload, qos, (i + 1) if qos else 0, qos == 1 and i % 4 == 1))
    return out


class ScriptedBroker:
    """Just enough of an MQTT 3.1.1 broker: CONNACK, SUBACK, PINGRESP; after the SUBSCRIBE it sends
    ``stream`` in chunks of ``cut`` sizes, and records the packet ids of the PUBACKs it gets."""

    def __init__(self, stream: bytes, cuts: Callable[[], int]) -> None:
        self.stream = stream
        self.cuts = cuts
        self.pubacks: list[int] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = (await reader.readexactly(1))[0]
                length = shift = 0
                while True:
                    byte = (await reader.readexactly(1))[0]
                    length |= (byte & 127) << shift
                    shift += 7
                    if not byte & 128:
                        break
                body = await reader.readexactly(length)
                kind = header & 0xF0
                if kind == 0x10:  # CONNECT
                    writer.write(b"\x20\x02\x00\x00")
                elif kind == 0x80:  # SUBSCRIBE
                    writer.write(b"\x90\x03" + body[:2] + b"\x01")
                    await writer.drain()
                    await self._send_stream(writer)
                elif kind == 0xC0:  # PINGREQ
                    writer.write(b"\xd0\x00")
                elif kind == 0x40:  # PUBACK
                    assert length == 2
                    self.pubacks.append(struct.unpack("!H", body)[0])
                elif kind == 0xE0:  # DISCONNECT
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _send_stream(self, writer: asyncio.StreamWriter) -> None:
        pos = 0
        while pos < len(self.stream):
            cut = self.cuts()
            writer.write(self.stream[pos : pos + cut])
            pos += cut
            await writer.drain()
            await asyncio.sleep(0)  # let the client read a partial packet now and then


class Link:
    def __init__(self) -> None:
        self.state = "new"

    def connected(self) -> None:
        self.state = "connected"

    def disconnected(self, error: BaseException | str) -> None:
        self.state = f"disconnected: {error}"


async def receive(lean: bool, cuts: Callable[[], int], expected: list[Publish]) -> tuple[list[Publish], int, list[int]]:
    """What a client gets of the scripted stream (with the lean path on, or paho's own path only),
    how many of them came through the lean path, and the packet ids the broker saw acknowledged
    by one :meth:`Client.ack_all`."""
    stream = b"".join(publish_packet(*message) for message in expected)
    # a PINGRESP in the middle of the stream: a packet the lean path hands to paho
    middle = len(publish_packet(*expected[0])) + len(publish_packet(*expected[1]))
    stream = stream[:middle] + b"\xd0\x00" + stream[middle:]
    broker = ScriptedBroker(stream, cuts)
    port = await broker.start()
    conn = MqttConnection(broker=f"mqtt://127.0.0.1:{port}", client_id="scripted", qos=1)
    client = make_client(conn, "scripted")
    assert isinstance(client, Client)
    got: list[Publish] = []
    by_lean_path = 0

    def on_publish(*message: object) -> None:
        nonlocal by_lean_path
        by_lean_path += 1
        got.append(message)  # type: ignore[arg-type]

    if lean:
        client.on_publish_received = on_publish

    def on_message(_c: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        got.append((msg.topic, bytes(msg.payload), msg.qos, msg.mid, bool(msg.dup)))

    task = asyncio.create_task(run_session(client, conn, Link(), lambda: None, [("#", 1)], on_message))
    try:
        await wait_until(lambda: len(got) >= len(expected), timeout=20, what="every scripted message")
        client.ack_all([mid for _, _, qos, mid, _ in got if qos == 1])
        wanted = sum(1 for m in expected if m[2] == 1)
        await wait_until(lambda: len(broker.pubacks) >= wanted, what="the acknowledgements")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.stop()
    return got, by_lean_path, broker.pubacks


@pytest.mark.parametrize("cut", ["whole", "one byte", "random"])
async def test_lean_read_path_gives_what_paho_gives(cut: str) -> None:
    expected = script()
    rng = random.Random(7)
    cuts: dict[str, Callable[[], int]] = {
        "whole": lambda: 1 << 30,
        "one byte": lambda: 1,
        "random": lambda: rng.choice([1, 2, 3, 5, 64, 4096, 70_000]),
    }
    if cut == "one byte":  # a byte at a time: only the small messages, or the test takes minutes
        expected = [m for m in expected if len(m[1]) < 200]
    lean, by_lean_path, lean_acks = await receive(True, cuts[cut], expected)
    paho, none, paho_acks = await receive(False, cuts[cut], expected)
    assert lean == expected
    assert paho == expected
    assert lean_acks == paho_acks == [mid for _, _, qos, mid, _ in expected if qos == 1]
    assert none == 0
    if cut == "whole":  # most packets arrive whole in the client's buffer
        assert by_lean_path > len(expected) // 2
