"""The Sparkplug B payload as protobuf message classes, built at import time.

Sparkplug B payloads are protobuf messages of the schema ``org.eclipse.tahu.protobuf.Payload``
(Sparkplug specification 3.0, chapter 6.4). Rather than ship ``protoc`` output, which
pins the protobuf runtime it was generated for, the schema is declared here as a
``FileDescriptorProto`` and turned into classes by the installed protobuf runtime
(4.25 or later). Field numbers and types are those of the specification, so any
Sparkplug B encoder's bytes decode here.

What a host needs is declared in full: the payload (timestamp, metrics, seq, uuid,
body) and each metric (name, alias, timestamp, datatype, is_historical,
is_transient, is_null and the value ``oneof``). The nested structures a host does
not turn into samples (metadata, property sets, data sets, templates, extensions)
are declared as ``bytes``: same wire type, so they are skipped intact.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"


class DataType(IntEnum):
    """Sparkplug B metric datatypes (specification 3.0, 6.4.16)."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21


_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# (name, number, type, label, oneof index or None, message type name or None)
_METRIC_FIELDS: list[tuple[str, int, int, int, int | None, str | None]] = [
    ("name", 1, _F.TYPE_STRING, _OPTIONAL, None, None),
    ("alias", 2, _F.TYPE_UINT64, _OPTIONAL, None, None),
    ("timestamp", 3, _F.TYPE_UINT64, _OPTIONAL, None, None),
    ("datatype", 4, _F.TYPE_UINT32, _OPTIONAL, None, None),
    ("is_historical", 5, _F.TYPE_BOOL, _OPTIONAL, None, None),
    ("is_transient", 6, _F.TYPE_BOOL, _OPTIONAL, None, None),
    ("is_null", 7, _F.TYPE_BOOL, _OPTIONAL, None, None),
    ("metadata", 8, _F.TYPE_BYTES, _OPTIONAL, None, None),
    ("properties", 9, _F.TYPE_BYTES, _OPTIONAL, None, None),
    ("int_value", 10, _F.TYPE_UINT32, _OPTIONAL, 0, None),
    ("long_value", 11, _F.TYPE_UINT64, _OPTIONAL, 0, None),
    ("float_value", 12, _F.TYPE_FLOAT, _OPTIONAL, 0, None),
    ("double_value", 13, _F.TYPE_DOUBLE, _OPTIONAL, 0, None),
    ("boolean_value", 14, _F.TYPE_BOOL, _OPTIONAL, 0, None),
    ("string_value", 15, _F.TYPE_STRING, _OPTIONAL, 0, None),
    ("bytes_value", 16, _F.TYPE_BYTES, _OPTIONAL, 0, None),
    ("dataset_value", 17, _F.TYPE_BYTES, _OPTIONAL, 0, None),
    ("template_value", 18, _F.TYPE_BYTES, _OPTIONAL, 0, None),
    ("extension_value", 19, _F.TYPE_BYTES, _OPTIONAL, 0, None),
]
_PAYLOAD_FIELDS: list[tuple[str, int, int, int, int | None, str | None]] = [
    ("timestamp", 1, _F.TYPE_UINT64, _OPTIONAL, None, None),
    ("metrics", 2, _F.TYPE_MESSAGE, _REPEATED, None, f".{PACKAGE}.Payload.Metric"),
    ("seq", 3, _F.TYPE_UINT64, _OPTIONAL, None, None),
    ("uuid", 4, _F.TYPE_STRING, _OPTIONAL, None, None),
    ("body", 5, _F.TYPE_BYTES, _OPTIONAL, None, None),
]


def _add_fields(message: descriptor_pb2.DescriptorProto, fields: list[Any]) -> None:
    for name, number, type_, label, oneof, type_name in fields:
        field = message.field.add(name=name, number=number, type=type_, label=label)
        if oneof is not None:
            field.oneof_index = oneof
        if type_name is not None:
            field.type_name = type_name


def _build() -> tuple[Any, Any]:
    proto = descriptor_pb2.FileDescriptorProto(name="edge_agent/sparkplug_b.proto", package=PACKAGE, syntax="proto2")
    payload = proto.message_type.add(name="Payload")
    _add_fields(payload, _PAYLOAD_FIELDS)
    payload.extension_range.add(start=6, end=536870912)
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    _add_fields(metric, _METRIC_FIELDS)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    payload_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))
    metric_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload.Metric"))
    return payload_cls, metric_cls


Payload, Metric = _build()
