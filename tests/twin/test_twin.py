"""The twin of one device: reported values, derived state, parts, desired setpoints, restore."""

from __future__ import annotations

import pytest

from edge_agent.config import Location
from edge_agent.model import Quality, Sample
from edge_agent.profiles import load_profile, shipped_profiles_dir
from edge_agent.twin import (
    OeeFigures,
    Setpoint,
    Twin,
    TwinSettings,
    category_of,
    normalize_code,
    spec_for,
)
from tests.status.fakeplant import FakeDevice

CNC = load_profile(shipped_profiles_dir() / "cnc_vmc.toml")
VIB = load_profile(shipped_profiles_dir() / "vibration_sensor.toml")
REASONS = {"cnc_vmc": {"21": "spindle fault", "12": "tool check"}}


def cnc_twin(**settings: object) -> Twin:
    device = FakeDevice("cnc-1", CNC, Location(site="plant-a", area="machining", line="cell-1"))
    return Twin(spec_for(device, TwinSettings(stop_reasons=REASONS, **settings)))  # type: ignore[arg-type]


def s(tag: str, ts: float, value: object, quality: Quality = Quality.GOOD, device: str = "cnc-1") -> Sample:
    return Sample(device, tag, ts, value, quality)  # type: ignore[arg-type]


# -- spec ---------------------------------------------------------------------------------------


def test_spec_takes_units_location_and_deadbands_from_profile_and_config() -> None:
    device = FakeDevice("cnc-1", CNC, Location(site="plant-a", area="machining", line="cell-1"))
    spec = spec_for(device, TwinSettings(deadbands={"cnc-1.coolant_temp": 0.3, "power": 0.5}, deadband_pct=1.0))
    assert spec.location == {"site": "plant-a", "area": "machining", "line": "cell-1"}
    assert spec.model == "VMC-850 vertical machining centre" and spec.protocol == "modbus"
    assert spec.tags["spindle_temp"].unit == "degC"
    # the profile's alarm deadband, absolute
    assert (spec.tags["spindle_temp"].deadband, spec.tags["spindle_temp"].relative) == (2.0, False)
    # config overrides: per device.tag, then per tag
    assert (spec.tags["coolant_temp"].deadband, spec.tags["coolant_temp"].relative) == (0.3, False)
    assert (spec.tags["power"].deadband, spec.tags["power"].relative) == (0.5, False)
    # by type: floats relative to the last value, integers and flags on every change
    assert (spec.tags["spindle_speed"].deadband, spec.tags["spindle_speed"].relative) == (0.01, True)
    assert (spec.tags["good_count"].deadband, spec.tags["good_count"].relative) == (0.0, False)
    assert spec.state_tag == "state" and spec.reason_tag == "stop_reason" and spec.has_state
    assert spec.state_codes["3"] == "unplanned_stop"


def test_a_sensor_without_oee_has_no_state() -> None:
    spec = spec_for(FakeDevice("vib-1", VIB, Location()))
    assert not spec.has_state and spec.reason_tag is None


@pytest.mark.parametrize(("raw", "code"), [(2, "2"), (2.0, "2"), ("2", "2"), (" 2.0 ", "2"), (True, "1"),
                                          (False, "0"), (2.5, "2.5"), ("run", "run")])
def test_codes_are_normalised(raw: object, code: str) -> None:
    assert normalize_code(raw) == code  # type: ignore[arg-type]


# -- reported -----------------------------------------------------------------------------------


def test_apply_reports_only_changes_of_value_quality_or_staleness() -> None:
    twin = cnc_twin()
    first = twin.apply(s("spindle_temp", 10.0, 40.0))
    assert first.changes["reported.spindle_temp"] == {
        "value": 40.0, "unit": "degC", "ts": 10.0, "quality": "good", "rate": None, "stale": False,
    }
    assert not twin.apply(s("spindle_temp", 11.0, 40.0))  # same value: nothing to tell
    assert twin.reported["spindle_temp"].ts == 11.0  # but the timestamp moves on
    assert twin.apply(s("spindle_temp", 12.0, 40.0, Quality.UNCERTAIN)).changes["reported.spindle_temp"][
        "quality"] == "uncertain"
    assert twin.apply(s("spindle_temp", 13.0, 41.0)).changes["reported.spindle_temp"]["value"] == 41.0


def test_a_late_sample_does_not_replace_a_newer_value() -> None:
    twin = cnc_twin()
    twin.apply(s("power", 20.0, 5.0))
    assert not twin.apply(s("power", 19.0, 9.0))
    assert twin.reported["power"].value == 5.0


