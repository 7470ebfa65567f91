"""Model of a vertical machining centre (profile ``cnc_vmc``).

State codes follow the profile: 0 no order, 1 running, 2 stopped (short
unplanned stop, reason in ``stop_reason``), 3 breakdown (``alarm_code`` set),
4 planned stop, 5 changeover. A running machine completes a part every
12-16 s (ideal 12 s), 2-4 % of them scrap. Short stops come every few
minutes of running, breakdowns every few hours, a break about every two
hours and a changeover to another NC program every 1.5-3.5 hours. A spindle
fault is announced by a rising spindle load during the two minutes before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from simulators.machine import (
    CHANGEOVER,
    EXCLUDED,
    PLANNED_STOP,
    RUNNING,
    UNPLANNED_STOP,
    Machine,
    Pending,
    approach,
)


class CncState(IntEnum):
    NO_ORDER = 0
    RUNNING = 1
    STOPPED = 2
    BREAKDOWN = 3
    PLANNED_STOP = 4
    CHANGEOVER = 5


CNC_REASONS: dict[int, str] = {
    11: "chip clearing", 12: "tool check", 13: "material wait",
    21: "spindle fault", 22: "hydraulic pressure low", 23: "axis alarm",
    41: "break", 51: "program changeover",
}
SHORT_STOP_REASONS = (11, 12, 13)
SHORT_STOP_WEIGHTS = (45, 35, 20)
BREAKDOWN_REASONS = (21, 22, 23)
# alarm_code shown by the PLC during a breakdown, per reason
CNC_ALARMS: dict[int, int] = {21: 751, 22: 1120, 23: 410}
REASON_BREAK = 41
REASON_CHANGEOVER = 51


@dataclass(frozen=True)
class NcProgram:
    name: str
    rpm: float
    feed: float
    load: float


CNC_PROGRAMS: tuple[NcProgram, ...] = (
    NcProgram("HOUSING-A12", 8000.0, 1800.0, 58.0),
    NcProgram("FLANGE-220", 6000.0, 1200.0, 66.0),
    NcProgram("BRACKET-07", 10000.0, 2400.0, 48.0),
    NcProgram("SHAFT-S3", 4500.0, 900.0, 72.0),
    NcProgram("VALVE-BODY-4", 7000.0, 1500.0, 62.0),
    NcProgram("COVER-PLATE-9", 12000.0, 3000.0, 44.0),
)

AMBIENT_C = 22.0


class CncMachine(Machine):
    """One CNC machine; see the module docstring for its behaviour.

    Displayed values (refreshed by :meth:`step`): ``spindle_speed`` rpm,
    ``spindle_load`` %, ``spindle_temp`` and ``coolant_temp`` degC,
    ``feed_rate`` mm/min, ``cycle_time`` s (last completed cycle),
    ``alarm_code``, ``program``, ``power`` kW, ``energy`` kWh, plus the
    state, reason and counters of :class:`~simulators.machine.Machine`.
    """

    kind = "cnc"
    ideal_cycle_s = 12.0
    categories: ClassVar[dict[int, str]] = {
        0: EXCLUDED, 1: RUNNING, 2: UNPLANNED_STOP, 3: UNPLANNED_STOP, 4: PLANNED_STOP, 5: CHANGEOVER,
    }
    reasons = CNC_REASONS

    MEAN_RUN_S = 300.0  # mean running time between short stops
    MTBF_S = 3 * 3600.0  # mean running time between breakdowns
    FIRST_STOP_S = (8.0, 30.0)  # the first short stop comes early, so a short demo sees one
    SHORT_STOP_S = (10.0, 90.0)
    BREAKDOWN_S = (300.0, 1200.0)
    BREAK_S = (600.0, 1200.0)
    BREAK_EVERY_S = (100 * 60.0, 140 * 60.0)
    CHANGEOVER_S = (600.0, 1800.0)
    CHANGEOVER_EVERY_S = (1.5 * 3600.0, 3.5 * 3600.0)
    NO_ORDER_S = (120.0, 480.0)
    NO_ORDER_P = 0.2  # chance of waiting for an order before a changeover

    def __init__(self, name: str, seed: int, counter_start: int | None = None) -> None:
        super().__init__(name, seed, counter_start)
        ev = self._events
        self.program = ev.choice(CNC_PROGRAMS)
        self._scrap_rate = ev.uniform(0.02, 0.035)
        self._first_part_risk = 0.0
        self._first_run = True
        self._pending = Pending()
        self._next_break = ev.uniform(*self.BREAK_EVERY_S) * ev.uniform(0.5, 1.0)
        self._next_changeover = ev.uniform(*self.CHANGEOVER_EVERY_S)
        self._spindle_temp = AMBIENT_C + ev.uniform(14.0, 20.0)
        self._coolant_temp = AMBIENT_C + ev.uniform(1.0, 3.0)
        self.energy = ev.uniform(5_000.0, 60_000.0)
        self.last_cycle_s = self._cycle_length()
        self.alarm_code = 0
        self.spindle_speed = self.spindle_load = self.feed_rate = self.power = 0.0
        self.spindle_temp = self.coolant_temp = self.cycle_time = 0.0
        self._start_running(0.0)
        self._refresh()

    # -- schedule -------------------------------------------------------------

    def _start_running(self, t: float) -> None:
        ev = self._events
        if self._first_run:
            gap = ev.uniform(*self.FIRST_STOP_S)
            self._first_run = False
        else:
            gap = max(20.0, ev.expovariate(1.0 / self.MEAN_RUN_S))
        plan = [
            (t + gap, "short"),
            (t + ev.expovariate(1.0 / self.MTBF_S), "breakdown"),
            (self._next_break, "break"),
            (self._next_changeover, "changeover"),
        ]
        end, kind = min(plan)
        reason = ev.choice(BREAKDOWN_REASONS) if kind == "breakdown" else 0
        self._pending = Pending(kind, reason)
        self._enter(CncState.RUNNING, 0, t, end - t)

    def _end_state(self, t: float) -> None:
        ev = self._events
        state = self.state
        if state == CncState.RUNNING:
            kind = self._pending.kind
            if kind == "short":
                reason = ev.choices(SHORT_STOP_REASONS, SHORT_STOP_WEIGHTS)[0]
                self._enter(CncState.STOPPED, reason, t, ev.uniform(*self.SHORT_STOP_S))
            elif kind == "breakdown":
                reason = self._pending.reason
                self.alarm_code = CNC_ALARMS[reason]
                self._enter(CncState.BREAKDOWN, reason, t, ev.uniform(*self.BREAKDOWN_S))
            elif kind == "break":
                self._begin_break(t)
            else:
                self._begin_changeover(t, allow_idle=True)
        elif state == CncState.NO_ORDER:
            self._begin_changeover(t, allow_idle=False)
        else:
            if state == CncState.BREAKDOWN:
                self.alarm_code = 0
                self._first_part_risk = 0.25
            self._resume(t)

    def force_stop(self, reason: int, duration_s: float | None = None) -> bool:
        """Stop now, as a remote stop from the PLC's command register would (a test control).

        ``reason`` 11-13 gives a short stop (``STOPPED``), 21-23 a breakdown with its alarm code. The
        stop lasts ``duration_s`` (default: 60 s, or 300 s for a breakdown), then the normal schedule
        resumes. Only a running machine stops; returns whether it did. The random streams are not
        touched, so the rest of the simulation stays deterministic for a given sequence of commands.
        """
        if self.state != CncState.RUNNING or reason not in (*SHORT_STOP_REASONS, *BREAKDOWN_REASONS):
            return False
        if reason in BREAKDOWN_REASONS:
            self.alarm_code = CNC_ALARMS[reason]
            self._enter(CncState.BREAKDOWN, reason, self.t, 300.0 if duration_s is None else duration_s)
        else:
            self._enter(CncState.STOPPED, reason, self.t, 60.0 if duration_s is None else duration_s)
        self._refresh()
        return True

    def _resume(self, t: float) -> None:
        if t >= self._next_break:
            self._begin_break(t)
        elif t >= self._next_changeover:
            self._begin_changeover(t, allow_idle=True)
        else:
            self._start_running(t)

    def _begin_break(self, t: float) -> None:
        ev = self._events
        duration = ev.uniform(*self.BREAK_S)
        self._next_break = t + duration + ev.uniform(*self.BREAK_EVERY_S)
        self._enter(CncState.PLANNED_STOP, REASON_BREAK, t, duration)

    def _begin_changeover(self, t: float, allow_idle: bool) -> None:
        ev = self._events
        if allow_idle and ev.random() < self.NO_ORDER_P:
            self._enter(CncState.NO_ORDER, 0, t, ev.uniform(*self.NO_ORDER_S))
            return
        duration = ev.uniform(*self.CHANGEOVER_S)
        self.program = ev.choice([p for p in CNC_PROGRAMS if p != self.program])
        self._next_changeover = t + duration + ev.uniform(*self.CHANGEOVER_EVERY_S)
        self._first_part_risk = 0.4
        self._enter(CncState.CHANGEOVER, REASON_CHANGEOVER, t, duration)
        self._discard_part()

    # -- parts ------------------------------------------------------------------

    def _cycle_length(self) -> float:
        return self.ideal_cycle_s * (1.0 + min(0.35, abs(self._events.gauss(0.14, 0.06))))

    def _scrap_probability(self) -> float:
        p = max(self._scrap_rate, self._first_part_risk)
        self._first_part_risk = 0.0
        return p

    # -- physics ----------------------------------------------------------------

    def _true_load(self) -> float:
        """Spindle load without noise; 0 while the spindle is off."""
        if self.state != CncState.RUNNING:
            return 0.0
        load = self.program.load
        if self._pending.kind == "breakdown" and self._pending.reason == 21:
            remaining = self._state_end - self.t
            if remaining < 120.0:
                load += 50.0 * (1.0 - remaining / 120.0)
        return load

    def _true_power(self) -> float:
        if self.state == CncState.RUNNING:
            return 2.2 + 0.13 * self._true_load()
        if self.state == CncState.NO_ORDER:
            return 0.6
        if self.state == CncState.BREAKDOWN:
            return 1.0
        return 1.4

    def _integrate(self, dt: float) -> None:
        load = self._true_load()
        if self.state == CncState.RUNNING:
            self._spindle_temp = approach(self._spindle_temp, 26.0 + 0.3 * load, dt, 480.0)
            self._coolant_temp = approach(self._coolant_temp, AMBIENT_C + 2.0 + 0.04 * load, dt, 1800.0)
        else:
            self._spindle_temp = approach(self._spindle_temp, AMBIENT_C, dt, 1500.0)
            self._coolant_temp = approach(self._coolant_temp, AMBIENT_C, dt, 2400.0)
        self.energy += self._true_power() * dt / 3600.0

    def _refresh(self) -> None:
        n = self._noise
        if self.state == CncState.RUNNING:
            self.spindle_speed = self.program.rpm * (1.0 + n.gauss(0.0, 0.004))
            self.spindle_load = max(0.0, self._true_load() + n.gauss(0.0, 2.0))
            self.feed_rate = self.program.feed * (1.0 + n.gauss(0.0, 0.01))
        else:
            self.spindle_speed = self.spindle_load = self.feed_rate = 0.0
        self.spindle_temp = round(self._spindle_temp + n.gauss(0.0, 0.1), 1)
        self.coolant_temp = round(self._coolant_temp + n.gauss(0.0, 0.1), 1)
        self.power = max(0.0, self._true_power() + n.gauss(0.0, 0.15))
        self.cycle_time = self.last_cycle_s
