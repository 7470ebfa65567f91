"""Helpers of the connector tests: a fake sink, real test servers and polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ServerAsyncStop, StartAsyncTcpServer

from edge_agent.config import Device, Location
from edge_agent.connectors.base import CommitCallback, DeviceStatus, describe_error
from edge_agent.connectors.modbus.codec import encode
from edge_agent.model import Event, Mark, Sample, Value
from edge_agent.profiles import ModbusProfile, Profile, load_profile, shipped_profiles_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


async def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` every 20 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def shipped(name: str) -> Profile:
    return load_profile(shipped_profiles_dir() / f"{name}.toml")


def make_device(name: str, profile: Profile, connection: Any) -> Device:
    return Device(name, profile, Path(f"{profile.profile.name}.toml"), connection, Location())


class FakeSink:
    """Implements the Sink protocol; records samples, events and state calls."""

    def __init__(self, device: str = "dev", protocol: str = "test") -> None:
        self.status = DeviceStatus(device, protocol)
        self.samples: list[Sample] = []
        self.events: list[Event] = []
        self.calls: list[str] = []
        self.errors: list[str] = []
        self.marks: dict[tuple[str, int], str] = {}

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        self.samples.extend(samples)
        for source, mid, digest in marks:
            self.marks[(source, mid)] = digest
        self.status.samples += len(samples)
        if samples:
            self.status.last_sample_ts = samples[-1].ts
        if on_commit is not None:
            on_commit()

    async def delivered(self, source: str) -> dict[int, str]:
        return {mid: digest for (src, mid), digest in self.marks.items() if src == source}

    def event(self, event: Event) -> None:
        self.events.append(event)

    def connected(self) -> None:
        self.calls.append("connected")
        self.status.state = "connected"

    def disconnected(self, error: BaseException | str) -> None:
        """Like the agent's sink: a failure counts as one error."""
        self.status.errors += 1
        self.calls.append("disconnected")
        self.errors.append(describe_error(error))
        self.status.state = "disconnected"

    def count(self, call: str) -> int:
        return self.calls.count(call)

    def latest(self) -> dict[str, Sample]:
        """The last sample of every tag."""
        return {s.tag: s for s in self.samples}

    def values_of(self, tag: str) -> list[Value]:
        return [s.value for s in self.samples if s.tag == tag]


class Ready:
    """The ``ready`` callback, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel a connector task and check that the cancellation propagates."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled(), "the connector swallowed its cancellation"


# --------------------------------------------------------------------------- Modbus


def register_image(profile: ModbusProfile, values: dict[str, Value]) -> dict[str, list[int]]:
    """Tables (holding/input/coil/discrete) filled with ``values`` encoded per tag, zeros elsewhere."""
    tables: dict[str, list[int]] = {"holding": [], "input": [], "coil": [], "discrete": []}
    for tag in profile.tags:
        if tag.name not in values:
            continue
        words = encode(tag, values[tag.name], scaled=True)
        table = tables[tag.table]
        end = tag.address + len(words)
        table.extend([0] * (end - len(table)))
        if tag.bit is not None:
            table[tag.address] |= words[0]
        else:
            table[tag.address : end] = words
    return tables


class ModbusTestServer:
    """A pymodbus TCP server on a fixed loopback port that can be stopped and started again."""

    def __init__(self, port: int, unit_id: int = 1) -> None:
        self.port = port
        self.unit_id = unit_id
        self.task: asyncio.Task[None] | None = None

    async def start(self, tables: dict[str, list[int]]) -> None:
        def block(values: list[int], bits: bool = False) -> ModbusSequentialDataBlock:
            data: list[Any] = [bool(v) for v in values] if bits else list(values)
            return ModbusSequentialDataBlock(1, data or ([False] if bits else [0]))  # 1 = PDU address 0

        device = ModbusDeviceContext(
            hr=block(tables.get("holding", [])),
            ir=block(tables.get("input", [])),
            co=block(tables.get("coil", []), bits=True),
            di=block(tables.get("discrete", []), bits=True),
        )
        context = ModbusServerContext(devices={self.unit_id: device}, single=False)
        self.task = asyncio.create_task(StartAsyncTcpServer(context, address=("127.0.0.1", self.port)))
        await wait_until(lambda: port_open(self.port), 5, "the Modbus server to listen")

    async def stop(self) -> None:
        if self.task is None:
            return
        await ServerAsyncStop()
        await asyncio.wait_for(self.task, 5)
        self.task = None


class SilentServer:
    """Accepts TCP connections and never answers (a device that hangs)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while await reader.read(1024):
                    pass
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


