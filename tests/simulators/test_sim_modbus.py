"""Modbus side: register encoding, the map against the shipped profile, a real pymodbus client."""

from __future__ import annotations

import struct

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.broker import free_port
from simulators.modbus_server import CncModbusServer
from simulators.plant import Plant
from simulators.registers import CNC_REGISTER_MAP, TABLE_SIZES, RegisterTag, decode, encode


@pytest.mark.parametrize(
    ("value", "type_", "order", "expected"),
    [
        (0x12345678, "uint32", "ABCD", [0x1234, 0x5678]),
        (0x12345678, "uint32", "CDAB", [0x5678, 0x1234]),
        (0x12345678, "uint32", "BADC", [0x3412, 0x7856]),
        (0x12345678, "uint32", "DCBA", [0x7856, 0x3412]),
        (-2, "int16", "ABCD", [0xFFFE]),
        (1.0, "float32", "ABCD", [0x3F80, 0x0000]),
        (1.0, "float32", "CDAB", [0x0000, 0x3F80]),
        (1.0, "float64", "ABCD", [0x3FF0, 0, 0, 0]),
        (1.0, "float64", "CDAB", [0, 0, 0, 0x3FF0]),
        ("AB-1", "string", "ABCD", [0x4142, 0x2D31, 0, 0]),
        (True, "bool", "ABCD", [1]),
    ],
)
def test_encode(value: object, type_: str, order: str, expected: list[int]) -> None:
    length = 4 if type_ == "string" else None
    assert encode(value, type_, order, length) == expected  # type: ignore[arg-type]
    decoded = decode(expected, type_, order)
    assert decoded == value


def test_string_is_truncated_and_padded() -> None:
    assert encode("ABCDEFGHIJ", "string", length=2) == [0x4142, 0x4344]
    assert encode("A", "string", length=2) == [0x4100, 0]


def test_register_map_matches_the_profile(profile) -> None:
    tags = {t["name"]: t for t in profile("cnc_vmc")["tags"]}
    ours = {t.name: t for t in CNC_REGISTER_MAP}
    assert set(ours) == set(tags)
    for name, tag in tags.items():
        mine: RegisterTag = ours[name]
        assert mine.table == tag.get("table", "holding"), name
        assert mine.address == tag["address"], name
        assert mine.type == tag.get("type", "float64"), name
        assert mine.order == tag.get("order", "ABCD"), name
        assert mine.scale == tag.get("scale", 1.0), name
        assert mine.length == tag.get("length"), name
        assert mine.address + mine.count <= TABLE_SIZES[mine.table]
    # no two tags share a register
    used: set[tuple[str, int]] = set()
    for t in CNC_REGISTER_MAP:
        cells = {(t.table, a) for a in range(t.address, t.address + t.count)}
        assert not cells & used
        used |= cells


async def test_units_serve_their_machine() -> None:
    port = free_port()
    plant = Plant(seed=7, cnc=2, lines=0, sensors=0)
    plant.step(120.0)
    async with CncModbusServer(plant.cnc, port=port) as server:
        assert server.unit_ids == {"cnc-1": 1, "cnc-2": 2}
        await server.update()
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3)
        assert await client.connect()
        try:
            for unit, machine in ((1, plant.cnc[0]), (2, plant.cnc[1])):
                rr = await client.read_holding_registers(0, count=28, device_id=unit)
                assert not rr.isError(), rr
                regs = rr.registers
                assert regs[0] == machine.state and regs[1] == machine.reason
                # decoded independently of the simulator's helpers
                assert (regs[2] << 16) | regs[3] == machine.good_count
                assert (regs[4] << 16) | regs[5] == machine.scrap_count
                feed = struct.unpack(">f", struct.pack(">HH", regs[15], regs[14]))[0]
                assert feed == pytest.approx(machine.feed_rate, rel=1e-6)
                # pymodbus' own little word order is CDAB
                dtype = client.DATATYPE.FLOAT32
                feed2 = client.convert_from_registers(regs[14:16], dtype, word_order="little")
                assert feed2 == pytest.approx(feed)
                speed = struct.unpack(">f", struct.pack(">HH", regs[6], regs[7]))[0]
                assert speed == pytest.approx(machine.spindle_speed, rel=1e-6)
                temp = struct.unpack(">h", struct.pack(">H", regs[10]))[0] * 0.1
                assert temp == pytest.approx(machine.spindle_temp, abs=0.051)
                program = b"".join(r.to_bytes(2, "big") for r in regs[20:28]).rstrip(b"\0").decode("ascii")
                assert program == machine.program.name
                assert regs[17:20] == [0, 0, 0]  # the gap reads as zeros

                coils = await client.read_coils(0, count=1, device_id=unit)
                assert coils.bits[0] is machine.running
                ir = await client.read_input_registers(0, count=6, device_id=unit)
                power = struct.unpack(">f", struct.pack(">2H", *ir.registers[0:2]))[0]
                energy = struct.unpack(">d", struct.pack(">4H", *ir.registers[2:6]))[0]
                assert power == pytest.approx(machine.power, rel=1e-6)
                assert energy == pytest.approx(machine.energy, rel=1e-12)
            assert plant.cnc[0].good_count != plant.cnc[1].good_count

            # registers follow the model
            before = plant.cnc[0].good_count
            plant.step(300.0)
            await server.update()
            rr = await client.read_holding_registers(2, count=2, device_id=1)
            assert (rr.registers[0] << 16) | rr.registers[1] == plant.cnc[0].good_count > before

            # unknown unit: exception 0x0B (gateway target device failed to respond)
            rr = await client.read_holding_registers(0, count=2, device_id=3)
            assert rr.isError() and rr.exception_code == 0x0B
        finally:
            client.close()


async def test_port_in_use_is_an_oserror() -> None:
    port = free_port()
    plant = Plant(seed=1, cnc=1, lines=0, sensors=0)
    async with CncModbusServer(plant.cnc, port=port):
        with pytest.raises(OSError):
            await CncModbusServer(plant.cnc, port=port).start()
