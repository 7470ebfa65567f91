"""Waveform and trend features against signals whose values are known analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.maintenance.bearing import BearingGeometry
from edge_agent.maintenance.features import (
    band_energies,
    crest_factor,
    envelope,
    fault_band_energies,
    kurtosis,
    peak,
    peak_to_peak,
    rms,
    skewness,
    spectral_peaks,
    spectrum,
    trend_slope,
    waveform_features,
)

FS = 8192.0
N = 4096
T = np.arange(N) / FS
# A 6205-type deep-groove ball bearing (9 balls, 7.94 mm balls on a 39.04 mm pitch circle) at 1797 rpm.
BEARING = BearingGeometry(n_balls=9, ball_diameter=7.94, pitch_diameter=39.04, contact_angle_deg=0.0)
SHAFT_HZ = 1797 / 60


def sine(amplitude: float, hz: float, phase: float = 0.3) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * T + phase)


def test_sine_time_domain_statistics() -> None:
    x = sine(3.0, 100.0)  # 50 whole periods in the window
    assert rms(x) == pytest.approx(3.0 / math.sqrt(2), rel=1e-9)
    assert crest_factor(x) == pytest.approx(math.sqrt(2), rel=1e-3)
    assert peak(x) == pytest.approx(3.0, rel=1e-3)
    assert peak_to_peak(x) == pytest.approx(6.0, rel=1e-3)
    assert kurtosis(x) == pytest.approx(1.5, rel=1e-9)
    assert skewness(x) == pytest.approx(0.0, abs=1e-9)


def test_square_wave_and_gaussian_noise() -> None:
    square = np.sign(sine(1.0, 64.0, phase=0.1))
    assert crest_factor(square) == pytest.approx(1.0)
    assert kurtosis(square) == pytest.approx(1.0, rel=1e-6)
    noise = np.random.default_rng(1).normal(size=200_000)
    assert kurtosis(noise) == pytest.approx(3.0, abs=0.05)
    assert skewness(noise) == pytest.approx(0.0, abs=0.02)


def test_impacts_raise_kurtosis_and_crest_factor() -> None:
    base = np.random.default_rng(2).normal(scale=0.1, size=N)
    impacts = base.copy()
    impacts[::256] += 2.0
    assert kurtosis(impacts) > 10 * kurtosis(base) / 3
    assert crest_factor(impacts) > 2 * crest_factor(base)


def test_statistics_are_vectorised_over_windows() -> None:
    batch = np.stack([sine(1.0, 100.0), sine(2.0, 200.0), np.zeros(N)])
    assert rms(batch) == pytest.approx([1 / math.sqrt(2), 2 / math.sqrt(2), 0.0])
    assert crest_factor(batch)[2] == 0.0
    assert kurtosis(batch)[:2] == pytest.approx([1.5, 1.5])
    assert spectrum(batch, FS).power.shape == (3, N // 2 + 1)


@pytest.mark.parametrize("window", ["hann", "rect"])
def test_spectrum_sums_to_the_mean_square(window: str) -> None:
    x = sine(2.0, 123.4) + np.random.default_rng(3).normal(scale=0.5, size=N)
    spec = spectrum(x, FS, window=window)
    assert spec.power.sum() == pytest.approx(np.var(x), rel=0.05 if window == "hann" else 1e-9)
    assert spec.resolution == pytest.approx(FS / N)


def test_band_energy_holds_the_tone() -> None:
    x = sine(2.0, 1000.0) + sine(1.0, 3000.0)
    spec = spectrum(x, FS)
    energies = band_energies(spec, [0, 500, 1500, 2500, 3500, FS / 2])
    assert energies == pytest.approx([0.0, 2.0, 0.0, 0.5, 0.0], abs=1e-9)
    with pytest.raises(ValueError):
        band_energies(spec, [100, 50])


def test_spectral_peaks_find_tones_and_their_amplitudes() -> None:
    x = sine(2.0, 1000.0) + sine(0.5, 2200.5)  # the second tone lies between two bins
    freqs, amplitudes = spectral_peaks(spectrum(x, FS), count=2)
    assert freqs == pytest.approx([1000.0, 2200.5], abs=FS / N)
    assert amplitudes == pytest.approx([2.0, 0.5], rel=0.02)


def test_bearing_fault_frequencies_match_the_published_6205_values() -> None:
    # Values for the 6205-2RS JEM SKF at 1797 rpm as published with the CWRU bearing data (in Hz):
    # BPFI 162.19, BPFO 107.36, FTF 11.93, BSF 70.58 (5.4152, 3.5848, 0.39828, 2.357 x shaft speed).
    f = BEARING.fault_frequencies(SHAFT_HZ)
    assert f.bpfi == pytest.approx(5.4152 * SHAFT_HZ, rel=1e-3)
    assert f.bpfo == pytest.approx(3.5848 * SHAFT_HZ, rel=1e-3)
    assert f.ftf == pytest.approx(0.39828 * SHAFT_HZ, rel=1e-3)
    assert f.bsf == pytest.approx(2.357 * SHAFT_HZ, rel=1e-3)
    assert f.bpfo + f.bpfi == pytest.approx(BEARING.n_balls * SHAFT_HZ)


def test_bearing_geometry_is_validated() -> None:
    with pytest.raises(ValueError):
        BearingGeometry(n_balls=0, ball_diameter=1, pitch_diameter=5)
    with pytest.raises(ValueError):
        BearingGeometry(n_balls=8, ball_diameter=6, pitch_diameter=5)
    angled = BearingGeometry(n_balls=8, ball_diameter=1, pitch_diameter=5, contact_angle_deg=60)
    assert angled.fault_frequencies(10).bpfo == pytest.approx(8 * 10 / 2 * (1 - 0.2 * 0.5))


def test_outer_race_defect_tone_shows_in_the_bpfo_band() -> None:
    f = BEARING.fault_frequencies(SHAFT_HZ)
    healthy = sine(1.0, SHAFT_HZ) + np.random.default_rng(4).normal(scale=0.05, size=N)
    faulty = healthy + sine(0.4, f.bpfo)
    before = fault_band_energies(spectrum(healthy, FS), BEARING, SHAFT_HZ)
    after = fault_band_energies(spectrum(faulty, FS), BEARING, SHAFT_HZ)
    assert after["bpfo"] == pytest.approx(before["bpfo"] + 0.4**2 / 2, rel=0.05)
    for other in ("bpfi", "bsf", "ftf"):
        assert after[other] == pytest.approx(before[other], rel=0.05, abs=1e-3)


def test_envelope_analysis_finds_a_modulated_resonance() -> None:
    f = BEARING.fault_frequencies(SHAFT_HZ)
    carrier = sine(1.0, 3000.0) * (1 + 0.5 * np.sin(2 * np.pi * f.bpfi * T))
    env = envelope(carrier)
    assert np.mean(env) == pytest.approx(1.0, rel=0.01)
    energies = fault_band_energies(spectrum(env, FS), BEARING, SHAFT_HZ)
    assert energies["bpfi"] == pytest.approx(0.5**2 / 2, rel=0.05)
    assert energies["bpfo"] < 1e-3 * energies["bpfi"]


def test_waveform_features_bundle() -> None:
    f = BEARING.fault_frequencies(SHAFT_HZ)
    x = sine(1.0, 3000.0) * (1 + 0.5 * np.sin(2 * np.pi * f.bpfo * T))
    features = waveform_features(x, FS, bearing=BEARING, shaft_hz=SHAFT_HZ, harmonics=1)
    assert features.rms == pytest.approx(float(rms(x)))
    assert sum(features.band_energies) == pytest.approx(np.var(x), rel=0.01)
    assert len(features.band_energies) == 8
    assert max(features.fault_energies, key=lambda k: features.fault_energies[k]) == "bpfo"
    assert features.peak_freqs_hz[0] == pytest.approx(3000.0, abs=FS / N)
    flat = features.as_dict()
    assert {"rms", "kurtosis", "band_0", "peak_0_hz", "bpfo"} <= flat.keys()
    with pytest.raises(ValueError):
        waveform_features(x, FS, bearing=BEARING)


def test_trend_slope() -> None:
    minutes = np.arange(60) * 60.0
    temperature = 40.0 + 0.01 * minutes + np.sin(np.arange(60))  # 0.01 degC per second plus ripple
    assert trend_slope(temperature, minutes) == pytest.approx(0.01, rel=0.1)
    assert trend_slope([1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert trend_slope(np.ones((2, 5))) == pytest.approx([0.0, 0.0])
    assert trend_slope([7.0]) == 0.0
