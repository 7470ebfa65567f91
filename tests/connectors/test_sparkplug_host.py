"""The Sparkplug B host state machine and value decoding, with payloads built here (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge_agent.connectors.sparkplug.host import MessageError, SparkplugHost, rebirth_payload
from edge_agent.connectors.sparkplug.schema import DataType, Payload
from edge_agent.model import Quality
from edge_agent.profiles import SparkplugProfile, SparkplugTag

G = "spBv1.0/plant"


def payload(seq: int | None, *metrics: dict[str, Any], timestamp: int | None = None) -> bytes:
    message = Payload()
    if seq is not None:
        message.seq = seq
    if timestamp is not None:
        message.timestamp = timestamp
    for spec in metrics:
        metric = message.metrics.add()
        for key, value in spec.items():
            setattr(metric, key, value)
    data: bytes = message.SerializeToString()
    return data


def birth(host: SparkplugHost, bdseq: int = 0) -> None:
    host.handle(f"{G}/NBIRTH/n1", payload(
        0,
        {"name": "bdSeq", "datatype": DataType.UInt64, "long_value": bdseq},
        {"name": "Temp", "alias": 1, "datatype": DataType.Double, "double_value": 20.0},
        {"name": "Small", "alias": 2, "datatype": DataType.Int8, "int_value": 0xFF},
    ), 1.0)


def test_birth_values_and_two_complement() -> None:
    host = SparkplugHost("plant", [])
    out = host.handle(f"{G}/NBIRTH/n1", payload(
        0,
        {"name": "bdSeq", "datatype": DataType.UInt64, "long_value": 0},
        {"name": "i8", "datatype": DataType.Int8, "int_value": 0xFF},  # one encoder's -1
        {"name": "i8b", "datatype": DataType.Int8, "int_value": 0xFFFFFFFF},  # another's -1
        {"name": "i16", "datatype": DataType.Int16, "int_value": 0xFFFE},
        {"name": "i64", "datatype": DataType.Int64, "long_value": 2**64 - 3},
        {"name": "u32", "datatype": DataType.UInt32, "int_value": 4_000_000_000},
        {"name": "f", "datatype": DataType.Float, "float_value": 0.5},
        {"name": "dt", "datatype": DataType.DateTime, "long_value": 1_800_000_000_000},
        {"name": "txt", "datatype": DataType.Text, "string_value": "hi"},
        {"name": "b", "datatype": DataType.Boolean, "boolean_value": True},
        {"name": "blob", "datatype": DataType.Bytes, "bytes_value": b"\x00"},
        {"name": "none", "datatype": DataType.Double, "is_null": True},
        timestamp=1_700_000_000_000,
    ), 5.0)
    values = {s.tag: s.value for s in out.samples}
    assert values == {"i8": -1, "i8b": -1, "i16": -2, "i64": -3, "u32": 4_000_000_000, "f": 0.5,
                      "dt": 1_800_000_000_000, "txt": "hi", "b": True, "none": 0.0}
    assert {s.tag: s.quality for s in out.samples}["none"] is Quality.BAD
    assert all(s.ts == 1_700_000_000.0 and s.device == "n1" for s in out.samples)
    assert out.problems == ["n1: metric 'blob' (Bytes): Bytes metrics are not sampled"]
    assert [e.kind for e in out.events] == ["sparkplug_birth"] and out.rebirth is None


def test_aliases_seq_wrap_and_gaps() -> None:
    host = SparkplugHost("plant", [], rebirth_interval_s=10)
    birth(host)
    host.nodes["n1"].seq = 254
    out = host.handle(f"{G}/NDATA/n1", payload(255, {"alias": 1, "double_value": 21.0}), 2.0)
    assert [(s.tag, s.value) for s in out.samples] == [("Temp", 21.0)] and not out.events
    out = host.handle(f"{G}/NDATA/n1", payload(0, {"alias": 2, "int_value": 0xFE}), 3.0)  # 255 -> 0 wraps
    assert [(s.tag, s.value) for s in out.samples] == [("Small", -2)] and out.rebirth is None
    out = host.handle(f"{G}/NDATA/n1", payload(5, {"alias": 1, "double_value": 22.0}), 4.0)
    assert out.rebirth == "n1" and out.samples[0].value == 22.0
    assert [e.kind for e in out.events] == ["sparkplug_seq_gap", "sparkplug_rebirth_requested"]
    out = host.handle(f"{G}/NDATA/n1", payload(9, {"alias": 99, "double_value": 1.0}), 5.0)
    assert out.rebirth is None  # rate limited
    assert out.problems == ["n1: metric with unknown alias 99 and no name"]
    out = host.handle(f"{G}/NDATA/n1", payload(1), 20.0)
    assert out.rebirth == "n1"  # the interval passed


def test_deaths_and_stale_wills() -> None:
    host = SparkplugHost("plant", [])
    birth(host, bdseq=4)
    host.handle(f"{G}/DBIRTH/n1/d1", payload(1, {"name": "P", "alias": 5, "datatype": DataType.Float,
                                                   "float_value": 1.0}), 1.0)
    out = host.handle(f"{G}/NDEATH/n1", payload(None, {"name": "bdSeq", "long_value": 3}), 2.0)
    assert not out.samples and not out.events  # the will of an older session
    out = host.handle(f"{G}/NDEATH/n1", payload(None, {"name": "bdSeq", "long_value": 4}, timestamp=9000), 2.0)
    assert {(s.device, s.tag, s.value, s.quality, s.ts) for s in out.samples} == {
        ("n1/d1", "P", 0.0, Quality.BAD, 9.0), ("n1", "Temp", 0.0, Quality.BAD, 9.0),
        ("n1", "Small", 0, Quality.BAD, 9.0),
    }
    assert [(e.kind, e.device) for e in out.events] == [("sparkplug_death", "n1/d1"), ("sparkplug_death", "n1")]
    out = host.handle(f"{G}/NDEATH/n1", payload(None, {"name": "bdSeq", "long_value": 4}), 3.0)
    assert not out.events  # already offline
    out = host.handle(f"{G}/DDATA/n1/d1", payload(2, {"alias": 5, "float_value": 2.0}), 4.0)
    assert out.rebirth == "n1"  # data from a dead node


def test_profile_tags_map_and_filter_metrics() -> None:
    tags = [SparkplugTag(name="temp_c", metric="Temp", scale=0.5), SparkplugTag(name="small", metric="Small",
                                                                                 type="string")]
    host = SparkplugHost("plant", tags, all_metrics=False)
    birth(host)
    out = host.handle(f"{G}/NDATA/n1", payload(1, {"alias": 1, "double_value": 30.0}, {"name": "Other",
                      "datatype": DataType.Int32, "int_value": 1}, {"alias": 2, "int_value": 3}), 2.0)
    assert [(s.tag, s.value) for s in out.samples] == [("temp_c", 15.0), ("small", "3")]


def test_ignored_and_malformed_messages() -> None:
    host = SparkplugHost("plant", [])
    assert host.handle(f"{G}/NCMD/n1", rebirth_payload(1.0), 1.0).samples == []
    assert host.handle("spBv1.0/other/NDATA/n1", b"\xff", 1.0).samples == []  # another group
    for topic, data in [("spBv1.0/STATE/host", b"{}"), ("plant/x", b""), (f"{G}/NDATA/n1", b"\xff\xff\xff"),
                        (f"{G}/DDATA/n1", b""), (f"{G}/NDATA/n1/d1", b""), (f"{G}/XDATA/n1", b"")]:
        with pytest.raises(MessageError):
            host.handle(topic, data, 1.0)


def test_rebirth_command_decodes() -> None:
    message = Payload()
    message.ParseFromString(rebirth_payload(1.5))
    assert message.timestamp == 1500
    assert [(m.name, m.datatype, m.boolean_value) for m in message.metrics] == [
        ("Node Control/Rebirth", DataType.Boolean, True)
    ]


def test_profile_validation() -> None:
    base = {"protocol": "sparkplug", "profile": {"name": "x"}}
    assert SparkplugProfile.model_validate(base).sparkplug.all_metrics
    with pytest.raises(ValidationError, match="at least one tag"):
        SparkplugProfile.model_validate(base | {"sparkplug": {"all_metrics": False}})
    with pytest.raises(ValidationError, match="mapped twice"):
        SparkplugProfile.model_validate(base | {"tags": [{"name": "a", "metric": "M"}, {"name": "b", "metric": "M"}]})
