"""k-means in numpy: k-means++ seeding, Lloyd iterations, the best of several runs; deterministic per seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["KMeansResult", "kmeans", "standardise"]

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class KMeansResult:
    """``labels[i]``: cluster of row ``i``; ``centres``: one row per cluster; ``inertia``: sum of squared distances."""

    labels: npt.NDArray[np.int64]
    centres: Matrix
    inertia: float


def standardise(x: Matrix, min_scale: npt.ArrayLike | None = None) -> Matrix:
    """Each column minus its mean, divided by its (population) standard deviation; constant columns become 0.

    ``min_scale`` (per column) is the smallest divisor: differences much below it stay small instead of
    being blown up to whole standard deviations in a fleet where the column hardly varies.
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    if min_scale is not None:
        scale = np.maximum(scale, np.asarray(min_scale, dtype=np.float64))
    safe = np.where(scale > 0, scale, 1.0)
    return np.where(scale > 0, (x - mean) / safe, 0.0)


def _seed_centres(x: Matrix, k: int, rng: np.random.Generator) -> Matrix:
    centres = [x[int(rng.integers(len(x)))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centres)[None, :, :]) ** 2).sum(axis=2), axis=1)
        total = float(d2.sum())
        index = int(rng.choice(len(x), p=d2 / total)) if total > 0 else int(rng.integers(len(x)))
        centres.append(x[index])
    return np.asarray(centres, dtype=np.float64)


def _lloyd(x: Matrix, centres: Matrix, max_iter: int) -> KMeansResult:
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(max_iter):
        d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = np.argmin(d2, axis=1).astype(np.int64)
        moved = centres.copy()
        for j in range(len(centres)):
            members = x[labels == j]
            if len(members):
                moved[j] = members.mean(axis=0)
        if np.allclose(moved, centres, rtol=0.0, atol=1e-12):
            centres = moved
            break
        centres = moved
    d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    labels = np.argmin(d2, axis=1).astype(np.int64)
    inertia = float(d2[np.arange(len(x)), labels].sum())
    return KMeansResult(labels, centres, inertia)


def kmeans(
    x: Matrix, k: int, seed: int = 0, n_init: int = 10, max_iter: int = 100, resolution: int | None = None
) -> KMeansResult:
    """Cluster the rows of ``x`` into at most ``k`` clusters (fewer when there are fewer distinct rows).

    ``resolution``: rows equal when rounded to this many decimals count as one when capping ``k``.
    The same ``x`` and ``seed`` always give the same result; labels are ``0..k'-1`` in order of
    first appearance.
    """
    rounded = np.round(x, resolution) if resolution is not None else x
    distinct = len(np.unique(rounded, axis=0)) if len(x) else 0
    k = max(1, min(k, distinct))
    if len(x) == 0:
        return KMeansResult(np.zeros(0, dtype=np.int64), np.zeros((0, x.shape[1] if x.ndim == 2 else 0)), 0.0)
    rng = np.random.default_rng(seed)
    best: KMeansResult | None = None
    for _ in range(n_init):
        run = _lloyd(x, _seed_centres(x, k, rng), max_iter)
        if best is None or run.inertia < best.inertia - 1e-12:
            best = run
    assert best is not None
    order: dict[int, int] = {}
    for label in best.labels.tolist():
        order.setdefault(label, len(order))
    labels = np.array([order[label] for label in best.labels.tolist()], dtype=np.int64)
    centres = np.array([best.centres[old] for old, _ in sorted(order.items(), key=lambda item: item[1])])
    return KMeansResult(labels, centres, best.inertia)
