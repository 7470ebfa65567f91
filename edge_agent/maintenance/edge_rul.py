"""Remaining useful life at the edge: a device's samples become model input rows, one per machine cycle.

:class:`CycleWindow` (pure) keeps the latest value of every mapped tag and closes a cycle row either when
the cycle tag changes value (samples of one timestamp are taken sensors first, so a message or poll that
carries the cycle counter and the sensors forms one row) or every ``cycle_interval_s`` seconds of sample
time (the row holds the values before the sample that crossed the boundary). It keeps the last ``window``
rows and their times, the number of cycles seen and, for a model whose card smooths the sensors, the running
exponential average: nothing more. :class:`EdgeRul` runs the TFLite model (:mod:`~edge_agent.maintenance.rul`)
on the window after every new row. The window is built by the same functions as ``edge-agent analyze rul``
and the training code (:func:`~edge_agent.maintenance.rul.input_rows`, padding a short history by repeating its
first row), so all three give the same input, and the same RUL, for the same cycles. A model that takes the
cycle number gets the cycle tag's value when it is a number (the machine's cycles since new, which survives an
agent restart and is what the training data counts); with ``cycle_interval_s`` or a non-numeric cycle tag it
gets the count of cycles since the first one this agent saw of the device.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge_agent.maintenance.health import RulEstimate
from edge_agent.maintenance.rul import ModelCard, RulModel, input_rows, pad_front
from edge_agent.model import Quality, Sample
from edge_agent.profiles import RulSettings

__all__ = ["CycleWindow", "EdgeRul", "Predictor", "load_edge_rul"]

Row = npt.NDArray[np.float64]


class Predictor(Protocol):
    """What :class:`EdgeRul` needs of :class:`~edge_agent.maintenance.rul.RulModel`."""

    @property
    def card(self) -> ModelCard: ...

    def predict(self, window: npt.ArrayLike) -> float: ...


class CycleWindow:
    """The last ``window`` cycle rows of one device (see the module docstring)."""

    def __init__(
        self, settings: RulSettings, sensors: Sequence[str], window: int, *, cycle: bool = False,
        smoothing: float = 0.0,
    ) -> None:
        self.settings = settings
        self.cycle = cycle
        """Whether :meth:`window` appends the cycle number of each row (the card has a cycle input)."""
        self.smoothing = smoothing if 0.0 < smoothing < 1.0 else 0.0
        """Exponential smoothing of the rows (``alpha``; 0: none), as :func:`~.rul.input_rows` smooths."""
        self._smoothed: Row | None = None
        self.columns: dict[str, list[int]] = {}
        for i, sensor in enumerate(sensors):
            self.columns.setdefault(settings.sensors[sensor], []).append(i)
        self.cycle_tag = settings.cycle_tag
        self.interval = settings.cycle_interval_s
        self.tags = frozenset(self.columns) | ({self.cycle_tag} if self.cycle_tag else set())
        self.values: list[float] = [math.nan] * len(sensors)
        self.rows: deque[Row] = deque(maxlen=window)
        self.times: deque[float] = deque(maxlen=window)
        self.numbers: deque[float] = deque(maxlen=window)
        """The cycle number of each row: the cycle tag's value when it is a number (cycles since new, as the
        training data counts them), else the count of cycles this agent has seen of the device."""
        self.cycles = 0
        self.incomplete = 0
        """Cycles skipped because some mapped tag had no value yet."""
        self._cycle_value: object = None
        self._next_at: float | None = None

    def feed(self, samples: Sequence[Sample]) -> int:
        """Take samples (any tags); returns how many cycle rows they completed."""
        tags = self.tags
        used = [s for s in samples if s.tag in tags]
        used.sort(key=lambda s: (s.ts, s.tag == self.cycle_tag))
        closed = 0
        for s in used:
            if s.quality == Quality.BAD:
                continue
            if self.interval is not None:
                if self._next_at is None:
                    self._next_at = s.ts + self.interval
                elif s.ts >= self._next_at:
                    closed += self._close(self._next_at)
                    skipped = math.floor((s.ts - self._next_at) / self.interval) + 1
                    self._next_at += skipped * self.interval
            if s.tag == self.cycle_tag:
                if s.value != self._cycle_value:
                    self._cycle_value = s.value
                    closed += self._close(s.ts, s.value)
                continue
            if isinstance(s.value, bool | str):
                continue
            value = float(s.value)
            if math.isfinite(value):
                for i in self.columns[s.tag]:
                    self.values[i] = value
        return closed

    def _close(self, ts: float, number: object = None) -> int:
        if any(math.isnan(v) for v in self.values):
            self.incomplete += 1
            return 0
        row = np.array(self.values)
        if self.smoothing:
            previous = self._smoothed
            if previous is not None:
                row = self.smoothing * row + (1.0 - self.smoothing) * previous
            self._smoothed = row
        self.rows.append(row)
        self.times.append(ts)
        self.cycles += 1
        counted = isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number)
        self.numbers.append(float(number) if counted else float(self.cycles))  # type: ignore[arg-type]
        return 1

    def window(self, length: int) -> Row:
        """The last ``length`` input rows (then the cycle number if :attr:`cycle`); a shorter history repeats
        its first row in front (as the offline pipeline)."""
        rows = input_rows(np.stack(list(self.rows)), cycle=self.cycle)
        if self.cycle:
            rows[:, -1] = self.numbers
        return pad_front(rows, length)[-length:]

    def cycle_s(self) -> float | None:
        """Seconds per cycle: the configured interval, else the mean over the kept rows (None before two)."""
        if self.interval is not None:
            return self.interval
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return None
        return (self.times[-1] - self.times[0]) / (len(self.times) - 1)


class EdgeRul:
    """One device's cycle window and its RUL estimates through the model."""

    def __init__(self, settings: RulSettings, model: Predictor, name: str = "") -> None:
        self.settings = settings
        self.model = model
        self.name = name
        card = model.card
        self.cycles = CycleWindow(
            settings, card.sensors, card.window, cycle=card.cycle is not None, smoothing=card.smoothing
        )
        self.min_cycles = settings.min_cycles or card.window
        self.estimate: RulEstimate | None = None
        self.tags = self.cycles.tags

    def feed(self, samples: Sequence[Sample]) -> RulEstimate | None:
        """Take samples; a new estimate when they completed a cycle (and enough cycles were seen)."""
        if not self.cycles.feed(samples) or self.cycles.cycles < self.min_cycles:
            return None
        card = self.model.card
        cycles = max(0.0, float(self.model.predict(self.cycles.window(card.window))))
        if self.settings.horizon_unit == "cycles":
            value = cycles
        else:
            seconds = self.cycles.cycle_s()
            if seconds is None:
                return None
            value = cycles * seconds / 3600.0
        self.estimate = RulEstimate(cycles, card.rul_cap, value, self.settings.horizon_unit, self.cycles.cycles)
        return self.estimate


def load_edge_rul(settings: RulSettings) -> EdgeRul:
    """The settings' model loaded into a TFLite interpreter (``RulError`` if it cannot be, e.g. no runtime)."""
    path = settings.model_path()
    model = RulModel.load(path)
    return EdgeRul(settings, model, str(model.card.raw.get("name", path.stem)))
