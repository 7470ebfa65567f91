"""Sparkplug B metric values as sample values.

Integers travel unsigned on the wire (``int_value`` is a uint32, ``long_value`` a
uint64); a signed datatype is read back as two's complement of the width its
encoder used (encoders differ for Int8/Int16: some send -1 as 0xFF, some as
0xFFFFFFFF; both decode to -1). Encoders also differ in which field carries a
UInt32 (``int_value`` or ``long_value``): whichever is set is used.

DateTime becomes epoch milliseconds (an integer); Text and UUID become strings.
Bytes, File, DataSet, Template, property sets and arrays are not sample values:
:func:`metric_value` raises :class:`Unsupported` for them.
"""

from __future__ import annotations

import math
from typing import Any

from edge_agent.connectors.sparkplug.schema import DataType
from edge_agent.model import Value

SIGNED_BITS: dict[int, int] = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
NUMERIC_FIELDS = ("int_value", "long_value")
SUPPORTED = {
    DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64,
    DataType.UInt8, DataType.UInt16, DataType.UInt32, DataType.UInt64,
    DataType.Float, DataType.Double, DataType.Boolean, DataType.String,
    DataType.DateTime, DataType.Text, DataType.UUID,
}


class Unsupported(ValueError):
    """A metric whose datatype or value does not make a sample."""


def datatype_name(datatype: int) -> str:
    try:
        return DataType(datatype).name
    except ValueError:
        return f"datatype {datatype}"


def _signed(raw: int, datatype: int) -> int:
    """Two's complement of the narrowest wire width (the type's own, 32 or 64 bits) that holds ``raw``."""
    bits = SIGNED_BITS.get(datatype)
    if bits is None:
        return raw
    for width in sorted({bits, 32, 64}):
        if raw < 1 << width:
            return raw - (1 << width) if raw >= 1 << (width - 1) else raw
    return raw


def metric_value(metric: Any, datatype: int) -> Value:
    """The value of a metric (not null) whose datatype is known from it or from its birth."""
    if datatype not in SUPPORTED:
        raise Unsupported(f"{datatype_name(datatype)} metrics are not sampled")
    field = metric.WhichOneof("value")
    if field is None:
        raise Unsupported("the metric carries no value")
    raw = getattr(metric, field)
    if field in NUMERIC_FIELDS:
        if datatype == DataType.Boolean:
            return bool(raw)
        if datatype in (DataType.Float, DataType.Double, DataType.String, DataType.Text, DataType.UUID):
            raise Unsupported(f"a {datatype_name(datatype)} metric carries {field}")
        return _signed(int(raw), datatype)
    if field in ("float_value", "double_value"):
        if datatype not in (DataType.Float, DataType.Double):
            raise Unsupported(f"a {datatype_name(datatype)} metric carries {field}")
        value = float(raw)
        if not math.isfinite(value):
            raise Unsupported(f"{value} is not a finite number")
        return value
    if field == "boolean_value":
        return bool(raw)
    if field == "string_value":
        return str(raw)
    raise Unsupported(f"{field} is not sampled")


def placeholder(datatype: int) -> Value:
    """The value of a BAD sample that has none (a null metric, a death)."""
    if datatype == DataType.Boolean:
        return False
    if datatype in (DataType.String, DataType.Text, DataType.UUID):
        return ""
    if datatype in (DataType.Float, DataType.Double):
        return 0.0
    return 0
