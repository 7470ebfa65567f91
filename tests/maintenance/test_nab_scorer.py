"""The NAB scorer: NAB's rules on small cases, and the published Numenta HTM figures reproduced exactly."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from edge_agent.maintenance.datasets import NabCorpus
from edge_agent.maintenance.nab import (
    PROFILES,
    CostMatrix,
    normalised_score,
    optimise_threshold,
    probationary_length,
    scaled_sigmoid,
    score_at_threshold,
    score_corpus,
    sweep,
)

STANDARD = PROFILES["standard"]
MACHINE_TEMPERATURE = "realKnownCause/machine_temperature_system_failure.csv"


def test_scaled_sigmoid() -> None:
    assert float(scaled_sigmoid(0.0)) == pytest.approx(0.0)
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert float(scaled_sigmoid(3.5)) == -1.0
    assert float(scaled_sigmoid(1.0)) == pytest.approx(-0.986614, abs=1e-6)


def test_probationary_length() -> None:
    assert probationary_length(4032) == 604
    assert probationary_length(1000) == 150
    assert probationary_length(22695) == 750


def test_rules_on_a_small_file() -> None:
    # 100 rows, no probation, one window on rows 40..59.
    swept = sweep("f", 100, [(40, 59)], probation=0)
    none = np.zeros(100)
    assert score_at_threshold(swept, none, 0.5, STANDARD).score == pytest.approx(-1.0)

    first_row = none.copy()
    first_row[40] = 1.0
    assert score_at_threshold(swept, first_row, 0.5, STANDARD).score == pytest.approx(1.0)

    # Only the earliest detection in a window counts; later ones add nothing.
    several = first_row.copy()
    several[45:60] = 1.0
    result = score_at_threshold(swept, several, 0.5, STANDARD)
    assert result.score == pytest.approx(1.0)
    assert (result.tp, result.fn, result.fp) == (16, 4, 0)

    # A detection before any window costs the full A_FP; one just after a window almost nothing.
    early = none.copy()
    early[10] = 1.0
    assert score_at_threshold(swept, early, 0.5, STANDARD).score == pytest.approx(-1.0 - 0.11)
    late = none.copy()
    late[60] = 1.0
    assert score_at_threshold(swept, late, 0.5, STANDARD).score == pytest.approx(
        -1.0 + 0.11 * float(scaled_sigmoid(1 / 19))
    )
    # The last row of the window earns almost nothing, the middle about 0.84.
    middle = none.copy()
    middle[50] = 1.0
    expected = float(scaled_sigmoid(-10 / 20)) / float(scaled_sigmoid(-1.0))
    assert score_at_threshold(swept, middle, 0.5, STANDARD).score == pytest.approx(expected)


def test_probationary_rows_are_not_scored() -> None:
    swept = sweep("f", 100, [(40, 59)], probation=30)
    scores = np.zeros(100)
    scores[:30] = 1.0
    result = score_at_threshold(swept, scores, 0.5, STANDARD)
    assert result.score == pytest.approx(-1.0)
    assert (result.fp, result.tn + result.fp + result.tp + result.fn, result.total) == (0, 70, 100)


def test_profiles_weigh_misses_and_false_alarms() -> None:
    swept = sweep("f", 100, [(40, 59)], probation=0)
    scores = np.zeros(100)
    scores[5] = 1.0
    assert score_at_threshold(swept, scores, 0.5, PROFILES["reward_low_FP_rate"]).score == pytest.approx(-1.22)
    assert score_at_threshold(swept, scores, 0.5, PROFILES["reward_low_FN_rate"]).score == pytest.approx(-2.11)


def test_optimiser_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    files = []
    for k in range(5):
        n = 300
        bounds = sorted({(s, s + 19) for s in rng.choice(np.arange(50, 270, 40), size=2, replace=False)})
        scores = np.round(rng.random(n), 2)
        files.append((sweep(f"f{k}", n, bounds, probation=30), scores))
    cost = CostMatrix(tp=1.0, fp=0.11, fn=1.0)
    threshold, best = optimise_threshold(files, cost)
    candidates = np.unique(np.concatenate([s for _, s in files]))
    brute = max(sum(score_at_threshold(f, s, t, cost).score for f, s in files) for t in candidates)
    assert best == pytest.approx(max(brute, -cost.fn * sum(f.n_windows for f, _ in files)))
    assert sum(score_at_threshold(f, s, threshold, cost).score for f, s in files) == pytest.approx(best)


def _published_rows(nab: NabCorpus, profile: str) -> dict[str, dict[str, str]]:
    path = nab.root / "results" / "numenta" / f"numenta_{profile}_scores.csv"
    with path.open(newline="") as handle:
        return {row["File"] or row["Detector"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("profile", list(PROFILES))
def test_reproduces_numenta_score_on_machine_temperature(nab: NabCorpus, profile: str) -> None:
    """Re-scoring Numenta HTM's published detections gives its published per-file score and counts."""
    published = _published_rows(nab, profile)[MACHINE_TEMPERATURE]
    detections = nab.results("numenta", MACHINE_TEMPERATURE)
    swept = nab.swept(MACHINE_TEMPERATURE, detections.timestamps)
    result = score_at_threshold(swept, detections.values, float(published["Threshold"]), PROFILES[profile])
    assert result.score == pytest.approx(float(published["Score"]), abs=1e-4)
    counts = (result.tp, result.tn, result.fp, result.fn, result.total)
    assert counts == tuple(int(published[k]) for k in ("TP", "TN", "FP", "FN", "Total_Count"))
    if profile == "standard":
        assert result.score == pytest.approx(1.36013, abs=1e-4)
        assert (result.tp, result.fp, result.fn) == (5, 5, 2263)


def test_normalises_numenta_corpus_score_to_the_scoreboard(nab: NabCorpus) -> None:
    """The published per-file totals, normalised against our null and perfect scores, give final_results.json."""
    scoreboard = json.loads((nab.root / "results" / "final_results.json").read_text())["numenta"]
    files = []
    for name in nab.names():
        timestamps = nab.series(name).timestamps
        files.append((nab.swept(name, timestamps), np.zeros(len(timestamps))))
    assert sum(f.n_windows for f, _ in files) == 116
    for profile, cost in PROFILES.items():
        rows = _published_rows(nab, profile)
        total = float(rows["Totals"]["Score"])
        assert total == pytest.approx(sum(float(r["Score"]) for k, r in rows.items() if k != "Totals"), abs=1e-6)
        null = score_corpus(files, cost)  # a detector that never fires
        assert null.raw == pytest.approx(-cost.fn * 116)
        assert normalised_score(total, null.null, null.perfect) == pytest.approx(scoreboard[profile], abs=1e-6)
    assert scoreboard["standard"] == pytest.approx(70.10, abs=0.01)
