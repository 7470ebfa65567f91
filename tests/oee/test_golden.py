"""Golden scenarios: every expected figure is derived by hand in the comments and written out literally.

Ideal cycle time 12 s and micro-stop threshold 120 s (the cnc_vmc profile) unless a test says otherwise.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from edge_agent.oee import ALWAYS, OeeOptions, oee
from edge_agent.profiles import OeeSignals
from tests.oee.oee_testkit import CNC, assert_identity, at, calendar, check, early_shift, samples


def test_clean_shift() -> None:
    # shift 06:00-14:00 (28800 s), running all the time
    # good 1000 -> 2000 -> 3100 = 2100, scrap 50 -> 80 -> 110 = 60; the 14:00 reading is outside [06:00, 14:00)
    # total 2160; P = 12 * 2160 / 28800 = 0.9; Q = 2100 / 2160 = 0.97222...; OEE = 12 * 2100 / 28800 = 0.875
    # reduced speed = 28800 - 12 * 2160 = 2880; quality loss = 12 * 60 = 720
    data = samples(
        (at("05:50"), "state", 1),
        (at("05:59"), "good_count", 1000), (at("05:59"), "scrap_count", 50),
        (at("10:00"), "good_count", 2000), (at("10:00"), "scrap_count", 80),
        (at("13:59"), "good_count", 3100), (at("13:59"), "scrap_count", 110),
        (at("14:00"), "good_count", 3110),
        (at("14:10"), "state", 0),
    )
    result = oee(data, CNC, early_shift(), at("06:00"), at("14:00"))
    check(
        result, device="cnc-1", planned_time_s=28800.0, run_time_s=28800.0, downtime_s=0.0, changeover_s=0.0,
        off_calendar_s=0.0, availability=1.0, performance=0.9, performance_raw=0.9, quality=0.9722222222222222,
        oee=0.875, total_count=2160, good_count=2100, scrap_count=60, nothing_produced=False,
        losses={"breakdowns": 0.0, "setup_adjustments": 0.0, "small_stops": 0.0, "reduced_speed": 2880.0,
                "quality": 720.0},
        mtbf_s=None, mttr_s=None, breakdown_count=0, stops=(),
    )
    assert_identity(result, 12.0)


def test_shift_with_break_and_45_minute_breakdown() -> None:
    # shift 06:00-14:00 with a break 09:00-09:30: calendar time 28800 - 1800 = 27000 s
    # the machine shows a planned stop in the break (off the calendar anyway) and breaks down 11:00-11:45 (2700 s)
    # PPT = 27000; downtime = 2700; run = 24300; A = 0.9
    # good 500 -> 1100 -> 1400 -> 2300 = 1800; scrap 10 -> 20 -> 30 = 20; total 1820
    # P = 12 * 1820 / 24300 = 21840 / 24300 = 0.898765432...; Q = 1800 / 1820 = 0.989010989...
    # OEE = 12 * 1800 / 27000 = 0.8; reduced speed = 24300 - 21840 = 2460; quality loss = 240
    # one failure: MTBF = 24300 / 1, MTTR = 2700 / 1
    data = samples(
        (at("05:50"), "state", 1),
        (at("05:59"), "good_count", 500), (at("05:59"), "scrap_count", 10),
        (at("08:59"), "good_count", 1100),
        (at("09:00"), "state", 4), (at("09:00"), "stop_reason", 41),
        (at("09:30"), "state", 1), (at("09:30"), "stop_reason", 0),
        (at("11:00"), "state", 3), (at("11:00"), "stop_reason", 21),
        (at("11:00"), "good_count", 1400), (at("11:00"), "scrap_count", 20),
        (at("11:45"), "state", 1), (at("11:45"), "stop_reason", 0),
        (at("13:59:30"), "good_count", 2300), (at("13:59:30"), "scrap_count", 30),
        (at("14:00"), "state", 0),
    )
    result = oee(data, CNC, early_shift(("09:00", "09:30")), at("06:00"), at("14:00"),
                 options=OeeOptions(reason_tag="stop_reason"))
    check(
        result, planned_time_s=27000.0, run_time_s=24300.0, downtime_s=2700.0, off_calendar_s=1800.0,
        planned_stop_s=0.0, availability=0.9, performance=0.8987654320987654, quality=0.989010989010989,
        oee=0.8, total_count=1820, good_count=1800, scrap_count=20,
        losses={"breakdowns": 2700.0, "setup_adjustments": 0.0, "small_stops": 0.0, "reduced_speed": 2460.0,
                "quality": 240.0},
        mtbf_s=24300.0, mttr_s=2700.0, breakdown_count=1,
    )
    breakdown = next(s for s in result.stops if s.kind == "breakdown")
    assert (breakdown.start, breakdown.end, breakdown.code, breakdown.reason) == (at("11:00"), at("11:45"), "3", "21")
    planned = next(s for s in result.stops if s.kind == "planned_stop")
    assert (planned.reason, planned.planned_s) == ("41", 0.0)
    assert_identity(result, 12.0)


def test_micro_stops_just_under_and_just_over_the_threshold() -> None:
    # window 06:00-07:00 (24/7 calendar), threshold 120 s
    # stops: 120 s and 119 s -> small stops (239 s); 121 s and 180 s -> downtime (301 s)
    # PPT = 3600; run = 3600 - 301 = 3299; A = 3299 / 3600 = 0.916388888...
    # good 100 -> 340 = 240, scrap unchanged; P = 2880 / 3299 = 0.872991815...; Q = 1; OEE = 2880 / 3600 = 0.8
    # reduced speed = 3299 - 239 - 2880 = 180; MTBF = 3299 / 2 = 1649.5; MTTR = 301 / 2 = 150.5
    data = samples(
        (at("05:00"), "state", 1), (at("05:00"), "good_count", 100), (at("05:00"), "scrap_count", 7),
        (at("06:10:00"), "state", 2), (at("06:12:00"), "state", 1),
        (at("06:20:00"), "state", 2), (at("06:21:59"), "state", 1),
        (at("06:30:00"), "state", 2), (at("06:32:01"), "state", 1),
        (at("06:40:00"), "state", 2), (at("06:43:00"), "state", 1),
        (at("06:59:59"), "good_count", 340), (at("06:59:59"), "scrap_count", 7),
    )
    result = oee(data, CNC, None, at("06:00"), at("07:00"))
    check(
        result, planned_time_s=3600.0, run_time_s=3299.0, downtime_s=301.0, small_stops_s=239.0,
        availability=0.9163888888888889, performance=0.8729918156744468, quality=1.0, oee=0.8,
        total_count=240, good_count=240, scrap_count=0,
        losses={"breakdowns": 301.0, "setup_adjustments": 0.0, "small_stops": 239.0, "reduced_speed": 180.0,
                "quality": 0.0},
        mtbf_s=1649.5, mttr_s=150.5, breakdown_count=2, small_stop_count=2,
    )
    assert [(s.kind, s.duration_s) for s in result.stops] == [
        ("small_stop", 120.0), ("small_stop", 119.0), ("breakdown", 121.0), ("breakdown", 180.0),
    ]
    assert_identity(result, 12.0)


def test_changeover() -> None:
    # window 06:00-07:00: running, changeover 06:20-06:50 (1800 s, reason 51), running
    # PPT = 3600; run = 3600 - 1800 = 1800; A = 0.5
    # good 20 -> 140 = 120, scrap 3 -> 5 = 2, total 122; P = 1464 / 1800 = 0.813333...
    # Q = 120 / 122 = 0.983606557...; OEE = 1440 / 3600 = 0.4; reduced speed = 1800 - 1464 = 336; quality = 24
    data = samples(
        (at("05:30"), "state", 1), (at("05:30"), "good_count", 20), (at("05:30"), "scrap_count", 3),
        (at("06:20"), "state", 5), (at("06:20"), "stop_reason", 51),
        (at("06:50"), "state", 1), (at("06:50"), "stop_reason", 0),
        (at("06:55"), "good_count", 140), (at("06:55"), "scrap_count", 5),
    )
    result = oee(data, CNC, ALWAYS, at("06:00"), at("07:00"), options=OeeOptions(reason_tag="stop_reason"))
    check(
        result, planned_time_s=3600.0, run_time_s=1800.0, downtime_s=0.0, changeover_s=1800.0,
        availability=0.5, performance=0.8133333333333334, quality=0.9836065573770492, oee=0.4,
        total_count=122, good_count=120, scrap_count=2,
        losses={"breakdowns": 0.0, "setup_adjustments": 1800.0, "small_stops": 0.0, "reduced_speed": 336.0,
                "quality": 24.0},
        mtbf_s=None, mttr_s=None, changeover_count=1,
    )
    (stop,) = result.stops
    assert (stop.kind, stop.reason, stop.planned_s) == ("changeover", "51", 1800.0)
    assert_identity(result, 12.0)


def _rollover_and_reset(options: OeeOptions) -> None:
    # ideal cycle 5 s; window 06:00-07:00, running throughout
    # good (16 bit): 65000 -> 65535 (+535) -> 0 (rollover +1) -> 70 (+70) -> 75 (+5) -> 0 one second later
    #   (a wrap would be 65461 parts in 1 s: reset, +0) -> 45 (+45) = 656
    # scrap (32 bit): 4294967290 -> 4294967295 (+5) -> 3 (rollover +4) -> 6 (+3) = 12
    # total 668; P = 5 * 668 / 3600 = 0.927777...; Q = 656 / 668 = 0.982035928...
    # OEE = 5 * 656 / 3600 = 0.911111...; reduced speed = 3600 - 3340 = 260; quality = 60
    signals = OeeSignals(state_tag="state", state_codes={"1": "running"}, good_counter="good_count",
                         scrap_counter="scrap_count", ideal_cycle_time_s=5.0)
    data = samples(
        (at("05:59"), "state", 1), (at("05:59"), "good_count", 65000), (at("05:59"), "scrap_count", 4294967290),
        (at("06:30:00"), "good_count", 65535),
        (at("06:30:12"), "good_count", 0),
        (at("06:40:00"), "scrap_count", 4294967295),
        (at("06:40:12"), "scrap_count", 3),
        (at("06:45:00"), "good_count", 70),
        (at("06:49:59"), "good_count", 75),
        (at("06:50:00"), "good_count", 0),
        (at("06:55:00"), "scrap_count", 6),
        (at("06:59:00"), "good_count", 45),
        (at("07:00:00"), "good_count", 46),
    )
    result = oee(data, signals, None, at("06:00"), at("07:00"), options=options)
    check(
        result, planned_time_s=3600.0, run_time_s=3600.0, availability=1.0, performance=0.9277777777777778,
        quality=0.9820359281437125, oee=0.9111111111111111, total_count=668, good_count=656, scrap_count=12,
        counter_rollovers=2, counter_resets=1,
        losses={"breakdowns": 0.0, "setup_adjustments": 0.0, "small_stops": 0.0, "reduced_speed": 260.0,
                "quality": 60.0},
    )
    assert_identity(result, 5.0)


def test_counter_rollover_and_reset_with_known_widths() -> None:
    _rollover_and_reset(OeeOptions(counter_bits={"good_count": 16, "scrap_count": 32}))


def test_counter_rollover_and_reset_with_guessed_widths() -> None:
    _rollover_and_reset(OeeOptions())


def test_night_shift_across_midnight_and_the_autumn_dst_change() -> None:
    # Europe/Berlin, Saturday night shift 22:00-06:00 with a break 00:00-00:30, on 25/26 October 2025:
    # clocks go back at 03:00 CEST -> 02:00 CET, so the shift is 20:00Z-05:00Z = 9 h = 32400 s; minus the
    # break: 30600 s. Window Sat 21:00 CEST - Sun 07:00 CET = 19:00Z-06:00Z = 39600 s, off calendar 9000 s.
    # breakdown 03:10-03:40 CET (1800 s); PPT 30600, run 28800, A = 28800 / 30600 = 0.941176470...
    # good 10000 -> 11000 -> 12000 = 2000, scrap 100 -> 120 -> 140 = 40 (the 05:30Z reading is after the shift)
    # P = 12 * 2040 / 28800 = 0.85; Q = 2000 / 2040 = 0.980392156...; OEE = 24000 / 30600 = 0.784313725...
    # reduced speed = 28800 - 24480 = 4320; quality = 480
    sat, sun = date(2025, 10, 25), date(2025, 10, 26)
    berlin = calendar(timezone="Europe/Berlin", shifts=[{
        "name": "night", "days": ["sat"], "start": "22:00", "end": "06:00",
        "breaks": [{"start": "00:00", "end": "00:30"}],
    }])
    data = samples(
        (at("18:00", sat), "state", 1), (at("18:00", sat), "good_count", 10000),
        (at("18:00", sat), "scrap_count", 100),
        (at("23:00", sat), "good_count", 11000), (at("23:00", sat), "scrap_count", 120),
        (at("02:10", sun), "state", 3), (at("02:40", sun), "state", 1),
        (at("04:59", sun), "good_count", 12000), (at("04:59", sun), "scrap_count", 140),
        (at("05:30", sun), "good_count", 12100),
    )
    start = datetime(2025, 10, 25, 21, 0, tzinfo=berlin.tz)
    end = datetime(2025, 10, 26, 7, 0, tzinfo=berlin.tz)
    assert (start.timestamp(), end.timestamp()) == (at("19:00", sat), at("06:00", sun))
    result = oee(data, CNC, berlin, start, end)
    check(
        result, planned_time_s=30600.0, off_calendar_s=9000.0, run_time_s=28800.0, downtime_s=1800.0,
        availability=0.9411764705882353, performance=0.85, quality=0.9803921568627451, oee=0.7843137254901961,
        total_count=2040, good_count=2000, scrap_count=40,
        losses={"breakdowns": 1800.0, "setup_adjustments": 0.0, "small_stops": 0.0, "reduced_speed": 4320.0,
                "quality": 480.0},
        mtbf_s=28800.0, mttr_s=1800.0,
    )
    assert_identity(result, 12.0)


def test_night_shift_across_the_spring_dst_change() -> None:
    # 29/30 March 2025, clocks jump 02:00 CET -> 03:00 CEST: the shift 22:00-06:00 is 21:00Z-04:00Z = 25200 s
    # window Sat 21:00 CET - Sun 07:00 CEST = 20:00Z-05:00Z; running throughout, good 0 -> 2000
    # P = 24000 / 25200 = 0.952380952...; A = Q = 1
    sat, sun = date(2025, 3, 29), date(2025, 3, 30)
    berlin = calendar(timezone="Europe/Berlin", shifts=[
        {"name": "night", "days": ["sat"], "start": "22:00", "end": "06:00"},
    ])
    data = samples(
        (at("20:00", sat), "state", 1), (at("20:00", sat), "good_count", 0), (at("20:00", sat), "scrap_count", 0),
        (at("03:59", sun), "good_count", 2000),
    )
    result = oee(data, CNC, berlin, datetime.fromisoformat("2025-03-29T21:00:00+01:00"),
                 datetime.fromisoformat("2025-03-30T07:00:00+02:00"))
    check(result, planned_time_s=25200.0, off_calendar_s=7200.0, run_time_s=25200.0, availability=1.0,
          performance=0.9523809523809523, quality=1.0, oee=0.9523809523809523, good_count=2000)


def test_machine_that_never_runs() -> None:
    # broken down from 05:00 to 15:00: the whole shift 06:00-14:00 (28800 s) is downtime of one failure
    # A = 0, P = 0 (no run time), Q = 1 with the nothing-produced flag, OEE = 0; MTBF = 0 / 1, MTTR = 28800 / 1
    data = samples(
        (at("05:00"), "state", 3), (at("05:00"), "good_count", 5), (at("05:00"), "scrap_count", 1),
        (at("10:00"), "good_count", 5), (at("15:00"), "state", 1),
    )
    result = oee(data, CNC, early_shift(), at("06:00"), at("14:00"))
    check(
        result, planned_time_s=28800.0, run_time_s=0.0, downtime_s=28800.0, availability=0.0, performance=0.0,
        quality=1.0, nothing_produced=True, oee=0.0, total_count=0, good_count=0, scrap_count=0,
        losses={"breakdowns": 28800.0, "setup_adjustments": 0.0, "small_stops": 0.0, "reduced_speed": 0.0,
                "quality": 0.0},
        mtbf_s=0.0, mttr_s=28800.0, breakdown_count=1,
    )
    (stop,) = result.stops
    assert (stop.start, stop.end, stop.duration_s, stop.planned_s) == (at("05:00"), at("15:00"), 36000.0, 28800.0)
    assert_identity(result, 12.0)


def test_machine_without_orders_or_without_data_has_no_planned_time() -> None:
    # "no order" (excluded) all shift: PPT 0 and every ratio 0 except Q = 1 (nothing produced)
    idle = oee(samples((at("05:00"), "state", 0)), CNC, early_shift(), at("06:00"), at("14:00"))
    check(idle, planned_time_s=0.0, excluded_s=28800.0, availability=0.0, performance=0.0, quality=1.0, oee=0.0,
          nothing_produced=True, mtbf_s=None)
    # no samples at all: the shift is time without data, not downtime
    blind = oee([], CNC, early_shift(), at("06:00"), at("14:00"))
    check(blind, device="", planned_time_s=0.0, no_data_s=28800.0, downtime_s=0.0, oee=0.0)
    # data starting at 07:00: 06:00-07:00 has no data, 07:00-14:00 runs
    late = oee(samples((at("07:00"), "state", 1)), CNC, early_shift(), at("06:00"), at("14:00"))
    check(late, planned_time_s=25200.0, no_data_s=3600.0, run_time_s=25200.0, availability=1.0)


def test_reasons_reported_after_the_stop() -> None:
    # window 06:00-07:00; the PLC shows reason 0 while running and during these stops:
    # stop 1 06:10-06:25 (900 s, downtime): reason 13 reported 20 s after it ended -> "13"
    # stop 2 06:40-06:41 (60 s, small): nothing during it; the next stop starts 06:42, so the reason
    #   reported at 06:42:30 is not taken for it -> ""
    # stop 3 06:42-06:43 (60 s, small): reason 12 reported during it -> "12"
    # stop 4 06:50-06:52:30 (150 s, downtime): reason 11 reported 330 s after, past the 300 s look-ahead -> ""
    # PPT 3600, small 120, downtime 1050, run 2550, A = 0.708333...; good 200: P = 2400 / 2550, OEE = 2/3
    data = samples(
        (at("05:00"), "state", 1), (at("05:00"), "stop_reason", 0),
        (at("05:00"), "good_count", 0), (at("05:00"), "scrap_count", 0),
        (at("06:10"), "state", 2), (at("06:25"), "state", 1),
        (at("06:25:20"), "stop_reason", 13), (at("06:26"), "stop_reason", 0),
        (at("06:40"), "state", 2), (at("06:41"), "state", 1),
        (at("06:42"), "state", 2), (at("06:42:30"), "stop_reason", 12), (at("06:43"), "state", 1),
        (at("06:43"), "stop_reason", 0),
        (at("06:50"), "state", 2), (at("06:52:30"), "state", 1),
        (at("06:58"), "stop_reason", 11), (at("06:58:10"), "stop_reason", 0),
        (at("06:59"), "good_count", 200),
    )
    result = oee(data, CNC, None, at("06:00"), at("07:00"), options=OeeOptions(reason_tag="stop_reason"))
    check(result, planned_time_s=3600.0, small_stops_s=120.0, downtime_s=1050.0, run_time_s=2550.0,
          availability=0.7083333333333334, performance=0.9411764705882353, oee=0.6666666666666666,
          breakdown_count=2, small_stop_count=2)
    assert [(s.kind, s.reason) for s in result.stops] == [
        ("breakdown", "13"), ("small_stop", ""), ("small_stop", "12"), ("breakdown", ""),
    ]


def test_run_flag_only_and_capped_performance() -> None:
    # a run flag instead of a state code: every stop is an unplanned stop of unknown reason
    # window 06:00-07:00: stopped 06:30-06:31 (60 s, small stop); good 0 -> 330 in the window
    # P raw = 12 * 330 / 3600 = 1.1, capped to 1; OEE = 1 * 1 * 1 = 1 when capped
    signals = OeeSignals(run_tag="running", good_counter="good_count", ideal_cycle_time_s=12.0)
    data = samples(
        (at("05:59"), "running", True), (at("05:59"), "good_count", 0),
        (at("06:30"), "running", False), (at("06:31"), "running", "true"),
        (at("06:59"), "good_count", 330),
    )
    raw = oee(data, signals, None, at("06:00"), at("07:00"))
    check(raw, run_time_s=3600.0, small_stops_s=60.0, performance=1.1, performance_raw=1.1, oee=1.1,
          losses={"breakdowns": 0.0, "setup_adjustments": 0.0, "small_stops": 60.0, "reduced_speed": -420.0,
                  "quality": 0.0})
    capped = oee(data, signals, None, at("06:00"), at("07:00"), options=OeeOptions(cap_performance=True))
    check(capped, performance=1.0, performance_raw=1.1, oee=1.0)
    (stop,) = raw.stops
    assert (stop.code, stop.reason, stop.kind) == ("0", "", "small_stop")


def test_window_in_the_middle_of_a_long_stop_classifies_it_by_its_whole_length() -> None:
    # a 10 minute stop 06:55-07:05 is downtime in the 07:00-08:00 window although only 300 s lie inside it
    data = samples((at("06:00"), "state", 1), (at("06:55"), "state", 2), (at("07:05"), "state", 1))
    result = oee(data, CNC, None, at("07:00"), at("08:00"))
    check(result, downtime_s=300.0, small_stops_s=0.0, run_time_s=3300.0, breakdown_count=1)
    assert result.as_dict()["from"] == datetime(2025, 3, 3, 7, tzinfo=UTC).isoformat()
