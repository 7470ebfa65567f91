"""The default detector over the whole NAB corpus: the figures recorded in docs/predictive-maintenance.md."""

from __future__ import annotations

import pytest

from edge_agent.maintenance.anomaly import make_detector
from edge_agent.maintenance.datasets import NabCorpus, run_on_corpus
from edge_agent.maintenance.nab import PROFILES, score_corpus

# Normalised scores of bench/nab.py with the default detector (docs/predictive-maintenance.md).
DOCUMENTED = {"standard": 69.74, "reward_low_FP_rate": 61.00, "reward_low_FN_rate": 74.49}


def test_default_detector_on_the_corpus(nab: NabCorpus) -> None:
    files = run_on_corpus(nab, lambda warmup: make_detector(warmup=warmup))
    assert len(files) == 58
    for profile, cost in PROFILES.items():
        assert score_corpus(files, cost).normalised == pytest.approx(DOCUMENTED[profile], abs=0.01)
