"""Modbus TCP connector: polls a device with planned block reads and emits samples.

The profile's tags are coalesced once into read requests (see :mod:`.planner`);
each poll runs them in order on a fixed-rate monotonic schedule and decodes the
answers (see :mod:`.codec`). pymodbus's own retries and reconnects are disabled:
this loop retries a request that got no answer ``retries`` times, then treats the
device as gone, closes the client and reconnects with a capped backoff.

A Modbus exception response (illegal address and the like) only drops the tags of
that request: they are counted as errors and the other requests still deliver.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge_agent.connectors.base import Backoff, Sink, describe_error
from edge_agent.connectors.modbus.codec import CodecError, decode_value
from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.modbus.planner import BIT_TABLES, Read, plan_reads
from edge_agent.connectors.modbus.schedule import PollSchedule, raise_if_cancelled
from edge_agent.errors import ConnectError, ConnectorError, DeviceTimeout, ReadError
from edge_agent.model import Sample
from edge_agent.profiles import ModbusProfile

if TYPE_CHECKING:
    from edge_agent.config import Device

log = logging.getLogger("edge_agent.connectors.modbus")

# Extra time on top of timeout_s before our own guard gives up on a pymodbus call.
GUARD_S = 1.0

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


def describe_read(read: Read) -> str:
    return f"{read.table} {read.start}..{read.end}"


class RequestRejected(ReadError):
    """The device answered one request with an exception (or a short) response."""

    def __init__(self, read: Read, reason: str) -> None:
        super().__init__(f"{describe_read(read)}: {reason}")
        self.read = read


class ModbusConnector:
    """Polls one Modbus TCP device described by a :class:`~edge_agent.profiles.ModbusProfile`."""

    def __init__(self, device: Device, gateway_id: str) -> None:
        if not isinstance(device.profile, ModbusProfile) or not isinstance(device.connection, ModbusConnection):
            raise TypeError(f"device '{device.name}' is not a Modbus device")
        self.device = device
        self.gateway_id = gateway_id
        self.conn: ModbusConnection = device.connection
        self.plan: list[Read] = plan_reads(device.profile.tags, self.conn.max_gap, self.conn.max_registers)
        self._rejected: set[Read] = set()

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None:
        """Connect, poll until the connection fails, back off, reconnect; until cancelled."""
        backoff = Backoff(self.conn.reconnect_delay_s, self.conn.reconnect_delay_max_s)
        announced = False
        logged_unexpected = False
        while True:
            client = self._client()
            try:
                await self._connect(client)
                sink.connected()
                backoff.reset()
                if not announced:
                    announced = True
                    ready()
                await self._poll_forever(client, sink)
            except ConnectorError as exc:
                sink.disconnected(exc)  # counts the error and logs the first failure
            except Exception as exc:  # a bug must not end the loop; show its traceback once
                if not logged_unexpected:
                    logged_unexpected = True
                    log.exception("%s: unexpected error in the Modbus connector", self.device.name)
                sink.disconnected(exc)
            finally:
                client.close()
            raise_if_cancelled()
            await backoff.wait()

    def _client(self) -> AsyncModbusTcpClient:
        """A client without pymodbus's retries and reconnects: this connector decides both."""
        client = AsyncModbusTcpClient(
            self.conn.host,
            port=self.conn.port,
            name=self.device.name,
            timeout=self.conn.timeout_s,
            retries=0,
            reconnect_delay=0,  # 0 = never reconnect by itself
            reconnect_delay_max=0,
        )
        # pymodbus drops the connection after this many unanswered requests in a row; we give up
        # (and reconnect) after retries + 1, so its own limit never fires first.
        client.set_max_no_responses(self.conn.retries + 1)
        return client

    async def _connect(self, client: AsyncModbusTcpClient) -> None:
        where = f"{self.conn.host}:{self.conn.port}"
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

    async def _poll_forever(self, client: AsyncModbusTcpClient, sink: Sink) -> None:
        schedule = PollSchedule(self.conn.poll_interval_s)
        while True:
            await self.poll_once(client, sink)
            await schedule.wait()

    async def poll_once(self, client: AsyncModbusTcpClient, sink: Sink) -> None:
        """Run every planned request once and emit what could be read."""
        samples: list[Sample] = []
        try:
            for read in self.plan:
                try:
                    data = await self._request(client, read, sink)
                except RequestRejected as exc:
                    sink.status.errors += len(read.tags)
                    if read not in self._rejected:
                        self._rejected.add(read)
                        log.warning("%s: %s; its %d tag(s) are skipped", self.device.name, exc, len(read.tags))
                    continue
                if read in self._rejected:
                    self._rejected.discard(read)
                    log.info("%s: %s reads again", self.device.name, describe_read(read))
                samples.extend(self._decode(read, data, time.time(), sink))
        except ConnectorError:
            if samples:
                await sink.emit(samples)
            raise
        if samples:
            await sink.emit(samples)

    async def _request(self, client: AsyncModbusTcpClient, read: Read, sink: Sink) -> Sequence[int]:
        """One read with up to ``retries`` repeats when the device does not answer."""
        methods = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }
        method = methods[read.table]
        unit = self.conn.unit_id
        for _attempt in range(self.conn.retries + 1):
            if not client.connected:
                raise ConnectError("connection lost")
            sink.status.requests += 1
            try:
                async with asyncio.timeout(self.conn.timeout_s + GUARD_S):
                    response = await method(read.start, count=read.count, device_id=unit)
            except (TimeoutError, ModbusIOException):
                continue
            except ConnectionException as exc:
                raise ConnectError(describe_error(exc)) from exc
            except OSError as exc:
                raise ConnectError(describe_error(exc)) from exc
            except ModbusException as exc:
                raise ReadError(f"{describe_read(read)}: {describe_error(exc)}") from exc
            finally:
                raise_if_cancelled()
            if response.isError():
                code = getattr(response, "exception_code", 0)
                name = EXCEPTION_CODES.get(code, "unknown")
                raise RequestRejected(read, f"exception response {code} ({name})")
            data: Sequence[int] = response.bits if read.table in BIT_TABLES else response.registers
            if len(data) < read.count:
                raise RequestRejected(read, f"short response ({len(data)} of {read.count} values)")
            return data[: read.count]
        if not client.connected:
            raise ConnectError("connection lost")
        raise DeviceTimeout(
            f"unit {unit} did not answer {describe_read(read)} within {self.conn.timeout_s:g} s "
            f"({self.conn.retries + 1} attempt(s))"
        )

    def _decode(self, read: Read, data: Sequence[int], ts: float, sink: Sink) -> list[Sample]:
        samples = []
        for tag in read.tags:
            offset = tag.address - read.start
            try:
                value = decode_value(tag, data[offset : offset + tag.register_count])
            except CodecError:
                sink.status.errors += 1
                continue
            if isinstance(value, float) and not math.isfinite(value):
                sink.status.errors += 1  # NaN/inf: the device reports no valid value
                continue
            samples.append(Sample(self.device.name, tag.name, ts, value))
        return samples
