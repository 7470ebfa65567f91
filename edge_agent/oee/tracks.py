"""What the OEE computation keeps of a device's samples: change points and counter increments.

Each signal is fed its samples in time order (``feed(ts, value)``); a sample
that repeats the held value costs nothing but the update of ``last_ts``, so a
track stays small whatever the sampling rate. :class:`DeviceTracks` routes a
device's samples to its tracks by tag. Both the offline path and the live
engine fill these tracks and run the same computation on them.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping

from edge_agent.model import Value
from edge_agent.oee.model import Category, OeeOptions
from edge_agent.profiles import OeeSignals

__all__ = [
    "CounterTrack",
    "DeviceTracks",
    "PartCounter",
    "PartTrack",
    "ReasonTrack",
    "StateTrack",
    "code_of",
    "count_of",
    "flag_of",
    "part_value",
]

_TRUE = frozenset({"1", "true", "on", "yes", "running"})
_FALSE = frozenset({"0", "false", "off", "no", "stopped"})
RUN_CODES: dict[str, Category] = {"1": "running", "0": "unplanned_stop"}
ROLLOVER_SLACK = 10  # parts a counter may plausibly advance beyond the ideal rate when it wraps


def code_of(value: Value) -> str:
    """A state or reason code as text: ``2``, ``2.0`` and ``"2"`` all give ``"2"``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a state code: {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    text = value.strip()
    if text.isdigit():
        return str(int(text))
    if not text:
        raise ValueError("empty value")
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def flag_of(value: Value) -> bool:
    """A run signal: bools, numbers (non-zero is true) and words such as true/false, on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a run flag: {value!r}")


def count_of(value: Value) -> int:
    """A counter reading as an integer (``"12"``, ``12.0``); fractions and flags are errors."""
    if isinstance(value, bool):
        raise ValueError(f"not a counter value: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"not a counter value: {value!r}") from None
    if math.isfinite(value) and value.is_integer():
        return int(value)
    raise ValueError(f"not a counter value: {value!r}")


class _Track:
    """What every track has: its tag and the instant of its last sample."""

    tag: str
    last_ts: float = -math.inf

    def touch(self, ts: float) -> bool:
        """The held value was read again at ``ts``: the same as feeding it, only cheaper.

        False (and nothing changed) if ``ts`` is older than the last sample.
        """
        if ts < self.last_ts:
            return False
        self.last_ts = ts
        return True


class StateTrack(_Track):
    """Change points of the machine state: ``ts[i]`` is when ``codes[i]`` started.

    With a run flag instead of a state code, the codes are ``"1"`` (running)
    and ``"0"`` (unplanned stop).
    """

    def __init__(self, signals: OeeSignals) -> None:
        self.run_flag = signals.state_tag is None
        self.tag: str = signals.run_tag if self.run_flag else signals.state_tag  # type: ignore[assignment]
        self.categories: Mapping[str, Category] = RUN_CODES if self.run_flag else dict(signals.state_codes)
        self.ts = array("d")
        self.codes: list[str] = []
        self.last_ts = -math.inf

    def feed(self, ts: float, value: Value) -> bool:
        """Take one sample; False (and nothing kept) if it is older than the last one."""
        if ts < self.last_ts:
            return False
        code = ("1" if flag_of(value) else "0") if self.run_flag else code_of(value)
        if not self.codes or code != self.codes[-1]:
            self.ts.append(ts)
            self.codes.append(code)
        self.last_ts = ts
        return True

    def category(self, code: str) -> Category:
        """The category of a code; a code the profile does not map counts as an unplanned stop."""
        return self.categories.get(code, "unplanned_stop")

    def prune(self, before: float) -> None:
        """Forget change points before ``before`` except the one still in force at it."""
        k = bisect_right(self.ts, before) - 1
        if k > 0:
            del self.ts[:k]
            del self.codes[:k]


class ReasonTrack(_Track):
    """Change points of the stop reason; ``""`` stands for no reason (``0`` or empty)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.ts = array("d")
        self.values: list[str] = []
        self.last_ts = -math.inf

    def feed(self, ts: float, value: Value) -> bool:
        if ts < self.last_ts:
            return False
        code = "" if isinstance(value, str) and not value.strip() else code_of(value)
        if code == "0":
            code = ""
        if not self.values or code != self.values[-1]:
            self.ts.append(ts)
            self.values.append(code)
        self.last_ts = ts
        return True

    def reason(self, start: float, limit: float, lead_s: float) -> str:
        """The first reason showing from ``start`` on, before ``limit``.

        A reason already held at ``start`` counts if it was reported at most
        ``lead_s`` before; otherwise the first non-empty change in
        ``[start, limit)`` is taken. "" when there is none.
        """
        k = bisect_right(self.ts, start) - 1
        if k >= 0 and self.values[k] and self.ts[k] >= start - lead_s:
            return self.values[k]
        k += 1
        while k < len(self.ts) and self.ts[k] < limit:
            if self.values[k]:
                return self.values[k]
            k += 1
        return ""

    def prune(self, before: float) -> None:
        k = bisect_right(self.ts, before) - 1
        if k > 0:
            del self.ts[:k]
            del self.values[:k]


class CounterTrack(_Track):
    """Increments of a cumulative part counter, with rollover and reset handled.

    A decrease is a rollover when wrapping the counter's width (``bits``, or
    16 then 32 when unknown) gives an increment the machine could have made
    since the previous sample: at most ``2 * dt / ideal_cycle_s + 10`` parts.
    Any other decrease is a reset: the new value becomes the base and counting
    goes on from it (nothing is added for the reset sample itself).
    """

    def __init__(self, tag: str, ideal_cycle_s: float, bits: int | None = None) -> None:
        self.tag = tag
        self.ideal_cycle_s = ideal_cycle_s
        self.bits = bits
        self.ts = array("d")
        self.cum = array("q")  # cumulative increments up to and including ts[i]
        self.base = 0  # cumulative value before ts[0]
        self.last_value: int | None = None
        self.last_ts = -math.inf
        self.resets = array("d")
        self.rollovers = array("d")

    def feed(self, ts: float, value: Value) -> bool:
        if ts < self.last_ts:
            return False
        current = count_of(value)
        previous = self.last_value
        if previous is not None and current != previous:
            delta = current - previous
            if delta < 0:
                delta = self._wrapped(previous, current, ts - self.last_ts)
                (self.rollovers if delta else self.resets).append(ts)
            if delta:
                self.ts.append(ts)
                self.cum.append((self.cum[-1] if self.cum else self.base) + delta)
        self.last_value = current
        self.last_ts = ts
        return True

    def _wrapped(self, previous: int, current: int, dt: float) -> int:
        limit = 2.0 * dt / self.ideal_cycle_s + ROLLOVER_SLACK
        widths = (self.bits,) if self.bits else (16, 32)
        for bits in widths:
            if previous < 1 << bits:
                step = (current - previous) % (1 << bits)
                if step <= limit:
                    return step
        return 0

    def count(self, start: float, end: float) -> int:
        """Sum of the increments at instants in ``[start, end)``."""
        i = bisect_left(self.ts, start)
        j = bisect_left(self.ts, end)
        before = self.cum[i - 1] if i > 0 else self.base
        upto = self.cum[j - 1] if j > 0 else self.base
        return upto - before

    def events(self, start: float, end: float) -> tuple[int, int]:
        """Resets and rollovers at instants in ``[start, end)``."""
        return (
            bisect_left(self.resets, end) - bisect_left(self.resets, start),
            bisect_left(self.rollovers, end) - bisect_left(self.rollovers, start),
        )

    def prune(self, before: float) -> None:
        k = bisect_left(self.ts, before)
        if k > 0:
            self.base = self.cum[k - 1]
            del self.ts[:k]
            del self.cum[:k]
        for marks in (self.resets, self.rollovers):
            del marks[:bisect_left(marks, before)]

    def __len__(self) -> int:
        return len(self.ts)


class PartCounter(CounterTrack):
    """Parts counted one message at a time (fed by :class:`PartTrack`): each :meth:`add` is one part."""

    def add(self, ts: float) -> None:
        self.ts.append(ts)
        self.cum.append((self.cum[-1] if self.cum else self.base) + 1)
        self.last_ts = ts


def part_value(value: Value) -> str:
    """A per-part message's value as the text compared with the good and scrap values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return code_of(value).lower()


class PartTrack(_Track):
    """A tag with one sample per part (``[oee] part_tag``): good or scrap by the sample's value.

    Each sample adds one part to :attr:`good` or :attr:`scrap`, counters like the others (their
    increments are what windows count); a value in neither list is a bad value (ValueError).
    Two parts may share a timestamp.
    """

    def __init__(self, tag: str, ideal_cycle_s: float, good_values: Iterable[str], scrap_values: Iterable[str]) -> None:
        self.tag = tag
        self.good = PartCounter(tag, ideal_cycle_s)
        self.scrap = PartCounter(tag, ideal_cycle_s)
        self.good_values = frozenset(v.strip().lower() for v in good_values)
        self.scrap_values = frozenset(v.strip().lower() for v in scrap_values)
        self.last_ts = -math.inf

    def feed(self, ts: float, value: Value) -> bool:
        if ts < self.last_ts:
            return False
        text = part_value(value)
        if text in self.good_values:
            self.good.add(ts)
        elif text in self.scrap_values:
            self.scrap.add(ts)
        else:
            raise ValueError(f"not a good or scrap part: {value!r}")
        self.last_ts = ts
        return True

    def prune(self, before: float) -> None:
        self.good.prune(before)
        self.scrap.prune(before)

    def __len__(self) -> int:
        return len(self.good) + len(self.scrap)


class DeviceTracks:
    """The tracks of one device, fed by tag; samples of other tags are ignored.

    ``bad_values`` counts samples whose value could not be read for their
    signal and ``out_of_order`` those older than the previous sample of their tag.
    """

    def __init__(self, signals: OeeSignals, options: OeeOptions | None = None, device: str = "") -> None:
        options = options or OeeOptions()
        self.device = device
        self.signals = signals
        self.options = options
        self.state = StateTrack(signals)
        self.reason = ReasonTrack(options.reason_tag) if options.reason_tag else None
        ideal = signals.ideal_cycle_time_s
        bits = options.counter_bits

        def counter(tag: str | None) -> CounterTrack | None:
            return CounterTrack(tag, ideal, bits.get(tag)) if tag else None

        self.good = counter(signals.good_counter)
        self.scrap = counter(signals.scrap_counter)
        self.total = counter(signals.total_counter)
        self.parts: PartTrack | None = None
        self.by_tag: dict[str, StateTrack | ReasonTrack | CounterTrack | PartTrack] = {}
        if signals.part_tag is not None:
            self.parts = PartTrack(signals.part_tag, ideal, signals.part_good_values, signals.part_scrap_values)
            self.good, self.scrap = self.parts.good, self.parts.scrap
        fed = (self.parts,) if self.parts is not None else (self.good, self.scrap)
        for track in (self.reason, *fed, self.total, self.state):
            if track is not None:
                self.by_tag[track.tag] = track
        self.bad_values = 0
        self.out_of_order = 0
        self.history_from = -math.inf

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(self.by_tag)

    @property
    def counters(self) -> list[CounterTrack]:
        return [c for c in (self.good, self.scrap, self.total) if c is not None]

    def feed(self, tag: str, ts: float, value: Value) -> None:
        """Route one sample; a bad value or an out-of-order sample is counted and dropped.

        Raises nothing for bad data, so one odd sample never stops a live engine.
        """
        track = self.by_tag.get(tag)
        if track is None:
            return
        try:
            accepted = track.feed(ts, value)
        except ValueError:
            self.bad_values += 1
            return
        if not accepted:
            self.out_of_order += 1

    def prune(self, before: float) -> None:
        """Forget what no window starting at or after ``before`` needs."""
        for track in self.by_tag.values():
            track.prune(before)
        self.history_from = max(self.history_from, before)

    def size(self) -> int:
        """Number of kept points over all tracks (a bound on memory)."""
        points = len(self.state.ts) + sum(len(c) for c in self.counters)
        return points + (len(self.reason.ts) if self.reason else 0)
