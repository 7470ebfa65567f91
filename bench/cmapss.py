"""Score the shipped remaining-useful-life model on NASA C-MAPSS FD001 beside the published results.

    python bench/cmapss.py [--model PATH] [--rounds N]

Loads the model through the TFLite interpreter (ai-edge-litert or tflite-runtime), predicts the RUL of each of
the 100 test engines at its last cycle and prints RMSE and NASA score against the true RUL capped at 125 (the
published protocol; uncapped figures beside), the published baselines, microseconds per inference (one
window, batch 1, one thread, median of ``--rounds`` rounds of 2,000 calls) and the model's size in bytes.
The data come from ``$EDGE_SHARED_DATA/cmapss`` (default ``../shared/data/cmapss``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.maintenance.datasets import shared_data_dir
from edge_agent.maintenance.rul import RulModel, model_input
from edge_agent.maintenance.rul_data import nasa_score, read_cmapss, read_rul_file, rmse

PUBLISHED = [  # FD001, RMSE / NASA score (None: not published)
    ("MLP", 37.56, None),
    ("SVR", 20.96, None),
    ("RVR", 23.80, None),
    ("CNN (Babu et al., 2016)", 18.45, 1287.0),
    ("deep LSTM (Zheng et al., 2017)", 16.14, 338.0),
    ("DCNN (Li, Ding and Sun, 2018)", 12.61, 274.0),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a .tflite model with its card (default: shipped)")
    parser.add_argument("--data", type=Path, default=None, help="C-MAPSS folder (default: shared data's cmapss/)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    data = args.data or shared_data_dir() / "cmapss"
    if not (data / "test_FD001.txt").is_file():
        print(f"C-MAPSS FD001 not found in {data} (set EDGE_SHARED_DATA)", file=sys.stderr)
        return 2

    model = RulModel.load(args.model, num_threads=1)
    units = read_cmapss(data / "test_FD001.txt")
    true = read_rul_file(data / "RUL_FD001.txt")
    windows = np.stack([model_input(u, model.card) for u in units])
    predicted = model.predict_batch(windows)
    capped = np.minimum(true, model.card.rul_cap)
    ours_rmse, ours_score = rmse(predicted, capped), nasa_score(predicted, capped)
    recorded = model.card.raw.get("metrics", {})

    single = windows[0]
    model.predict(single)  # warm-up at batch size 1
    calls = 2000
    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(calls):
            model.predict(single)
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    us = statistics.median(rounds)
    size = model.path.stat().st_size

    extra = " + cycle number" if model.card.cycle is not None else ""
    print(f"C-MAPSS FD001 test, last cycle of {len(units)} engines; model {model.path.name} "
          f"v{model.card.raw.get('version', '?')}, window {model.window} x {len(model.sensors)} sensors{extra}")
    print()
    print(f"| {'model':<36} | {'RMSE':>7} | {'NASA score':>10} |")
    print(f"|{'-' * 38}|{'-' * 8}:|{'-' * 11}:|")
    rows = [(name, r, s) for name, r, s in PUBLISHED]
    rows.append(("this model (true RUL capped at 125)", ours_rmse, ours_score))
    for name, r, s in sorted(rows, key=lambda row: -row[1]):
        score = f"{s:.0f}" if s is not None else "-"
        print(f"| {name:<36} | {r:>7.2f} | {score:>10} |")
    print()
    print(f"uncapped true RUL: RMSE {rmse(predicted, true):.2f}, NASA score {nasa_score(predicted, true):.0f}")
    cv = model.card.raw.get("training", {}).get("cross_validation")
    if cv:
        print(f"cross-validation on the training engines (how the recipe was chosen): RMSE {cv['cv_rmse']:.3f}")
    if "rmse" in recorded:
        agree = "agrees" if abs(recorded["rmse"] - ours_rmse) < 1e-3 else "DIFFERS"
        print(f"model card records RMSE {recorded['rmse']:.4f}: {agree}")
    print(f"inference: {us:.1f} us per window (batch 1, one thread, median of {args.rounds} rounds of {calls})")
    print(f"model: {size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
