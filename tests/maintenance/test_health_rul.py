"""Remaining useful life at the edge: a C-MAPSS FD001 test engine's cycles, fed as samples through the health
tracker, give the RUL of the offline ``edge-agent analyze rul`` and a maintenance recommendation when the RUL
first falls below the horizon; the synthetic engine of the simulator degrades the same way."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge_agent.behaviour import kinds as k
from edge_agent.cli import main
from edge_agent.maintenance.datasets import shared_data_dir
from edge_agent.maintenance.rul import RulModel, model_input
from edge_agent.maintenance.rul_data import UnitHistory, read_cmapss
from edge_agent.maintenance.tracker import HealthTracker, health_tracker
from edge_agent.model import Event, Sample
from edge_agent.profiles import MaintenanceSettings, load_profile, shipped_profiles_dir
from simulators.turbofan import CHANNELS, SyntheticEngine

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
UNIT = 34  # 203 cycles; its RUL at the last cycle is 7 (RUL_FD001.txt)
T0 = 1_789_960_000.0  # a day boundary falls between the first estimate (cycle 60) and the last cycle
CYCLE_S = 600.0


@pytest.fixture(scope="module")
def test_fd001() -> Path:
    path = shared_data_dir() / "cmapss" / "test_FD001.txt"
    if not path.is_file():
        message = f"C-MAPSS FD001 not found in {path.parent} (set EDGE_SHARED_DATA)"
        if IN_CI:
            pytest.fail(message + " (CI=true: missing reference data is a failure)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def settings() -> MaintenanceSettings:
    profile = load_profile(shipped_profiles_dir() / "turbofan_engine.toml")
    assert profile.maintenance is not None and profile.maintenance.rul is not None
    return profile.maintenance


def feed_unit(tracker: HealthTracker, unit: UnitHistory) -> tuple[list[Event], list[float]]:
    """One batch per cycle, as the MQTT connector emits one message: the 21 sensors and the cycle counter."""
    events: list[Event] = []
    estimates: list[float] = []
    names = [c for c in unit.columns if c.startswith("s")]
    for i, row in enumerate(unit.select(names)):
        ts = T0 + CYCLE_S * i
        batch = [Sample("engine", name, ts, float(v)) for name, v in zip(names, row, strict=True)]
        batch.append(Sample("engine", "cycle", ts, i + 1))
        events += tracker.feed(batch)
        assert tracker.rul is not None
        if tracker.rul.estimate is not None and tracker.rul.estimate.cycle == i + 1:
            estimates.append(tracker.rul.estimate.cycles)
    return events, estimates


def test_edge_rul_equals_the_offline_command_and_recommends_below_the_horizon(
    test_fd001: Path, settings: MaintenanceSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unit = next(u for u in read_cmapss(test_fd001) if u.unit == UNIT)
    rows = [line for line in test_fd001.read_text().splitlines() if line.split() and int(line.split()[0]) == UNIT]
    one = tmp_path / "unit.txt"
    one.write_text("\n".join(rows) + "\n")
    assert main(["analyze", "rul", "--input", str(one)]) == 0
    offline = json.loads(capsys.readouterr().out)
    assert offline["unit"] == UNIT

    tracker = health_tracker("engine", settings, None)
    events, estimates = feed_unit(tracker, unit)
    model = RulModel.load()
    size = model.card.window
    assert tracker.rul is not None and tracker.rul.estimate is not None
    assert len(tracker.rul.cycles.rows) == size  # bounded: the model's window, not the whole history
    assert tracker.rul.estimate.cycle == len(unit) == 203
    assert abs(tracker.rul.estimate.cycles - offline["rul"]) <= 0.05 + 1e-9

    # every estimate along the way is the offline model on that prefix of the history
    prefixes = [UnitHistory(UNIT, unit.columns, unit.values[:n]) for n in range(size, len(unit) + 1)]
    expected = model.predict_batch(np.stack([model_input(u, model.card) for u in prefixes]))
    assert len(estimates) == len(expected)  # the first estimate once the model's window is full
    np.testing.assert_allclose(estimates, expected, atol=1e-3)
    np.testing.assert_allclose(tracker.rul.cycles.window(size), model_input(unit, model.card))

    # the recommendation fires once, at the first cycle whose RUL is below the 30-cycle horizon
    first_below = size + int(np.argmax(expected < 30.0))
    recs = [e for e in events if e.kind == k.MAINTENANCE_RECOMMENDED]
    assert len(recs) == 1
    assert recs[0].ts == T0 + CYCLE_S * (first_below - 1)
    attrs = recs[0].attributes
    assert attrs["rul"] == pytest.approx(expected[first_below - size], abs=0.01) and attrs["rul"] < 30.0
    assert (attrs["rul_unit"], attrs["horizon"], attrs["model"]) == ("cycles", 30.0, "rul_fd001")
    assert attrs["reason"].startswith(f"RUL {expected[first_below - size]:.1f} cycles below the horizon of 30 cycles")
    assert tracker.current is not None
    assert tracker.current.index == round(100 * min(1.0, estimates[-1] / model.card.rul_cap), 1)

    # hourly and daily rollups of the 34 hours the engine ran (one cycle every 10 minutes)
    rollups = [e.attributes for e in events if e.kind == k.HEALTH_ROLLUP]
    hours = [a for a in rollups if a["period"] == "hour"]
    estimated_hours = {int((T0 + CYCLE_S * i) // 3600) for i in range(size - 1, len(unit))}
    assert len(hours) == len(estimated_hours) - 1  # every hour with an estimate, but the last (still open)
    assert all(a["rul_unit"] == "cycles" for a in hours)
    assert hours[-1]["health_min"] <= 30.0 < hours[0]["health_min"]
    estimated_days = {int((T0 + CYCLE_S * i) // 86400) for i in range(size - 1, len(unit))}
    assert len(estimated_days) == 2
    assert [a["period"] for a in rollups].count("day") == 1  # the first day closed; the second still open


def test_synthetic_engine_degrades_like_fd001(settings: MaintenanceSettings) -> None:
    """The simulator's engine (no data set needed): the model follows its run to failure."""
    engine = SyntheticEngine("engine", seed=3, life=220)
    names = list(CHANNELS)
    values = np.array([[engine.reading(c)[n] for n in names] for c in range(1, engine.life + 1)])
    unit = UnitHistory("synthetic", tuple(names), values)
    tracker = health_tracker("engine", settings, None)
    events, estimates = feed_unit(tracker, unit)
    assert tracker.rul is not None
    size, cap = tracker.rul.model.card.window, tracker.rul.model.card.rul_cap
    truth = np.minimum(cap, engine.life - np.arange(size, engine.life + 1))
    errors = np.asarray(estimates) - truth
    assert float(np.sqrt(np.mean(errors**2))) < 25.0
    recs = [e for e in events if e.kind == k.MAINTENANCE_RECOMMENDED]
    assert len(recs) == 1
    cycle_at = round((recs[0].ts - T0) / CYCLE_S) + 1
    assert 5 <= engine.true_rul(cycle_at) <= 60
