"""Scoring of anomaly detections with the rules of the Numenta Anomaly Benchmark (NAB).

Pure functions over numpy arrays; reading the corpus is in :mod:`edge_agent.maintenance.nab_corpus`.
The rules follow NAB's ``nab/sweeper.py`` (v1.1, the code that produced the published scoreboard):

* Each labelled anomaly has a window (``labels/combined_windows.json``). A row inside a window is
  worth ``scaled_sigmoid(-(right - i + 1) / width) / scaled_sigmoid(-1) * A_TP`` if detected: ``A_TP``
  at the left edge, about 0 at the right edge. Only the best (earliest) detection of a window counts; a window with no
  detection costs ``-A_FN``.
* A detection outside every window is a false positive worth ``scaled_sigmoid(d / (w - 1)) * A_FP``,
  where ``d`` is its distance from the right edge of the preceding window and ``w`` that window's width
  (so a detection just after a window costs almost nothing, one far after it costs ``-A_FP``), or
  ``-A_FP`` when no window precedes it.
* Rows of the probationary period (the first ``min(floor(0.15 n), 750)`` rows) are worth 0.
* A detection is ``anomaly_score >= threshold``. One threshold per profile is optimised over the whole
  corpus; the corpus score ``S`` is the sum of the per-file scores at that threshold and is reported
  normalised as ``100 (S - S_null) / (S_perfect - S_null)``, with ``S_perfect = A_TP * windows`` and
  ``S_null`` the score of a detector that never fires (``-A_FN * windows``).
* The tp/tn/fp/fn counts are per row (a detected row inside a window is a tp, and so on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "PROFILES",
    "CorpusScore",
    "CostMatrix",
    "FileScore",
    "SweptFile",
    "normalised_score",
    "optimise_threshold",
    "probationary_length",
    "scaled_sigmoid",
    "score_at_threshold",
    "score_corpus",
    "sweep",
    "window_bounds",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROBATION_PERCENT = 0.15
_PROBATION_BASE_ROWS = 5000  # NAB caps the probationary period at probationPercent * 5000 rows
_MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0  # scaled_sigmoid(-1): a detection on a window's first row earns A_TP


@dataclass(frozen=True, slots=True)
class CostMatrix:
    """Weights of one NAB application profile (``config/profiles.json``)."""

    tp: float
    fp: float
    fn: float

    @classmethod
    def from_nab(cls, profile: Mapping[str, Mapping[str, float]]) -> CostMatrix:
        """Read one entry of NAB's ``profiles.json`` (``{"CostMatrix": {"tpWeight": ...}}``)."""
        matrix = profile["CostMatrix"]
        return cls(tp=float(matrix["tpWeight"]), fp=float(matrix["fpWeight"]), fn=float(matrix["fnWeight"]))


#: NAB's three application profiles, as in its ``config/profiles.json``.
PROFILES: dict[str, CostMatrix] = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True, slots=True)
class SweptFile:
    """One file prepared for scoring: per-row NAB weights before the cost matrix is applied.

    ``unweighted[i]`` is the scaled sigmoid of row ``i`` (positive inside a window, negative outside),
    ``window[i]`` the index of its window or -1, ``scored[i]`` False in the probationary period.
    """

    name: str
    unweighted: FloatArray
    window: IntArray
    scored: npt.NDArray[np.bool_]
    n_windows: int

    def weights(self, cost: CostMatrix) -> FloatArray:
        """Per-row NAB score of a detection at that row under ``cost`` (0 in the probationary period)."""
        factor = np.where(self.window >= 0, cost.tp / _MAX_TP, cost.fp)
        return np.where(self.scored, self.unweighted * factor, 0.0)


@dataclass(frozen=True, slots=True)
class FileScore:
    """NAB score of one file at one threshold, with its per-row counts.

    As in NAB's score files, the counts leave out the probationary period and ``total`` is every row.
    """

    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int


@dataclass(frozen=True, slots=True)
class CorpusScore:
    """The best threshold of a profile over a corpus, the raw score there and its normalised form."""

    threshold: float
    raw: float
    null: float
    perfect: float
    n_windows: int

    @property
    def normalised(self) -> float:
        return normalised_score(self.raw, self.null, self.perfect)


def scaled_sigmoid(position: FloatArray | float) -> FloatArray:
    """NAB's ``scaledSigmoid``: ``2 / (1 + exp(5 x)) - 1``, and -1 beyond ``x > 3``."""
    x = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x > 3.0, -1.0, value)


