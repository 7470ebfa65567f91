"""Model of a flow-wrap packaging line (profile ``packaging_line``).

State codes follow the profile: 0 no order, 1 running, 2 unplanned stop,
3 planned stop, 4 changeover. Running, the line wraps 110-120 packs/min
(ideal cycle 0.5 s) with about 1 % rejects. Jams stop it every few minutes;
an infeed jam is announced by a rising motor current, a seal jaw fault by a
falling seal temperature. Breaks come about every two hours and recipe
changeovers every 2.5-4 hours.
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


class LineState(IntEnum):
    NO_ORDER = 0
    RUNNING = 1
    UNPLANNED_STOP = 2
    PLANNED_STOP = 3
    CHANGEOVER = 4


LINE_REASONS: dict[int, str] = {
    31: "film jam", 32: "infeed jam", 33: "seal jaw fault", 34: "film reel change",
    41: "break", 51: "recipe changeover",
}
# reason -> (weight, min s, max s)
JAMS: dict[int, tuple[float, float, float]] = {
    31: (40.0, 20.0, 90.0),
    32: (35.0, 15.0, 60.0),
    34: (17.0, 90.0, 180.0),
    33: (8.0, 180.0, 480.0),
}
REASON_INFEED_JAM = 32
REASON_SEAL_FAULT = 33
REASON_BREAK = 41
REASON_CHANGEOVER = 51


@dataclass(frozen=True)
class Recipe:
    name: str
    seal_setpoint: float


RECIPES: tuple[Recipe, ...] = (
    Recipe("CHOCO-BAR-45G", 175.0),
    Recipe("CEREAL-BAR-30G", 172.0),
    Recipe("BISCUIT-6PK", 178.0),
    Recipe("WAFER-4PK", 174.0),
)


class PackagingLine(Machine):
    """One packaging line; see the module docstring for its behaviour.

    Displayed values (refreshed by :meth:`step`): ``speed`` packs/min,
    ``motor_current`` A, ``seal_temp`` degC and ``recipe`` (its name in
    ``recipe.name``), plus state, reason and counters of
    :class:`~simulators.machine.Machine` (``scrap_count`` is the reject count).
    """

    kind = "packaging"
    ideal_cycle_s = 0.5
    categories: ClassVar[dict[int, str]] = {
        0: EXCLUDED, 1: RUNNING, 2: UNPLANNED_STOP, 3: PLANNED_STOP, 4: CHANGEOVER,
    }
    reasons = LINE_REASONS

    MEAN_RUN_S = 360.0
    FIRST_STOP_S = (10.0, 28.0)  # the first jam comes early, so a short demo sees one
    SPEED_PPM = (110.0, 120.0)
    BREAK_S = (600.0, 900.0)
    BREAK_EVERY_S = (105 * 60.0, 135 * 60.0)
    CHANGEOVER_S = (900.0, 2100.0)
    CHANGEOVER_EVERY_S = (2.5 * 3600.0, 4.0 * 3600.0)
    NO_ORDER_S = (180.0, 600.0)
    NO_ORDER_P = 0.2
    RESTART_REJECTS = 3  # packs after a stop with a high reject risk

    def __init__(self, name: str, seed: int, counter_start: int | None = None) -> None:
        super().__init__(name, seed, counter_start)
        ev = self._events
        self.recipe = ev.choice(RECIPES)
        self._reject_rate = ev.uniform(0.007, 0.012)
        self._risky_packs = 0
        self._first_run = True
        self._pending = Pending()
        self._speed = sum(self.SPEED_PPM) / 2
        self._next_break = ev.uniform(*self.BREAK_EVERY_S) * ev.uniform(0.5, 1.0)
        self._next_changeover = ev.uniform(*self.CHANGEOVER_EVERY_S)
        self._seal_temp = self.recipe.seal_setpoint + ev.uniform(-1.0, 1.0)
        self.speed = self.motor_current = self.seal_temp = 0.0
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
        plan = [(t + gap, "jam"), (self._next_break, "break"), (self._next_changeover, "changeover")]
        end, kind = min(plan)
        reason = 0
        if kind == "jam":
            reasons = list(JAMS)
            reason = ev.choices(reasons, [JAMS[r][0] for r in reasons])[0]
        self._pending = Pending(kind, reason)
        self._speed = ev.uniform(*self.SPEED_PPM)
        self._enter(LineState.RUNNING, 0, t, end - t)

    def _end_state(self, t: float) -> None:
        ev = self._events
        state = self.state
        if state == LineState.RUNNING:
            kind = self._pending.kind
            if kind == "jam":
                reason = self._pending.reason
                _, lo, hi = JAMS[reason]
                self._risky_packs = self.RESTART_REJECTS
                self._enter(LineState.UNPLANNED_STOP, reason, t, ev.uniform(lo, hi))
            elif kind == "break":
                self._begin_break(t)
            else:
                self._begin_changeover(t, allow_idle=True)
        elif state == LineState.NO_ORDER:
            self._begin_changeover(t, allow_idle=False)
        elif t >= self._next_break:
            self._begin_break(t)
        elif t >= self._next_changeover:
            self._begin_changeover(t, allow_idle=True)
        else:
            self._start_running(t)

    def _begin_break(self, t: float) -> None:
        ev = self._events
        duration = ev.uniform(*self.BREAK_S)
        self._next_break = t + duration + ev.uniform(*self.BREAK_EVERY_S)
        self._enter(LineState.PLANNED_STOP, REASON_BREAK, t, duration)

    def _begin_changeover(self, t: float, allow_idle: bool) -> None:
        ev = self._events
        if allow_idle and ev.random() < self.NO_ORDER_P:
            self._enter(LineState.NO_ORDER, 0, t, ev.uniform(*self.NO_ORDER_S))
            return
        duration = ev.uniform(*self.CHANGEOVER_S)
        self.recipe = ev.choice([r for r in RECIPES if r != self.recipe])
        self._next_changeover = t + duration + ev.uniform(*self.CHANGEOVER_EVERY_S)
        self._risky_packs = self.RESTART_REJECTS
        self._enter(LineState.CHANGEOVER, REASON_CHANGEOVER, t, duration)
        self._discard_part()

    # -- packs ------------------------------------------------------------------

    def _cycle_length(self) -> float:
        return 60.0 / self._speed

    def _scrap_probability(self) -> float:
        if self._risky_packs > 0:
            self._risky_packs -= 1
            return 0.15
        return self._reject_rate

    # -- physics ----------------------------------------------------------------

    def _seal_target(self) -> tuple[float, float]:
        """Temperature the seal jaw tends to and the time constant."""
        setpoint = self.recipe.seal_setpoint
        if self.state == LineState.NO_ORDER:
            return 30.0, 900.0  # heaters off
        if self.state == LineState.UNPLANNED_STOP and self.reason == REASON_SEAL_FAULT:
            return setpoint - 30.0, 90.0
        if self._pending.kind == "jam" and self._pending.reason == REASON_SEAL_FAULT and self.running:
            remaining = self._state_end - self.t
            if remaining < 60.0:
                return setpoint - 25.0 * (1.0 - remaining / 60.0), 60.0
        return setpoint, 90.0

    def _true_current(self) -> float:
        if not self.running:
            return 0.35
        current = 2.8 + 0.032 * self._speed
        if self._pending.kind == "jam" and self._pending.reason == REASON_INFEED_JAM:
            remaining = self._state_end - self.t
            if remaining < 45.0:
                current += 2.3 * (1.0 - remaining / 45.0)
        return current

    def _integrate(self, dt: float) -> None:
        target, tau = self._seal_target()
        self._seal_temp = approach(self._seal_temp, target, dt, tau)

    def _refresh(self) -> None:
        n = self._noise
        self.speed = self._speed * (1.0 + n.gauss(0.0, 0.008)) if self.running else 0.0
        self.motor_current = max(0.0, self._true_current() + n.gauss(0.0, 0.08 if self.running else 0.02))
        self.seal_temp = self._seal_temp + n.gauss(0.0, 0.6)
