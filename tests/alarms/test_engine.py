"""Alarm conditions (limits, stops, connection, anomalies) and the engine that runs their lifecycle."""

from __future__ import annotations

import pytest

from edge_agent.alarms import (
    AlarmEngine,
    AlarmNotFound,
    AlarmRefused,
    AlarmSettings,
    DurationCheck,
    LevelCheck,
    levels_of,
)
from edge_agent.model import Event, Quality, Sample
from edge_agent.profiles import AlarmLimit, load_profile, shipped_profiles_dir

CNC = load_profile(shipped_profiles_dir() / "cnc_vmc.toml")
LINE = load_profile(shipped_profiles_dir() / "packaging_line.toml")


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.kind, e.attributes["alarm_id"]) for e in events]


def engine(**settings: object) -> AlarmEngine:
    cfg = AlarmSettings(**settings)  # type: ignore[arg-type]
    return AlarmEngine({"cnc-1": CNC.alarms, "pack-1": LINE.alarms}, cfg,
                       {"cnc-1": {"spindle_temp": "degC"}, "pack-1": {"seal_temp": "degC"}})


def temp(ts: float, value: float, quality: Quality = Quality.GOOD) -> Sample:
    return Sample("cnc-1", "spindle_temp", ts, value, quality)


# -- conditions ---------------------------------------------------------------------------------


def test_high_limit_with_on_delay_and_deadband() -> None:
    check = LevelCheck("hi", 60.0, True, deadband=2.0, on_delay_s=5.0)
    steps = [(0.0, 59.0, None), (1.0, 61.0, None), (3.0, 62.0, None), (6.0, 61.0, True),  # 5 s past the limit
             (7.0, 59.0, None),  # inside, but not by more than the deadband
             (8.0, 57.9, False), (9.0, 61.0, None), (10.0, 59.0, None),  # back inside: the on-delay starts over
             (11.0, 61.0, None), (15.5, 61.0, None)]
    assert [(ts, check.update(v, ts)) for ts, v, _ in steps] == [(ts, want) for ts, _, want in steps]
    assert check.tick(16.0) is True  # no new sample, but the on-delay ran out


def test_low_limit() -> None:
    check = LevelCheck("lo", 160.0, False, deadband=2.0)
    assert check.update(161.0, 0.0) is None
    assert check.update(159.0, 1.0) is True
    assert check.update(161.9, 2.0) is None
    assert check.update(162.1, 3.0) is False
    assert check.update(float("nan"), 4.0) is None


def test_levels_of_a_profile_entry() -> None:
    entry = AlarmLimit(tag="seal_temp", lolo=150.0, lo=160.0, hi=190.0, hihi=200.0, deadband=2.0, on_delay_s=5)
    assert [(c.condition, c.limit, c.high) for c in levels_of(entry)] == [
        ("hihi", 200.0, True), ("hi", 190.0, True), ("lo", 160.0, False), ("lolo", 150.0, False)]


def test_duration_check() -> None:
    check = DurationCheck(after_s=10.0)
    assert check.set(True, 100.0, 105.0) is None
    assert check.tick(109.9) is None
    assert check.tick(110.0) is True
    assert check.tick(200.0) is None
    assert check.set(False, 201.0, 201.0) is False
    assert check.set(False, 202.0, 202.0) is None
    assert check.set(True, 300.0, 315.0) is True  # already long enough when first seen


# -- limit alarms --------------------------------------------------------------------------------


def test_limit_alarm_full_cycle_with_ack() -> None:
    eng = engine()
    assert eng.on_sample(temp(0.0, 61.0)) == []
    assert kinds(eng.on_sample(temp(5.0, 62.0))) == [("alarm_raised", "cnc-1:spindle_temp:hi")]
    alarm = eng.get("cnc-1:spindle_temp:hi")
    assert (alarm.value, alarm.limit, alarm.priority, alarm.message) == (
        62.0, 60.0, "medium", "Spindle temp above HI limit 60 °C")
    eng.on_sample(temp(6.0, 63.0))
    assert eng.get("cnc-1:spindle_temp:hi").value == 63.0  # the value follows while active
    ack = eng.acknowledge("cnc-1:spindle_temp:hi", "olga", 7.0, "checked")
    assert kinds(ack) == [("alarm_acknowledged", "cnc-1:spindle_temp:hi")]
    assert kinds(eng.on_sample(temp(8.0, 57.0))) == [("alarm_cleared", "cnc-1:spindle_temp:hi")]
    assert eng.select("active") == []
    assert len(eng.select("all")) == len(eng.alarms)


