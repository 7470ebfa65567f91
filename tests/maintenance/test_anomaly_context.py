"""The sequence features tried against NAB: the context model (after CAD OSE) and shape novelty (after ARTime)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.maintenance.anomaly import DETECTORS, TailEnsembleConfig, TailEnsembleDetector, make_detector
from edge_agent.maintenance.context import ContextModel
from edge_agent.maintenance.shape import ShapeNovelty

PATTERN = np.array([0.0, 1.0, 2.0, 3.0, 2.0, 1.0])


def rhythm_change(noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A repeating up-down pattern whose rhythm doubles for 60 points at 2000, within the same range."""
    rng = np.random.default_rng(seed)
    values = np.tile(PATTERN, 400) + noise * rng.normal(size=2400)
    values[2000:2060] = np.tile(PATTERN[::2], 20) + noise * rng.normal(size=60)
    return values


def test_context_model_learns_a_rhythm_and_is_surprised_by_a_new_one() -> None:
    values = rhythm_change()
    ordered = sorted(values[:600])
    model = ContextModel(bins=4, order=3)
    loss = np.array([model.update(float(v), ordered) for v in values])
    assert loss[0] == pytest.approx(math.log10(4))  # nothing learnt: uniform over 4 symbols
    assert loss[1500:2000].max() < 0.01  # a learnt rhythm is predicted
    assert loss[2000:2010].max() > 1.0  # 0 -> 2 never followed 1, 0 before: over a decade
    assert loss[2000:2060].mean() > 0.1


def test_context_model_bins() -> None:
    ordered = sorted(float(v) for v in range(100))
    quantile = ContextModel(bins=4)
    assert [quantile.symbol(x, ordered) for x in (-5.0, 10.0, 30.0, 60.0, 90.0, 500.0)] == [0, 0, 1, 2, 3, 3]
    width = ContextModel(bins=4, spacing="width")
    assert [width.symbol(x, ordered) for x in (0.0, 30.0, 60.0, 99.0)] == [0, 1, 2, 3]
    assert quantile.symbol(1.0, []) == 0
    with pytest.raises(ValueError, match="spacing"):
        ContextModel(spacing="log")
    with pytest.raises(ValueError):
        ContextModel(bins=1)


def test_context_model_state_is_bounded() -> None:
    model = ContextModel(bins=8, order=4, max_entries=64)
    ordered = sorted(float(v) for v in range(8))
    for v in np.random.default_rng(1).integers(0, 8, size=5000):
        model.update(float(v), ordered)
        assert len(model) <= 64 + 5  # at most one pair per context length is added before halving
    assert model.halvings > 0
    assert model.nbytes() < 20_000


def test_shape_novelty_of_a_rhythm_change() -> None:
    values = rhythm_change(noise=0.05)
    shapes = ShapeNovelty(step=2, length=6, memory=600)
    distance = np.array([shapes.update(float(v), 1.5, 3.0) for v in values])
    assert np.all(np.isnan(distance[:13]))  # no shape before 6 blocks of 2 points, no neighbour before 7
    assert np.all(np.isnan(distance[::2]))  # a distance only at the end of a block
    assert np.nanmax(distance[1500:2000]) < 0.05
    assert np.nanmax(distance[2000:2060]) > 0.2
    assert shapes.nbytes() == 600 * 6 * 4 + 6 * 8
    with pytest.raises(ValueError):
        ShapeNovelty(length=8, memory=8)


def test_sequence_ensembles_are_registered_and_score_in_unit_interval() -> None:
    assert {"tail-ensemble", "context-ensemble", "shape-ensemble", "gaussian"} <= DETECTORS.keys()
    values = rhythm_change(noise=0.05, seed=2)
    levels = {}
    for name in ("tail-ensemble", "context-ensemble", "shape-ensemble"):
        detector = make_detector(name, warmup=600)
        scores, level = [], []
        for v in values:
            scores.append(detector.update(float(v)))
            level.append(detector.level)
        assert np.all(np.array(scores[:600]) == 0.0)
        assert all(0.0 <= s <= 1.0 for s in scores)
        levels[name] = np.array(level)
    # The shape feature sees the rhythm change more clearly than the value features alone.
    assert levels["shape-ensemble"][2000:2060].max() > levels["tail-ensemble"][2000:2060].max() + 0.1
    assert levels["shape-ensemble"][2000:2060].max() > 0.5


def test_sequence_feature_configuration() -> None:
    detector = make_detector("context-ensemble", warmup=100, context_bins=4, context_spacing="width")
    assert isinstance(detector, TailEnsembleDetector)
    assert detector.config.context_weight == 0.5 and detector.config.context_bins == 4
    assert make_detector("shape-ensemble", warmup=100, shape_weight=0.8).config.shape_weight == 0.8  # type: ignore[attr-defined]
    plain = TailEnsembleDetector(TailEnsembleConfig(warmup=100))
    with_context = TailEnsembleDetector(TailEnsembleConfig(warmup=100, context_weight=0.5))
    for v in rhythm_change(noise=0.05)[:1000]:
        plain.update(float(v))
        with_context.update(float(v))
    assert with_context.state_bytes() > plain.state_bytes()
    with pytest.raises(ValueError, match="context_spacing"):
        TailEnsembleConfig(context_spacing="log")
    with pytest.raises(ValueError):
        TailEnsembleConfig(shape_length=1)
