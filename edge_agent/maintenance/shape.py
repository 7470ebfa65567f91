"""How new the recent *shape* of a series is: distance to the nearest shape seen before.

The idea of ARTime (adaptive resonance on windowed, down-sampled features) and of matrix-profile
"discords", in a small, bounded form. The stream is cut into blocks of ``step`` points; each block is
reduced to its mean. The last ``length`` block means, scaled by a robust range of the series (passed in
by the caller: the detector's sliding window), form the current shape vector. Its distance (root mean
square difference) to the nearest of the last ``memory`` shape vectors, leaving out the ``length`` most
recent ones that overlap it, is the novelty of the shape: small in a rhythm seen before, large when the
shape of the series changes, even if every value stays in its usual range.

The distance is computed once per block (one numpy pass over the memory) and held until the next one.
State: ``memory x length`` float32 values.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ShapeNovelty"]


class ShapeNovelty:
    """Nearest-neighbour distance of the latest block-mean shape to the shapes before it."""

    __slots__ = ("_block_count", "_block_sum", "_blocks", "_filled", "_head", "_length", "_memory", "_step", "blocks")

    def __init__(self, step: int = 1, length: int = 8, memory: int = 1000) -> None:
        if step < 1 or length < 2 or memory <= length:
            raise ValueError("need step >= 1, length >= 2 and memory > length")
        self._step = step
        self._length = length
        self._memory = np.zeros((memory, length), dtype=np.float32)
        self._head = 0  # next row of the memory ring
        self._filled = 0
        self._blocks = np.zeros(length, dtype=np.float64)  # the last ``length`` block means, oldest first
        self._block_sum = 0.0
        self._block_count = 0
        self.blocks = 0  # blocks completed

    def update(self, x: float, centre: float, scale: float) -> float:
        """Add ``x``; at the end of a block return the novelty of the new shape, otherwise NaN.

        ``centre`` and ``scale`` (a typical value and a robust range of the series) put shapes of
        different series on one scale; a shape is the block means minus ``centre``, over ``scale``.
        """
        self._block_sum += x
        self._block_count += 1
        if self._block_count < self._step:
            return math.nan
        mean = self._block_sum / self._block_count
        self._block_sum, self._block_count = 0.0, 0
        blocks = self._blocks
        blocks[:-1] = blocks[1:]
        blocks[-1] = mean
        self.blocks += 1
        if self.blocks < self._length:
            return math.nan
        shape = ((blocks - centre) / scale).astype(np.float32)
        rows = len(self._memory)
        # Compare with every stored shape except the ``length`` most recent ones (they overlap this one).
        distance = math.nan
        if self._filled > self._length:
            diff = self._memory[: self._filled] - shape
            squared = np.einsum("ij,ij->i", diff, diff)
            squared[(self._head - 1 - np.arange(self._length)) % rows] = np.inf
            distance = math.sqrt(float(np.min(squared)) / self._length)
        self._memory[self._head] = shape
        self._head = (self._head + 1) % rows
        self._filled = min(self._filled + 1, rows)
        return distance

    def nbytes(self) -> int:
        return int(self._memory.nbytes + self._blocks.nbytes)
