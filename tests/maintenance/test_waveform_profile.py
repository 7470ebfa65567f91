"""Waveform tags in device profiles: validated once, with the file, line and key of each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import ConfigError
from edge_agent.profiles import MqttProfile, OpcuaProfile, load_profile, shipped_profiles_dir

MQTT = """protocol = "mqtt"
[profile]
name = "w"
[mqtt]
topic = "s/{{device}}/w"

[[tags]]
name = "speed"
field = "rpm"

[[tags]]
name = "vib"
field = "accel"
{tag}
[tags.waveform]
{waveform}
{rest}
"""

OPCUA = """protocol = "opcua"
[profile]
name = "w"

[[tags]]
name = "vib"
node_id = "ns=2;s={{device}}.Acceleration"
[tags.waveform]
{waveform}
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "w.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return [p.replace(str(path), "w.toml") for p in info.value.problems]


def mqtt(waveform: str, rest: str = "", tag: str = "") -> str:
    return MQTT.format(waveform=waveform, rest=rest, tag=tag)


def test_the_shipped_waveform_profile_loads() -> None:
    profile = load_profile(shipped_profiles_dir() / "vibration_waveform.toml")
    assert isinstance(profile, MqttProfile)
    tag = next(t for t in profile.tags if t.name == "vib")
    assert tag.waveform is not None and tag.waveform.bearing is not None
    assert tag.waveform.bearing.shaft_tag == "shaft_speed"
    emitted = profile.sample_tags()
    assert "vib" not in emitted
    assert {"shaft_speed", "vib.rms", "vib.kurtosis", "vib.bpfo_energy", "vib.band_7_energy"} <= set(emitted)
    assert profile.maintenance is not None
    assert set(profile.maintenance.anomaly_tags) <= set(emitted)


def test_a_good_profile_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(mqtt('sample_rate_hz = 4096.0\n[tags.waveform.bearing]\nballs = 9\nball_diameter = 7.94\n'
                         'pitch_diameter = 39.04\nshaft_tag = "speed"\nshaft_unit = "rpm"',
                         '[maintenance]\nanomaly_tags = ["vib.bpfo_energy"]\n[[alarms]]\ntag = "vib.rms"\nhi = 1.0'))
    profile = load_profile(path)
    assert isinstance(profile, MqttProfile)
    waveform = profile.tags[1].waveform
    assert waveform is not None
    assert waveform.max_points == 65_536 and waveform.bands == 8
    # default features: stats, bands, and the bearing's because there is a bearing
    assert waveform.resolved_features[:6] == ("rms", "peak", "peak_to_peak", "crest_factor", "kurtosis", "skewness")
    assert waveform.resolved_features[-4:] == ("ftf_energy", "bpfo_energy", "bpfi_energy", "bsf_energy")
    assert len(waveform.resolved_features) == 6 + 8 + 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (mqtt(""), "w.toml:15: tags[1].waveform: give exactly one of 'sample_rate_hz' or 'sample_rate_field'"),
        (mqtt("sample_rate_hz = 0"), "w.toml:16: tags[1].waveform.sample_rate_hz: must be > 0.0, got 0"),
        (mqtt("sample_rate_hz = 4096.0\nfeatures = ['rms', 'kurtosiss']"),
         "w.toml:15: tags[1].waveform: features: unknown feature 'kurtosiss' (did you mean 'kurtosis'?)"),
        (mqtt("sample_rate_hz = 4096.0\nfeatures = ['bpfo_energy']"),
         "w.toml:15: tags[1].waveform: features: 'bpfo_energy' needs the bearing geometry"),
        (mqtt("sample_rate_hz = 4096.0\nband_edges_hz = [0.0, 500.0, 3000.0]"),
         "w.toml:15: tags[1].waveform: band_edges_hz: the last edge (3000 Hz) is above half the sample rate"),
        (mqtt("sample_rate_hz = 4096.0\nbands = 4\nband_edges_hz = [0.0, 500.0]"),
         "w.toml:15: tags[1].waveform: give 'bands' or 'band_edges_hz', not both"),
        (mqtt("sample_rate_hz = 4096.0\nmax_points = 8"), "w.toml:17: tags[1].waveform.max_points: must be >= 16"),
        (mqtt("sample_rate_hz = 4096.0\nsample_rate = 4096"),
         "w.toml:17: tags[1].waveform.sample_rate: unknown key (did you mean 'sample_rate_hz'?)"),
        (mqtt("sample_rate_hz = 4096.0", tag='type = "string"'),
         "w.toml:11: tags[1]: a waveform is an array of numbers: type must be numeric, got 'string'"),
        (mqtt("sample_rate_hz = 4096.0\n[tags.waveform.bearing]\nballs = 9\nball_diameter = 40.0\n"
              "pitch_diameter = 39.04\nshaft_speed = 30.0"),
         "w.toml:17: tags[1].waveform.bearing: ball_diameter (40) must be smaller than pitch_diameter (39.04)"),
        (mqtt("sample_rate_hz = 4096.0\n[tags.waveform.bearing]\nballs = 9\nball_diameter = 7.94\n"
              "pitch_diameter = 39.04"),
         "w.toml:17: tags[1].waveform.bearing: give exactly one of 'shaft_speed' or 'shaft_tag'"),
        (mqtt("sample_rate_hz = 4096.0\n[tags.waveform.bearing]\nballs = 9\nball_diameter = 7.94\n"
              "pitch_diameter = 39.04\nshaft_tag = 'vib'"),
         "tags[1].waveform.bearing.shaft_tag: 'vib' is a waveform tag: name a scalar tag"),
        (mqtt("sample_rate_hz = 4096.0\n[tags.waveform.bearing]\nballs = 9\nball_diameter = 7.94\n"
              "pitch_diameter = 39.04\nshaft_tag = 'sped'"),
         "tags[1].waveform.bearing.shaft_tag: 'sped' is not a tag of this profile"),
        (mqtt("sample_rate_hz = 4096.0", "[maintenance]\nanomaly_tags = ['vib']"),
         "maintenance.anomaly_tags[0] names waveform tag 'vib': name one of its features, e.g. 'vib.rms'"),
        (mqtt("sample_rate_hz = 4096.0", "[maintenance]\nanomaly_tags = ['vib.kurtsis']"),
         "maintenance.anomaly_tags[0] names unknown tag 'vib.kurtsis' (did you mean 'vib.kurtosis'?)"),
        (mqtt("sample_rate_hz = 4096.0\nfeatures = ['rms']", "[[alarms]]\ntag = 'vib.peak'\nhi = 1.0"),
         "alarms[0].tag names unknown tag 'vib.peak'"),
        (mqtt("sample_rate_hz = 4096.0", "[[tags]]\nname = 'vib.rms'\nfield = 'x'"),
         "tag names clash with waveform feature names: vib.rms"),
        (OPCUA.format(waveform="max_points = 4096"),
         "w.toml:5: tags[0]: waveform: an OPC UA array needs 'sample_rate_hz'"),
        (OPCUA.format(waveform="sample_rate_hz = 8192.0\nsample_rate_field = 'fs'"),
         "w.toml:10: tags[0].waveform.sample_rate_field: unknown key"),
    ],
)
def test_mistakes_are_reported_with_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    assert expected in found[0], found[0]


def test_an_opcua_waveform_tag(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(OPCUA.format(waveform="sample_rate_hz = 8192.0\nfeatures = ['rms', 'kurtosis']"))
    profile = load_profile(path)
    assert isinstance(profile, OpcuaProfile)
    assert profile.sample_tags() == ["vib.rms", "vib.kurtosis"]
