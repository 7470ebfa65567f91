"""The OEE computation: state timeline x shift calendar x counters -> :class:`OeeResult`.

Pure: no clock, no I/O. :func:`oee` takes samples; :func:`compute` takes the
tracks they fill, which is what the live engine keeps. Definitions (ISO
22400-2 time model) are in docs/oee.md; in short, within the window:

* planned production time (PPT) = calendar-planned time minus time in a
  planned-stop or excluded state and time with no known state;
* an unplanned stop (a maximal run of unplanned-stop states) lasting at most
  ``micro_stop_s`` is a small stop (performance loss), a longer one downtime;
  changeover is an availability loss;
* run time = PPT - downtime - changeover; A = run / PPT;
  P = ideal cycle x total / run; Q = good / total; OEE = A x P x Q.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from edge_agent.model import Quality, Sample
from edge_agent.oee._intervals import OverlapSweep, total
from edge_agent.oee.calendar import ALWAYS, Calendar
from edge_agent.oee.model import Category, Losses, OeeError, OeeOptions, OeeResult, Stop, StopKind
from edge_agent.oee.tracks import CounterTrack, DeviceTracks
from edge_agent.profiles import OeeSignals

__all__ = ["compute", "epoch", "oee"]

NO_DATA: Final = "no_data"


def epoch(moment: datetime | float) -> float:
    """Epoch seconds of an aware datetime (a float passes through); naive datetimes are errors."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise OeeError(f"{moment.isoformat()}: a window bound needs a time zone or UTC offset")
        return moment.timestamp()
    return float(moment)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def oee(
    samples: Iterable[Sample],
    signals: OeeSignals,
    calendar: Calendar | None,
    window_from: datetime | float,
    window_to: datetime | float,
    *,
    options: OeeOptions | None = None,
) -> OeeResult:
    """OEE of one device over ``[window_from, window_to)`` from its samples.

    ``samples`` may come in any order and may reach before the window (the
    state and counter values in force at its start) and after it (the end of a
    stop still going on, reasons reported later). Samples of BAD quality are
    skipped. ``calendar`` None means planned 24/7. Raises OeeError for samples
    of more than one device or an empty or reversed window.
    """
    ordered = sorted(samples, key=lambda s: s.ts)
    devices = {s.device for s in ordered}
    if len(devices) > 1:
        raise OeeError(f"samples of several devices ({', '.join(sorted(devices))}): pass one device's samples")
    tracks = DeviceTracks(signals, options, device=next(iter(devices), ""))
    for sample in ordered:
        if sample.quality != Quality.BAD:
            tracks.feed(sample.tag, sample.ts, sample.value)
    return compute(tracks, calendar, window_from, window_to)


