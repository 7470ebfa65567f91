"""The guarded write path for setpoints: only tags the profile allows, checked before anything is sent.

A write is accepted only for a tag with ``writable = true`` in the profile (holding
registers and coils; never a single bit of a register). The value is an
engineering value, checked against the tag's type and its ``min``/``max``, then
converted back to raw registers (scale and offset undone) and checked against
the range of the register type. Anything else raises :class:`WriteRefused`
naming the tag and the reason; nothing reaches the device.

Coils are written with function 5, one register with function 6, several with
function 16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_agent.connectors.modbus.codec import INTEGER_TYPES, CodecError, encode
from edge_agent.errors import ConnectorError
from edge_agent.model import Value
from edge_agent.profiles import ModbusProfile, ModbusTag

# How far an unscaled value may be from a whole number and still be taken as one.
RAW_TOLERANCE = 1e-6


class WriteRefused(ConnectorError):
    """A write the profile or the value does not allow; the message says why. Nothing was sent."""


class WriteFailed(ConnectorError):
    """The device refused or did not confirm a write that was sent."""


@dataclass(frozen=True)
class PlannedWrite:
    """A checked write: the tag, the engineering value and the raw words (or bit) to send."""

    tag: ModbusTag
    value: Value
    words: list[int]

    @property
    def function(self) -> int:
        if self.tag.table == "coil":
            return 5
        return 6 if len(self.words) == 1 else 16


def plan_write(profile: ModbusProfile, tag_name: str, value: Value) -> PlannedWrite:
    """Check a write against the profile; raises WriteRefused with the reason."""
    tag = next((t for t in profile.tags if t.name == tag_name), None)
    if tag is None:
        raise WriteRefused(f"write refused: profile '{profile.profile.name}' has no tag '{tag_name}'")
    if not tag.writable:
        raise WriteRefused(
            f"write refused: tag '{tag_name}' is read-only (the profile does not mark it 'writable = true')"
        )
    refuse = _Refuser(tag_name, value)
    if tag.type == "bool":
        if not isinstance(value, bool):
            raise refuse("expects true or false")
    elif tag.type == "string":
        if not isinstance(value, str):
            raise refuse("expects a string")
        if not value.isascii():
            raise refuse("takes ASCII characters only")
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse(f"expects a number ({tag.type})")
        if not math.isfinite(value):
            raise refuse("is not a finite number")
        if tag.min is not None and value < tag.min:
            raise refuse(f"is below the minimum {tag.min:g}{_unit(tag)}")
        if tag.max is not None and value > tag.max:
            raise refuse(f"is above the maximum {tag.max:g}{_unit(tag)}")
        if tag.type in INTEGER_TYPES:
            raw = (value - tag.offset) / tag.scale
            if abs(raw - round(raw)) > RAW_TOLERANCE:
                step = f"a multiple of {tag.scale:g}" if tag.scale != 1.0 else "a whole number"
                raise refuse(f"must be {step} for {tag.type} register(s)")
    try:
        words = encode(tag, value, scaled=True)
    except CodecError as exc:
        raise refuse(f"does not fit: {exc}") from None
    return PlannedWrite(tag, value, words)


class _Refuser:
    def __init__(self, tag: str, value: Value) -> None:
        self.tag = tag
        self.value = value

    def __call__(self, reason: str) -> WriteRefused:
        return WriteRefused(f"write refused: tag '{self.tag}' value {self.value!r} {reason}")


def _unit(tag: ModbusTag) -> str:
    return f" {tag.unit}" if tag.unit else ""
