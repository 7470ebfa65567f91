"""The live engine: same figures as the offline function, bounded memory, usual windows."""

from __future__ import annotations

import pytest

from edge_agent.model import Quality, Sample
from edge_agent.oee import LiveOee, OeeError, OeeOptions, oee
from tests.oee.oee_testkit import CNC, at, early_shift, samples

SHIFT_DATA = samples(
    (at("05:50"), "state", 1), (at("05:50"), "stop_reason", 0),
    (at("05:59"), "good_count", 500), (at("05:59"), "scrap_count", 10),
    (at("09:00"), "state", 4), (at("09:30"), "state", 1),
    (at("10:10"), "state", 2), (at("10:11"), "state", 1), (at("10:11:30"), "stop_reason", 11),
    (at("11:00"), "state", 3), (at("11:00"), "stop_reason", 21), (at("11:00"), "good_count", 1400),
    (at("11:45"), "state", 1), (at("11:45"), "stop_reason", 0),
    (at("12:00"), "state", 5), (at("12:30"), "state", 1),
    (at("13:59:30"), "good_count", 2300), (at("13:59:30"), "scrap_count", 30),
)
OPTIONS = OeeOptions(reason_tag="stop_reason")


def test_live_equals_offline_for_every_window() -> None:
    cal = early_shift(("09:00", "09:30"))
    live = LiveOee("cnc-1", CNC, cal, options=OPTIONS)
    for sample in SHIFT_DATA:
        live.feed(sample)
    for start, end in ((at("06:00"), at("14:00")), (at("10:00"), at("11:00")), (at("11:30"), at("12:15"))):
        assert live.result(start, end) == oee(SHIFT_DATA, CNC, cal, start, end, options=OPTIONS)
    shift = live.current_shift(at("12:45"))
    assert shift == oee(SHIFT_DATA, CNC, cal, at("06:00"), at("12:45"), options=OPTIONS)
    assert live.last_hour(at("12:45")) == oee(SHIFT_DATA, CNC, cal, at("11:45"), at("12:45"), options=OPTIONS)
    assert live.current_shift(at("15:00")) is None and live.current_shift(at("06:00")) is None
    assert live.tags == {"state", "stop_reason", "good_count", "scrap_count"}


def test_ignores_other_devices_bad_quality_and_counts_bad_or_late_samples() -> None:
    live = LiveOee("cnc-1", CNC)
    live.feed(Sample("cnc-1", "state", at("06:00"), 1))
    live.feed(Sample("cnc-2", "state", at("06:10"), 2))
    live.feed(Sample("cnc-1", "state", at("06:20"), 2, Quality.BAD))
    live.feed(Sample("cnc-1", "good_count", at("06:30"), "lots"))
    live.feed(Sample("cnc-1", "state", at("05:00"), 2))
    live.feed(Sample("cnc-1", "spindle_speed", at("06:40"), 8000.0))
    result = live.result(at("06:00"), at("07:00"))
    assert (result.run_time_s, result.downtime_s) == (3600.0, 0.0)
    assert (live.bad_values, live.out_of_order) == (1, 1)
    assert live.current_shift(at("06:30")) == live.result(at("00:00"), at("06:30"))  # 24/7: the UTC day


def flapping(days: int) -> list[Sample]:
    """Run 60 s / stop 30 s for ``days``, sampled every 5 s, one part per sample while running."""
    out: list[Sample] = []
    good = 0
    t = at("00:00")
    end = t + days * 86400
    while t < end:
        running = (t - at("00:00")) % 90 < 60
        good += running
        out.append(Sample("cnc-1", "state", t, 1 if running else 2))
        out.append(Sample("cnc-1", "good_count", t, good))
        t += 5.0
    return out


def test_memory_is_bounded_by_retention_and_by_max_points() -> None:
    data = flapping(days=2)
    live = LiveOee("cnc-1", CNC, retention_s=86400.0)
    peak = 0
    for sample in data:
        live.feed(sample)
        peak = max(peak, live.size())
    # a day has 960 cycles of 2 state changes and 12 counter increments; the engine prunes every 10 minutes
    per_day = 960 * (2 + 12)
    assert peak <= per_day * (86400 + 600) / 86400 + 10
    now = data[-1].ts + 5.0
    assert live.history_from >= now - 86400 - 600
    hour = live.last_hour(now)
    assert hour == oee(data, CNC, None, now - 3600, now)
    with pytest.raises(OeeError, match="before the kept history"):
        live.result(now - 2 * 86400, now)
    capped = LiveOee("cnc-1", CNC, retention_s=10 * 86400.0, max_points=2000)
    for sample in data:
        capped.feed(sample)
    assert capped.size() <= 2000 + 600 / 90 * 14 + 10  # the cap, plus what arrives between two prunings
    assert capped.last_hour(now) == hour
    with pytest.raises(ValueError, match="max_points"):
        LiveOee("cnc-1", CNC, max_points=1)
