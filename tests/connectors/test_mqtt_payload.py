"""MQTT payload decoding and topic mapping (no broker)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.mqtt.payload import PayloadError, TopicMap, coerce_text
from edge_agent.model import Quality
from edge_agent.profiles import MqttProfile, MqttTag


def profile(topic: str, tags: list[dict[str, Any]], **mqtt: Any) -> MqttProfile:
    return MqttProfile.model_validate(
        {"protocol": "mqtt", "profile": {"name": "p"}, "mqtt": {"topic": topic} | mqtt, "tags": tags}
    )


def test_device_from_a_topic_segment() -> None:
    topics = TopicMap(profile("plant/sensors/+/telemetry", [{"name": "t", "field": "t"}], device_from_topic=2), "x")
    samples = topics.decode("entry", "plant/sensors/vib-3/telemetry", b'{"t": 1}', 5.0)
    assert [(s.device, s.tag, s.value, s.ts) for s in samples] == [("vib-3", "t", 1.0, 5.0)]
    assert topics.decode("entry", "plant/other/vib-3/telemetry", b"{}", 5.0) == []


def test_wildcard_matches_are_kept_per_topic_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_agent.connectors.mqtt.payload as payload

    monkeypatch.setattr(payload, "MATCHED_TOPICS_MAX", 2)
    topics = TopicMap(profile("plant/+/telemetry", [{"name": "t", "field": "t"}]), "x")
    for name in ("a", "b", "c", "a", "c"):
        assert [t.name for t in topics.tags_for(f"plant/{name}/telemetry")] == ["t"]
    assert topics.tags_for("other/a/telemetry") == []
    assert set(topics._matched) == {"plant/a/telemetry", "plant/b/telemetry"}  # bounded: c is matched each time


@pytest.mark.parametrize(
    ("topic", "index", "error"),
    [("plant/sensors/x/telemetry", 2, "got 'x'"), ("plant/+", 3, "got 'nothing'"), ("plant/#", 1, "got '#'")],
)
def test_device_segment_must_be_a_single_level_wildcard(topic: str, index: int, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        profile(topic, [{"name": "t"}], device_from_topic=index)


def test_plain_payloads() -> None:
    tags = [{"name": "level", "type": "uint16"}]
    topics = TopicMap(profile("tank/{device}/level", tags), "t1")
    assert [s.value for s in topics.decode("t1", "tank/t1/level", b"42", 0.0)] == [42]
    assert [s.value for s in topics.decode("t1", "tank/t1/level", b" 42.0 \n", 0.0)] == [42]
    for bad in (b"", b"high", b"\xff\xfe", b"nan", b"[1, 2]", b'{"a": 1}', b'"7"'):
        with pytest.raises(PayloadError):
            topics.decode("t1", "tank/t1/level", bad, 0.0)
    assert coerce_text(MqttTag(name="b", type="bool"), "ON") is True
    assert coerce_text(MqttTag(name="s", type="string"), "idle") == "idle"
    assert coerce_text(MqttTag(name="f", scale=2.0), "1.5") == 3.0
    with pytest.raises(PayloadError):
        coerce_text(MqttTag(name="b", type="bool"), "maybe")


def test_json_fields_types_and_timestamps() -> None:
    tags = [{"name": "rms", "field": "v.rms"}, {"name": "axis", "field": "axes.1", "type": "int32"},
            {"name": "ok", "field": "ok", "type": "bool"}]
    topics = TopicMap(profile("s/{device}", tags, timestamp_field="ts"), "d")
    doc = {"ts": "2026-01-01T00:00:00+00:00", "v": {"rms": 1.25}, "axes": [1, 2], "ok": None}
    samples = topics.decode("d", "s/d", orjson.dumps(doc), 0.0)
    assert [(s.tag, s.value, s.quality) for s in samples] == [
        ("rms", 1.25, Quality.GOOD), ("axis", 2, Quality.GOOD), ("ok", 0.0, Quality.BAD)
    ]
    assert samples[0].ts == 1767225600.0
    assert topics.decode("d", "s/d", orjson.dumps({"ts": 1767225600123, "ok": 1}), 0.0)[0].ts == 1767225600.123
    for bad in ({"v": {"rms": "high"}}, {"v": {"rms": {"x": 1}}}, {"ok": "yes"}, {"ts": "noon", "ok": True},
                {"ts": "2026-01-01T00:00:00", "ok": True}, {"unrelated": 1}):
        with pytest.raises(PayloadError):
            topics.decode("d", "s/d", orjson.dumps(bad), 0.0)


def test_broker_settings_checks() -> None:
    assert MqttConnection(broker="mqtts://b:8883", ca_file="ca.pem", client_cert="c.pem", client_key="c.key").tls
    for kwargs, error in [
        ({"ca_file": "ca.pem"}, "needs a TLS broker URL"),
        ({"tls_insecure": True}, "needs a TLS broker URL"),
        ({"broker": "mqtts://b", "client_cert": "c.pem"}, "go together"),
        ({"password": "x"}, "needs username"),
        ({"protocol": "5.0"}, "protocol"),
    ]:
        with pytest.raises(ValidationError, match=error):
            MqttConnection(**kwargs)


@pytest.mark.parametrize("type_", ["float32", "float64", "int16", "uint32", "int64"])
@pytest.mark.parametrize(
    "raw", [0, 7, -3, 2.5, -0.0, 1e300, True, False, 10**20, 10**400, float("nan"), float("inf"), "x", None, [1]]
)
def test_fast_coercer_gives_what_coerce_gives(type_: str, raw: Any) -> None:
    from edge_agent.connectors.mqtt.payload import coerce, coercer

    tag = MqttTag(name="t", type=type_, field="t")

    def outcome(fn: Any) -> Any:
        try:
            value = fn(raw)
        except (PayloadError, OverflowError, ValueError) as exc:
            return type(exc)
        return (type(value), value)

    assert outcome(coercer(tag)) == outcome(lambda r: coerce(tag, r))


def test_nulls_missing_fields_and_plain_messages_of_every_type() -> None:
    """The decoder's quick path (every field present and plain) and its field-by-field path agree."""
    tags = [{"name": "text", "type": "string", "field": "a"}, {"name": "scaled", "field": "b", "scale": 2.0},
            {"name": "flag", "type": "bool", "field": "c"}, {"name": "n", "type": "int32", "field": "d"}]
    topics = TopicMap(profile("s/{device}", tags), "d")

    def decoded(doc: dict[str, Any]) -> list[tuple[str, Any, Quality]]:
        return [(s.tag, s.value, s.quality) for s in topics.decode("d", "s/d", orjson.dumps(doc), 1.0)]

    good = Quality.GOOD
    assert decoded({"a": "x", "b": 1.5, "c": True, "d": 7}) == [
        ("text", "x", good), ("scaled", 3.0, good), ("flag", True, good), ("n", 7, good)]
    assert decoded({"a": None, "b": None, "c": None, "d": 7}) == [
        ("text", 0.0, Quality.BAD), ("scaled", 0.0, Quality.BAD), ("flag", 0.0, Quality.BAD), ("n", 7, good)]
    assert decoded({"a": None, "b": 1.0, "c": False, "d": 7})[0] == ("text", 0.0, Quality.BAD)  # only the null
    assert decoded({"a": {"k": 1}, "d": 7}) == [("text", '{"k":1}', good), ("n", 7, good)]
    with pytest.raises(PayloadError, match="expected a number"):
        decoded({"a": "x", "b": "high"})
