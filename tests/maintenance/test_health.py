"""The health index, the maintenance trigger, health rollups, the cycle window and the [maintenance.rul] profile
section: pure, with the expected values written out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest

from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.periods import Period
from edge_agent.behaviour.rollup import profile_id
from edge_agent.errors import ConfigError
from edge_agent.maintenance.edge_rul import CycleWindow, EdgeRul
from edge_agent.maintenance.health import HealthIndex, MaintenanceTrigger, RulEstimate, health_index
from edge_agent.maintenance.health_rollup import HealthPeriods, period_at
from edge_agent.maintenance.monitor import AnomalyMonitor
from edge_agent.maintenance.rul import DEFAULT_MODEL, ModelCard
from edge_agent.maintenance.tracker import HealthTracker, HealthTrackers
from edge_agent.model import Quality, Sample
from edge_agent.profiles import MaintenanceSettings, RulSettings, load_profile, shipped_profiles_dir

CARD = ModelCard.read(DEFAULT_MODEL.with_suffix(".json"))
SENSORS = {s: f"t_{s}" for s in CARD.sensors}
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp()


def rul(cycles: float, unit: str = "cycles", value: float | None = None) -> RulEstimate:
    return RulEstimate(cycles, 125.0, cycles if value is None else value, unit, 40)  # type: ignore[arg-type]


# -- the index -----------------------------------------------------------------------------------


def test_anomaly_part_scales_the_worst_smoothed_score_above_ordinary_noise() -> None:
    h = health_index({"vibration_rms": 0.4, "temperature": 0.1})
    assert h is not None
    assert (h.index, h.anomaly_part, h.rul_part, h.tag, h.score) == (75.0, 75.0, None, "vibration_rms", 0.4)
    assert h.reason == "anomaly score 0.40 on vibration_rms"
    assert [health_index({"a": s}).index for s in (0.0, 0.2, 0.5, 0.6, 1.0)] == [  # type: ignore[union-attr]
        100.0, 100.0, 62.5, 50.0, 0.0]


def test_rul_part_is_rul_over_the_model_cap_and_the_lower_part_wins() -> None:
    h = health_index({"a": 0.28}, rul(50.0))
    assert h is not None
    assert (h.index, h.anomaly_part, h.rul_part) == (40.0, 90.0, 40.0)
    assert h.reason == "RUL 50.0 cycles (the model saturates at 125 cycles)"
    h = health_index({"a": 0.76}, rul(100.0))
    assert h is not None
    assert (h.index, h.rul_part) == (30.0, 80.0)
    assert h.reason == "anomaly score 0.76 on a"


def test_parts_are_clipped_to_0_100_and_nothing_configured_is_none() -> None:
    assert health_index({}, rul(300.0)).index == 100.0  # type: ignore[union-attr]
    assert health_index({}, rul(0.0)).index == 0.0  # type: ignore[union-attr]
    assert health_index({"a": 1.7}).index == 0.0  # type: ignore[union-attr]
    assert health_index({"a": 0.3}).index == 87.5  # type: ignore[union-attr]
    assert health_index({}) is None


def test_trigger_fires_once_below_the_horizon_and_rearms_above_horizon_plus_hysteresis() -> None:
    trigger = MaintenanceTrigger(horizon=30.0, rul_hysteresis=6.0)

    def step(cycles: float) -> str | None:
        h = health_index({}, rul(cycles))
        assert h is not None
        return trigger.update(h)

    assert step(40.0) is None
    assert step(29.0) == "RUL 29.0 cycles below the horizon of 30 cycles"
    assert [step(c) for c in (25.0, 33.0, 29.0, 35.9)] == [None] * 4  # not re-armed below 36
    assert step(36.0) is None and not trigger.fired
    assert step(29.5) == "RUL 29.5 cycles below the horizon of 30 cycles"


def test_trigger_on_the_health_floor_with_hysteresis() -> None:
    trigger = MaintenanceTrigger(floor=30.0, floor_hysteresis=10.0)
    seq = [trigger.update(health_index({"a": s})) for s in (0.7, 0.8, 0.7, 0.8, 0.68, 0.8)]  # type: ignore[arg-type]
    assert seq[0] is None  # 37.5
    assert seq[1] == "health 25.0 below the floor of 30 (anomaly score 0.80 on a)"
    assert seq[2:5] == [None, None, None]  # 37.5 and 25 while fired; 40 re-arms
    assert seq[5] == "health 25.0 below the floor of 30 (anomaly score 0.80 on a)"


# -- rollups -------------------------------------------------------------------------------------


def _h(score: float) -> HealthIndex:
    h = health_index({"vib": score})
    assert h is not None
    return h


def test_hour_and_day_rollups_with_expected_figures_and_stable_ids() -> None:
    periods = HealthPeriods("vib-1")
    # scores for health 90, 70, 80, 60, 100
    feed = [(T0 + 10, 0.28, False), (T0 + 1800, 0.44, True), (T0 + 3000, 0.36, True), (T0 + 3605, 0.52, False),
            (T0 + 7300, 0.0, False)]
    out = [e for ts, s, active in feed for e in periods.add(ts, _h(s), active)]
    assert [e.attributes["period_start"] for e in out] == [T0, T0 + 3600]
    first, second = (e.attributes for e in out)
    assert first == {
        "period": "hour", "period_start": T0, "period_end": T0 + 3600, "shift": None, "health_min": 70.0,
        "health_mean": 80.0, "health_last": 80.0, "anomaly_max": 0.44, "anomaly_active_s": 1800.0,
        "rul_last": None, "rul_unit": None,
    }
    assert (second["health_min"], second["health_mean"], second["anomaly_max"], second["anomaly_active_s"]) == (
        60.0, 60.0, 0.52, 5.0)
    hour = Period("hour", T0, T0 + 3600)
    assert out[0].id == profile_id(k.HEALTH_ROLLUP, "vib-1", hour)
    assert (out[0].kind, out[0].device, out[0].ts) == (k.HEALTH_ROLLUP, "vib-1", T0 + 3600)
    next_day = datetime(2026, 11, 23, 0, 0, 30, tzinfo=UTC).timestamp()
    closed = periods.add(next_day, _h(0.5), False)
    assert [e.attributes["period"] for e in closed] == ["hour", "day"]
    day = closed[1].attributes
    assert day["period_start"] == datetime(2026, 11, 22, tzinfo=UTC).timestamp()
    assert (day["health_min"], day["health_mean"], day["health_last"], day["anomaly_max"]) == (
        60.0, 80.0, 100.0, 0.52)
    assert day["anomaly_active_s"] == 1805.0
    # computed again (after a restart, say): the same ids, so the collector keeps one of each
    again = HealthPeriods("vib-1")
    ids = [e.id for ts, s, active in feed for e in again.add(ts, _h(s), active)]
    assert ids == [e.id for e in out]


def test_days_follow_the_calendar_time_zone_and_late_samples_stay_in_the_open_period() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    day = period_at("day", T0, berlin)
    assert (day.start, day.end) == (T0 - 11 * 3600, T0 + 13 * 3600)  # 23:00Z to 23:00Z in winter
    assert period_at("hour", T0 + 59 * 60, berlin) == Period("hour", T0, T0 + 3600)
    periods = HealthPeriods("d", berlin, kinds=("hour",))
    assert periods.add(T0 + 100, _h(0.28)) == []
    assert periods.add(T0 + 50, _h(0.44)) == []  # late: counted in the open hour
    assert periods.add(T0 + 3600, _h(0.0))[0].attributes["health_mean"] == 80.0


# -- the cycle window and the tracker ------------------------------------------------------------


def _settings(**rul: object) -> MaintenanceSettings:
    base: dict[str, object] = {"sensors": SENSORS, "horizon": 30.0}
    base.update(rul)
    return MaintenanceSettings(rul=RulSettings.model_validate(base))


def _cycle(cycle: int, ts: float, base: float = 1.0, tag: str | None = "cycle") -> list[Sample]:
    out = [Sample("e", f"t_{s}", ts, base + i + cycle / 1000) for i, s in enumerate(CARD.sensors)]
    if tag is not None:
        out.append(Sample("e", tag, ts, cycle))
    return out


def test_cycle_tag_closes_one_row_with_the_sensors_of_its_timestamp() -> None:
    rs = _settings(cycle_tag="cycle").rul
    assert rs is not None
    w = CycleWindow(rs, CARD.sensors, 30)
    # the counter first in the batch: still taken after the sensors of the same timestamp
    assert w.feed(list(reversed(_cycle(1, T0)))) == 1
    assert w.feed(_cycle(1, T0 + 1)) == 0  # same counter value: same cycle
    assert w.feed(_cycle(2, T0 + 2) + _cycle(3, T0 + 3)) == 2
    assert w.cycles == 3 and w.cycle_s() == 1.5
    assert w.rows[0][0] == 1.001 and w.rows[2][13] == 14.003
    window = w.window(5)
    assert window.shape == (5, 14)
    assert [r[0] for r in window] == [1.001, 1.001, 1.001, 1.002, 1.003]  # padded with the first row


def test_interval_cycles_bad_quality_and_missing_sensors() -> None:
    rs = _settings(cycle_interval_s=10.0).rul
    assert rs is not None
    w = CycleWindow(rs, CARD.sensors, 30)
    assert w.feed(_cycle(1, T0, tag=None)[:5]) == 0
    assert w.feed(_cycle(1, T0 + 10, tag=None)) == 0  # the boundary: sensors still missing, skipped
    assert w.incomplete == 1
    assert w.feed([Sample("e", "t_s2", T0 + 12, 99.0, Quality.BAD)]) == 0
    assert w.feed(_cycle(2, T0 + 25, tag=None)) == 1 and w.rows[-1][0] == 1.001
    assert w.feed(_cycle(3, T0 + 61, tag=None)) == 1  # a gap of several intervals is one cycle
    assert w.rows[-1][0] == 1.002 and w._next_at == T0 + 70


class FakeModel:
    """Predicts 125 minus the first input of the window's last row (so the test controls the RUL)."""

    card = CARD

    def predict(self, window: npt.ArrayLike) -> float:
        return 125.0 - float(np.asarray(window)[-1, 0])


