"""Decode Modbus registers and bits into tag values, and encode values back.

Registers are 16-bit words as they arrive on the wire. Multi-register types are
assembled according to the tag's ``order``, naming the wire order of the bytes of
a big-endian value ``A B C D`` (for 64-bit types the pattern extends over 4 words):

* ``ABCD`` big-endian, the Modbus default;
* ``DCBA`` all bytes reversed (little-endian);
* ``BADC`` the bytes within each word swapped, words in big-endian order;
* ``CDAB`` words in reverse order, bytes within each word big-endian.

Strings take ``length`` registers, two ASCII characters per register, high byte
first; NULs and spaces are stripped from both ends. ``order`` does not apply to
strings, bools or coil/discrete bits. :func:`decode` returns the raw value,
:func:`decode_value` applies the tag's scale and offset, :func:`encode` is the
inverse of :func:`decode` (or of :func:`decode_value` with ``scaled=True``).
:func:`decoder` returns a function equivalent to :func:`decode_value` for one tag
with the per-tag work (formats, byte order, scaling) done once, for the poll loop.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence

from edge_agent.model import Value
from edge_agent.profiles import REGISTER_COUNT, ModbusTag

FORMATS = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I",
    "int64": "q", "uint64": "Q", "float32": "f", "float64": "d",
}
INTEGER_TYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64")


class CodecError(ValueError):
    """Registers that cannot be decoded, or a value that cannot be encoded, for a tag."""


def _reorder(data: bytes, order: str) -> bytes:
    """Convert between wire order and big-endian; each order is its own inverse."""
    if order == "ABCD":
        return data
    if order == "DCBA":
        return data[::-1]
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if order == "BADC":
        return b"".join(w[::-1] for w in words)
    if order == "CDAB":
        return b"".join(reversed(words))
    raise CodecError(f"unknown byte order {order!r}")


def _to_bytes(words: Sequence[int]) -> bytes:
    try:
        return b"".join(int(w).to_bytes(2, "big") for w in words)
    except OverflowError:
        raise CodecError(f"register values must be 0..65535, got {list(words)}") from None


def _to_words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def decode(tag: ModbusTag, data: Sequence[int]) -> Value:
    """Decode exactly ``tag.register_count`` registers (or one bit) into the raw value."""
    if len(data) != tag.register_count:
        raise CodecError(f"{tag.name}: expected {tag.register_count} values, got {len(data)}")
    if tag.table in ("coil", "discrete"):
        return bool(data[0])
    if tag.type == "bool":
        return bool((data[0] >> tag.bit) & 1) if tag.bit is not None else data[0] != 0
    raw = _to_bytes(data)
    if tag.type == "string":
        return raw.strip(b"\x00 ").decode("ascii", errors="replace")
    value: int | float = struct.unpack(">" + FORMATS[tag.type], _reorder(raw, tag.order))[0]
    return value


def decode_value(tag: ModbusTag, data: Sequence[int]) -> Value:
    """Decode and apply the tag's scale and offset."""
    value: Value = tag.convert(decode(tag, data))
    return value


def decoder(tag: ModbusTag) -> Callable[[Sequence[int]], Value]:
    """A function equal to ``decode_value(tag, data)``, prepared once per tag.

    Tags of the same shape (type, byte order, scale, offset) share one function: a plant of
    100 devices x 100 tags keeps a few dozen of them, not 10,000 closures with their own formats.
    """
    if tag.table in ("coil", "discrete") or tag.type == "bool":
        return _bit_decoder(tag.table in ("coil", "discrete"), tag.bit)
    if tag.type == "string":
        return _string_decoder(tag.length or 1)
    return _numeric_decoder(tag.type, tag.order, float(tag.scale), float(tag.offset))