def test_rate_is_a_smoothed_change_per_second_for_measured_values_only() -> None:
    twin = cnc_twin()
    twin.apply(s("spindle_temp", 0.0, 40.0))
    twin.apply(s("spindle_temp", 10.0, 41.0))
    assert twin.reported["spindle_temp"].rate == pytest.approx(0.1)  # first rate: the instant one
    twin.apply(s("spindle_temp", 20.0, 41.0))  # no change: the rate decays towards 0
    assert 0 < twin.reported["spindle_temp"].rate < 0.1  # type: ignore[operator]
    twin.apply(s("state", 0.0, 1))
    twin.apply(s("state", 10.0, 2))
    assert twin.reported["state"].rate is None  # a code has no rate
    twin.apply(s("program", 0.0, "A"))
    twin.apply(s("program", 1.0, "B"))
    assert twin.reported["program"].rate is None


def test_tags_are_bounded() -> None:
    twin = cnc_twin(max_tags=1)
    twin = Twin(twin.spec, max_tags=2)
    twin.apply(s("a", 1.0, 1.0))
    twin.apply(s("b", 1.0, 1.0))
    assert not twin.apply(s("c", 1.0, 1.0))
    assert set(twin.reported) == {"a", "b"} and twin.dropped_tags == 1
    assert twin.apply(s("a", 2.0, 2.0))  # known tags still update


def test_other_devices_samples_are_ignored() -> None:
    twin = cnc_twin()
    assert not twin.apply(s("power", 1.0, 1.0, device="cnc-2"))


# -- derived state ------------------------------------------------------------------------------


def test_state_category_since_and_reason_follow_the_state_and_reason_tags() -> None:
    twin = cnc_twin()
    assert twin.apply(s("state", 100.0, 1)).changes["derived.state"] == {
        "category": "running", "code": "1", "since": 100.0, "reason": None, "reason_text": None, "stale": False,
    }
    assert "derived.state" not in twin.apply(s("state", 101.0, 1)).changes
    # a stop: the reason comes with it (reason tag after the state tag in the same poll)
    stop = twin.apply(s("state", 110.0, 2)).changes["derived.state"]
    assert (stop["category"], stop["since"], stop["reason"]) == ("unplanned_stop", 110.0, None)
    why = twin.apply(s("stop_reason", 110.0, 12)).changes["derived.state"]
    assert (why["reason"], why["reason_text"], why["since"]) == ("12", "tool check", 110.0)
    # stopped -> breakdown: the same category, so the stop goes on since 110
    brk = twin.apply(s("state", 120.0, 3)).changes["derived.state"]
    assert (brk["category"], brk["code"], brk["since"]) == ("unplanned_stop", "3", 110.0)
    fault = twin.apply(s("stop_reason", 121.0, 21)).changes["derived.state"]
    assert fault["reason_text"] == "spindle fault"
    # running again: no reason, even while the PLC still shows the old code
    run = twin.apply(s("state", 130.0, 1)).changes["derived.state"]
    assert (run["category"], run["since"], run["reason"]) == ("running", 130.0, None)
    assert "derived.state" not in twin.apply(s("stop_reason", 131.0, 0)).changes


def test_a_reason_showing_before_the_stop_is_taken() -> None:
    twin = cnc_twin()
    twin.apply(s("state", 1.0, 1))
    twin.apply(s("stop_reason", 5.0, 21))
    assert twin.apply(s("state", 6.0, 3)).changes["derived.state"]["reason_text"] == "spindle fault"


def test_unknown_codes_are_unplanned_stops_and_bad_quality_is_ignored() -> None:
    twin = cnc_twin()
    assert twin.apply(s("state", 1.0, 9)).changes["derived.state"]["category"] == "unplanned_stop"
    assert "derived.state" not in twin.apply(s("state", 2.0, 1, Quality.BAD)).changes
    assert twin.state.category == "unplanned_stop"


def test_run_tag_alone_gives_running_or_unplanned_stop() -> None:
    spec = spec_for(FakeDevice("cnc-1", CNC, Location()))
    from dataclasses import replace

    only_run = replace(spec, state_tag=None)
    assert category_of(only_run, "running", True) == ("running", "1")
    assert category_of(only_run, "running", False) == ("unplanned_stop", "0")
    assert category_of(only_run, "state", 1) is None
    assert category_of(spec, "running", True) is None  # the state tag wins when both are set


# -- restore ------------------------------------------------------------------------------------