def test_tracker_recommends_once_and_rolls_up_rul_in_hours() -> None:
    settings = _settings(cycle_tag="cycle", horizon=5.0, horizon_unit="h", min_cycles=2)
    tracker = HealthTracker("e", settings, None, EdgeRul(settings.rul, FakeModel(), "fake"))  # type: ignore[arg-type]
    events = []
    for cycle in range(1, 121):  # one cycle every 30 min; the model says RUL = 125 - cycle cycles
        batch = _cycle(cycle, T0 + 1800 * cycle)
        batch[0] = Sample("e", "t_s2", batch[0].ts, float(cycle))
        events += tracker.feed(batch)
    recs = [e for e in events if e.kind == k.MAINTENANCE_RECOMMENDED]
    assert len(recs) == 1
    # RUL in hours = (125 - cycle) * 0.5 h < 5 h first at cycle 116
    assert recs[0].ts == T0 + 1800 * 116
    assert recs[0].attributes == {"health": 7.2, "rul": 4.5, "rul_unit": "h", "horizon": 5.0,
                                  "reason": "RUL 4.5 h below the horizon of 5 h", "model": "fake"}
    hours = [e.attributes for e in events if e.kind == k.HEALTH_ROLLUP and e.attributes["period"] == "hour"]
    assert len(hours) == 59  # cycles 2..120 (the first estimate needs 2 cycles) span hours 11:00 .. 70:00
    assert hours[0]["rul_last"] == 61.0 and hours[0]["rul_unit"] == "h"  # cycle 3 at 11:30: (125 - 3) * 0.5 h
    figures = HealthTrackers({"e": tracker}).health("e", 0.0)
    assert figures is not None and figures.index == 4.0 and not figures.anomaly
    assert HealthTrackers({"e": tracker}).health("other", 0.0) is None