@functools.lru_cache(maxsize=256)
def _string_decoder(count: int) -> Callable[[Sequence[int]], Value]:
    """``count`` registers of ASCII, two characters each, high byte first; NULs and spaces stripped."""
    words = struct.Struct(f">{count}H")

    def run(data: Sequence[int]) -> Value:
        if len(data) != count:
            raise CodecError(f"expected {count} values, got {len(data)}")
        try:
            raw = words.pack(*data)
        except struct.error:
            raise CodecError(f"register values must be 0..65535, got {list(data)}") from None
        return raw.strip(b"\x00 ").decode("ascii", errors="replace")

    return run


@functools.lru_cache(maxsize=64)
def _bit_decoder(single_bit: bool, bit: int | None) -> Callable[[Sequence[int]], Value]:
    """A coil or discrete input (``single_bit``), one bit of a register, or a register that is on when not 0."""

    def run(data: Sequence[int]) -> Value:
        if len(data) != 1:
            raise CodecError(f"expected 1 value, got {len(data)}")
        if single_bit:
            return bool(data[0])
        return bool((data[0] >> bit) & 1) if bit is not None else data[0] != 0

    return run


@functools.lru_cache(maxsize=1024)
def _numeric_decoder(type_: str, order: str, scale: float, offset: float) -> Callable[[Sequence[int]], Value]:
    count = REGISTER_COUNT[type_]
    plain = scale == 1.0 and offset == 0.0
    if count == 1:  # int16, uint16: one register, nothing to assemble
        signed = type_ == "int16"
        swap = order in ("DCBA", "BADC")  # the two bytes of the word reversed; CDAB swaps words: none here

        def word(data: Sequence[int]) -> Value:
            if len(data) != 1:
                raise CodecError(f"expected 1 value, got {len(data)}")
            value = data[0]
            if not 0 <= value <= 0xFFFF:
                raise CodecError(f"register values must be 0..65535, got {list(data)}")
            if swap:
                value = (value & 0xFF) << 8 | value >> 8
            if signed and value > 0x7FFF:
                value -= 0x10000
            return value if plain else value * scale + offset

        return word
    words = struct.Struct(f">{count}H")
    number = struct.Struct(">" + FORMATS[type_])

    def run(data: Sequence[int]) -> Value:
        if len(data) != count:
            raise CodecError(f"expected {count} values, got {len(data)}")
        try:
            raw = words.pack(*data)
        except struct.error:
            raise CodecError(f"register values must be 0..65535, got {list(data)}") from None
        if order != "ABCD":
            raw = _reorder(raw, order)
        value: int | float = number.unpack(raw)[0]
        return value if plain else value * scale + offset

    return run


def encode(tag: ModbusTag, value: Value, *, scaled: bool = False) -> list[int]:
    """Encode a value into the registers (or the single 0/1 bit) :func:`decode` reads it from.

    With ``scaled=True`` the value is an engineering value: scale and offset are
    undone first (and integer types rounded). A ``bit`` tag encodes to a register
    with only that bit set or cleared.
    """
    if tag.table in ("coil", "discrete") or tag.type == "bool":
        on = bool(value)
        if tag.bit is not None:
            return [(1 << tag.bit) if on else 0]
        return [1 if on else 0]
    if tag.type == "string":
        text = str(value).encode("ascii")
        size = 2 * (tag.length or 1)
        if len(text) > size:
            raise CodecError(f"{tag.name}: {value!r} is longer than {size} characters")
        return _to_words(text.ljust(size, b"\x00"))
    if isinstance(value, str):
        raise CodecError(f"{tag.name}: cannot encode {value!r} as {tag.type}")
    number: int | float = (value - tag.offset) / tag.scale if scaled else value
    if tag.type in INTEGER_TYPES:
        if number != round(number) and not scaled:
            raise CodecError(f"{tag.name}: {value!r} is not an integer")
        number = round(number)
    try:
        packed = struct.pack(">" + FORMATS[tag.type], number)
    except (struct.error, OverflowError) as exc:
        raise CodecError(f"{tag.name}: cannot encode {value!r} as {tag.type}: {exc}") from None
    return _to_words(_reorder(packed, tag.order))
