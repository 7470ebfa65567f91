"""Random timelines against a second-by-second oracle written independently of the code under test.

The oracle looks at every second of the window: is it planned (06:00-14:00 UTC minus 09:00-09:15), which
state holds, how long the stop around it lasts. The code under test works on intervals instead.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

import pytest

from edge_agent.oee import oee
from tests.oee.oee_testkit import CNC, assert_identity, at, early_shift, samples

CATEGORY = {"0": "excluded", "1": "running", "2": "unplanned_stop", "3": "unplanned_stop", "4": "planned_stop",
            "5": "changeover"}
DAY0 = int(at("00:00"))


def planned(second: int) -> bool:
    clock = (second - DAY0) % 86400
    return 6 * 3600 <= clock < 14 * 3600 and not 9 * 3600 <= clock < 9 * 3600 + 900


def timeline(rng: random.Random) -> tuple[list[tuple[int, str]], list[tuple[int, int]], int]:
    """State changes, good counter readings and the end of the data."""
    t = DAY0 + 5 * 3600 + rng.randrange(3600)
    changes: list[tuple[int, str]] = []
    while t < DAY0 + 15 * 3600:
        code = rng.choice("111123450" + "7")  # 7 is not in the profile: an unplanned stop
        if changes and changes[-1][1] == code:
            continue
        changes.append((t, code))
        t += rng.choice((rng.randint(20, 200), rng.randint(100, 140), rng.randint(200, 3000)))
    end = t
    readings = []
    good = rng.randrange(1000)
    state = iter(changes)
    current, upcoming = next(state), next(state, None)
    for second in range(changes[0][0], end, 7):
        while upcoming is not None and upcoming[0] <= second:
            current, upcoming = upcoming, next(state, None)
        if current[1] == "1":
            good += rng.choice((0, 1, 1))
        readings.append((second, good))
    return changes, readings, end


def oracle(changes: list[tuple[int, str]], readings: list[tuple[int, int]], end: int, wf: int, wt: int) -> Counter:
    first = changes[0][0]
    category: dict[int, tuple[str, int]] = {}
    runs: list[tuple[int, int, str]] = []  # (start, end, category)
    for (t, code), nxt in zip(changes, [*changes[1:], (end, "")], strict=True):
        cat = CATEGORY.get(code, "unplanned_stop")
        if runs and runs[-1][2] == cat:
            runs[-1] = (runs[-1][0], nxt[0], cat)
        else:
            runs.append((t, nxt[0], cat))
    for start, stop, cat in runs:
        for second in range(start, stop):
            category[second] = (cat, stop - start)
    tally: Counter = Counter()
    for second in range(wf, wt):
        if not planned(second):
            tally["off_calendar_s"] += 1
        elif second < first:
            tally["no_data_s"] += 1
        else:
            cat, length = category[second]
            if cat == "unplanned_stop":
                cat = "small_stops_s" if length <= 120 else "downtime_s"
            tally[{"running": "running", "changeover": "changeover_s", "planned_stop": "planned_stop_s",
                   "excluded": "excluded_s"}.get(cat, cat)] += 1
    for (_, before), (t, after) in pairwise(readings):
        if wf <= t < wt and planned(t):
            tally["good_count"] += after - before
    return tally


@pytest.mark.parametrize("seed", range(20))
def test_random_timeline_matches_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    changes, readings, end = timeline(rng)
    wf = DAY0 + rng.randint(5 * 3600, 8 * 3600)
    wt = wf + rng.randint(3600, 6 * 3600)
    data = samples(
        *[(float(t), "state", int(code)) for t, code in changes],
        *[(float(t), "good_count", value) for t, value in readings],
        (float(end), "state", int(changes[-1][1])),
    )
    result = oee(data, CNC, early_shift(("09:00", "09:15")), float(wf), float(wt))
    want = oracle(changes, readings, end, wf, wt)
    ppt = wt - wf - want["off_calendar_s"] - want["planned_stop_s"] - want["excluded_s"] - want["no_data_s"]
    run = ppt - want["downtime_s"] - want["changeover_s"]
    for name in ("off_calendar_s", "no_data_s", "planned_stop_s", "excluded_s", "downtime_s", "small_stops_s",
                 "changeover_s"):
        assert getattr(result, name) == pytest.approx(want[name], abs=1e-6), name
    assert result.planned_time_s == pytest.approx(ppt, abs=1e-6)
    assert result.run_time_s == pytest.approx(run, abs=1e-6)
    assert result.good_count == want["good_count"] == result.total_count
    if ppt > 0:
        assert result.availability == pytest.approx(run / ppt, abs=1e-9)
    if run > 0:
        assert result.performance == pytest.approx(12.0 * want["good_count"] / run, abs=1e-9)
    if any(code == "7" and wf <= t < wt for t, code in changes):
        assert result.unknown_codes == ("7",)
    assert_identity(result, 12.0)
