"""A waveform tag's array is not a twin value: the twin lists the feature tags the agent derives from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.profiles import Profile, load_profile
from edge_agent.twin import TwinSettings, spec_for

PROFILE = Path(__file__).resolve().parents[2] / "device_profiles" / "vibration_waveform.toml"


@dataclass
class Location:
    site: str = "plant"
    area: str = "motors"
    line: str = "m1"


@dataclass
class Device:
    name: str
    profile: Profile
    location: Location


def test_waveform_tag_is_listed_as_its_features() -> None:
    profile = load_profile(PROFILE)
    spec = spec_for(Device("vib-w1", profile, Location()), TwinSettings(deadbands={"vib-w1.vib.rms": 0.05}))
    assert "vib" not in spec.tags
    assert list(spec.tags) == profile.sample_tags()
    assert {"vib.rms", "vib.kurtosis", "vib.bpfo_energy", "shaft_speed"} <= set(spec.tags)
    rms = spec.tags["vib.rms"]
    assert (rms.deadband, rms.relative, rms.type, rms.unit) == (0.05, False, "float64", "g")
    kurtosis = spec.tags["vib.kurtosis"]
    assert kurtosis.relative and kurtosis.description == "kurtosis of vib" and kurtosis.unit == ""
