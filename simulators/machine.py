"""Event-driven engine shared by the simulated machines, and their ground-truth log.

A machine lives on a simulated clock ``t`` (seconds since the simulation
started). :meth:`Machine.step` advances it to ``t + dt`` processing every
event (a part completed, a state ending) at its exact simulated time, so the
sequence of states and parts depends only on the seed, never on how the time
is cut into steps. Random draws that decide states and parts come from one
stream and the measurement noise of analog values from another, for the same
reason.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left
from dataclasses import dataclass, replace
from typing import Any, ClassVar

UINT32 = 1 << 32

# OEE categories, the same words as a device profile's [oee].state_codes.
RUNNING = "running"
UNPLANNED_STOP = "unplanned_stop"
PLANNED_STOP = "planned_stop"
CHANGEOVER = "changeover"
EXCLUDED = "excluded"


@dataclass
class StateInterval:
    """One stretch of time a machine spent in one state with one reason code.

    ``end`` is None while the interval is the current one. ``good`` and
    ``scrap`` count the parts completed during the interval.
    """

    state: int
    reason: int
    start: float
    end: float | None = None
    good: int = 0
    scrap: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds (0 while still open; see :meth:`Machine.intervals`)."""
        return 0.0 if self.end is None else self.end - self.start

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state, "reason": self.reason, "start": self.start, "end": self.end,
            "good": self.good, "scrap": self.scrap,
        }


@dataclass(frozen=True)
class Summary:
    """Ground truth over a time window, from the machine's own log.

    The OEE figures use the classical definitions: planned production time is
    all time except ``excluded`` and ``planned_stop``; availability is running
    time over planned time, performance is ideal cycle time times parts over
    running time, quality is good over all parts.
    """

    start: float
    end: float
    ideal_cycle_s: float
    seconds_by_state: dict[int, float]
    seconds_by_category: dict[str, float]
    stops_by_state: dict[int, int]
    good: int
    scrap: int

    @property
    def total(self) -> int:
        return self.good + self.scrap

    @property
    def run_s(self) -> float:
        return self.seconds_by_category.get(RUNNING, 0.0)

    @property
    def planned_s(self) -> float:
        cats = self.seconds_by_category
        return sum(cats.values()) - cats.get(EXCLUDED, 0.0) - cats.get(PLANNED_STOP, 0.0)

    @property
    def availability(self) -> float:
        return self.run_s / self.planned_s if self.planned_s > 0 else 0.0

    @property
    def performance(self) -> float:
        return self.ideal_cycle_s * self.total / self.run_s if self.run_s > 0 else 0.0

    @property
    def quality(self) -> float:
        return self.good / self.total if self.total else 0.0

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality


