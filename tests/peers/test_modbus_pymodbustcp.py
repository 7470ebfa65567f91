"""The Modbus connector against pyModbusTCP's server (another implementation).

The register image is built with pyModbusTCP's own helpers (``encode_ieee``,
``long_list_to_word``) and plain byte arithmetic, not with the agent's codec, so a
byte-order mistake on either side shows up as a wrong value.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyModbusTCP.constants import EXP_DATA_ADDRESS, EXP_NONE
from pyModbusTCP.server import DataBank, DataHandler, ModbusServer
from pyModbusTCP.utils import encode_ieee, long_list_to_word

from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.modbus.connector import ModbusConnector
from edge_agent.model import Quality
from edge_agent.profiles import ModbusProfile
from tests.connectors.connector_testkit import FakeSink, Ready, free_port, make_device, stop_task, wait_until

PROFILE = ModbusProfile.model_validate(
    {
        "protocol": "modbus",
        "profile": {"name": "peer_map"},
        "tags": [
            {"name": "state", "type": "uint16", "address": 0},
            {"name": "temp", "type": "int16", "scale": 0.1, "address": 1},
            {"name": "count", "type": "uint32", "address": 2},
            {"name": "speed", "type": "float32", "address": 4},
            {"name": "feed", "type": "float32", "order": "CDAB", "address": 6},
            {"name": "energy", "type": "float64", "address": 8},
            {"name": "program", "type": "string", "length": 4, "address": 12},
            {"name": "alarm_bit", "type": "bool", "bit": 3, "address": 16},
            {"name": "running", "type": "bool", "table": "coil", "address": 0},
            {"name": "door", "type": "bool", "table": "discrete", "address": 1},
            {"name": "power", "type": "float32", "table": "input", "address": 0},
        ],
    }
)
EXPECTED: dict[str, Any] = {
    "state": 3,
    "temp": -12.5,
    "count": 70001,
    "speed": 1234.5,
    "feed": 1500.5,
    "energy": 98765.4321,
    "program": "O1234",
    "alarm_bit": True,
    "running": True,
    "door": True,
    "power": 7.75,
}


def image(server: ModbusServer) -> None:
    bank = server.data_bank
    program = b"O1234".ljust(8, b"\x00")
    energy = struct.pack(">d", 98765.4321)
    holding = [
        3,
        -125 & 0xFFFF,
        *long_list_to_word([70001]),  # big endian: high word first
        *long_list_to_word([encode_ieee(1234.5)]),
        *long_list_to_word([encode_ieee(1500.5)], big_endian=False),  # CDAB: low word first
        *[int.from_bytes(energy[i : i + 2], "big") for i in range(0, 8, 2)],
        *[int.from_bytes(program[i : i + 2], "big") for i in range(0, 8, 2)],
        0b1000,
    ]
    bank.set_holding_registers(0, holding)
    bank.set_coils(0, [True])
    bank.set_discrete_inputs(0, [False, True])
    bank.set_input_registers(0, long_list_to_word([encode_ieee(7.75)]))


@pytest.fixture
def peer() -> Iterator[ModbusServer]:
    server = ModbusServer(host="127.0.0.1", port=free_port(), no_block=True)
    server.start()
    image(server)
    try:
        yield server
    finally:
        server.stop()


def connector(port: int, **conn: Any) -> ModbusConnector:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "poll_interval_s": 0.1, "timeout_s": 1.0,
                                "reconnect_delay_s": 0.1, "reconnect_delay_max_s": 0.5} | conn
    return ModbusConnector(make_device("peer-1", PROFILE, ModbusConnection(**settings)), "gw-peer")


async def test_exact_values_from_pymodbustcp(peer: ModbusServer, sink: FakeSink) -> None:
    ready = Ready()
    modbus = connector(peer.port)
    assert len(modbus.plan) == 4  # holding 0..16, coil 0, discrete 1, input 0..1
    task = asyncio.create_task(modbus.run(sink, ready))
    try:
        await wait_until(lambda: set(sink.latest()) == set(EXPECTED), 10, "every tag")
        latest = sink.latest()
        for name, value in EXPECTED.items():
            sample = latest[name]
            assert sample.quality is Quality.GOOD
            if name == "temp":
                assert sample.value == pytest.approx(value)
            else:
                assert sample.value == value, name
                assert type(sample.value) is type(value), name
        assert sink.status.errors == 0 and ready.calls == 1
        # a value changed on the server arrives with the next poll
        peer.data_bank.set_holding_registers(6, long_list_to_word([encode_ieee(-2.25)], big_endian=False))
        await wait_until(lambda: sink.latest()["feed"].value == -2.25, 5, "the changed CDAB float")
    finally:
        await stop_task(task)


async def test_server_stop_and_restart(peer: ModbusServer, sink: FakeSink) -> None:
    task = asyncio.create_task(connector(peer.port).run(sink, Ready()))
    try:
        await wait_until(lambda: set(sink.latest()) == set(EXPECTED), 10, "every tag")
        peer.stop()
        await wait_until(lambda: sink.count("disconnected") >= 1, 10, "the lost connection")
        peer.data_bank.set_holding_registers(0, [4])
        peer.start()
        await wait_until(lambda: sink.latest()["state"].value == 4, 10, "values after the restart")
        assert sink.count("connected") == 2
    finally:
        await stop_task(task)


# --------------------------------------------------------------------------- several units, one address


class Units(DataHandler):
    """Serves a data bank per unit id; the units in ``slow`` answer after ``delay`` seconds.

    pyModbusTCP runs a thread per TCP connection, so a slow answer holds up only its own client.
    """

    def __init__(self, banks: dict[int, DataBank], slow: set[int], delay: float) -> None:
        super().__init__()
        self.banks = banks
        self.slow = slow
        self.delay = delay

    def _bank(self, srv_info: Any) -> DataBank | None:
        unit = srv_info.recv_frame.mbap.unit_id
        if unit in self.slow:
            time.sleep(self.delay)
        return self.banks.get(unit)

    @staticmethod
    def _answer(data: Any) -> DataHandler.Return:
        if data is None:
            return DataHandler.Return(exp_code=EXP_DATA_ADDRESS)
        return DataHandler.Return(exp_code=EXP_NONE, data=data)

    def read_h_regs(self, address: int, count: int, srv_info: Any) -> DataHandler.Return:
        bank = self._bank(srv_info)
        return self._answer(bank.get_holding_registers(address, count, srv_info) if bank else None)


async def test_a_slow_unit_does_not_delay_another_unit_on_the_same_address() -> None:
    banks = {1: DataBank(), 2: DataBank()}
    banks[1].set_holding_registers(0, [1, 11])
    banks[2].set_holding_registers(0, [2, 22])
    server = ModbusServer(host="127.0.0.1", port=free_port(), no_block=True, data_hdl=Units(banks, {2}, 0.4))
    server.start()
    profile = ModbusProfile.model_validate({"protocol": "modbus", "profile": {"name": "unit"}, "tags": [
        {"name": "unit", "type": "uint16", "address": 0}, {"name": "value", "type": "uint16", "address": 1}]})
    sinks = [FakeSink(), FakeSink()]
    connectors = [
        ModbusConnector(make_device(f"unit-{u}", profile, ModbusConnection(
            host="127.0.0.1", port=server.port, unit_id=u, poll_interval_s=0.1, timeout_s=2.0)), "gw")
        for u in (1, 2)
    ]
    tasks = [asyncio.create_task(c.run(s, Ready())) for c, s in zip(connectors, sinks, strict=True)]
    fast, slow = sinks
    try:
        await wait_until(lambda: slow.values_of("value") == [22], 10, "a poll of the slow unit")
        before = len(fast.values_of("value")), len(slow.values_of("value"))
        await asyncio.sleep(1.0)
        fast_polls = len(fast.values_of("value")) - before[0]
        slow_polls = len(slow.values_of("value")) - before[1]
        assert fast_polls >= 7, f"the prompt unit made only {fast_polls} polls in 1 s at 0.1 s intervals"
        assert slow_polls <= 3  # 0.4 s per answer
        assert set(fast.values_of("unit")) == {1} and set(slow.values_of("unit")) == {2}
        assert fast.status.errors == 0 and slow.status.errors == 0
    finally:
        for task in tasks:
            await stop_task(task)
        server.stop()


# --------------------------------------------------------------------------- writes


async def test_writes_land_in_pymodbustcp(peer: ModbusServer, sink: FakeSink) -> None:
    profile = ModbusProfile.model_validate({"protocol": "modbus", "profile": {"name": "sp"}, "tags": [
        {"name": "feed_sp", "type": "float32", "order": "CDAB", "address": 30, "writable": True, "max": 5000.0},
        {"name": "temp_sp", "type": "int16", "scale": 0.1, "address": 32, "writable": True},
        {"name": "count_sp", "type": "uint32", "address": 33, "writable": True},
        {"name": "enable", "type": "bool", "table": "coil", "address": 5, "writable": True},
    ]})
    modbus = ModbusConnector(make_device("peer-w", profile, ModbusConnection(
        host="127.0.0.1", port=peer.port, poll_interval_s=0.1)), "gw")
    task = asyncio.create_task(modbus.run(sink, Ready()))
    try:
        await wait_until(lambda: "enable" in sink.latest(), 10, "the first poll")
        await modbus.write("feed_sp", 1500.5)
        await modbus.write("temp_sp", -12.5)
        await modbus.write("count_sp", 70001)
        await modbus.write("enable", True)
        bank = peer.data_bank
        assert bank.get_holding_registers(30, 2) == long_list_to_word([encode_ieee(1500.5)], big_endian=False)
        assert bank.get_holding_registers(32, 1) == [-125 & 0xFFFF]
        assert bank.get_holding_registers(33, 2) == long_list_to_word([70001])
        assert bank.get_coils(5, 1) == [True]
    finally:
        await stop_task(task)
