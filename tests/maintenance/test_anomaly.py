"""Streaming detectors, their building blocks and the alarm, on synthetic series with known anomalies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.maintenance.anomaly import (
    DETECTORS,
    AnomalyAlarm,
    GaussianDetector,
    TailEnsembleConfig,
    TailEnsembleDetector,
    make_detector,
)
from edge_agent.maintenance.rolling import RollingMean, RollingQuantiles
from edge_agent.maintenance.surprise import TailSurprise, find_period
from simulators.bearing import DANGER_RMS, VibrationSensor


def run(detector: object, values: np.ndarray) -> np.ndarray:
    return np.array([detector.update(float(v)) for v in values])  # type: ignore[attr-defined]


def noise(n: int, seed: int = 0) -> np.ndarray:
    return 10.0 + np.random.default_rng(seed).normal(size=n)


def test_rolling_quantiles_match_numpy() -> None:
    rng = np.random.default_rng(1)
    window = RollingQuantiles(50)
    values = np.round(rng.normal(size=400), 1)  # with ties
    for i, v in enumerate(values):
        window.push(float(v))
        last = np.sort(values[max(0, i - 49) : i + 1])
        for q in (0.0, 0.1, 0.5, 0.99, 1.0):
            assert window.quantile(q) == last[round(q * (len(last) - 1))]
    window.push(math.nan)
    assert len(window) == 50
    assert math.isnan(RollingQuantiles(3).quantile(0.5))
    with pytest.raises(ValueError):
        RollingQuantiles(0)


def test_rolling_mean() -> None:
    mean = RollingMean(4)
    values = np.random.default_rng(2).normal(size=50)
    for i, v in enumerate(values):
        assert mean.push(float(v)) == pytest.approx(np.mean(values[max(0, i - 3) : i + 1]))


def test_tail_surprise_scale() -> None:
    tail = TailSurprise(10_000, clip=0)
    for v in np.random.default_rng(3).normal(size=10_000):
        tail.push(float(v))
    q99, q999 = 2.326, 3.090  # standard normal quantiles
    assert tail.surprise(0.0) == pytest.approx(0.0, abs=0.05)
    assert tail.surprise(q99) == pytest.approx(2.0, abs=0.15)
    assert tail.surprise(-q999) == pytest.approx(3.0, abs=0.3)
    assert tail.surprise(q999 + 2 * (q999 - q99)) == pytest.approx(5.0, abs=0.4)


def test_find_period() -> None:
    t = np.arange(700)
    daily = np.sin(2 * np.pi * t / 48) + 0.2 * np.random.default_rng(4).normal(size=700)
    assert find_period(daily) in (47, 48, 49)
    assert find_period(np.random.default_rng(5).normal(size=700)) == 0
    assert find_period(np.ones(700)) == 0


def test_scores_are_zero_in_warm_up_and_within_unit_interval() -> None:
    values = noise(3000)
    values[2000] += 15.0
    scores = run(make_detector(warmup=500), values)
    assert np.all(scores[:500] == 0.0)
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert scores[2000] > 0.6
    assert np.sum(scores >= 0.5) <= 3  # the spike, and at most a couple of noise records


def test_level_shift_alerts_once_then_is_suppressed() -> None:
    values = noise(3000, seed=6)
    values[2000:] += 6.0
    detector = TailEnsembleDetector(TailEnsembleConfig(warmup=500))
    scores, levels = [], []
    for v in values:
        scores.append(detector.update(float(v)))
        levels.append(detector.level)
    alerts = np.flatnonzero(np.array(scores) >= 0.5)
    assert alerts.size and 2000 <= alerts[0] <= 2002
    assert np.sum((alerts >= 2000) & (alerts < 2000 + detector.config.refractory_points)) <= 3
    # The level stays up while the shift is new (an alarm on it holds), then the new normal is learnt.
    assert min(levels[2000:2100]) > 0.4
    assert levels[-1] < 0.4


def test_seasonal_pattern_change_is_detected() -> None:
    t = np.arange(4000)
    rng = np.random.default_rng(7)
    values = 50 + 20 * np.sin(2 * np.pi * t / 96) + rng.normal(size=4000)
    values[3000:3096] = 50 - 20 * np.sin(2 * np.pi * t[3000:3096] / 96) + rng.normal(size=96)  # a phase flip
    detector = TailEnsembleDetector(TailEnsembleConfig(warmup=600))
    scores = run(detector, values)
    assert detector.period in (95, 96, 97)
    alerts = np.flatnonzero(scores >= 0.5)
    assert np.any((alerts >= 3000) & (alerts < 3096))
    assert np.sum((alerts >= 700) & (alerts < 3000)) <= 2


def test_flat_line_then_change() -> None:
    values = np.full(1500, 3.0)
    values[1200:] = 3.5
    scores = run(make_detector(warmup=300), values)
    assert np.all(scores[:1200] == 0.0)
    assert scores[1200] > 0.9


def test_nan_is_a_gap() -> None:
    detector = make_detector(warmup=10)
    values = noise(200)
    values[100] = math.nan
    scores = run(detector, values)
    assert scores[100] == 0.0
    assert np.all(np.isfinite(scores))


def test_state_is_bounded() -> None:
    detector = TailEnsembleDetector(TailEnsembleConfig(warmup=300, window=1000))
    run(detector, noise(3000))
    size = detector.state_bytes()
    run(detector, noise(3000, seed=9))
    assert detector.state_bytes() <= size + 1024
    assert size < 100_000


def test_registry_and_configuration() -> None:
    assert {"tail-ensemble", "gaussian"} <= DETECTORS.keys()
    detector = make_detector("tail-ensemble", warmup=50, scales=[[1, 1.0], [10, 0.5]], refractory=20)
    assert isinstance(detector, TailEnsembleDetector)
    assert detector.config.scales == ((1, 1.0), (10, 0.5))
    assert detector.config.refractory_points == 20
    assert TailEnsembleConfig(warmup=1000).refractory_points == 300
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("nope")
    with pytest.raises(ValueError):
        TailEnsembleConfig(scales=((0, 1.0),))


def test_gaussian_baseline() -> None:
    values = noise(1000)
    values[800] += 10
    scores = run(GaussianDetector(warmup=100, window=200), values)
    assert scores[800] > 0.999999
    assert np.all(scores[:100] == 0.0)


def test_alarm_threshold_hysteresis_and_hold() -> None:
    alarm = AnomalyAlarm(threshold=0.5, hysteresis=0.2, clear_after=3)
    changes = [alarm.update(s) for s in [0.1, 0.6, 0.45, 0.2, 0.2, 0.4, 0.2, 0.2, 0.2, 0.9]]
    raised = [(i, c.active) for i, c in enumerate(changes) if c is not None]
    # Raised at 0.6; 0.45 is inside the hysteresis band; 0.4 restarts the hold; cleared after 3 lows.
    assert raised == [(1, True), (8, False), (9, True)]
    assert alarm.active
    with pytest.raises(ValueError):
        AnomalyAlarm(threshold=0.3, hysteresis=0.5)


def test_degrading_bearing_raises_the_alarm_before_failure() -> None:
    """The simulated plant's bearing: velocity RMS every 10 s over its 6 h life, alarm on the detector level."""
    sensor = VibrationSensor("vib-1", seed=1, failure_after_s=6 * 3600.0)
    rms = []
    for _ in range(int(sensor.failure_after_s / 10)):
        rms.append(sensor.telemetry(0.0)["vibration"]["rms"])
        sensor.step(10.0)
    detector = make_detector(warmup=len(rms) * 15 // 100)
    alarm = AnomalyAlarm(threshold=0.5, hysteresis=0.1, clear_after=30)
    raised_at = None
    for i, value in enumerate(rms):
        detector.update(value)
        change = alarm.update(detector.level)
        if change is not None and change.active and raised_at is None:
            raised_at = i * 10.0
    assert raised_at is not None
    assert raised_at < sensor.time_to_rms(DANGER_RMS) < sensor.failure_after_s