class Machine:
    """Base of the discrete machines: a state machine that makes parts while running.

    Subclasses define the state codes, the schedule of stops (:meth:`_end_state`),
    the cycle and scrap model and the analog values. Public, read-only for
    callers: ``t``, ``state``, ``reason``, ``good_count``/``scrap_count`` (the
    cumulative uint32 counters the device exposes, which start at a non-zero
    value like a real PLC's), ``parts_good``/``parts_scrap`` (made during this
    simulation), ``log`` and ``good_times``/``scrap_times`` (completion times).
    """

    kind: ClassVar[str] = "machine"
    RUN_STATE: ClassVar[int] = 1
    ideal_cycle_s: ClassVar[float] = 1.0
    categories: ClassVar[dict[int, str]] = {}
    reasons: ClassVar[dict[int, str]] = {}

    def __init__(self, name: str, seed: int, counter_start: int | None = None) -> None:
        self.name = name
        self.seed = seed
        self.t = 0.0
        self._events = random.Random(f"{seed}:{name}:events")
        self._noise = random.Random(f"{seed}:{name}:noise")
        start = self._events.randrange(10_000, 250_000) if counter_start is None else counter_start
        self.good_count = start % UINT32
        self.scrap_count = (start // 40) % UINT32
        self.parts_good = 0
        self.parts_scrap = 0
        self.good_times = array("d")
        self.scrap_times = array("d")
        self.log: list[StateInterval] = []
        self.state = 0
        self.reason = 0
        self.last_cycle_s = 0.0
        self._state_end = math.inf
        self._next_part = math.inf
        self._part_left = 0.0
        self._cycle_len = 0.0

    # -- public API ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state == self.RUN_STATE

    @property
    def category(self) -> str:
        return self.categories.get(self.state, EXCLUDED)

    @property
    def reason_text(self) -> str:
        return self.reasons.get(self.reason, "")

    def step(self, dt: float) -> None:
        """Advance the simulated clock by ``dt`` seconds."""
        if dt < 0 or math.isnan(dt):
            raise ValueError(f"dt must be >= 0, got {dt}")
        target = self.t + dt
        while True:
            when = min(self._next_part, self._state_end)
            if when > target:
                break
            self._advance(when)
            if self._next_part <= self._state_end:
                self._finish_part(when)
            else:
                self._end_state(when)
        self._advance(target)
        self._refresh()

    def intervals(self) -> list[StateInterval]:
        """Copies of the log with the current interval closed at ``t``."""
        out = [replace(iv) for iv in self.log]
        if out and out[-1].end is None:
            out[-1].end = self.t
        return out

    def summary(self, start: float = 0.0, end: float | None = None) -> Summary:
        """Time per state and category, stops and parts within ``[start, end)``."""
        end = self.t if end is None else min(end, self.t)
        by_state: dict[int, float] = {}
        by_cat: dict[str, float] = {}
        stops: dict[int, int] = {}
        for iv in self.intervals():
            assert iv.end is not None
            lo, hi = max(iv.start, start), min(iv.end, end)
            if hi <= lo:
                continue
            by_state[iv.state] = by_state.get(iv.state, 0.0) + hi - lo
            cat = self.categories.get(iv.state, EXCLUDED)
            by_cat[cat] = by_cat.get(cat, 0.0) + hi - lo
            if iv.state != self.RUN_STATE and iv.start >= start:
                stops[iv.state] = stops.get(iv.state, 0) + 1
        return Summary(
            start=start, end=end, ideal_cycle_s=self.ideal_cycle_s,
            seconds_by_state=by_state, seconds_by_category=by_cat, stops_by_state=stops,
            good=_count_between(self.good_times, start, end),
            scrap=_count_between(self.scrap_times, start, end),
        )

    # -- engine -------------------------------------------------------------

    def _advance(self, t1: float) -> None:
        if t1 > self.t:
            self._integrate(t1 - self.t)
            self.t = t1

    def _enter(self, state: int, reason: int, t: float, duration: float) -> None:
        """Close the current interval at ``t`` and start ``state`` for ``duration`` seconds."""
        if self.log:
            self.log[-1].end = t
        if self.state == self.RUN_STATE and state != self.RUN_STATE:
            self._part_left = self._next_part - t
            self._next_part = math.inf
        self.log.append(StateInterval(state, reason, t))
        self.state, self.reason = state, reason
        self._state_end = t + max(duration, 1e-3)
        if state == self.RUN_STATE:
            if self._part_left <= 0:
                self._cycle_len = self._cycle_length()
                self._part_left = self._cycle_len
            self._next_part = t + self._part_left

    def _discard_part(self) -> None:
        """Abandon the part in progress (changeover); call after leaving the running state."""
        self._part_left = 0.0

    def _finish_part(self, t: float) -> None:
        scrap = self._events.random() < self._scrap_probability()
        current = self.log[-1]
        if scrap:
            self.scrap_count = (self.scrap_count + 1) % UINT32
            self.parts_scrap += 1
            self.scrap_times.append(t)
            current.scrap += 1
        else:
            self.good_count = (self.good_count + 1) % UINT32
            self.parts_good += 1
            self.good_times.append(t)
            current.good += 1
        self.last_cycle_s = self._cycle_len
        self._cycle_len = self._cycle_length()
        self._part_left = self._cycle_len
        self._next_part = t + self._cycle_len

    # -- to implement -------------------------------------------------------

    def _end_state(self, t: float) -> None:
        """The current state's time is up at ``t``: enter the next one."""
        raise NotImplementedError

    def _cycle_length(self) -> float:
        raise NotImplementedError

    def _scrap_probability(self) -> float:
        raise NotImplementedError

    def _integrate(self, dt: float) -> None:
        """Advance slow physical quantities (temperatures, energy) by ``dt``."""

    def _refresh(self) -> None:
        """Recompute the displayed analog values (with measurement noise)."""


@dataclass
class Pending:
    """What ends the current running period."""

    kind: str = ""
    reason: int = 0


def _count_between(times: array, start: float, end: float) -> int:
    return bisect_left(times, end) - bisect_left(times, start)


def approach(value: float, target: float, dt: float, tau: float) -> float:
    """First-order lag: move ``value`` towards ``target`` with time constant ``tau``."""
    return target + (value - target) * math.exp(-dt / tau)
