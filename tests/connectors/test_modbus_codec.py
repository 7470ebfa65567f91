"""Decoding and encoding Modbus registers for every type and byte order."""

from __future__ import annotations

import math
from typing import Any

import pytest

from edge_agent.connectors.modbus.codec import CodecError, decode, decode_value, decoder, encode
from edge_agent.profiles import ModbusTag

ORDERS = ("ABCD", "DCBA", "BADC", "CDAB")


def tag(type_: str, order: str = "ABCD", **kw: Any) -> ModbusTag:
    return ModbusTag(name="t", address=0, type=type_, order=order, **kw)


# Hand-written wire images (registers as they travel) for each byte order.
EXPECTED = [
    ("float32", 1.0, {"ABCD": [0x3F80, 0x0000], "CDAB": [0x0000, 0x3F80],
                      "BADC": [0x803F, 0x0000], "DCBA": [0x0000, 0x803F]}),
    ("int32", -2, {"ABCD": [0xFFFF, 0xFFFE], "CDAB": [0xFFFE, 0xFFFF],
                   "BADC": [0xFFFF, 0xFEFF], "DCBA": [0xFEFF, 0xFFFF]}),
    ("uint32", 0x12345678, {"ABCD": [0x1234, 0x5678], "CDAB": [0x5678, 0x1234],
                            "BADC": [0x3412, 0x7856], "DCBA": [0x7856, 0x3412]}),
    ("float64", 1.0, {"ABCD": [0x3FF0, 0, 0, 0], "CDAB": [0, 0, 0, 0x3FF0],
                      "BADC": [0xF03F, 0, 0, 0], "DCBA": [0, 0, 0, 0xF03F]}),
    ("uint64", 0x0102030405060708, {"ABCD": [0x0102, 0x0304, 0x0506, 0x0708],
                                    "CDAB": [0x0708, 0x0506, 0x0304, 0x0102],
                                    "BADC": [0x0201, 0x0403, 0x0605, 0x0807],
                                    "DCBA": [0x0807, 0x0605, 0x0403, 0x0201]}),
    ("int16", -2, {"ABCD": [0xFFFE], "CDAB": [0xFFFE], "BADC": [0xFEFF], "DCBA": [0xFEFF]}),
    ("uint16", 0x1234, {"ABCD": [0x1234], "CDAB": [0x1234], "BADC": [0x3412], "DCBA": [0x3412]}),
]


@pytest.mark.parametrize(("type_", "value", "images"), EXPECTED, ids=[e[0] for e in EXPECTED])
@pytest.mark.parametrize("order", ORDERS)
def test_known_wire_images(type_: str, value: Any, images: dict[str, list[int]], order: str) -> None:
    t = tag(type_, order)
    assert encode(t, value) == images[order]
    assert decode(t, images[order]) == value