def test_hihi_and_hi_are_separate_alarms() -> None:
    eng = engine()
    eng.on_sample(temp(0.0, 80.0))
    events = eng.on_sample(temp(5.0, 80.0))
    assert sorted(kinds(events)) == [("alarm_raised", "cnc-1:spindle_temp:hi"),
                                     ("alarm_raised", "cnc-1:spindle_temp:hihi")]
    assert eng.get("cnc-1:spindle_temp:hihi").priority == "high"
    assert [a.condition for a in eng.select("active")] == ["hihi", "hi"]  # most urgent first


def test_on_delay_runs_out_on_tick_and_bad_or_text_values_are_ignored() -> None:
    eng = engine()
    eng.on_sample(temp(0.0, 61.0))
    assert eng.on_sample(temp(1.0, 99.0, Quality.BAD)) == []
    assert eng.on_sample(Sample("cnc-1", "spindle_temp", 2.0, "n/a")) == []
    assert kinds(eng.tick(5.0)) == [("alarm_raised", "cnc-1:spindle_temp:hi")]


def test_returned_to_normal_unacknowledged_then_ack() -> None:
    eng = engine()
    eng.on_sample(temp(0.0, 61.0))
    eng.on_sample(temp(5.0, 61.0))
    assert kinds(eng.on_sample(temp(6.0, 50.0))) == [("alarm_returned", "cnc-1:spindle_temp:hi")]
    assert eng.get("cnc-1:spindle_temp:hi").status == "rtn_unack"
    assert [a.id for a in eng.select("active")] == ["cnc-1:spindle_temp:hi"]
    eng.acknowledge("cnc-1:spindle_temp:hi", "olga", 7.0)
    assert eng.select("active") == []


# -- state, connection, anomaly ------------------------------------------------------------------


def test_breakdown_longer_than_n_seconds() -> None:
    eng = engine(breakdown_after_s=120.0)
    assert eng.on_state("cnc-1", "running", 0.0, 0.0) == []
    assert eng.on_state("cnc-1", "unplanned_stop", 100.0, 100.0) == []
    assert eng.tick(219.0) == []
    raised = eng.tick(220.0)
    assert kinds(raised) == [("alarm_raised", "cnc-1:state:breakdown")]
    assert raised[0].attributes["priority"] == "high" and raised[0].attributes["value"] == "unplanned_stop"
    assert kinds(eng.on_state("cnc-1", "running", 300.0, 300.0)) == [("alarm_returned", "cnc-1:state:breakdown")]


def test_planned_stop_suppresses_the_devices_alarms() -> None:
    eng = engine(breakdown_after_s=60.0)
    eng.on_state("cnc-1", "running", 0.0, 0.0)
    eng.on_sample(temp(0.0, 61.0))
    eng.on_sample(temp(5.0, 61.0))
    events = eng.on_state("cnc-1", "planned_stop", 10.0, 10.0)
    suppressed = {e.attributes["alarm_id"] for e in events if e.kind == "alarm_suppressed"}
    assert "cnc-1:spindle_temp:hi" in suppressed and "cnc-1:state:breakdown" in suppressed
    assert all(e.device == "cnc-1" for e in events)
    assert eng.get("pack-1:seal_temp:hi").suppressed is False  # other devices untouched
    assert eng.get("cnc-1:spindle_temp:hi").status == "suppressed"
    assert eng.on_sample(temp(11.0, 50.0))[0].kind == "alarm_condition"  # journaled, not annunciated
    # the limit is exceeded again during the planned stop, then production resumes: it is raised
    eng.on_sample(temp(12.0, 62.0))
    eng.on_sample(temp(17.0, 62.0))
    back = eng.on_state("cnc-1", "running", 20.0, 20.0)
    assert ("alarm_raised", "cnc-1:spindle_temp:hi") in kinds(back)
    assert eng.get("cnc-1:spindle_temp:hi").state.value == "unack"


