"""How predictable a value is from the values just before it: a context model over quantised values.

The idea of CAD OSE (the Contextual Anomaly Detector of NAB's scoreboard) and of HTM's sequence memory,
in a small, bounded form. Each value becomes one of ``bins`` symbols, by the bins of a sliding window of
recent values (its sorted values are passed in, so the detector's tail-surprise window is shared):
equal-frequency bins (``spacing="quantile"``) or equal-width bins between the window's 0.1% and 99.9%
points (``spacing="width"``, closer to CAD OSE's fixed value range). The model counts which symbol
followed each context, the last ``1..order`` symbols, and predicts the next symbol by blending the orders
from the empty context (uniform) upwards: ``P_k(s) = (c_k(s) + P_{k-1}(s)) / (n_k + 1)``, where
``c_k(s)`` is how often ``s`` followed the context of length ``k`` and ``n_k`` how often that context was
seen. The *log-loss* ``-log10 P(x)`` of each value is its surprise in decades: low in a rhythm the model
has learnt, high when the shape or the rhythm changes, even if every value stays in its usual range.

State is bounded: when more than ``max_entries`` (context, symbol) pairs are counted, every count is
halved and the pairs that drop to zero are forgotten (old habits fade, new ones are learnt).
"""

from __future__ import annotations

import bisect
import math
import sys
from array import array
from collections.abc import Sequence

__all__ = ["SPACINGS", "ContextModel"]

SPACINGS = ("quantile", "width")


class ContextModel:
    """Log-loss of each value under a blended variable-order context model (see the module docstring)."""

    __slots__ = ("_bins", "_contexts", "_edges", "_max_entries", "_order", "_pairs", "_recent", "_width", "halvings")

    def __init__(self, bins: int = 8, order: int = 4, max_entries: int = 4096, spacing: str = "quantile") -> None:
        if bins < 2 or order < 1 or max_entries < 16:
            raise ValueError("need bins >= 2, order >= 1 and max_entries >= 16")
        if spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}, not {spacing!r}")
        self._bins = bins
        self._order = order
        self._max_entries = max_entries
        self._width = spacing == "width"
        self._recent: list[int] = []  # the last ``order`` symbols, most recent first
        self._pairs: dict[int, int] = {}  # (context, symbol) key -> count
        self._contexts: dict[int, int] = {}  # context key -> count
        self._edges: array[float] = array("d", [0.0]) * (bins - 1)
        self.halvings = 0

    def symbol(self, x: float, ordered: Sequence[float]) -> int:
        """The bin (0 to ``bins - 1``) of ``x`` against the sorted window ``ordered``."""
        n = len(ordered)
        if not n:
            return 0
        edges, bins, last = self._edges, self._bins, n - 1
        if self._width:
            lo, hi = ordered[last // 1000], ordered[last - last // 1000]
            step = (hi - lo) / bins
            for j in range(1, bins):
                edges[j - 1] = lo + j * step
        else:
            for j in range(1, bins):
                edges[j - 1] = ordered[(j * last) // bins]
        return bisect.bisect_right(edges, x)

    def update(self, x: float, ordered: Sequence[float]) -> float:
        """Log-loss of ``x`` in decades given the symbols before it; then learn from it."""
        bins, pairs, contexts, recent = self._bins, self._pairs, self._contexts, self._recent
        s = self.symbol(x, ordered)
        # A context key is 1 followed by the context's symbols (most recent first) in base ``bins``.
        key = 1
        p = (pairs.get(bins + s, 0) + 1.0 / bins) / (contexts.get(1, 0) + 1.0)
        for prior in recent:
            key = key * bins + prior
            seen = contexts.get(key, 0)
            if not seen:
                break  # a longer context that ends with this one is unseen too
            p = (pairs.get(key * bins + s, 0) + p) / (seen + 1.0)
        key = 1
        for k in range(len(recent) + 1):
            if k:
                key = key * bins + recent[k - 1]
            contexts[key] = contexts.get(key, 0) + 1
            pair = key * bins + s
            pairs[pair] = pairs.get(pair, 0) + 1
        recent.insert(0, s)
        if len(recent) > self._order:
            recent.pop()
        if len(pairs) > self._max_entries:
            self._halve()
        return -math.log10(p)

    def _halve(self) -> None:
        """Halve every count and forget what drops to zero (keeps the tables bounded)."""
        self.halvings += 1
        bins = self._bins
        self._pairs = {pair: count // 2 for pair, count in self._pairs.items() if count > 1}
        contexts: dict[int, int] = {}
        for pair, count in self._pairs.items():
            contexts[pair // bins] = contexts.get(pair // bins, 0) + count
        self._contexts = contexts

    def __len__(self) -> int:
        """(context, symbol) pairs counted."""
        return len(self._pairs)

    def nbytes(self) -> int:
        """Bytes of the count tables: the two hash tables and the integer objects they hold (28 bytes each)."""
        ints = 2 * (len(self._pairs) + len(self._contexts))
        tables = sys.getsizeof(self._pairs) + sys.getsizeof(self._contexts)
        return tables + 28 * ints + self._edges.itemsize * len(self._edges)
