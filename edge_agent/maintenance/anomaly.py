"""Streaming, unsupervised anomaly detection for one tag, and an alarm with hysteresis on its score.

A detector takes one value at a time and returns an anomaly score in [0, 1] for it, learning what is
normal from the tag's own history: no labels, no training pass, bounded state. The agent keeps one
detector per monitored tag (or per feature of a vibration waveform).

``TailEnsembleDetector`` (registered as ``"tail-ensemble"``, the default) scores each point by the
largest weighted *tail surprise* (see :mod:`edge_agent.maintenance.surprise`) of

* the value itself, and its running means over 6, 24 and 96 points (spikes, level shifts, slow drifts),
* the seasonal residual ``x[t] - x[t - P]`` (averaged over 6 points) when the warm-up shows a period P,

each against a sliding window of its own recent history (6,000 points by default). The surprise ``S``
(in decades of tail probability) becomes the score ``S / (S + 4)``: 0.5 is a value at a once-in-ten-
thousand level. Repeats are suppressed: a point only scores if it is more surprising than every point of
the last ``refractory`` points, so a lasting anomaly raises one alert, not hundreds, while a worsening one
raises again. Nothing is scored during the warm-up.

Two variants add a sequence feature for changes of shape or rhythm within the usual range, weighted 0.5:
``"context-ensemble"`` (after CAD OSE and HTM) the log-loss of each value under a context model of the
quantised values before it, averaged over 6 points (:mod:`edge_agent.maintenance.context`), and
``"shape-ensemble"`` (after ARTime) the distance of the latest shape of block means to the nearest one
seen before (:mod:`edge_agent.maintenance.shape`). Neither beat the default on NAB
(docs/predictive-maintenance.md), so neither is the default.

``GaussianDetector`` (``"gaussian"``) is the textbook baseline: a z-score against a sliding mean and
standard deviation.

``AnomalyAlarm`` turns a score stream into alarm transitions with a threshold, hysteresis and hold time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from edge_agent.maintenance.context import SPACINGS, ContextModel
from edge_agent.maintenance.rolling import RollingMean
from edge_agent.maintenance.shape import ShapeNovelty
from edge_agent.maintenance.surprise import TailSurprise, find_period

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "AlarmChange",
    "AnomalyAlarm",
    "Detector",
    "GaussianDetector",
    "TailEnsembleConfig",
    "TailEnsembleDetector",
    "make_detector",
]


class Detector(Protocol):
    """One tag's streaming detector."""

    def update(self, value: float) -> float:
        """Score the next value (0 for NaN and during the warm-up) and learn from it."""
        ...

    @property
    def level(self) -> float:
        """The score of the last point before repeat suppression (what an alarm with hysteresis watches)."""
        ...

    def state_bytes(self) -> int:
        """Approximate bytes of state held for this tag."""
        ...


