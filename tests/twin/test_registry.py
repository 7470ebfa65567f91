"""All twins together: change events (deadband, debounce), timelines, trends, shifts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_agent.model import Quality, Sample
from edge_agent.twin import (
    TWIN_CHANGED,
    ChangeDebouncer,
    ChangeSet,
    StateTimeline,
    TrendCache,
    TwinRegistry,
    TwinSettings,
    shift_start,
    spec_for,
)
from tests.status.fakeplant import demo_devices


def registry(**settings: object) -> TwinRegistry:
    cfg = TwinSettings(**settings)  # type: ignore[arg-type]
    return TwinRegistry([spec_for(d, cfg) for d in demo_devices()], cfg)


def s(device: str, tag: str, ts: float, value: object, quality: Quality = Quality.GOOD) -> Sample:
    return Sample(device, tag, ts, value, quality)  # type: ignore[arg-type]


def changed(events: list) -> list[dict]:  # type: ignore[type-arg]
    assert all(e.kind == TWIN_CHANGED for e in events)
    return [e.attributes["changes"] for e in events]


# -- debouncing ----------------------------------------------------------------------------------


def test_values_within_the_tags_deadband_make_no_event() -> None:
    reg = registry(min_interval_s=0)
    first = reg.apply([s("cnc-1", "spindle_temp", 0.0, 40.0)])
    assert changed(first.events) == [{"reported.spindle_temp": first.changes[0].changes["reported.spindle_temp"]}]
    # deadband 2.0 (the profile's alarm deadband): 41.9 is inside, 42.1 outside (from 40, the last *sent*)
    inside = reg.apply([s("cnc-1", "spindle_temp", 1.0, 41.9)])
    assert inside.changes and not inside.events  # the live stream still gets it
    outside = reg.apply([s("cnc-1", "spindle_temp", 2.0, 42.1)])
    assert changed(outside.events)[0]["reported.spindle_temp"]["value"] == 42.1


def test_float_tags_use_a_relative_deadband_and_counts_every_change() -> None:
    reg = registry(min_interval_s=0, deadband_pct=1.0)
    reg.apply([s("cnc-1", "spindle_speed", 0.0, 8000.0), s("cnc-1", "good_count", 0.0, 10)])
    assert not reg.apply([s("cnc-1", "spindle_speed", 1.0, 8079.0)]).events  # < 1 % of 8000
    assert reg.apply([s("cnc-1", "spindle_speed", 2.0, 8081.0)]).events
    assert reg.apply([s("cnc-1", "good_count", 3.0, 11)]).events  # integers: every change


def test_quality_changes_always_pass() -> None:
    reg = registry(min_interval_s=0)
    reg.apply([s("cnc-1", "spindle_temp", 0.0, 40.0)])
    events = reg.apply([s("cnc-1", "spindle_temp", 1.0, 40.1, Quality.BAD)]).events
    assert changed(events)[0]["reported.spindle_temp"]["quality"] == "bad"


def test_debounce_holds_changes_within_the_interval_and_flush_sends_the_newest() -> None:
    reg = registry(min_interval_s=5.0)

    def counts(events: list) -> list[int]:  # type: ignore[type-arg]
        return [c["reported.good_count"]["value"] for c in changed(events) if "reported.good_count" in c]

    assert counts(reg.apply([s("cnc-1", "good_count", 0.0, 1)]).events) == [1]
    assert counts(reg.apply([s("cnc-1", "good_count", 1.0, 2)]).events) == []
    assert counts(reg.apply([s("cnc-1", "good_count", 2.0, 3)]).events) == []
    assert reg.debouncer.flush(4.0) == []  # not yet 5 s since the last event
    flushed = reg.debouncer.flush(5.0)
    assert counts(flushed) == [3]
    assert flushed[0].ts == 5.0
    assert counts(reg.debouncer.flush(20.0)) == []  # nothing waiting any more


def test_a_pending_change_that_went_back_inside_the_deadband_is_dropped() -> None:
    reg = registry(min_interval_s=5.0)
    reg.apply([s("cnc-1", "spindle_temp", 0.0, 40.0)])
    reg.apply([s("cnc-1", "spindle_temp", 1.0, 45.0)])  # waits
    reg.apply([s("cnc-1", "spindle_temp", 2.0, 40.5)])  # back inside 2.0 of the value sent
    assert reg.debouncer.flush(10.0) == []


def test_state_changes_are_events_at_once() -> None:
    reg = registry(min_interval_s=60.0)
    reg.apply([s("cnc-1", "state", 0.0, 1)])
    events = reg.apply([s("cnc-1", "state", 1.0, 2)]).events
    assert changed(events)[0]["derived.state"]["category"] == "unplanned_stop"
    assert "reported.state" not in changed(events)[0]  # the code itself is debounced


def test_oee_figures_pass_a_step_of_oee_deadband() -> None:
    deb = ChangeDebouncer({}, TwinSettings(min_interval_s=0, oee_deadband=0.01))
    base = {"availability": 0.9, "performance": 0.9, "quality": 0.99, "oee": 0.8, "good": 10, "scrap": 0}
    assert deb.offer(ChangeSet("m", 0.0, {"derived.oee": base}))
    assert not deb.offer(ChangeSet("m", 1.0, {"derived.oee": {**base, "oee": 0.805}}))
    assert deb.offer(ChangeSet("m", 2.0, {"derived.oee": {**base, "oee": 0.811}}))
    assert deb.offer(ChangeSet("m", 3.0, {"derived.oee": {**base, "oee": 0.811, "good": 11}}))


# -- registry -------------------------------------------------------------------------------------


def test_unknown_devices_are_counted_not_kept() -> None:
    reg = registry()
    update = reg.apply([s("ghost", "x", 1.0, 1.0)])
    assert not update.changes and reg.unknown_samples == 1 and "ghost" not in reg


def test_one_change_set_per_device_per_batch() -> None:
    reg = registry()
    update = reg.apply([s("cnc-1", "state", 1.0, 1), s("cnc-1", "power", 1.0, 5.0), s("vib-1", "battery", 1.0, 80.0)])
    assert sorted(cs.device for cs in update.changes) == ["cnc-1", "vib-1"]
    cnc = next(cs for cs in update.changes if cs.device == "cnc-1")
    assert set(cnc.changes) == {"reported.state", "reported.power", "derived.state"}


def test_timeline_records_state_segments() -> None:
    reg = registry()
    reg.apply([s("cnc-1", "state", 100.0, 1)])
    reg.apply([s("cnc-1", "state", 160.0, 2), s("cnc-1", "stop_reason", 160.0, 11)])
    reg.apply([s("cnc-1", "state", 200.0, 1)])
    segments = reg.timeline("cnc-1", 0.0, 300.0)
    assert [(x["start"], x["end"], x["category"], x["reason"]) for x in segments] == [
        (100.0, 160.0, "running", None), (160.0, 200.0, "unplanned_stop", "11"), (200.0, 300.0, "running", None),
    ]
    assert reg.timeline("cnc-1", 150.0, 170.0)[0] == {**segments[0], "start": 150.0}  # clipped to the window


def test_restore_fills_timeline_and_trends_without_events() -> None:
    reg = registry()
    update = reg.restore([s("cnc-1", "state", 50.0, 4), s("cnc-1", "power", 50.0, 2.0), s("ghost", "x", 1.0, 1)])
    assert not update.events
    assert reg.timeline("cnc-1", 0, 100)[0]["category"] == "planned_stop"
    assert reg.trends.get("cnc-1", "power") == [(50.0, 2.0)]


def test_registry_without_trends_keeps_values_but_no_points() -> None:
    cfg = TwinSettings()
    reg = TwinRegistry([spec_for(d, cfg) for d in demo_devices()], cfg, trends=False)
    reg.apply([s("cnc-1", "power", 50.0, 2.0), s("cnc-1", "power", 51.0, 3.0)])
    assert reg.twins["cnc-1"].reported["power"].value == 3.0
    assert reg.trends.get("cnc-1", "power") == [] and reg.trends.tags("cnc-1") == []


def test_tick_starts_a_new_shift_and_flushes() -> None:
    reg = registry(shift_starts=["06:00", "14:00", "22:00"], min_interval_s=5.0)
    reg.apply([s("cnc-1", "good_count", 0.0, 1)])
    reg.apply([s("cnc-1", "good_count", 1.0, 2)])
    update = reg.tick(10.0)
    assert reg.shift_from is not None and reg.shift_from <= 10.0
    assert any("reported.good_count" in e.attributes["changes"] for e in update.events)
    assert any("derived.parts" in cs.changes for cs in update.changes)


# -- small parts ------------------------------------------------------------------------------------


def test_trend_cache_is_a_bounded_ring_of_numbers() -> None:
    trends = TrendCache(points=3)
    for i in range(5):
        trends.add(Sample("d", "t", float(i), float(i)))
    trends.add(Sample("d", "t", 2.0, 99.0))  # older than the newest: ignored
    trends.add(Sample("d", "t", 9.0, "text"))  # not a number
    trends.add(Sample("d", "b", 1.0, True))
    assert trends.get("d", "t") == [(2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]
    assert trends.get("d", "b") == [(1.0, 1.0)]
    assert trends.get("d", "t", 3.0, 3.5) == [(3.0, 3.0)]


def test_timeline_is_bounded_and_updates_the_reason_of_an_open_stop() -> None:
    line = StateTimeline(max_segments=2)
    line.record(0.0, "running")
    line.record(10.0, "unplanned_stop", "2")
    line.record(12.0, "unplanned_stop", "2", "11", "chip clearing")
    assert line.segments(0, 20)[-1].reason_text == "chip clearing"
    line.record(20.0, "running", "1")
    assert len(line) == 2 and line.segments(0, 30)[0].start == 10.0
    line.record(5.0, "planned_stop")  # before the last change: ignored
    assert len(line) == 2


@pytest.mark.parametrize(("clock", "expected"), [
    ("2026-03-02T05:59:00", "2026-03-01T22:00:00"),
    ("2026-03-02T06:00:00", "2026-03-02T06:00:00"),
    ("2026-03-02T13:30:00", "2026-03-02T06:00:00"),
    ("2026-03-02T23:15:00", "2026-03-02T22:00:00"),
])
def test_shift_start(clock: str, expected: str) -> None:
    now = datetime.fromisoformat(clock).replace(tzinfo=UTC).timestamp()
    want = datetime.fromisoformat(expected).replace(tzinfo=UTC).timestamp()
    assert shift_start(now, ["06:00", "14:00", "22:00"], UTC) == want
    assert shift_start(now, [], UTC) == datetime.fromisoformat(clock[:10]).replace(tzinfo=UTC).timestamp()