def test_tracker_reads_the_monitor_smoothed_scores_and_alarm_state() -> None:
    settings = MaintenanceSettings(anomaly_tags=["x"], warmup=20, smoothing=1, threshold=0.6, clear_after=1,
                                   health_floor=50.0)
    monitor = AnomalyMonitor("m", settings)
    tracker = HealthTracker("m", settings, monitor)
    out = []
    noise = np.random.default_rng(1).normal(0.0, 0.1, 80)
    for i in range(80):
        sample = Sample("m", "x", T0 + i, 10.0 + float(noise[i]))
        monitor.feed(sample)
        out += tracker.feed([sample])
    assert tracker.current is not None and tracker.current.index > 50.0
    assert not [e for e in out if e.kind == k.MAINTENANCE_RECOMMENDED]
    spike = Sample("m", "x", T0 + 81, 50.0)
    monitor.feed(spike)
    out += tracker.feed([spike])
    assert monitor.smoothed["x"] == monitor.scores["x"] > 0.99  # smoothing = 1: no averaging
    rec = [e for e in out if e.kind == k.MAINTENANCE_RECOMMENDED]
    assert len(rec) == 1 and rec[0].attributes["rul"] is None and rec[0].attributes["health"] < 1.0
    figures = tracker.figures()
    assert figures is not None and figures.anomaly and figures.detail.endswith("anomaly alarm on x")


