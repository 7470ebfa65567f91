"""Value reading, counters (rollover, reset) and reasons, one track at a time."""

from __future__ import annotations

import math

import pytest

from edge_agent.oee.tracks import CounterTrack, ReasonTrack, StateTrack, code_of, count_of, flag_of
from tests.oee.oee_testkit import CNC


def test_values_are_read_leniently_but_never_guessed() -> None:
    assert [code_of(v) for v in (2, 2.0, "2", " 02 ", "2.0", True, "idle", 2.5)] == [
        "2", "2", "2", "2", "2", "1", "idle", "2.5",
    ]
    assert [flag_of(v) for v in (True, 0, 1.0, "TRUE", "off", " running ")] == [True, False, True, True, False, True]
    assert [count_of(v) for v in (7, 7.0, "7", " -3 ", "12.0")] == [7, 7, 7, -3, 12]
    for bad in (True, 1.5, "x", "", math.nan):
        with pytest.raises(ValueError):
            count_of(bad)
    with pytest.raises(ValueError):
        flag_of("maybe")
    for bad_code in (math.inf, " "):
        with pytest.raises(ValueError):
            code_of(bad_code)


def test_state_track_keeps_only_changes_and_refuses_older_samples() -> None:
    track = StateTrack(CNC)
    for ts, value in ((0.0, 1), (1.0, 1), (2.0, "1"), (3.0, 2), (4.0, 2.0), (5.0, 1)):
        assert track.feed(ts, value)
    assert list(track.ts) == [0.0, 3.0, 5.0] and track.codes == ["1", "2", "1"] and track.last_ts == 5.0
    assert not track.feed(4.5, 3) and not track.touch(4.0)
    assert track.category("9") == "unplanned_stop"
    track.prune(4.0)
    assert list(track.ts) == [3.0, 5.0]  # the state in force at 4.0 is kept


def test_counter_reset_to_a_small_value_restarts_from_it() -> None:
    counter = CounterTrack("good", ideal_cycle_s=12.0)
    for ts, value in ((0.0, 500), (12.0, 501), (13.0, 3), (25.0, 4), (37.0, 5)):
        counter.feed(ts, value)
    assert counter.count(0.0, 100.0) == 3  # 500 -> 501, then 3 -> 4 -> 5; the drop adds nothing
    assert counter.events(0.0, 100.0) == (1, 0)


def test_counter_rollover_needs_a_plausible_increment() -> None:
    # 16-bit 65530 -> 2 one second later is 8 parts: within 2 * 1 / 12 + 10 -> rollover
    quick = CounterTrack("good", ideal_cycle_s=12.0, bits=16)
    quick.feed(0.0, 65530)
    quick.feed(1.0, 2)
    assert quick.count(0.0, 10.0) == 8 and quick.events(0.0, 10.0) == (0, 1)
    # 65500 -> 2 is 38 parts in one second: a reset
    reset = CounterTrack("good", ideal_cycle_s=12.0, bits=16)
    reset.feed(0.0, 65500)
    reset.feed(1.0, 2)
    assert reset.count(0.0, 10.0) == 0 and reset.events(0.0, 10.0) == (1, 0)
    # after an hour without samples 36 parts fit in the time (2 * 3600 / 12 + 10 = 610): rollover
    gap = CounterTrack("good", ideal_cycle_s=12.0, bits=16)
    gap.feed(0.0, 65500)
    gap.feed(3600.0, 0)
    assert gap.count(0.0, 4000.0) == 36
    # a 32-bit counter below 2**16 is not mistaken for a 16-bit one when the width is known
    wide = CounterTrack("good", ideal_cycle_s=12.0, bits=32)
    wide.feed(0.0, 65530)
    wide.feed(1.0, 2)
    assert wide.count(0.0, 10.0) == 0


def test_counter_counts_half_open_windows_and_survives_pruning() -> None:
    counter = CounterTrack("good", ideal_cycle_s=1.0)
    for second in range(11):
        counter.feed(float(second), 100 + second)  # +1 at each of 1..10
    assert counter.count(1.0, 4.0) == 3 and counter.count(0.0, 11.0) == 10 and counter.count(20.0, 30.0) == 0
    counter.prune(5.0)
    assert len(counter) == 6 and counter.count(5.0, 11.0) == 6 and counter.count(7.0, 9.0) == 2


def test_reason_of_a_stop() -> None:
    track = ReasonTrack("stop_reason")
    for ts, value in ((0.0, 0), (99.0, 12), (100.5, 12), (130.0, ""), (200.0, "13"), (210.0, 0)):
        track.feed(ts, value)
    # reported 1 s before the stop at 100: within the 2 s lead
    assert track.reason(100.0, 150.0, lead_s=2.0) == "12"
    # a latched old value is not taken; the next change in the limit is
    assert track.reason(120.0, 250.0, lead_s=2.0) == "13"
    assert track.reason(120.0, 199.0, lead_s=2.0) == ""
    assert track.reason(99.5, 100.0, lead_s=0.0) == ""