ROUND_TRIP = {
    "int16": [-32768, -1, 0, 1, 32767],
    "uint16": [0, 1, 0xBEEF, 65535],
    "int32": [-(2**31), -2, 0, 70000, 2**31 - 1],
    "uint32": [0, 1, 123456, 2**32 - 1],
    "int64": [-(2**63), -2, 0, 2**40 + 7, 2**63 - 1],
    "uint64": [0, 1, 2**53 + 1, 2**64 - 1],
    "float32": [0.0, -1.5, 1.0, 8000.0, 3.0e38, -1.25e-30],
    "float64": [0.0, -1.5, math.pi, 1e300, -2.5e-300, 12345.678],
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("type_", list(ROUND_TRIP))
def test_round_trip_every_type_and_order(type_: str, order: str) -> None:
    t = tag(type_, order)
    for value in ROUND_TRIP[type_]:
        words = encode(t, value)
        assert len(words) == t.register_count
        assert all(0 <= w <= 0xFFFF for w in words)
        decoded = decode(t, words)
        if type_ == "float32":
            assert decoded == pytest.approx(value, rel=1e-7)
        else:
            assert decoded == value
        assert type(decoded) is (float if type_.startswith("float") else int)


def test_string_two_chars_per_register_high_byte_first() -> None:
    t = tag("string", length=4)
    assert encode(t, "AB") == [0x4142, 0, 0, 0]
    assert encode(t, "O1234") == [0x4F31, 0x3233, 0x3400, 0]
    assert decode(t, [0x4F31, 0x3233, 0x3400, 0]) == "O1234"
    assert decode(t, [0x2020, 0x4142, 0x2000, 0]) == "AB"  # spaces and NULs stripped at both ends
    assert decode(t, [0, 0, 0, 0]) == ""
    for order in ORDERS:  # order does not apply to strings
        assert decode(tag("string", order, length=4), encode(t, "XYZ")) == "XYZ"
    with pytest.raises(CodecError):
        encode(t, "123456789")


def test_bool_from_register_and_bit() -> None:
    assert decode(tag("bool"), [0]) is False
    assert decode(tag("bool"), [0x8000]) is True
    assert decode(tag("bool", bit=1), [0b1010]) is True
    assert decode(tag("bool", bit=2), [0b1010]) is False
    assert decode(tag("bool", bit=15), [0x8000]) is True
    assert encode(tag("bool", bit=3), True) == [0b1000]
    assert encode(tag("bool", bit=3), False) == [0]
    assert encode(tag("bool"), True) == [1]


def test_coil_and_discrete_bits() -> None:
    for table in ("coil", "discrete"):
        t = ModbusTag(name="b", address=7, type="bool", table=table)
        assert decode(t, [True]) is True
        assert decode(t, [False]) is False
        assert encode(t, True) == [1]
        assert encode(t, False) == [0]


def test_scale_and_offset() -> None:
    temp = tag("int16", scale=0.1)
    assert decode_value(temp, [425]) == pytest.approx(42.5)
    assert decode_value(temp, encode(temp, -3.5, scaled=True)) == pytest.approx(-3.5)
    assert encode(temp, -3.5, scaled=True) == [(-35) & 0xFFFF]
    offset = tag("uint16", scale=0.5, offset=-40.0)
    assert encode(offset, 10.0, scaled=True) == [100]
    assert decode_value(offset, [100]) == pytest.approx(10.0)
    assert decode_value(tag("uint16"), [7]) == 7  # no scaling keeps the integer


def test_errors() -> None:
    with pytest.raises(CodecError):
        decode(tag("float32"), [0x3F80])  # one register short
    with pytest.raises(CodecError):
        encode(tag("uint16"), 70000)
    with pytest.raises(CodecError):
        encode(tag("int16"), 1.5)  # not an integer
    with pytest.raises(CodecError):
        encode(tag("float32"), "x")
    with pytest.raises(CodecError):
        encode(tag("float32"), 1e39)  # out of float32 range


@pytest.mark.parametrize("order", ["ABCD", "DCBA", "BADC", "CDAB"])
@pytest.mark.parametrize(
    ("type_", "value", "scale"),
    [("int16", -1234, 1.0), ("uint16", 65535, 1.0), ("int32", -70000, 1.0), ("uint32", 4_000_000_000, 1.0),
     ("int64", -(2**40), 1.0), ("uint64", 2**63, 1.0), ("float32", 1.5, 1.0), ("float64", -2.25, 1.0),
     ("int16", 425, 0.1)],
)
def test_prepared_decoder_equals_decode_value(order: str, type_: str, value: float, scale: float) -> None:
    tag = ModbusTag(name="t", address=0, type=type_, order=order, scale=scale)
    words = encode(tag, value)
    assert decoder(tag)(words) == decode_value(tag, words)
    with pytest.raises(CodecError):
        decoder(tag)(words[:-1] if len(words) > 1 else [])
    with pytest.raises(CodecError):
        decoder(tag)([70000] * len(words))


def test_prepared_decoders_are_shared_by_tags_of_one_shape() -> None:
    a = ModbusTag(name="a", address=0, type="int16", scale=0.1)
    b = ModbusTag(name="b", address=7, type="int16", scale=0.1)
    c = ModbusTag(name="c", address=0, type="int16", scale=0.5)
    assert decoder(a) is decoder(b)  # 10,000 tags of a few shapes keep a few functions
    assert decoder(a) is not decoder(c)
    assert decoder(c)([0xFFFE]) == pytest.approx(-1.0)


@pytest.mark.parametrize(("order", "expected"), [("ABCD", 0x1234), ("CDAB", 0x1234), ("DCBA", 0x3412),
                                                 ("BADC", 0x3412)])
def test_one_register_byte_orders(order: str, expected: int) -> None:
    tag = ModbusTag(name="t", address=0, type="uint16", order=order)
    assert decoder(tag)([0x1234]) == decode_value(tag, [0x1234]) == expected


@pytest.mark.parametrize(("table", "bit", "words"), [
    ("coil", None, [1]), ("coil", None, [0]), ("discrete", None, [1]), ("holding", None, [0]),
    ("holding", None, [7]), ("holding", 3, [0b1000]), ("input", 3, [0b0111]),
])
def test_prepared_bit_decoders_equal_decode_value(table: str, bit: int | None, words: list[int]) -> None:
    tag = ModbusTag(name="b", address=0, type="bool", table=table, bit=bit)
    assert decoder(tag)(words) == decode_value(tag, words)
    with pytest.raises(CodecError):
        decoder(tag)([])


@pytest.mark.parametrize("text", ["O1234", "AB", "", "X"])
def test_prepared_string_decoder_equals_decode_value(text: str) -> None:
    tag = ModbusTag(name="s", address=0, type="string", length=4)
    words = encode(tag, text)
    assert decoder(tag)(words) == decode_value(tag, words) == text
    with pytest.raises(CodecError):
        decoder(tag)(words[:-1])
    with pytest.raises(CodecError):
        decoder(tag)([70000, 0, 0, 0])