def test_monitor_smoothing_is_an_exponential_moving_average() -> None:
    settings = MaintenanceSettings(anomaly_tags=["x"], detector="gaussian", warmup=10, smoothing=3)
    monitor = AnomalyMonitor("m", settings)
    levels = []
    for i in range(30):
        monitor.feed(Sample("m", "x", T0 + i, float(i % 3)))
        levels.append(monitor.scores["x"])
    expected = levels[0]
    for level in levels[1:]:
        expected += 0.5 * (level - expected)  # alpha = 2 / (3 + 1)
    assert monitor.smoothed["x"] == pytest.approx(expected)


# -- the profile section -------------------------------------------------------------------------


def test_shipped_turbofan_profile_maps_every_model_sensor() -> None:
    profile = load_profile(shipped_profiles_dir() / "turbofan_engine.toml")
    assert profile.maintenance is not None and profile.maintenance.rul is not None
    rs = profile.maintenance.rul
    assert set(rs.sensors) == set(CARD.sensors) and rs.cycle_tag == "cycle" and rs.model_path() == DEFAULT_MODEL


PROFILE = """protocol = "mqtt"
[profile]
name = "engine"
[mqtt]
topic = "e/{device}"
[[tags]]
name = "cycle"
[[tags]]
name = "s2"
[maintenance.rul]
cycle_tag = "cycle"
horizon = 30
[maintenance.rul.sensors]
s2 = "s2"
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "engine.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return info.value.problems


def test_profile_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "engine.toml"
    missing = ", ".join(CARD.sensors[1:])
    assert _problems(tmp_path, PROFILE) == [
        f"{path}:10: maintenance.rul: sensors: the model also takes {missing}: map each to a tag"
    ]
    full = PROFILE + "".join(f'{s} = "s2"\n' for s in CARD.sensors[1:])
    path.write_text(full)
    assert load_profile(path).maintenance.rul.horizon == 30.0  # type: ignore[union-attr]
    assert _problems(tmp_path, full.replace('s2 = "s2"\n', 's2 = "s_2"\n', 1)) == [
        f"{path}:14: maintenance.rul.sensors.s2 names unknown tag 's_2' (did you mean 's2'?)"
    ]
    both = full.replace("horizon = 30", "horizon = 30\ncycle_interval_s = 5.0")
    assert "give exactly one of 'cycle_tag' or 'cycle_interval_s'" in _problems(tmp_path, both)[0]
    model = full.replace("horizon = 30", 'horizon = 30\nmodel = "models/none.tflite"')
    assert f"model: file 'models/none.tflite' not found (looked for {tmp_path / 'models/none.tflite'})" in (
        _problems(tmp_path, model)[0])
    unit = full.replace("horizon = 30", 'horizon = 30\nhorizon_unit = "days"')
    assert _problems(tmp_path, unit) == [
        f"{path}:13: maintenance.rul.horizon_unit: must be one of 'cycles' or 'h', got 'days'"
    ]
