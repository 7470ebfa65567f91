"""Modbus connector (TCP, or RTU over a serial line): polls a device with planned block reads.

The profile's tags are coalesced once into read requests (see :mod:`.planner`);
each poll runs them in order, ``request_pause_s`` apart, on a fixed-rate monotonic
schedule and decodes the answers (see :mod:`.codec`). The first poll of a device
is delayed by a stable fraction of ``stagger_s`` derived from its name, so devices
started together do not poll in step. pymodbus's own retries and reconnects are
disabled: this loop retries a request that got no answer ``retries`` times, then
treats the device as gone, closes the client and reconnects with a capped backoff.

A Modbus exception response (illegal address and the like) only drops the tags of
that request: they are counted as errors and the other requests still deliver.

:meth:`ModbusConnector.write` is the guarded write path for setpoints (see
:mod:`.write`); it shares the connection with the poll loop, one request at a time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from edge_agent.connectors.base import Backoff, Sink, describe_error
from edge_agent.connectors.modbus.codec import CodecError, decoder
from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.modbus.planner import BIT_TABLES, Read, plan_reads
from edge_agent.connectors.modbus.write import PlannedWrite, WriteFailed, plan_write
from edge_agent.connectors.schedule import PollSchedule, raise_if_cancelled
from edge_agent.errors import ConnectError, ConnectorError, DeviceTimeout, ReadError
from edge_agent.model import Event, Sample, Value
from edge_agent.profiles import ModbusProfile

if TYPE_CHECKING:
    from edge_agent.config import Device

log = logging.getLogger("edge_agent.connectors.modbus")

# Extra time on top of the longest a poll (or a write) can take before our own guard gives up on it.
GUARD_S = 1.0

READ_METHODS = {
    "holding": "read_holding_registers",
    "input": "read_input_registers",
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
}

EXCEPTION_CODES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


Client = AsyncModbusTcpClient | AsyncModbusSerialClient


def describe_read(read: Read) -> str:
    return f"{read.table} {read.start}..{read.end}"


def start_offset(name: str, poll_interval_s: float, stagger_s: float) -> float:
    """A stable delay in [0, min(stagger_s, poll_interval_s)) derived from the device name."""
    return zlib.crc32(name.encode()) / 2**32 * min(stagger_s, poll_interval_s)


class RequestRejected(ReadError):
    """The device answered one request with an exception (or a short) response."""

    def __init__(self, read: Read, reason: str) -> None:
        super().__init__(f"{describe_read(read)}: {reason}")
        self.read = read


class ModbusConnector:
    """Polls one Modbus device described by a :class:`~edge_agent.profiles.ModbusProfile`."""

    def __init__(self, device: Device, gateway_id: str) -> None:
        if not isinstance(device.profile, ModbusProfile) or not isinstance(device.connection, ModbusConnection):
            raise TypeError(f"device '{device.name}' is not a Modbus device")
        self.device = device
        self.profile: ModbusProfile = device.profile
        self.gateway_id = gateway_id
        self.conn: ModbusConnection = device.connection
        self.plan: list[Read] = plan_reads(device.profile.tags, self.conn.max_gap, self.conn.max_registers)
        # per read: (tag name, offset in the response, end offset, decode function, may give NaN/inf),
        # prepared once
        self._decoders = [
            [(tag.name, tag.address - read.start, tag.address - read.start + tag.register_count, decoder(tag),
              tag.type in ("float32", "float64") or tag.scale != 1.0 or tag.offset != 0.0) for tag in read.tags]
            for read in self.plan
        ]
        # the longest a whole poll may take: every request with its retries, the pauses, and a margin
        attempts = self.conn.retries + 1
        self.poll_guard_s = len(self.plan) * (attempts * self.conn.timeout_s + self.conn.request_pause_s) + GUARD_S
        self.start_delay_s = start_offset(device.name, self.conn.poll_interval_s, self.conn.stagger_s)
        self._rejected: set[int] = set()  # indexes of reads whose last attempt was rejected
        self._live: Client | None = None  # the connected client, for writes
        self._sink: Sink | None = None
        # held by a write; polls wait for it only while it is held (pymodbus itself sends one request
        # at a time on a connection, so a poll never needs it for that)
        self._turn = asyncio.Lock()
        self._methods: tuple[Client | None, list[Callable[..., Awaitable[Any]]]] = (None, [])

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None:
        """Connect, poll until the connection fails, back off, reconnect; until cancelled."""
        backoff = Backoff(self.conn.reconnect_delay_s, self.conn.reconnect_delay_max_s)
        announced = False
        logged_unexpected = False
        self._sink = sink
        await asyncio.sleep(self.start_delay_s)
        while True:
            client = self._client()
            try:
                await self._connect(client)
                sink.connected()
                backoff.reset()
                if not announced:
                    announced = True
                    ready()
                self._live = client
                await self._poll_forever(client, sink)
            except ConnectorError as exc:
                sink.disconnected(exc)  # counts the error and logs the first failure
            except Exception as exc:  # a bug must not end the loop; show its traceback once
                if not logged_unexpected:
                    logged_unexpected = True
                    log.exception("%s: unexpected error in the Modbus connector", self.device.name)
                sink.disconnected(exc)
            finally:
                self._live = None
                client.close()
            raise_if_cancelled()
            await backoff.wait()

    def _client(self) -> Client:
        """A client without pymodbus's retries and reconnects: this connector decides both."""
        common: dict[str, Any] = {
            "name": self.device.name,
            "timeout": self.conn.timeout_s,
            "retries": 0,
            "reconnect_delay": 0,  # 0 = never reconnect by itself
            "reconnect_delay_max": 0,
        }
        client: Client
        if self.conn.transport == "rtu":
            assert self.conn.serial_port is not None
            client = AsyncModbusSerialClient(
                self.conn.serial_port,
                framer=FramerType.RTU,
                baudrate=self.conn.baudrate,
                bytesize=self.conn.bytesize,
                parity=self.conn.parity,
                stopbits=self.conn.stopbits,
                **common,
            )
        else:
            assert self.conn.host is not None
            client = AsyncModbusTcpClient(self.conn.host, port=self.conn.port, **common)
        # pymodbus drops the connection after this many unanswered requests in a row; we give up
        # (and reconnect) after retries + 1, so its own limit never fires first.
        client.set_max_no_responses(self.conn.retries + 1)
        return client

    async def _connect(self, client: Client) -> None:
        where = self.conn.endpoint
        try:
            async with asyncio.timeout(self.conn.timeout_s + GUARD_S):
                ok = await client.connect()
        except TimeoutError:
            raise DeviceTimeout(f"connect to {where} timed out") from None
        except (OSError, ModbusException) as exc:
            raise ConnectError(f"cannot connect to {where}: {describe_error(exc)}") from exc
        finally:
            raise_if_cancelled()
        if not ok:
            raise ConnectError(f"cannot connect to {where}")

    async def _poll_forever(self, client: Client, sink: Sink) -> None:
        schedule = PollSchedule(self.conn.poll_interval_s)
        while True:
            await self.poll_once(client, sink)
            await schedule.wait()

    async def poll_once(self, client: Client, sink: Sink) -> None:
        """Run every planned request once and emit what could be read.

        One guard covers the whole poll (``poll_guard_s``); pymodbus's own timeout ends each request.
        """
        samples: list[Sample] = []
        if self._methods[0] is not client:  # the client's read function of each request, once per connection
            self._methods = (client, [getattr(client, READ_METHODS[read.table]) for read in self.plan])
        methods = self._methods[1]
        pause = self.conn.request_pause_s
        try:
            try:
                async with asyncio.timeout(self.poll_guard_s):
                    for index, read in enumerate(self.plan):
                        if index and pause:
                            await asyncio.sleep(pause)
                        try:
                            data = await self._request(client, methods[index], read, sink)
                        except RequestRejected as exc:
                            sink.status.errors += len(read.tags)
                            if index not in self._rejected:
                                self._rejected.add(index)
                                log.warning("%s: %s; its %d tag(s) are skipped", self.device.name, exc,
                                            len(read.tags))
                            continue
                        if self._rejected and index in self._rejected:
                            self._rejected.discard(index)
                            log.info("%s: %s reads again", self.device.name, describe_read(read))
                        self._decode(index, data, time.time(), sink, samples)
            except TimeoutError:
                raise DeviceTimeout(
                    f"a poll of unit {self.conn.unit_id} took longer than {self.poll_guard_s:g} s"
                ) from None
        except ConnectorError:
            if samples:
                await sink.emit(samples)
            raise
        if samples:
            await sink.emit(samples)

    async def _call(self, client: Client, call: Callable[[], Awaitable[Any]]) -> Any:
        """One request on the connection; None when it got no answer in time. Maps lost connections."""
        if not client.connected:
            raise ConnectError("connection lost")
        try:
            async with self._turn, asyncio.timeout(self.conn.timeout_s + GUARD_S):
                return await call()
        except (TimeoutError, ModbusIOException):
            return None
        except (ConnectionException, OSError) as exc:
            raise ConnectError(describe_error(exc)) from exc
        finally:
            raise_if_cancelled()

    async def _request(self, client: Client, method: Callable[..., Awaitable[Any]], read: Read,
                       sink: Sink) -> Sequence[int]:
        """One read (``method`` is the client's function for the read's table) with up to ``retries``
        repeats when the device does not answer. The caller's guard bounds the time it takes."""
        unit = self.conn.unit_id
        turn = self._turn
        for _attempt in range(self.conn.retries + 1):
            if not client.connected:
                raise ConnectError("connection lost")
            sink.status.requests += 1
            started = time.perf_counter()
            try:
                if turn.locked():  # a write has the connection: wait for it to finish
                    async with turn:
                        response = await method(read.start, count=read.count, device_id=unit)
                else:
                    response = await method(read.start, count=read.count, device_id=unit)
            except (TimeoutError, ModbusIOException):  # no answer within timeout_s (our guard cancels instead)
                continue
            except ConnectionException as exc:
                raise ConnectError(describe_error(exc)) from exc
            except ModbusException as exc:
                raise ReadError(f"{describe_read(read)}: {describe_error(exc)}") from exc
            except OSError as exc:
                raise ConnectError(describe_error(exc)) from exc
            finally:
                raise_if_cancelled()
            sink.status.latency.observe(time.perf_counter() - started)
            if response.isError():
                code = getattr(response, "exception_code", 0)
                name = EXCEPTION_CODES.get(code, "unknown")
                raise RequestRejected(read, f"exception response {code} ({name})")
            data: Sequence[int] = response.bits if read.table in BIT_TABLES else response.registers
            if len(data) < read.count:
                raise RequestRejected(read, f"short response ({len(data)} of {read.count} values)")
            return data if len(data) == read.count else data[: read.count]
        if not client.connected:
            raise ConnectError("connection lost")
        raise DeviceTimeout(
            f"unit {unit} did not answer {describe_read(read)} within {self.conn.timeout_s:g} s "
            f"({self.conn.retries + 1} attempt(s))"
        )

    async def write(self, tag: str, value: Value) -> None:
        """Write a setpoint to a tag the profile marks ``writable`` (engineering value, range checked).

        Raises :class:`~.write.WriteRefused` (nothing sent: unknown or read-only tag, wrong
        type, out of range), :class:`~.write.WriteFailed` (the device answered with an
        exception or not at all) or :class:`~edge_agent.errors.ConnectError` (not connected).
        """
        planned = plan_write(self.profile, tag, value)
        client = self._live
        if client is None or not client.connected:
            raise ConnectError(f"{self.device.name}: not connected to {self.conn.endpoint}; '{tag}' not written")
        try:
            response = await self._call(client, lambda: self._send_write(client, planned))
        except ModbusException as exc:
            raise WriteFailed(f"write of '{tag}' failed: {describe_error(exc)}") from exc
        if response is None:
            raise WriteFailed(f"write of '{tag}': unit {self.conn.unit_id} did not confirm within "
                              f"{self.conn.timeout_s:g} s (the value may or may not be set)")
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_CODES.get(code, "unknown")
            raise WriteFailed(f"write of '{tag}' rejected by the device: exception response {code} ({name})")
        log.info("%s: wrote %s = %r (function %d)", self.device.name, tag, value, planned.function)
        if self._sink is not None:
            self._sink.event(Event(self.device.name, "setpoint_written", {"tag": tag, "value": value}))

    def _send_write(self, client: ModbusClientMixin[Any], planned: PlannedWrite) -> Awaitable[Any]:
        address, unit = planned.tag.address, self.conn.unit_id
        if planned.function == 5:
            return client.write_coil(address, bool(planned.words[0]), device_id=unit)
        if planned.function == 6:
            return client.write_register(address, planned.words[0], device_id=unit)
        return client.write_registers(address, planned.words, device_id=unit)

    def _decode(self, index: int, data: Sequence[int], ts: float, sink: Sink, samples: list[Sample]) -> None:
        """The samples of one read's answer, appended to ``samples``."""
        device = self.device.name
        isfinite = math.isfinite
        for name, offset, end, decode, check in self._decoders[index]:
            try:
                value = decode(data[offset:end])
            except CodecError:
                sink.status.errors += 1
                continue
            if check and isinstance(value, float) and not isfinite(value):
                sink.status.errors += 1  # NaN/inf: the device reports no valid value
                continue
            samples.append(Sample(device, name, ts, value))