def test_connection_loss_after_a_delay_and_back() -> None:
    eng = engine(connection_after_s=15.0)
    assert eng.on_connection("cnc-1", False, 100.0, 100.0) == []
    assert kinds(eng.tick(115.0)) == [("alarm_raised", "cnc-1:connection:connection_lost")]
    assert eng.get("cnc-1:connection:connection_lost").message == "No connection for more than 15 s"
    assert kinds(eng.on_connection("cnc-1", True, 120.0, 120.0)) == [
        ("alarm_returned", "cnc-1:connection:connection_lost")]
    assert eng.on_connection("pack-1", True, 1.0, 1.0) == []  # connected: nothing


def test_anomaly_hook() -> None:
    eng = engine()
    assert eng.on_anomaly("vib-1", "vibration_rms", False, 1.0) == []  # nothing to clear: no record made
    raised = eng.on_anomaly("vib-1", "vibration_rms", True, 2.0, score=0.93, detail="bearing wear pattern")
    assert kinds(raised) == [("alarm_raised", "vib-1:vibration_rms:anomaly")]
    alarm = eng.get("vib-1:vibration_rms:anomaly")
    assert (alarm.priority, alarm.message, alarm.value, alarm.source) == ("low", "bearing wear pattern", 0.93,
                                                                          "anomaly")
    assert kinds(eng.on_anomaly("vib-1", "vibration_rms", False, 3.0)) == [
        ("alarm_returned", "vib-1:vibration_rms:anomaly")]


def test_anomaly_records_are_bounded() -> None:
    eng = AlarmEngine({}, AlarmSettings(max_alarms=10))
    for i in range(15):
        eng.on_anomaly("vib-1", f"t{i}", True, float(i))
    assert len(eng.alarms) == 10 and eng.refused == 5


# -- operator actions ------------------------------------------------------------------------------


def test_shelve_is_limited_and_unknown_ids_are_reported() -> None:
    eng = engine(shelve_max_s=3600.0, shelve_default_s=900.0)
    with pytest.raises(AlarmRefused, match="limited"):
        eng.shelve("cnc-1:spindle_temp:hi", "olga", 0.0, 7200.0)
    events = eng.shelve("cnc-1:spindle_temp:hi", "olga", 0.0, note="probe swap")
    assert events[0].kind == "alarm_shelved" and eng.get("cnc-1:spindle_temp:hi").shelved_until == 900.0
    assert eng.get("cnc-1:spindle_temp:hi").needs_attention  # shelved alarms stay on the list
    assert kinds(eng.tick(900.0)) == [("alarm_unshelved", "cnc-1:spindle_temp:hi")]
    with pytest.raises(AlarmNotFound):
        eng.acknowledge("nope", "olga", 1.0)
    with pytest.raises(AlarmRefused):
        eng.unshelve("cnc-1:spindle_temp:hi", "olga", 1000.0)


def test_chattering_is_flagged_by_the_engine() -> None:
    eng = engine()
    limit = AlarmLimit(tag="spindle_temp", hi=60.0)
    eng = AlarmEngine({"cnc-1": [limit]})
    seen = []
    for ts in (0.0, 10.0, 20.0):
        seen += [e.kind for e in eng.on_sample(temp(ts, 61.0))]
        eng.on_sample(temp(ts + 1, 59.0))
    assert seen.count("alarm_raised") == 3 and seen[-1] == "alarm_chattering"
    assert eng.get("cnc-1:spindle_temp:hi").chattering
    assert [e.kind for e in eng.tick(100.0)] == ["alarm_chattering"]
    assert not eng.get("cnc-1:spindle_temp:hi").chattering
