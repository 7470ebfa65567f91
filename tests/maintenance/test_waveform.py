"""Waveform windows turned into feature samples (edge_agent.maintenance.waveform): analytic signals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from edge_agent.maintenance.bearing import BearingGeometry
from edge_agent.maintenance.waveform import (
    MIN_POINTS,
    ShaftSpeeds,
    WaveformError,
    WindowPlan,
    as_window,
    resolve_features,
    window_samples,
)
from edge_agent.model import Quality
from edge_agent.profiles import WaveformSettings
from simulators.bearing import BEARING, VibrationSensor

RATE = 8192.0
N = 4096
BALL = {"balls": 9, "ball_diameter": 7.94, "pitch_diameter": 39.04}


def plan(**settings: Any) -> WindowPlan:
    return WindowPlan.of("vib", WaveformSettings.model_validate({"sample_rate_hz": RATE} | settings))


def sine(amplitude: float, hz: float, n: int = N, rate: float = RATE) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(n) / rate)


def by_tag(samples: list[Any]) -> dict[str, float]:
    return {s.tag: s.value for s in samples}


def test_a_sine_gives_its_rms_peak_and_crest_factor_as_samples() -> None:
    samples = window_samples(plan(), "m-1", 1_700_000_000.0, sine(2.0, 100.0).tolist(), quality=Quality.UNCERTAIN)
    values = by_tag(samples)
    assert values["vib.rms"] == pytest.approx(2.0 / math.sqrt(2), rel=1e-6)
    assert values["vib.peak"] == pytest.approx(2.0, rel=1e-3)
    assert values["vib.crest_factor"] == pytest.approx(math.sqrt(2), rel=1e-3)
    assert values["vib.kurtosis"] == pytest.approx(1.5, rel=1e-3)
    # 8 equal bands up to 4096 Hz: the 100 Hz tone's energy A**2/2 is all in band 0
    assert values["vib.band_0_energy"] == pytest.approx(2.0, rel=1e-3)
    assert sum(values[f"vib.band_{i}_energy"] for i in range(1, 8)) < 1e-6
    assert {(s.device, s.ts, s.quality) for s in samples} == {("m-1", 1_700_000_000.0, Quality.UNCERTAIN)}
    assert [s.tag for s in samples] == [f"vib.{name}" for name in WaveformSettings(sample_rate_hz=RATE)
                                        .resolved_features]


def test_scale_and_offset_apply_to_the_raw_array() -> None:
    raw = sine(1000.0, 100.0)  # counts; 1 count = 0.001 g
    values = by_tag(window_samples(WindowPlan.of("vib", WaveformSettings(sample_rate_hz=RATE), scale=0.001),
                                   "m", 0.0, raw))
    assert values["vib.rms"] == pytest.approx(1.0 / math.sqrt(2), rel=1e-6)


def test_a_bpfo_tone_shows_in_the_bpfo_energy() -> None:
    shaft_hz = 29.95
    faults = BearingGeometry(9, 7.94, 39.04).fault_frequencies(shaft_hz)
    bearing = BALL | {"shaft_speed": shaft_hz, "harmonics": 1, "envelope": False}
    p = plan(bearing=bearing, features=["rms", "bearing"])
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 0.01, N)
    quiet = by_tag(window_samples(p, "m", 0.0, noise))
    faulty = by_tag(window_samples(p, "m", 0.0, noise + sine(0.5, faults.bpfo)))
    assert faulty["vib.bpfo_energy"] - quiet["vib.bpfo_energy"] == pytest.approx(0.5**2 / 2, rel=0.05)
    for other in ("ftf", "bpfi", "bsf"):
        assert faulty[f"vib.{other}_energy"] == pytest.approx(quiet[f"vib.{other}_energy"], abs=1e-4)
    assert sorted(faulty) == ["vib.bpfi_energy", "vib.bpfo_energy", "vib.bsf_energy", "vib.ftf_energy", "vib.rms"]


def test_an_outer_race_defect_shows_in_the_envelope_at_bpfo() -> None:
    """Impacts at BPFO ringing a 2.6 kHz resonance: the plain spectrum has nothing at BPFO, the envelope has."""
    sensor = VibrationSensor("vib-1", seed=3, failure_after_s=1000.0)
    sensor.t = 900.0
    window = sensor.waveform(0.0)
    rpm = window["shaft_rpm"]
    p = plan(bearing=BALL | {"shaft_speed": rpm, "shaft_unit": "rpm", "harmonics": 1}, features=["kurtosis", "bearing"])
    values = by_tag(window_samples(p, "m", 0.0, window["accel"], sample_rate_hz=window["sample_rate_hz"]))
    assert values["vib.bpfo_energy"] > 5 * max(values["vib.bpfi_energy"], values["vib.bsf_energy"])
    assert values["vib.kurtosis"] > 4  # impulsive
    assert BEARING == {**BALL, "contact_angle_deg": 0.0}  # the profile and the simulator use one bearing


def test_the_simulated_defect_grows_with_wear() -> None:
    sensor = VibrationSensor("vib-1", seed=3, failure_after_s=1000.0)
    p = plan(bearing=BALL | {"shaft_speed": 1797.0, "shaft_unit": "rpm"}, features=["bpfo_energy"])
    energies = []
    for t in (0.0, 500.0, 750.0, 950.0):
        sensor.t = t
        energies.append(window_samples(p, "m", 0.0, sensor.waveform(0.0)["accel"])[0].value)
    assert energies == sorted(energies)
    assert energies[-1] > 100 * energies[0]


def test_without_a_shaft_speed_the_bearing_features_are_left_out() -> None:
    p = plan(bearing=BALL | {"shaft_tag": "speed", "shaft_unit": "rpm"})
    assert p.shaft_hz is None and p.shaft_per_hz == 60.0
    names = {s.tag for s in window_samples(p, "m", 0.0, sine(1.0, 50.0))}
    assert "vib.rms" in names and "vib.bpfo_energy" not in names
    assert "vib.bpfo_energy" in {s.tag for s in window_samples(p, "m", 0.0, sine(1.0, 50.0), shaft_hz=29.95)}
    assert "vib.bpfo_energy" not in {s.tag for s in window_samples(p, "m", 0.0, sine(1.0, 50.0), shaft_hz=0.0)}


def test_shaft_speeds_are_kept_per_device_bounded_and_converted() -> None:
    p = plan(bearing=BALL | {"shaft_tag": "speed", "shaft_unit": "rpm"})
    speeds = ShaftSpeeds(max_entries=2)
    assert speeds.hz(p, "a") is None
    speeds.update("a", "speed", 1800)
    speeds.update("a", "speed", "fast")  # not a number: ignored
    speeds.update("a", "speed", True)
    assert speeds.hz(p, "a") == 30.0
    speeds.update("b", "speed", 600.0)
    speeds.update("c", "speed", 60.0)
    assert speeds.hz(p, "a") is None and speeds.forgotten == 1
    assert speeds.hz(p, "b") == 10.0 and speeds.hz(p, "c") == 1.0


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ([], "at least 16"),
        ([1.0] * (MIN_POINTS - 1), "at least 16"),
        ([1.0] * 101, "over max_points (100)"),
        ([*range(30), "x"], "other values"),
        ([1.0, None] * 10, "other values"),
        ([[1.0, 2.0]] * 10, "2 dimensions"),
        ([1.0, [2.0]] * 10, "not a flat array"),
        ([True] * 20, "booleans"),
        ({"a": 1}, "an object"),
        (None, "null"),
        (3.5, "3.5"),
        (np.full(20, np.inf), "not finite"),
    ],
)
def test_bad_arrays_are_rejected_with_a_reason(raw: Any, error: str) -> None:
    with pytest.raises(WaveformError, match=error.replace("(", r"\(").replace(")", r"\)")):
        as_window(raw, max_points=100)


def test_a_window_needs_a_positive_sample_rate() -> None:
    p = WindowPlan.of("vib", WaveformSettings.model_validate({"sample_rate_hz": RATE}))
    with pytest.raises(WaveformError, match="sample rate"):
        window_samples(p, "m", 0.0, sine(1.0, 10.0), sample_rate_hz=-1.0)


def test_features_resolve_groups_in_order_without_duplicates() -> None:
    assert resolve_features(["rms", "stats", "peaks"], bands=2, peaks=1, bearing=False) == (
        "rms", "peak", "peak_to_peak", "crest_factor", "kurtosis", "skewness", "peak_0_hz", "peak_0_amplitude")
    assert resolve_features(None, bands=2, peaks=1, bearing=True)[-4:] == (
        "ftf_energy", "bpfo_energy", "bpfi_energy", "bsf_energy")
    with pytest.raises(ValueError, match=r"'band_9_energy'.*did you mean"):
        resolve_features(["band_9_energy"], bands=8, peaks=3, bearing=False)


def test_peaks_and_explicit_band_edges() -> None:
    p = plan(features=["peaks", "bands"], peaks=2, band_edges_hz=[0.0, 150.0, 1000.0])
    values = by_tag(window_samples(p, "m", 0.0, sine(1.0, 100.0) + sine(0.5, 400.0)))
    assert values["vib.peak_0_hz"] == pytest.approx(100.0, abs=2.0)
    assert values["vib.peak_0_amplitude"] == pytest.approx(1.0, rel=0.02)
    assert values["vib.peak_1_hz"] == pytest.approx(400.0, abs=2.0)
    assert values["vib.band_0_energy"] == pytest.approx(0.5, rel=0.01)
    assert values["vib.band_1_energy"] == pytest.approx(0.125, rel=0.01)


def test_the_integration_tests_bearing_alarms_after_its_spall_and_before_danger() -> None:
    """The replay, without a broker, of tests/integration/test_waveform_anomaly.py's bearing (seed 3, a window
    every 3 s, warm-up 200) through the agent's anomaly monitor: its healthy windows raise no alarm, its spall
    does, long before the danger level."""
    from edge_agent.maintenance.monitor import AnomalyMonitor
    from edge_agent.profiles import MqttProfile, load_profile, shipped_profiles_dir
    from simulators.bearing import DANGER_RMS

    profile = load_profile(shipped_profiles_dir() / "vibration_waveform.toml")
    assert isinstance(profile, MqttProfile) and profile.maintenance is not None
    tag = next(t for t in profile.tags if t.waveform is not None)
    assert tag.waveform is not None
    p = WindowPlan.of(tag.name, tag.waveform)
    monitor = AnomalyMonitor("vibw", profile.maintenance.model_copy(update={"warmup": 200}))
    sensor = VibrationSensor("vibw", seed=3, failure_after_s=1800.0)
    danger_at = sensor.time_to_rms(DANGER_RMS)
    first = None
    while first is None and sensor.t < danger_at:
        sensor.step(3.0)  # as tests/integration/test_waveform_anomaly.py: each window ages the bearing first
        window = sensor.waveform(0.0, 2048)
        for sample in window_samples(p, "vibw", 0.0, window["accel"], sample_rate_hz=window["sample_rate_hz"],
                                     shaft_hz=window["shaft_rpm"] / 60):
            change = monitor.feed(sample)
            if change is not None and change.active:
                first = sensor.t
    assert first is not None
    assert sensor.defect_onset_s < first < danger_at - 600