class _Tally:
    """Seconds of planned time per kind, and stop counts, gathered over the runs of the window."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(
            ("running", "breakdown", "small_stop", "changeover", "planned_stop", "excluded", NO_DATA), 0.0
        )
        self.counts: dict[str, int] = {"breakdown": 0, "small_stop": 0, "changeover": 0}
        self.stops: list[Stop] = []
        self.unknown: set[str] = set()


def _kind(category: Category, duration: float, micro_stop_s: float) -> StopKind | None:
    if category == "running":
        return None
    if category == "unplanned_stop":
        return "small_stop" if duration <= micro_stop_s else "breakdown"
    return category


def _walk(tracks: DeviceTracks, sweep: OverlapSweep, wf: float, wt: float, tally: _Tally) -> None:
    """Go through the maximal runs of one category that overlap the window."""
    state = tracks.state
    ts, codes = state.ts, state.codes
    n = len(ts)
    horizon = max(wt, state.last_ts)
    i = bisect_right(ts, wf) - 1
    if i < 0:
        known = ts[0] if n else horizon
        tally.seconds[NO_DATA] += sweep.overlap(wf, min(known, wt))
        i = 0
    if i >= n:
        return
    first = i  # the run in force at the window start may have begun before its change point
    while first > 0 and state.category(codes[first - 1]) == state.category(codes[i]):
        first -= 1
    while i < n and ts[i] < wt:
        category = state.category(codes[i])
        j = i
        while j + 1 < n and state.category(codes[j + 1]) == category:
            j += 1
        start = ts[first]
        end = ts[j + 1] if j + 1 < n else horizon
        planned = sweep.overlap(max(start, wf), min(end, wt))
        tally.unknown.update(c for c in codes[i:j + 1] if c not in state.categories)
        kind = _kind(category, end - start, tracks.signals.micro_stop_s)
        if kind is None:
            tally.seconds["running"] += planned
        else:
            tally.seconds[kind] += planned
            if kind in tally.counts and planned > 0:
                tally.counts[kind] += 1
            tally.stops.append(Stop(
                start=start, end=end, category=category, kind=kind, code=codes[first],
                reason=_reason(tracks, j, start, end, horizon), planned_s=planned, open=j + 1 >= n,
            ))
        i = first = j + 1


def _reason(tracks: DeviceTracks, last: int, start: float, end: float, horizon: float) -> str:
    """Reason of the stop ``[start, end)`` whose last change point is ``last`` (see docs/oee.md)."""
    if tracks.reason is None:
        return ""
    state, options = tracks.state, tracks.options
    limit = end
    following = last + 1
    if following < len(state.ts) and state.category(state.codes[following]) == "running":
        next_stop = state.ts[following + 1] if following + 1 < len(state.ts) else horizon
        limit = max(end, min(end + options.reason_lookahead_s, next_stop))
    return tracks.reason.reason(start, limit, options.reason_lead_s)


def compute(
    tracks: DeviceTracks,
    calendar: Calendar | None,
    window_from: datetime | float,
    window_to: datetime | float,
) -> OeeResult:
    """OEE over ``[window_from, window_to)`` from a device's tracks (the shared core of
    :func:`oee` and :class:`~edge_agent.oee.live.LiveOee`)."""
    wf, wt = epoch(window_from), epoch(window_to)
    if not wt > wf:
        raise OeeError(f"empty window: 'to' ({_iso(wt)}) must be after 'from' ({_iso(wf)})")
    calendar = calendar or ALWAYS
    planned = calendar.planned(wf, wt)
    tally = _Tally()
    _walk(tracks, OverlapSweep(planned), wf, wt, tally)
    seconds = tally.seconds
    signals = tracks.signals

    calendar_s = total(planned)
    ppt = calendar_s - seconds["planned_stop"] - seconds["excluded"] - seconds[NO_DATA]
    downtime = seconds["breakdown"]
    changeover = seconds["changeover"]
    run = ppt - downtime - changeover

    good, scrap, count_total, resets, rollovers = _counts(tracks, planned)
    ideal = signals.ideal_cycle_time_s
    availability = run / ppt if ppt > 0 else 0.0
    performance_raw = ideal * count_total / run if run > 0 else 0.0
    options = tracks.options
    performance = min(1.0, performance_raw) if options.cap_performance else performance_raw
    quality = good / count_total if count_total > 0 else 1.0
    failures = tally.counts["breakdown"]
    return OeeResult(
        device=tracks.device,
        window_from=wf,
        window_to=wt,
        planned_time_s=ppt,
        run_time_s=run,
        downtime_s=downtime,
        changeover_s=changeover,
        small_stops_s=seconds["small_stop"],
        planned_stop_s=seconds["planned_stop"],
        excluded_s=seconds["excluded"],
        no_data_s=seconds[NO_DATA],
        off_calendar_s=(wt - wf) - calendar_s,
        availability=availability,
        performance=performance,
        performance_raw=performance_raw,
        quality=quality,
        oee=availability * performance * quality,
        nothing_produced=count_total == 0,
        total_count=count_total,
        good_count=good,
        scrap_count=scrap,
        losses=Losses(
            breakdowns=downtime,
            setup_adjustments=changeover,
            small_stops=seconds["small_stop"],
            reduced_speed=run - seconds["small_stop"] - ideal * count_total,
            quality=ideal * scrap,
        ),
        mtbf_s=run / failures if failures else None,
        mttr_s=downtime / failures if failures else None,
        breakdown_count=failures,
        small_stop_count=tally.counts["small_stop"],
        changeover_count=tally.counts["changeover"],
        counter_resets=resets,
        counter_rollovers=rollovers,
        stops=tuple(tally.stops),
        unknown_codes=tuple(sorted(tally.unknown)),
    )


def _counts(tracks: DeviceTracks, planned: list[tuple[float, float]]) -> tuple[int, int, int, int, int]:
    """good, scrap, total, resets, rollovers counted at instants of calendar-planned time."""

    def summed(track: CounterTrack | None) -> int | None:
        return None if track is None else sum(track.count(a, b) for a, b in planned)

    good, scrap, count_total = summed(tracks.good), summed(tracks.scrap), summed(tracks.total)
    if count_total is None:
        count_total = (good or 0) + (scrap or 0)
    if good is None:
        good = count_total - (scrap or 0)
    resets = rollovers = 0
    for counter in tracks.counters:
        for a, b in planned:
            r, o = counter.events(a, b)
            resets += r
            rollovers += o
    return good, count_total - good, count_total, resets, rollovers

