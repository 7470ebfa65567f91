"""Machine events from a device's OEE signals: ``state_changed``, ``stop_ended`` and ``part_count``.

:class:`MachineEvents` is fed the device's samples as they arrive and returns the events they
make; it has no clock (:meth:`~MachineEvents.advance` takes ``now``). Values are read, stops
delimited, reasons found and counters followed by the code of the OEE computation
(:mod:`edge_agent.oee.tracks`, rules in docs/oee.md), so the events tell the same story as the
figures:

* ``state_changed`` when the state *category* changes (the first state seen too, without
  ``previous``); ``code`` is the raw state code (``"1"``/``"0"`` with a run flag);
* ``stop_ended`` when a stop (a maximal run of one non-running category) ends, ``ts`` = its end.
  Its reason is the one showing at its start (reported at most ``reason_lead_s`` before), else
  the first reported during it; if there is none and the machine runs again, the event waits
  for a reason reported within ``reason_lookahead_s`` before the next stop, and is emitted with
  ``reason = ""`` when none comes;
* ``part_count`` with the good and scrap parts counted since the previous one (rollovers and
  resets as in the OEE counts; ``[oee] part_tag`` messages one part each), ``ts`` = the last
  increment it holds. At most one per ``part_interval_s`` (0: one per increment), and never one
  spanning the start of an hour (UTC), so hourly, shift and daily figures get their own parts.
  ``cycle_time_s`` is the mean time per part since the previous increment when the machine ran
  all that time.

Memory is constant: a track is pruned to its last value once it holds more than a few change points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_agent.behaviour import kinds as k
from edge_agent.model import Event, Quality, Sample
from edge_agent.oee.model import Category, OeeOptions
from edge_agent.oee.tracks import CounterTrack, DeviceTracks, ReasonTrack, StateTrack
from edge_agent.profiles import OeeSignals

__all__ = ["MachineEvents"]

HOUR_S = 3600.0
MAX_REASON = 256
KEEP_POINTS = 64  # a track is pruned to its last value once it holds more change points


@dataclass(slots=True)
class _Stop:
    start: float
    category: Category
    reason: str
    end: float = math.nan
    limit: float = math.nan  # ended, waiting for a late reason until this instant


@dataclass(slots=True)
class _Parts:
    """Parts counted but not yet in a ``part_count`` event."""

    good: int = 0
    scrap: int = 0
    first: float = math.nan
    last: float = math.nan
    since: float | None = None  # the increment before the first one (for the cycle time)
    steady: bool = True  # the machine ran from ``since`` to ``last``

    @property
    def empty(self) -> bool:
        return self.good + self.scrap == 0


def _cumulative(track: CounterTrack | None) -> int | None:
    if track is None:
        return None
    return track.cum[-1] if len(track.cum) else track.base


class MachineEvents:
    """The machine events of ``device`` (module docstring); one per OEE-profiled device."""

    def __init__(
        self, device: str, signals: OeeSignals, options: OeeOptions | None = None, *, part_interval_s: float = 0.0
    ) -> None:
        if part_interval_s < 0:
            raise ValueError("part_interval_s must be >= 0")
        self.device = device
        self.options = options or OeeOptions()
        self.part_interval_s = part_interval_s
        self._tracks = DeviceTracks(signals, self.options, device=device)
        self.bad_values = 0
        self.out_of_order = 0
        self._category: Category | None = None
        self._running_since: float | None = None
        self._stop: _Stop | None = None  # open
        self._ended: _Stop | None = None  # ended, reason still unknown
        self._reason = ""
        self._reason_ts = -math.inf
        self._new_reason: tuple[str, float] | None = None  # applied once no state change can share its instant
        self._seen_good = 0
        self._seen_scrap = 0
        self._parts = _Parts()
        self._last_part: float | None = None
        self._last_emit = -math.inf

    @property
    def tags(self) -> frozenset[str]:
        return self._tracks.tags

    @property
    def state(self) -> Category | None:
        """The current state category (None before the first state sample)."""
        return self._category

    def size(self) -> int:
        """Change points kept over all signals (a few per signal, whatever was fed)."""
        return self._tracks.size()

    def feed(self, sample: Sample) -> list[Event]:
        """Take one sample of the device; return the events it completes (usually none)."""
        tracks = self._tracks
        track = tracks.by_tag.get(sample.tag)
        if track is None or sample.device != self.device or sample.quality == Quality.BAD:
            return []
        ts = sample.ts
        out = self._settle(ts)
        try:
            accepted = track.feed(ts, sample.value)
        except ValueError:
            self.bad_values += 1
            return out
        if not accepted:
            self.out_of_order += 1
            return out
        if isinstance(track, StateTrack):
            code = track.codes[-1]
            if len(track.codes) > KEEP_POINTS:
                track.prune(ts)
            category = track.category(code)
            if category != self._category:
                out += self._change(ts, category, code)
            if self._new_reason is not None and self._new_reason[1] <= ts:
                out += self._apply_reason(*self._new_reason)
        elif isinstance(track, ReasonTrack):
            value, changed = track.values[-1], track.ts[-1]
            if len(track.values) > KEEP_POINTS:
                track.prune(changed)
            if changed != self._reason_ts or value != self._reason:
                self._new_reason = (value, changed)
        else:
            out += self._on_count(ts)
            if len(track) > KEEP_POINTS:
                track.prune(ts)
        return out

    def advance(self, now: float) -> list[Event]:
        """Emit what waited long enough by ``now``: a stop whose late reason did not come, parts held back."""
        out = self._settle(now, strictly=False)
        parts = self._parts
        if not parts.empty and (now - self._last_emit >= self.part_interval_s or _hour(now) != _hour(parts.last)):
            out.append(self._emit_parts())
        return out

    def flush(self) -> list[Event]:
        """Everything still held (at shutdown): a stop waiting for its reason, parts not yet reported."""
        out = self._settle(math.inf)
        if self._ended is not None:
            out.append(self._stop_event(self._ended))
            self._ended = None
        if not self._parts.empty:
            out.append(self._emit_parts())
        return out

    # -- state and stops ----------------------------------------------------------------------

    def _change(self, ts: float, category: Category, code: str) -> list[Event]:
        out: list[Event] = []
        if self._ended is not None:  # the next stop starts: the late reason did not come
            out.append(self._stop_event(self._ended))
            self._ended = None
        stop = self._stop
        if stop is not None:
            self._stop = None
            stop.end = ts
            if stop.reason or category != "running" or self._tracks.reason is None:
                out.append(self._stop_event(stop))
            else:
                stop.limit = ts + self.options.reason_lookahead_s
                self._ended = stop
        attributes: dict[str, str] = {"state": category}
        if self._category is not None:
            attributes["previous"] = self._category
        attributes["code"] = code
        out.append(Event(self.device, k.STATE_CHANGED, attributes, ts))
        self._category = category
        self._running_since = ts if category == "running" else None
        if category != "running":
            reason, since = self._reason, self._reason_ts
            if self._new_reason is not None and self._new_reason[1] <= ts:  # a change at this very instant
                reason, since = self._new_reason
            held = reason if reason and since >= ts - self.options.reason_lead_s else ""
            self._stop = _Stop(ts, category, held)
        return out

    def _settle(self, now: float, strictly: bool = True) -> list[Event]:
        """Apply a reason change from before ``now`` (a state change at its very instant comes first), then
        give up waiting for a late reason once ``now`` reaches the limit."""
        out: list[Event] = []
        held = self._new_reason
        if held is not None and (held[1] < now or (not strictly and held[1] <= now)):
            out += self._apply_reason(*held)
        return out + self._expire(now)

    def _apply_reason(self, value: str, changed: float) -> list[Event]:
        self._new_reason = None
        self._reason, self._reason_ts = value, changed
        if not value:
            return []
        stop, ended = self._stop, self._ended
        if stop is not None and (not stop.reason or changed == stop.start):
            stop.reason = value
        elif ended is not None and changed < ended.limit:
            ended.reason = value
            self._ended = None
            return [self._stop_event(ended)]
        return []

    def _expire(self, now: float) -> list[Event]:
        ended = self._ended
        if ended is not None and now >= ended.limit:
            self._ended = None
            return [self._stop_event(ended)]
        return []

    def _stop_event(self, stop: _Stop) -> Event:
        return Event(self.device, k.STOP_ENDED, {
            "started_at": stop.start,
            "duration_s": max(0.0, stop.end - stop.start),
            "category": stop.category,
            "reason": stop.reason[:MAX_REASON],
        }, stop.end)

    # -- parts --------------------------------------------------------------------------------

    def _totals(self) -> tuple[int, int]:
        """Good and scrap counted since the first reading, derived as the OEE counts are."""
        tracks = self._tracks
        good, scrap, total = _cumulative(tracks.good), _cumulative(tracks.scrap), _cumulative(tracks.total)
        if total is None:
            total = (good or 0) + (scrap or 0)
        if good is None:
            good = total - (scrap or 0)
        return good, total - good

    def _on_count(self, ts: float) -> list[Event]:
        good, scrap = self._totals()
        more_good, more_scrap = max(0, good - self._seen_good), max(0, scrap - self._seen_scrap)
        self._seen_good, self._seen_scrap = max(good, self._seen_good), max(scrap, self._seen_scrap)
        if not more_good and not more_scrap:
            return []
        out: list[Event] = []
        parts = self._parts
        if not parts.empty and _hour(ts) != _hour(parts.last):
            out.append(self._emit_parts())
            parts = self._parts
        previous = self._last_part
        steady = self._running_since is not None and previous is not None and self._running_since <= previous
        if parts.empty:
            parts.first, parts.since, parts.steady = ts, previous, steady
        else:
            parts.steady = parts.steady and steady
        parts.good += more_good
        parts.scrap += more_scrap
        parts.last = ts
        self._last_part = ts
        if ts - self._last_emit >= self.part_interval_s:
            out.append(self._emit_parts())
        return out

    def _emit_parts(self) -> Event:
        parts = self._parts
        self._parts = _Parts()
        attributes: dict[str, int | float] = {"good": parts.good, "scrap": parts.scrap}
        if parts.steady and parts.since is not None and parts.last > parts.since:
            attributes["cycle_time_s"] = (parts.last - parts.since) / (parts.good + parts.scrap)
        self._last_emit = parts.last
        return Event(self.device, k.PART_COUNT, attributes, parts.last)


def _hour(ts: float) -> int:
    return math.floor(ts / HOUR_S)