@dataclass(frozen=True, slots=True)
class TailEnsembleConfig:
    """Parameters of :class:`TailEnsembleDetector` (the defaults are the ones measured on NAB).

    ``scales`` are ``(points averaged, weight)`` pairs: the raw value is scale 1. ``refractory`` (points)
    defaults to ``refractory_fraction`` of the warm-up. ``context_*`` configure the context feature
    (off at ``context_weight=0``): :class:`~edge_agent.maintenance.context.ContextModel`'s ``bins``,
    ``order``, ``max_entries`` and ``spacing``, and the points its log-loss is averaged over. ``shape_*``
    configure the shape feature (off at ``shape_weight=0``): a
    :class:`~edge_agent.maintenance.shape.ShapeNovelty` of ``shape_length`` blocks, with ``shape_blocks``
    blocks per warm-up and ``shape_memory`` shapes remembered.
    """

    warmup: int = 750
    window: int = 6000
    scales: tuple[tuple[int, float], ...] = ((1, 1.0), (6, 0.5), (24, 0.7), (96, 0.9))
    seasonal_weight: float = 0.4
    seasonal_smoothing: int = 6
    min_autocorrelation: float = 0.3
    body_quantile: float = 0.99
    tail_quantile: float = 0.999
    floor: float = 0.1
    clip: float = 8.0
    score_scale: float = 4.0
    refractory: int | None = None
    refractory_fraction: float = 0.3
    context_weight: float = 0.0
    context_bins: int = 8
    context_order: int = 4
    context_smoothing: int = 6
    context_entries: int = 4096
    context_spacing: str = "quantile"
    shape_weight: float = 0.0
    shape_length: int = 8
    shape_blocks: int = 104
    shape_memory: int = 1000

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.window < 1:
            raise ValueError("warmup must be >= 0 and window >= 1")
        if not self.scales or any(n < 1 or w < 0 for n, w in self.scales):
            raise ValueError("scales must be (points >= 1, weight >= 0) pairs")
        if self.context_weight < 0 or self.context_smoothing < 1:
            raise ValueError("context_weight must be >= 0 and context_smoothing >= 1")
        if self.shape_weight < 0 or self.shape_blocks < 1 or not 2 <= self.shape_length < self.shape_memory:
            raise ValueError("need shape_weight >= 0, shape_blocks >= 1 and 2 <= shape_length < shape_memory")
        if self.context_spacing not in SPACINGS:
            raise ValueError(f"context_spacing must be one of {', '.join(SPACINGS)}, not {self.context_spacing!r}")

    @property
    def refractory_points(self) -> int:
        if self.refractory is not None:
            return self.refractory
        return max(1, round(self.refractory_fraction * self.warmup))


class _Seasonal:
    """Residual against the value one period ago, averaged; the period is found at the end of warm-up."""

    __slots__ = ("_head", "_history", "_ring", "mean", "period")

    def __init__(self, smoothing: int) -> None:
        self._history: list[float] | None = []
        self._ring: np.ndarray | None = None
        self._head = 0
        self.period = 0
        self.mean = RollingMean(smoothing)

    def learn(self, x: float) -> None:
        if self._history is not None:
            self._history.append(x)

    def settle(self, min_autocorrelation: float) -> None:
        """End of warm-up: find the period and keep only the last one of history."""
        history = np.asarray(self._history or [], dtype=np.float64)
        self._history = None
        self.period = find_period(history, min_autocorrelation)
        if self.period:
            self._ring = history[-self.period :].copy()

    def residual(self, x: float) -> float:
        """Mean residual ``x - x[t - P]`` over the last few points, or NaN without a period."""
        ring = self._ring
        if ring is None:
            return math.nan
        before = float(ring[self._head])
        ring[self._head] = x
        self._head = (self._head + 1) % self.period
        return self.mean.push(x - before)

    def nbytes(self) -> int:
        held = len(self._history) if self._history is not None else self.period
        return held * 8 + self.mean.nbytes()


