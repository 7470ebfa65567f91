"""MQTT array payloads of waveform tags: decoded into feature samples, bad arrays rejected (no broker)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest

from edge_agent.connectors.mqtt.payload import PayloadError, TopicMap
from edge_agent.model import Quality
from edge_agent.profiles import MqttProfile, load_profile, shipped_profiles_dir
from simulators.bearing import VibrationSensor

RATE = 4096.0
BEARING = {"balls": 9, "ball_diameter": 7.94, "pitch_diameter": 39.04, "shaft_tag": "rpm", "shaft_unit": "rpm"}


def profile(tags: list[dict[str, Any]], topic: str = "s/{device}/w", **mqtt: Any) -> MqttProfile:
    return MqttProfile.model_validate(
        {"protocol": "mqtt", "profile": {"name": "p"}, "mqtt": {"topic": topic} | mqtt, "tags": tags}
    )


def sine(amplitude: float = 1.0, hz: float = 64.0, n: int = 1024) -> list[float]:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(n) / RATE)).tolist()


def test_an_array_payload_becomes_feature_samples_with_the_message_time() -> None:
    tags = [{"name": "temp", "field": "t"},
            {"name": "vib", "field": "w.x", "waveform": {"sample_rate_hz": RATE, "features": ["rms", "kurtosis"]}}]
    topics = TopicMap(profile(tags, timestamp_field="ts"), "d")
    doc = {"ts": 1_700_000_000.5, "t": 41.5, "w": {"x": sine(2.0)}}
    samples = topics.decode("d", "s/d/w", orjson.dumps(doc), 5.0)
    assert [(s.tag, s.ts, s.quality) for s in samples] == [
        ("temp", 1_700_000_000.5, Quality.GOOD), ("vib.rms", 1_700_000_000.5, Quality.GOOD),
        ("vib.kurtosis", 1_700_000_000.5, Quality.GOOD)]
    assert samples[1].value == pytest.approx(2.0 / math.sqrt(2), rel=1e-6)
    assert samples[2].value == pytest.approx(1.5, rel=1e-3)


def test_a_plain_json_array_and_a_sample_rate_from_the_payload() -> None:
    plain = TopicMap(profile([{"name": "vib", "waveform": {"sample_rate_hz": RATE, "features": ["rms"]}}]), "d")
    assert [s.tag for s in plain.decode("d", "s/d/w", orjson.dumps(sine()), 0.0)] == ["vib.rms"]
    tags = [{"name": "vib", "field": "x", "waveform": {"sample_rate_field": "meta.fs", "features": ["peaks"],
                                                       "peaks": 1}}]
    topics = TopicMap(profile(tags), "d")
    for rate in (4096.0, 8192):
        window = (np.sin(2 * np.pi * 100.0 * np.arange(2048) / rate)).tolist()
        values = {s.tag: s.value for s in topics.decode("d", "s/d/w", orjson.dumps({"x": window, "meta": {"fs": rate}}),
                                                        0.0)}
        assert values["vib.peak_0_hz"] == pytest.approx(100.0, abs=2.5)
    for bad, error in (({"x": sine()}, "no sample rate at 'meta.fs'"),
                       ({"x": sine(), "meta": {"fs": 0}}, "sample rate 0 is not a positive number"),
                       ({"x": sine(), "meta": {"fs": "fast"}}, "sample rate 'fast'")):
        with pytest.raises(PayloadError, match=error):
            topics.decode("d", "s/d/w", orjson.dumps(bad), 0.0)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"x": []}, "vib: 0 points: a window needs at least 16"),
        ({"x": ["a"] * 20}, "vib: expected an array of numbers, got other values"),
        ({"x": [1.0] * 5000}, r"vib: 5000 points is over max_points \(4096\)"),
        ({"x": 3.0}, "vib: expected an array of numbers, got 3.0"),
        ({"y": [1.0] * 100}, r"none of the profile's fields present \(missing x\)"),
    ],
)
def test_bad_arrays_are_malformed_payloads(payload: dict[str, Any], error: str) -> None:
    topics = TopicMap(profile([{"name": "vib", "field": "x", "waveform": {"sample_rate_hz": RATE,
                                                                           "max_points": 4096}}]), "d")
    with pytest.raises(PayloadError, match=error):
        topics.decode("d", "s/d/w", orjson.dumps(payload), 0.0)


def test_non_json_is_malformed_for_a_waveform_topic() -> None:
    topics = TopicMap(profile([{"name": "vib", "waveform": {"sample_rate_hz": RATE}}]), "d")
    with pytest.raises(PayloadError, match="invalid JSON"):
        topics.decode("d", "s/d/w", b"1.0 2.0 3.0", 0.0)


def test_the_shaft_speed_comes_from_another_tag_per_device() -> None:
    tags = [{"name": "rpm", "topic": "s/+/speed"},
            {"name": "vib", "field": "x", "topic": "s/+/w",
             "waveform": {"sample_rate_hz": RATE, "features": ["rms", "bpfo_energy"], "bearing": BEARING}}]
    topics = TopicMap(profile(tags, device_from_topic=1), "entry")
    window = orjson.dumps({"x": sine(n=2048)})
    assert [s.tag for s in topics.decode("entry", "s/m1/w", window, 0.0)] == ["vib.rms"]  # no speed yet
    assert [s.value for s in topics.decode("entry", "s/m1/speed", b"1800", 0.0)] == [1800.0]
    assert [s.tag for s in topics.decode("entry", "s/m1/w", window, 0.0)] == ["vib.rms", "vib.bpfo_energy"]
    assert [s.tag for s in topics.decode("entry", "s/m2/w", window, 0.0)] == ["vib.rms"]  # m2's speed unknown
    assert topics.shaft_speeds.latest == {("m1", "rpm"): 1800.0}


def test_the_shipped_profile_decodes_the_simulated_sensor() -> None:
    prof = load_profile(shipped_profiles_dir() / "vibration_waveform.toml")
    assert isinstance(prof, MqttProfile)
    topics = TopicMap(prof, "vib-w1")
    sensor = VibrationSensor("vib-w1", seed=1, failure_after_s=1000.0)
    sensor.t = 800.0
    message = sensor.waveform(1_700_000_000.0)
    assert len(message["accel"]) == 4096
    samples = topics.decode("vib-w1", "plant/sensors/vib-w1/waveform", orjson.dumps(message), 0.0)
    values = {s.tag: s.value for s in samples}
    assert set(values) == {"shaft_speed", *prof.sample_tags()} - {"vib"}
    assert values["shaft_speed"] == message["shaft_rpm"]
    assert values["vib.bpfo_energy"] > 5 * values["vib.bpfi_energy"]
    assert {s.ts for s in samples} == {1_700_000_000.0}


def test_a_profile_without_waveforms_keeps_the_scalar_decoder() -> None:
    topics = TopicMap(profile([{"name": "t", "field": "t"}]), "d")
    assert topics.decode == topics._decode_scalars
    assert not topics.shaft_tags
    waves = TopicMap(profile([{"name": "vib", "waveform": {"sample_rate_hz": RATE}}]), "d")
    assert waves.decode == waves._decode_with_waveforms
