"""Modbus register encoding and the register map of the CNC machine's PLC.

Addresses are 0-based PDU addresses. Multi-register values are encoded per
byte/word order: ``ABCD`` big-endian bytes and words, ``CDAB`` word-swapped,
``BADC`` byte-swapped within each word, ``DCBA`` fully little-endian. A
``string`` is ``length`` registers of two ASCII characters each (first
character in the high byte), NUL padded.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from simulators.cnc import CncMachine

Order = Literal["ABCD", "CDAB", "BADC", "DCBA"]
Table = Literal["holding", "input", "coil", "discrete"]

_STRUCT = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I",
    "int64": "q", "uint64": "Q", "float32": "f", "float64": "d",
}


def _reorder(data: bytes, order: str) -> bytes:
    """Turn big-endian ``data`` (ABCD) into ``order``; the operation is its own inverse."""
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return b"".join(words)


def encode(
    value: float | int | str | bool, type_: str, order: str = "ABCD", length: int | None = None
) -> list[int]:
    """Registers holding ``value`` of ``type_`` (raw value: apply any scale before)."""
    if type_ == "bool":
        return [1 if value else 0]
    if type_ == "string":
        if length is None:
            raise ValueError("a string needs a length in registers")
        data = str(value).encode("ascii", errors="replace")[: 2 * length].ljust(2 * length, b"\0")
    else:
        fmt = _STRUCT[type_]
        if fmt in ("f", "d"):
            number: float | int = float(value)
        else:
            number = value if isinstance(value, int) else round(float(value))
        data = _reorder(struct.pack(">" + fmt, number), order)
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def decode(registers: Sequence[int], type_: str, order: str = "ABCD") -> float | int | str | bool:
    """Inverse of :func:`encode` (strings lose their NUL padding)."""
    data = b"".join(int(r).to_bytes(2, "big") for r in registers)
    if type_ == "bool":
        return bool(registers[0])
    if type_ == "string":
        return data.rstrip(b"\0").decode("ascii", errors="replace")
    fmt = _STRUCT[type_]
    return struct.unpack(">" + fmt, _reorder(data[: struct.calcsize(fmt)], order))[0]


@dataclass(frozen=True)
class RegisterTag:
    """Where and how one value sits in the PLC's memory."""

    name: str
    table: Table
    address: int
    type: str
    order: Order = "ABCD"
    scale: float = 1.0
    length: int | None = None

    @property
    def count(self) -> int:
        if self.table in ("coil", "discrete") or self.type == "bool":
            return 1
        if self.type == "string":
            return self.length or 1
        return struct.calcsize(_STRUCT[self.type]) // 2


# The map documented by the PLC programmer; it matches device_profiles/cnc_vmc.toml.
CNC_REGISTER_MAP: tuple[RegisterTag, ...] = (
    RegisterTag("state", "holding", 0, "uint16"),
    RegisterTag("stop_reason", "holding", 1, "uint16"),
    RegisterTag("good_count", "holding", 2, "uint32"),
    RegisterTag("scrap_count", "holding", 4, "uint32"),
    RegisterTag("spindle_speed", "holding", 6, "float32"),
    RegisterTag("spindle_load", "holding", 8, "float32"),
    RegisterTag("spindle_temp", "holding", 10, "int16", scale=0.1),
    RegisterTag("coolant_temp", "holding", 11, "int16", scale=0.1),
    RegisterTag("cycle_time", "holding", 12, "float32"),
    RegisterTag("feed_rate", "holding", 14, "float32", order="CDAB"),
    RegisterTag("alarm_code", "holding", 16, "uint16"),
    RegisterTag("program", "holding", 20, "string", length=8),
    RegisterTag("running", "coil", 0, "bool"),
    RegisterTag("power", "input", 0, "float32"),
    RegisterTag("energy", "input", 2, "float64"),
)
# The command register: a client writes a stop reason code here (11-13 short stop, 21-23 breakdown) to
# stop the machine now (see CncMachine.force_stop); the server acts on it and clears it.
STOP_COMMAND_REGISTER = 30
# Sizes of the tables served (registers 17-19 and 28-31 read as 0, so block reads across gaps work).
TABLE_SIZES: dict[str, int] = {"holding": 32, "input": 8, "coil": 16, "discrete": 16}


def cnc_values(machine: CncMachine) -> dict[str, float | int | str | bool]:
    """Engineering values of every tag in :data:`CNC_REGISTER_MAP`."""
    return {
        "state": int(machine.state),
        "stop_reason": machine.reason,
        "good_count": machine.good_count,
        "scrap_count": machine.scrap_count,
        "spindle_speed": machine.spindle_speed,
        "spindle_load": machine.spindle_load,
        "spindle_temp": machine.spindle_temp,
        "coolant_temp": machine.coolant_temp,
        "cycle_time": machine.cycle_time,
        "feed_rate": machine.feed_rate,
        "alarm_code": machine.alarm_code,
        "program": machine.program.name,
        "running": machine.running,
        "power": machine.power,
        "energy": machine.energy,
    }


def cnc_image(machine: CncMachine) -> dict[str, list[int]]:
    """The full memory image (per table) of one machine's PLC."""
    image = {table: [0] * size for table, size in TABLE_SIZES.items()}
    values = cnc_values(machine)
    for tag in CNC_REGISTER_MAP:
        value = values[tag.name]
        if tag.scale != 1.0 and not isinstance(value, str | bool):
            value = value / tag.scale
        image[tag.table][tag.address:tag.address + tag.count] = encode(value, tag.type, tag.order, tag.length)
    return image