# --------------------------------------------------------------------------- OPC UA

NAMESPACE = "urn:edge-sim:packaging"
# The nodes of the shipped packaging_line profile, for device id "pack-1".
PACKAGING_NODES: dict[str, tuple[Any, ua.VariantType]] = {
    "State": (1, ua.VariantType.Int32),
    "StopReason": (0, ua.VariantType.UInt16),
    "Running": (True, ua.VariantType.Boolean),
    "GoodCount": (1200, ua.VariantType.UInt32),
    "RejectCount": (3, ua.VariantType.UInt32),
    "Speed": (120.5, ua.VariantType.Double),
    "MotorCurrent": (4.25, ua.VariantType.Double),
    "Recipe": ("choc-bar-40g", ua.VariantType.String),
}


class OpcuaTestServer:
    """An asyncua server with one packaging line object, stoppable and restartable on one port."""

    def __init__(self, port: int, device_id: str = "pack-1") -> None:
        self.port = port
        self.device_id = device_id
        self.url = f"opc.tcp://127.0.0.1:{port}/"
        self.server: Server | None = None
        self.nodes: dict[str, Any] = {}

    async def start(self, overrides: dict[str, Any] | None = None) -> None:
        values = {name: value for name, (value, _) in PACKAGING_NODES.items()} | (overrides or {})
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE)
        assert idx == 2
        dev = self.device_id
        line = await server.nodes.objects.add_object(ua.NodeId(dev, idx), ua.QualifiedName(dev, idx))
        self.nodes = {}
        for name, (_, vtype) in PACKAGING_NODES.items():
            variant = ua.Variant(values[name], vtype)
            node_id = ua.NodeId(f"{dev}.{name}", idx)
            self.nodes[name] = await line.add_variable(node_id, ua.QualifiedName(name, idx), variant)
        jaw = await line.add_object(ua.NodeId(f"{dev}.SealJaw", idx), ua.QualifiedName("SealJaw", idx))
        temp = ua.Variant(values.get("SealJaw.Temperature", 172.5), ua.VariantType.Double)
        self.nodes["SealJaw.Temperature"] = await jaw.add_variable(
            ua.NodeId(f"{dev}.SealJaw.Temperature", idx), ua.QualifiedName("Temperature", idx), temp
        )
        await server.start()
        self.server = server

    async def write(self, name: str, value: Any, status: int | None = None) -> None:
        node = self.nodes[name]
        vtype = await node.read_data_type_as_variant_type()
        if status is None:
            await node.write_value(ua.Variant(value, vtype))
        else:
            await node.write_value(ua.DataValue(ua.Variant(value, vtype), StatusCode=ua.StatusCode(status)))

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


def device_context(tables: dict[str, list[int]]) -> ModbusDeviceContext:
    """A pymodbus device (unit) holding the tables of :func:`register_image`."""

    def block(values: list[int], bits: bool = False) -> ModbusSequentialDataBlock:
        data: list[Any] = [bool(v) for v in values] if bits else list(values)
        return ModbusSequentialDataBlock(1, data or ([False] if bits else [0]))  # 1 = PDU address 0

    return ModbusDeviceContext(
        hr=block(tables.get("holding", [])),
        ir=block(tables.get("input", [])),
        co=block(tables.get("coil", []), bits=True),
        di=block(tables.get("discrete", []), bits=True),
    )


class PtyPair:
    """Two pseudo-terminals joined like a null-modem cable: bytes written to one arrive at the other."""

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.paths: list[str] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> tuple[str, str]:
        masters = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            masters.append(master)
            self.fds += [master, slave]
            self.paths.append(os.ttyname(slave))
        self.loop = asyncio.get_running_loop()
        a, b = masters
        self.loop.add_reader(a, self._pump, a, b)
        self.loop.add_reader(b, self._pump, b, a)
        self.masters = masters
        return self.paths[0], self.paths[1]

    @staticmethod
    def _pump(src: int, dst: int) -> None:
        with contextlib.suppress(OSError):
            os.write(dst, os.read(src, 4096))

    def close(self) -> None:
        if self.loop is not None:
            for fd in self.masters:
                self.loop.remove_reader(fd)
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