def probationary_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that NAB does not score: ``min(floor(percent * n), percent * 5000)``."""
    return int(min(math.floor(percent * n_rows), percent * _PROBATION_BASE_ROWS))


def window_bounds(timestamps: npt.NDArray[np.datetime64], windows: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    """Row ranges ``(first, last)`` (inclusive) of the labelled windows of a file.

    A window holds the rows with ``start <= timestamp <= end``, as in NAB's corpus labels.
    """
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    bounds = []
    for start, end in windows:
        first = int(np.searchsorted(ts, np.datetime64(start, "ns"), side="left"))
        last = int(np.searchsorted(ts, np.datetime64(end, "ns"), side="right")) - 1
        if last >= first:
            bounds.append((first, last))
    return bounds


def sweep(name: str, n_rows: int, bounds: Sequence[tuple[int, int]], probation: int | None = None) -> SweptFile:
    """Per-row NAB position weights of a file with ``n_rows`` rows and windows ``bounds`` (sorted)."""
    index = np.arange(n_rows, dtype=np.int64)
    unweighted = np.full(n_rows, -1.0)
    window = np.full(n_rows, -1, dtype=np.int64)
    ordered = sorted(bounds)
    for k, (first, last) in enumerate(ordered):
        width = float(last - first + 1)
        inside = index[first : last + 1]
        unweighted[first : last + 1] = scaled_sigmoid(-(last - inside + 1) / width)
        window[first : last + 1] = k
        # Rows after this window up to the next one are scored against it.
        stop = ordered[k + 1][0] if k + 1 < len(ordered) else n_rows
        after = index[last + 1 : stop]
        if after.size:
            denominator = width - 1.0 if width > 1.0 else 1.0
            unweighted[last + 1 : stop] = scaled_sigmoid(np.abs(last - after) / denominator)
    if probation is None:
        probation = probationary_length(n_rows)
    return SweptFile(name, unweighted, window, index >= probation, len(ordered))


def score_at_threshold(swept: SweptFile, scores: FloatArray, threshold: float, cost: CostMatrix) -> FileScore:
    """NAB score of one file when rows with ``scores >= threshold`` are detections."""
    detected = np.asarray(scores, dtype=np.float64) >= threshold
    weights = swept.weights(cost)
    in_window = swept.window >= 0
    total = float(np.sum(weights[detected & ~in_window]))
    for k in range(swept.n_windows):
        hits = detected & (swept.window == k)
        total += max(-cost.fn, float(np.max(weights[hits]))) if hits.any() else -cost.fn
    scored = swept.scored
    tp = int(np.sum(detected & in_window & scored))
    fp = int(np.sum(detected & ~in_window & scored))
    fn = int(np.sum(in_window & scored)) - tp
    tn = int(np.sum(scored)) - tp - fp - fn
    return FileScore(total, tp, tn, fp, fn, len(detected))


def optimise_threshold(files: Sequence[tuple[SweptFile, FloatArray]], cost: CostMatrix) -> tuple[float, float]:
    """The threshold that maximises the summed NAB score of ``files`` and that score.

    Equivalent to NAB's ``Sweeper.calcScoreByThreshold`` over the concatenated corpus: every distinct
    anomaly score is a candidate, plus 1.1 (no detection); ties go to the highest threshold.
    """
    scores = np.concatenate([np.asarray(s, dtype=np.float64) for _, s in files]) if files else np.zeros(0)
    weights = np.concatenate([f.weights(cost) for f, _ in files]) if files else np.zeros(0)
    offsets = np.cumsum([0] + [f.n_windows for f, _ in files])
    window = np.concatenate([np.where(f.window >= 0, f.window + offsets[i], -1) for i, (f, _) in enumerate(files)])
    n_windows = int(offsets[-1])
    base = -cost.fn * n_windows

    order = np.argsort(-scores, kind="stable")
    s_sorted, w_sorted, win_sorted = scores[order], weights[order], window[order]
    delta = np.where(win_sorted < 0, w_sorted, 0.0)
    # For window rows, the gain is the rise of that window's running best, starting from -A_FN.
    rows = np.flatnonzero(win_sorted >= 0)
    if rows.size:
        by_window = rows[np.argsort(win_sorted[rows], kind="stable")]
        ids = win_sorted[by_window]
        span = 4.0 * (abs(cost.tp) + abs(cost.fn) + 1.0)
        shifted = np.maximum(w_sorted[by_window], -cost.fn) + ids * span
        best = np.maximum.accumulate(shifted) - ids * span
        start = np.r_[True, ids[1:] != ids[:-1]]
        previous = np.where(start, -cost.fn, np.r_[-cost.fn, best[:-1]])
        delta[by_window] = best - previous
    totals = base + np.cumsum(delta)
    # A threshold t detects every row with score >= t: evaluate at the last row of each run of equal scores.
    last_of_run = np.r_[s_sorted[1:] != s_sorted[:-1], True] if s_sorted.size else np.zeros(0, dtype=bool)
    thresholds = np.r_[1.1, s_sorted[last_of_run]]
    candidates = np.r_[base, totals[last_of_run]]
    if s_sorted.size and s_sorted[0] >= 1.1:
        thresholds, candidates = thresholds[1:], candidates[1:]
    best_index = int(np.argmax(candidates))
    return float(thresholds[best_index]), float(candidates[best_index])


def normalised_score(raw: float, null: float, perfect: float) -> float:
    """NAB's normalisation: ``100 (S - S_null) / (S_perfect - S_null)``."""
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(files: Sequence[tuple[SweptFile, FloatArray]], cost: CostMatrix) -> CorpusScore:
    """Optimise the threshold of one profile over ``files`` and normalise the corpus score."""
    threshold, raw = optimise_threshold(files, cost)
    n_windows = sum(f.n_windows for f, _ in files)
    null_files = [(f, np.full(len(f.window), 0.5)) for f, _ in files]
    _, null = optimise_threshold(null_files, cost)
    return CorpusScore(threshold, raw, null, cost.tp * n_windows, n_windows)