def test_restore_marks_values_stale_until_fresh_data_arrives() -> None:
    twin = cnc_twin()
    restored = twin.restore([s("spindle_temp", 50.0, 44.0), s("state", 40.0, 3), s("stop_reason", 40.0, 21)])
    assert restored.changes["reported.spindle_temp"]["stale"] is True
    assert twin.state.category == "unplanned_stop" and twin.state.stale and twin.state.since == 40.0
    assert twin.stale
    fresh = twin.apply(s("spindle_temp", 60.0, 44.0))
    assert fresh.changes["reported.spindle_temp"]["stale"] is False  # same value, but no longer stale
    assert not twin.stale  # one fresh value is enough to say the device talks again
    again = twin.apply(s("state", 61.0, 3)).changes["derived.state"]
    assert (again["stale"], again["since"]) == (False, 40.0)  # the stop began before the restart
    assert twin.reported["spindle_temp"].rate is None  # no rate across the gap


# -- parts ----------------------------------------------------------------------------------------


def test_parts_are_counted_from_the_counters_since_the_shift_start_with_resets() -> None:
    twin = cnc_twin()
    twin.apply(s("good_count", 1.0, 500))
    twin.apply(s("scrap_count", 1.0, 7))
    shift = twin.start_shift(0.0, 2.0)
    assert shift.changes["derived.parts"] == {"good": 0, "scrap": 0, "target": 0, "since": 0.0,
                                              "source": "counters"}
    assert twin.apply(s("good_count", 3.0, 503)).changes["derived.parts"]["good"] == 3
    twin.apply(s("good_count", 4.0, 2))  # the counter was reset to 0 and counted 2
    twin.apply(s("scrap_count", 4.0, 8))
    assert (twin.parts.good, twin.parts.scrap) == (5, 1)
    assert twin.refresh_target(120.0).changes["derived.parts"]["target"] == 10  # 120 s / 12 s ideal cycle


def test_oee_figures_give_the_parts_when_present() -> None:
    twin = cnc_twin()
    figures = OeeFigures(0.9, 0.8, 0.99, 0.7128, good=120, scrap=2, target=150, window_from=0.0)
    changes = twin.set_oee(figures, 10.0).changes
    assert changes["derived.oee"]["oee"] == pytest.approx(0.7128)
    assert changes["derived.parts"] == {"good": 120, "scrap": 2, "target": 150, "since": 0.0, "source": "oee"}
    assert not twin.set_oee(figures, 11.0)  # unchanged
    twin.apply(s("good_count", 12.0, 1))
    twin.apply(s("good_count", 13.0, 2))
    assert twin.parts.good == 120  # counters no longer override


# -- connection, alarms, desired ---------------------------------------------------------------------


def test_connection_keeps_its_since_while_the_state_does_not_change() -> None:
    twin = cnc_twin()
    assert twin.set_connection("disconnected", 5.0, "refused").changes["derived.connection"]["since"] == 5.0
    assert twin.set_connection("disconnected", 7.0, "timed out").changes["derived.connection"] == {
        "state": "disconnected", "since": 5.0, "last_error": "timed out"}
    assert not twin.set_connection("disconnected", 8.0, "timed out")
    assert twin.set_connection("connected", 9.0).changes["derived.connection"]["since"] == 9.0


def test_desired_setpoint_is_confirmed_when_the_device_reports_it() -> None:
    twin = cnc_twin()
    sp = Setpoint("x1", "feed_rate", 1500.0, "olga", 10.0, "written", updated_at=11.0)
    assert twin.set_desired(sp).changes["desired.feed_rate"]["status"] == "written"
    twin.apply(s("feed_rate", 12.0, 1800.0))
    assert twin.desired["feed_rate"].status == "written"
    twin.apply(s("feed_rate", 13.0, 1500.0000001))
    assert twin.confirm_desired(13.0).changes["desired.feed_rate"]["status"] == "confirmed"


def test_whole_twin_has_the_four_sections() -> None:
    twin = cnc_twin()
    twin.apply(s("state", 1.0, 1))
    whole = twin.as_dict()
    assert set(whole) >= {"reported", "derived", "desired", "meta"}
    assert set(whole["derived"]) == {"state", "connection", "oee", "parts", "health", "alarms"}
    assert whole["meta"]["location"]["line"] == "cell-1" and whole["meta"]["profile"] == "cnc_vmc"
    assert whole["meta"]["tags"][0]["name"] == "state"
    assert twin.summary()["key_values"] == {}  # a machine shows OEE, not values, on its tile
