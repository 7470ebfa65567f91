"""The trend cache: a bounded ring per tag, oldest first, numeric values only, in time order."""

from __future__ import annotations

import pytest

from edge_agent.model import Quality, Sample
from edge_agent.twin.trend import TrendCache


def test_ring_keeps_the_newest_points_oldest_first() -> None:
    cache = TrendCache(points=5)
    for i in range(12):
        cache.add(Sample("d", "x", float(i), float(i * 10)))
    assert cache.get("d", "x") == [(7.0, 70.0), (8.0, 80.0), (9.0, 90.0), (10.0, 100.0), (11.0, 110.0)]
    assert cache.get("d", "x", 9.0, 10.0) == [(9.0, 90.0), (10.0, 100.0)]


def test_only_newer_numeric_good_values_are_kept() -> None:
    cache = TrendCache(points=3)
    cache.add(Sample("d", "x", 2.0, 1.5))
    cache.add(Sample("d", "x", 1.0, 9.0))  # older than the newest: ignored
    cache.add(Sample("d", "x", 3.0, True))
    cache.add(Sample("d", "x", 4.0, 7.0, Quality.BAD))
    cache.add(Sample("d", "x", 5.0, float("nan")))
    cache.add(Sample("d", "s", 5.0, "text"))
    assert cache.get("d", "x") == [(2.0, 1.5), (3.0, 1.0)]
    assert cache.tags("d") == ["x"] and cache.get("d", "s") == []
    cache.forget("d")
    assert cache.tags("d") == []


def test_zero_points_keep_nothing_and_negative_is_refused() -> None:
    cache = TrendCache(points=0)
    for i in range(3):
        cache.add(Sample("d", "x", float(i), float(i)))
    assert cache.get("d", "x") == [] and cache.tags("d") == []
    with pytest.raises(ValueError, match="trend points"):
        TrendCache(points=-1)
