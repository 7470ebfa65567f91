"""OEE rollups: one oee_rollup event per device for every complete hour, shift and day."""

from __future__ import annotations

from edge_agent.behaviour import Period, validate_attributes
from edge_agent.oee import LiveOee, oee, options_for_profile
from edge_agent.oee.rollups import OeeRollups, Place, rollup_attributes
from edge_agent.profiles import available_profiles, load_profile
from tests.oee.oee_testkit import CNC, DEVICE, at, calendar, samples

SHIFTS = calendar(timezone="Europe/Berlin", shifts=[
    {"name": "early", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00", "end": "14:00"},
])


def day_of_work() -> list:
    """Monday 05:00-13:30 UTC (06:00-14:30 in Berlin): running, a breakdown 08:00-08:45, parts every 12 s."""
    rows = [(at("05:00"), "state", 1), (at("08:00"), "state", 3), (at("08:00:30"), "stop_reason", 21),
            (at("08:45"), "state", 1), (at("08:45:01"), "stop_reason", 0), (at("13:30"), "state", 4)]
    good = 1000
    rows.append((at("05:00"), "good_count", good))
    rows.append((at("05:00"), "scrap_count", 0))
    t = at("05:00")
    while t < at("13:30"):
        t += 12.0
        if not at("08:00") <= t < at("08:45"):
            good += 1
            rows.append((t, "good_count", good))
    return sorted(samples(*rows), key=lambda s: s.ts)


def engine() -> LiveOee:
    live = LiveOee(DEVICE, CNC, SHIFTS)
    for s in day_of_work():
        live.feed(s)
    return live


def test_every_hour_shift_and_day_that_ended_is_rolled_up_once_with_the_offline_figures() -> None:
    live = engine()
    rollups = OeeRollups(["hour", "shift", "day"], SHIFTS, since=at("04:30"))
    place = {DEVICE: Place(site="plant-a", line="L1")}
    first = rollups.tick(at("10:00"), {DEVICE: live}, place)
    # hours 05-06, ..., 09-10 UTC (Berlin hours start on the UTC hour too); no shift or day ended yet
    assert [(e.attributes["period"], e.ts) for e in first] == [("hour", at(f"{h:02d}:00")) for h in range(6, 11)]
    assert rollups.tick(at("10:00"), {DEVICE: live}, place) == []  # nothing twice
    later = rollups.tick(at("23:30"), {DEVICE: live}, place)
    kinds = [e.attributes["period"] for e in later]
    assert kinds.count("hour") == 13 and kinds.count("shift") == 1 and kinds.count("day") == 1
    shift = next(e for e in later if e.attributes["period"] == "shift")
    assert (shift.attributes["period_start"], shift.attributes["period_end"]) == (at("05:00"), at("13:00"))
    assert shift.attributes["shift"] == "early"
    day = next(e for e in later if e.attributes["period"] == "day")
    # the Berlin day of Monday: Sunday 23:00 UTC to Monday 23:00 UTC
    assert (day.attributes["period_start"], day.attributes["period_end"]) == (at("23:00", plus_days=-1), at("23:00"))
    assert day.device == DEVICE and day.ts == at("23:00")
    # the figures are those of the offline analysis over the same window, rounded as it rounds them
    reference = oee(day_of_work(), CNC, SHIFTS, at("05:00"), at("13:00"))
    figures = reference.as_dict()
    for key in ("planned_time_s", "run_time_s", "downtime_s", "availability", "performance", "quality", "oee",
                "total_count", "good_count", "scrap_count", "losses_s", "mtbf_s", "mttr_s", "performance_raw",
                "nothing_produced"):
        assert shift.attributes[key] == figures[key], key
    assert shift.attributes["downtime_s"] == 2700.0 and shift.attributes["breakdown_count"] == 1
    assert shift.attributes["site"] == "plant-a" and shift.attributes["line"] == "L1" and "area" not in shift.attributes
    # outside the shift nothing is planned: the 14:00-15:00 UTC hour is all zeros, nothing produced
    quiet = next(e for e in later if e.attributes["period"] == "hour" and e.ts == at("15:00"))
    assert quiet.attributes["planned_time_s"] == 0.0 and quiet.attributes["nothing_produced"] is True
    for event in first + later:
        validate_attributes(event.kind, event.attributes)
        assert event.kind == "oee_rollup"


def test_ids_depend_on_device_and_period_so_a_recomputation_is_the_same_event() -> None:
    live = engine()
    a = OeeRollups(["hour", "shift", "day"], SHIFTS, since=at("04:30")).tick(at("23:30"), {DEVICE: live})
    b = OeeRollups(["hour", "shift", "day"], SHIFTS, since=at("04:30")).tick(at("23:30"), {DEVICE: live})
    assert [e.id for e in a] == [e.id for e in b] and len({e.id for e in a}) == len(a)
    assert [e.attributes for e in a] == [e.attributes for e in b]
    other = OeeRollups(["hour"], SHIFTS, since=at("04:30")).tick(at("23:30"), {"cnc-2": _renamed("cnc-2")})
    assert not {e.id for e in other} & {e.id for e in a}


def _renamed(device: str) -> LiveOee:
    live = LiveOee(device, CNC, SHIFTS)
    for s in day_of_work():
        live.feed(s.__class__(device, s.tag, s.ts, s.value))
    return live


def test_periods_without_data_are_skipped_and_a_partial_one_shows_its_gap() -> None:
    live = engine()  # data from 05:00 UTC
    rollups = OeeRollups(["hour", "day"], SHIFTS, since=at("01:00"))
    events = rollups.tick(at("07:00"), {DEVICE: live})
    # 01-02 ... 04-05 had no data: skipped; 05-06 and 06-07 rolled up
    assert [e.ts for e in events] == [at("06:00"), at("07:00")] and rollups.skipped == 4
    # a period the agent saw only the end of: the rest is no data, out of the planned time
    late = LiveOee(DEVICE, CNC, SHIFTS)
    late.feed(samples((at("05:30"), "state", 1))[0])
    for s in day_of_work():
        if s.ts >= at("05:30"):
            late.feed(s)
    [partial] = OeeRollups(["hour"], SHIFTS, since=at("05:30")).tick(at("06:00"), {DEVICE: late})
    assert partial.attributes["no_data_s"] == 1800.0 and partial.attributes["planned_time_s"] == 1800.0
    # an engine that has forgotten the period's start (retention) gives nothing rather than a wrong figure
    short = LiveOee(DEVICE, CNC, SHIFTS, retention_s=3600.0)
    for s in day_of_work():
        short.feed(s)
    assert short.history_from > at("06:00")
    assert OeeRollups(["hour"], SHIFTS, since=at("05:00")).tick(at("07:00"), {DEVICE: short}) == []


def test_restart_rolls_up_only_periods_that_end_after_it() -> None:
    live = engine()
    before = OeeRollups(["hour"], SHIFTS, since=at("04:59")).tick(at("09:10"), {DEVICE: live})
    after = OeeRollups(["hour"], SHIFTS, since=at("09:10")).tick(at("11:00"), {DEVICE: live})
    assert [e.ts for e in before] == [at(f"{h:02d}:00") for h in range(6, 10)]
    assert [e.ts for e in after] == [at("10:00"), at("11:00")]


def test_without_a_calendar_there_are_no_shifts_and_days_are_utc() -> None:
    live = LiveOee(DEVICE, CNC)
    for s in day_of_work():
        live.feed(s)
    events = OeeRollups(["shift", "day"], None, since=at("04:00")).tick(at("00:00", plus_days=1), {DEVICE: live})
    [day] = events
    assert (day.attributes["period_start"], day.attributes["period_end"]) == (at("00:00"), at("00:00", plus_days=1))
    # 24/7 planned; no data before 05:00 and the planned stop from 13:30 are left out of the planned time
    assert day.attributes["planned_time_s"] == 8.5 * 3600.0 and day.attributes["no_data_s"] == 5 * 3600.0


def test_rollup_attributes_follow_the_catalogue_for_a_shift_period() -> None:
    profile = load_profile(available_profiles([])["cnc_vmc"])
    live = LiveOee(DEVICE, CNC, SHIFTS, options=options_for_profile(profile))
    for s in day_of_work():
        live.feed(s)
    period = Period("shift", at("05:00"), at("13:00"), "early")
    attributes = rollup_attributes(live.result(period.start, period.end), period)
    validate_attributes("oee_rollup", attributes)
    assert attributes["losses_s"]["breakdowns"] == 2700.0 and attributes["small_stop_count"] == 0