class TailEnsembleDetector:
    """Multi-scale tail-surprise ensemble with repeat suppression (see the module docstring)."""

    def __init__(self, config: TailEnsembleConfig | None = None) -> None:
        self.config = c = config or TailEnsembleConfig()
        self._means = [RollingMean(n) if n > 1 else None for n, _ in c.scales]
        self._weights = [w for _, w in c.scales]
        self._surprises = [self._tail() for _ in c.scales]
        self._seasonal = _Seasonal(c.seasonal_smoothing) if c.seasonal_weight > 0 else None
        self._seasonal_surprise = self._tail() if self._seasonal is not None else None
        # The sequence features take their bins and scale from the window of the raw value (finest scale).
        self._binning = self._surprises[min(range(len(c.scales)), key=lambda i: c.scales[i][0])].window
        self._context: ContextModel | None = None
        self._context_mean = RollingMean(c.context_smoothing)
        self._context_surprise: TailSurprise | None = None
        if c.context_weight > 0:
            self._context = ContextModel(c.context_bins, c.context_order, c.context_entries, c.context_spacing)
            self._context_surprise = self._tail()
        self._shape: ShapeNovelty | None = None
        self._shape_surprise: TailSurprise | None = None
        self._shape_level = 0.0
        if c.shape_weight > 0:
            step = max(1, round(c.warmup / c.shape_blocks))
            self._shape = ShapeNovelty(step, c.shape_length, c.shape_memory)
            self._shape_surprise = self._tail()
        self._recent: deque[tuple[int, float]] = deque()  # (index, level), levels decreasing
        self._count = 0
        self._level = 0.0
        self._refractory = c.refractory_points

    def _tail(self) -> TailSurprise:
        c = self.config
        return TailSurprise(c.window, c.body_quantile, c.tail_quantile, c.floor, c.clip)

    @property
    def level(self) -> float:
        return self._level

    @property
    def period(self) -> int:
        """The seasonal period found at the end of the warm-up (0: none)."""
        return self._seasonal.period if self._seasonal is not None else 0

    def update(self, value: float) -> float:
        x = float(value)
        if math.isnan(x):
            return 0.0
        c = self.config
        self._count += 1
        surprise = 0.0
        if self._context is not None and self._context_surprise is not None:
            loss = self._context_mean.push(self._context.update(x, self._binning.ordered))
            surprise = c.context_weight * self._context_surprise.surprise(loss)
            self._context_surprise.push(loss)
        if self._shape is not None and self._shape_surprise is not None:
            ordered = self._binning.ordered
            n = len(ordered)
            if n >= 30:
                lo, med, hi = ordered[n // 100], ordered[n // 2], ordered[n - 1 - n // 100]
                scale = max(hi - lo, 1e-6 * (abs(med) + 1e-3))
                distance = self._shape.update(x, med, scale)
                if not math.isnan(distance):
                    self._shape_level = c.shape_weight * self._shape_surprise.surprise(distance)
                    self._shape_surprise.push(distance)
            surprise = max(surprise, self._shape_level)
        for mean, weight, tail in zip(self._means, self._weights, self._surprises, strict=True):
            feature = x if mean is None else mean.push(x)
            s = weight * tail.surprise(feature)
            surprise = s if s > surprise else surprise
            tail.push(feature)
        seasonal = self._seasonal
        if seasonal is not None and self._seasonal_surprise is not None:
            if self._count <= c.warmup:
                seasonal.learn(x)
                if self._count == c.warmup:
                    seasonal.settle(c.min_autocorrelation)
            else:
                residual = seasonal.residual(x)
                if not math.isnan(residual):
                    s = c.seasonal_weight * self._seasonal_surprise.surprise(residual)
                    surprise = s if s > surprise else surprise
                    self._seasonal_surprise.push(residual)
        if self._count <= c.warmup:
            self._level = 0.0
            return 0.0
        level = surprise / (surprise + c.score_scale)
        self._level = level
        return level if self._is_record(level) else 0.0

    def _is_record(self, level: float) -> bool:
        """True when ``level`` beats every level of the last ``refractory`` points (a monotone deque)."""
        recent = self._recent
        oldest = self._count - self._refractory
        while recent and recent[0][0] < oldest:
            recent.popleft()
        record = not recent or level > recent[0][1]
        while recent and recent[-1][1] <= level:
            recent.pop()
        recent.append((self._count, level))
        return record

    def state_bytes(self) -> int:
        total = sum(t.nbytes() for t in self._surprises)
        total += sum(m.nbytes() for m in self._means if m is not None)
        if self._seasonal is not None and self._seasonal_surprise is not None:
            total += self._seasonal.nbytes() + self._seasonal_surprise.nbytes()
        if self._context is not None and self._context_surprise is not None:
            total += self._context.nbytes() + self._context_mean.nbytes() + self._context_surprise.nbytes()
        if self._shape is not None and self._shape_surprise is not None:
            total += self._shape.nbytes() + self._shape_surprise.nbytes()
        return total + len(self._recent) * 16


class GaussianDetector:
    """Baseline: the tail probability of a z-score against a sliding mean and standard deviation."""

    def __init__(self, warmup: int = 750, window: int = 750) -> None:
        self.warmup = warmup
        self._values: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._sumsq = 0.0
        self._count = 0
        self._level = 0.0

    @property
    def level(self) -> float:
        return self._level

    def update(self, value: float) -> float:
        x = float(value)
        if math.isnan(x):
            return 0.0
        self._count += 1
        n = len(self._values)
        score = 0.0
        if n > 1:
            mean = self._sum / n
            std = math.sqrt(max(self._sumsq / n - mean * mean, 0.0))
            z = abs(x - mean) / std if std > 0 else (0.0 if x == mean else math.inf)
            score = 1.0 - math.erfc(z / math.sqrt(2.0)) if math.isfinite(z) else 1.0
        if n == self._values.maxlen:
            old = self._values[0]
            self._sum -= old
            self._sumsq -= old * old
        self._values.append(x)
        self._sum += x
        self._sumsq += x * x
        self._level = score if self._count > self.warmup else 0.0
        return self._level

    def state_bytes(self) -> int:
        return len(self._values) * 32 + 64


def _tail_ensemble(**params: Any) -> Detector:
    scales = params.pop("scales", None)
    config = replace(TailEnsembleConfig(), **params)
    if scales is not None:
        config = replace(config, scales=tuple((int(n), float(w)) for n, w in scales))
    return TailEnsembleDetector(config)


def _context_ensemble(**params: Any) -> Detector:
    return _tail_ensemble(**{"context_weight": 0.5, **params})


def _shape_ensemble(**params: Any) -> Detector:
    return _tail_ensemble(**{"shape_weight": 0.5, **params})


#: Detectors by name, for ``edge-agent analyze anomaly --detector NAME`` and ``bench/nab.py``.
DETECTORS: dict[str, Callable[..., Detector]] = {
    "tail-ensemble": _tail_ensemble,
    "context-ensemble": _context_ensemble,
    "shape-ensemble": _shape_ensemble,
    "gaussian": GaussianDetector,
}
DEFAULT_DETECTOR = "tail-ensemble"


def make_detector(name: str = DEFAULT_DETECTOR, **params: Any) -> Detector:
    """A new detector by registry name; ``params`` go to its configuration (e.g. ``warmup=500``)."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r} (known: {', '.join(sorted(DETECTORS))})") from None
    return factory(**params)


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """An alarm transition: raised (``active``) or cleared, at point ``index`` with that point's score."""

    active: bool
    index: int
    score: float


@dataclass
class AnomalyAlarm:
    """Alarm on an anomaly score with a threshold and hysteresis.

    Raised when the score reaches ``threshold``; cleared once it has stayed below
    ``threshold - hysteresis`` for ``clear_after`` consecutive points. Feed it a detector's ``level``
    (the unsuppressed score) so that a lasting anomaly keeps the alarm up.
    """

    threshold: float = 0.5
    hysteresis: float = 0.1
    clear_after: int = 10
    active: bool = field(default=False, init=False)
    _index: int = field(default=-1, init=False, repr=False)
    _below: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.hysteresis <= self.threshold:
            raise ValueError("need 0 <= hysteresis <= threshold")
        if self.clear_after < 1:
            raise ValueError("clear_after must be at least 1")

    def update(self, score: float) -> AlarmChange | None:
        """Take the next score; return the transition it causes, if any."""
        self._index += 1
        if math.isnan(score):
            return None
        if not self.active:
            if score >= self.threshold:
                self.active = True
                self._below = 0
                return AlarmChange(True, self._index, score)
            return None
        if score < self.threshold - self.hysteresis:
            self._below += 1
            if self._below >= self.clear_after:
                self.active = False
                return AlarmChange(False, self._index, score)
        else:
            self._below = 0
        return None
