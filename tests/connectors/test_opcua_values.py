"""OPC UA DataValue -> sample conversion and address helpers (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from asyncua import ua

from edge_agent.connectors.opcua.nodes import expand, parse_browse_path
from edge_agent.connectors.opcua.values import UnusableValue, coerce, quality_of, timestamp_of, to_samples
from edge_agent.model import Quality
from edge_agent.profiles import OpcuaTag


def tag(type_: str = "float64", **kw: Any) -> OpcuaTag:
    return OpcuaTag(name="t", node_id="ns=2;s=x", type=type_, **kw)


def test_quality_from_status_severity() -> None:
    assert quality_of(None) is Quality.GOOD
    assert quality_of(ua.StatusCode(ua.StatusCodes.Good)) is Quality.GOOD
    assert quality_of(ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)) is Quality.UNCERTAIN
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadSensorFailure)) is Quality.BAD
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadCommunicationError)) is Quality.BAD


def test_timestamp_prefers_source_then_server_then_now() -> None:
    src = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    srv = datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)
    dv = ua.DataValue(ua.Variant(1.0), SourceTimestamp=src, ServerTimestamp=srv)
    assert timestamp_of(dv, 5.0) == src.timestamp()
    assert timestamp_of(ua.DataValue(ua.Variant(1.0), ServerTimestamp=srv), 5.0) == srv.timestamp()
    assert timestamp_of(ua.DataValue(ua.Variant(1.0)), 5.0) == 5.0
    naive = datetime(2024, 5, 1, 12, 0, 0)  # naive datetimes are UTC
    assert timestamp_of(ua.DataValue(ua.Variant(1.0), SourceTimestamp=naive), 5.0) == src.timestamp()
    null_time = datetime(1601, 1, 1, tzinfo=UTC)
    assert timestamp_of(ua.DataValue(ua.Variant(1.0), SourceTimestamp=null_time), 5.0) == 5.0


def test_coerce_to_the_declared_type() -> None:
    assert coerce(tag("float64"), 3) == 3.0 and isinstance(coerce(tag("float64"), 3), float)
    assert coerce(tag("int32"), 7) == 7
    assert coerce(tag("uint16"), 7.0) == 7 and isinstance(coerce(tag("uint16"), 7.0), int)
    assert coerce(tag("bool"), True) is True
    assert coerce(tag("bool"), 0) is False
    assert coerce(tag("string"), "abc") == "abc"
    assert coerce(tag("string"), ua.LocalizedText("hello")) == "hello"
    assert coerce(tag("string"), 42) == "42"
    assert coerce(tag("int32"), ua.ServerState.Shutdown) == 4  # enums become their number
    assert coerce(tag("int16", scale=0.1), 425) == pytest.approx(42.5)
    for bad_type, raw in [("float64", None), ("float64", "x"), ("int32", [1, 2]), ("float64", float("nan"))]:
        with pytest.raises(UnusableValue):
            coerce(tag(bad_type), raw)


def test_to_samples_keeps_bad_values_and_marks_missing_ones() -> None:
    ts = datetime(2024, 5, 1, tzinfo=UTC)
    tags = [tag("float64"), OpcuaTag(name="scaled", node_id="ns=2;s=x", scale=2.0)]
    bad = ua.DataValue(ua.Variant(1.5), StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure), SourceTimestamp=ts)
    samples, failed = to_samples("dev", tags, bad, 0.0)
    assert failed == 0
    assert [(s.tag, s.value, s.quality, s.ts) for s in samples] == [
        ("t", 1.5, Quality.BAD, ts.timestamp()),
        ("scaled", 3.0, Quality.BAD, ts.timestamp()),
    ]
    empty = ua.DataValue(ua.Variant(None), StatusCode=ua.StatusCode(ua.StatusCodes.BadNoCommunication))
    typed = [*tags, OpcuaTag(name="s", node_id="ns=2;s=x", type="string"),
             OpcuaTag(name="b", node_id="ns=2;s=x", type="bool"), OpcuaTag(name="i", node_id="ns=2;s=x", type="int32")]
    samples, failed = to_samples("dev", typed, empty, 9.0)
    assert failed == 0
    assert [(s.value, s.quality, s.ts) for s in samples] == [
        (0.0, Quality.BAD, 9.0), (0.0, Quality.BAD, 9.0), ("", Quality.BAD, 9.0),
        (False, Quality.BAD, 9.0), (0, Quality.BAD, 9.0),
    ]
    assert isinstance(samples[-1].value, int)
    # a good status without a value is unusable
    assert to_samples("dev", tags, ua.DataValue(ua.Variant(None)), 0.0) == ([], 2)


def test_addresses() -> None:
    assert expand("ns=2;s={device}.State", "pack-1") == "ns=2;s=pack-1.State"
    path = parse_browse_path("2:pack-1/2:SealJaw/2:Temperature")
    assert [(q.NamespaceIndex, q.Name) for q in path] == [(2, "pack-1"), (2, "SealJaw"), (2, "Temperature")]
    assert [(q.NamespaceIndex, q.Name) for q in parse_browse_path("/Server/")] == [(0, "Server")]
    with pytest.raises(ValueError):
        parse_browse_path("/")
