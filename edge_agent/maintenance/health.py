"""The health index of a device and when to recommend maintenance (pure: no clock, no I/O, deterministic).

The index runs from 100 (nothing wrong seen) to 0 and is the lower of two parts, each present only when
the profile configures it:

* the **anomaly part** ``100 * clip((1 - s) / (1 - NORMAL_SCORE), 0, 1)``, where ``s`` is the highest
  smoothed anomaly score of the monitored tags (each tag's detector score in [0, 1], an exponential moving
  average over about ``smoothing`` points) and ``NORMAL_SCORE = 0.2`` the score of ordinary noise: the
  tail-ensemble detector's score is ``S / (S + 4)`` for a surprise of ``S`` decades, so 0.2 is a one-in-ten
  value, which a healthy machine shows all the time. Scores up to 0.2 give 100, the alarm threshold 0.5
  gives 62.5, a score of 1 gives 0;
* the **RUL part** ``100 * clip(rul / cap, 0, 1)``, where ``rul`` is the model's remaining useful life in
  cycles and ``cap`` the RUL the model was trained to saturate at (``rul_cap`` of its card, 125 cycles for
  FD001): the model cannot tell apart machines with more life left than that, so they are all 100.

The lower part wins (rather than an average) so that one imminent failure is never hidden behind a healthy
reading of the other part; :attr:`HealthIndex.reason` names the part, tag or RUL that set the index.

:class:`MaintenanceTrigger` fires once when the RUL falls below the horizon or the index below its floor,
and re-arms only after both have recovered past their hysteresis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["NORMAL_SCORE", "HealthIndex", "MaintenanceTrigger", "RulEstimate", "RulUnit", "health_index"]

RulUnit = Literal["cycles", "h"]
NORMAL_SCORE = 0.2
"""The smoothed anomaly score of ordinary noise (a one-in-ten surprise): at or below it the anomaly part is 100."""


@dataclass(frozen=True, slots=True)
class RulEstimate:
    """One remaining-useful-life estimate: ``cycles`` from the model (>= 0), ``value`` in ``unit``."""

    cycles: float
    cap: float
    value: float
    unit: RulUnit
    cycle: int
    """How many cycles of the machine the estimate has seen."""

    def describe(self) -> str:
        return f"RUL {self.value:.1f} {self.unit}"


@dataclass(frozen=True, slots=True)
class HealthIndex:
    """The index (0-100, rounded to 0.1), its parts and what set it."""

    index: float
    anomaly_part: float | None
    rul_part: float | None
    reason: str
    tag: str | None = None
    """The monitored tag with the highest smoothed anomaly score."""
    score: float | None = None
    """That tag's smoothed score."""
    rul: RulEstimate | None = None


def health_index(scores: Mapping[str, float], rul: RulEstimate | None = None) -> HealthIndex | None:
    """The health index from smoothed anomaly scores per tag and an optional RUL estimate; None with neither.

    >>> health_index({"vibration_rms": 0.4, "temperature": 0.1}).index
    75.0
    """
    tag: str | None = None
    score: float | None = None
    anomaly_part: float | None = None
    if scores:
        tag = max(sorted(scores), key=lambda t: scores[t])
        score = min(1.0, max(0.0, float(scores[tag])))
        anomaly_part = 100.0 * min(1.0, max(0.0, (1.0 - score) / (1.0 - NORMAL_SCORE)))
    rul_part = None if rul is None else 100.0 * min(1.0, max(0.0, rul.cycles / rul.cap))
    if anomaly_part is None and rul_part is None:
        return None
    if rul_part is not None and rul is not None and (anomaly_part is None or rul_part < anomaly_part):
        index = rul_part
        reason = f"{rul.describe()} (the model saturates at {rul.cap:g} cycles)"
    else:
        assert anomaly_part is not None
        index = anomaly_part
        reason = f"anomaly score {score:.2f} on {tag}"
    return HealthIndex(round(index, 1), _round(anomaly_part), _round(rul_part), reason, tag, score, rul)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class MaintenanceTrigger:
    """Fires once when the RUL falls below ``horizon`` or the index below ``floor``; re-arms after recovery.

    Re-arming needs every configured condition back past its hysteresis: the RUL at or above
    ``horizon + rul_hysteresis`` and the index at or above ``floor + floor_hysteresis``.
    """

    def __init__(
        self,
        horizon: float | None = None,
        rul_hysteresis: float = 0.0,
        floor: float | None = None,
        floor_hysteresis: float = 0.0,
    ) -> None:
        self.horizon = horizon
        self.rul_hysteresis = rul_hysteresis
        self.floor = floor
        self.floor_hysteresis = floor_hysteresis
        self.fired = False

    def update(self, health: HealthIndex) -> str | None:
        """Take the latest index; the reason when this update fires a recommendation, else None."""
        rul = health.rul
        if not self.fired:
            reasons = []
            if self.horizon is not None and rul is not None and rul.value < self.horizon:
                reasons.append(f"{rul.describe()} below the horizon of {self.horizon:g} {rul.unit}")
            if self.floor is not None and health.index < self.floor:
                reasons.append(f"health {health.index:.1f} below the floor of {self.floor:g} ({health.reason})")
            if reasons:
                self.fired = True
                return "; ".join(reasons)
            return None
        rul_clear = self.horizon is None or (rul is not None and rul.value >= self.horizon + self.rul_hysteresis)
        floor_clear = self.floor is None or health.index >= self.floor + self.floor_hysteresis
        if rul_clear and floor_clear:
            self.fired = False
        return None
