"""Run an anomaly detector over the NAB corpus and print its normalised scores beside the scoreboard.

    python bench/nab.py [--detector NAME] [--param KEY=JSON ...] [--jobs N] [--files SUBSTRING] [--per-file]

Every series is scored point by point by a fresh detector whose warm-up is NAB's probationary period (NAB
gives every detector that length), the threshold of each profile is optimised over the corpus, and the
three normalised scores are printed with the published ones of ``results/final_results.json``. Then the
cost: microseconds per point (one process, one long file, best of 3) and the state per tag in KB.
The corpus comes from ``$EDGE_SHARED_DATA/nab`` (default ``../shared/data/nab``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.maintenance.anomaly import DEFAULT_DETECTOR, DETECTORS, make_detector
from edge_agent.maintenance.datasets import NabCorpus, score_series
from edge_agent.maintenance.nab import PROFILES, CorpusScore, SweptFile, probationary_length, score_at_threshold
from edge_agent.maintenance.nab import score_corpus as nab_score_corpus

SCOREBOARD_NAMES = {
    "ARTime": "ARTime",
    "numenta": "Numenta HTM",
    "contextOSE": "CAD OSE",
    "earthgeckoSkyline": "earthgecko Skyline",
    "knncad": "KNN CAD",
    "relativeEntropy": "Relative Entropy",
    "randomCutForest": "Random Cut Forest",
    "twitterADVec": "Twitter ADVec",
    "windowedGaussian": "Windowed Gaussian",
    "random": "Random",
}
TIMED_FILE = "realTweets/Twitter_volume_AAPL.csv"
Job = tuple[str, str, str, dict[str, Any]]


def _run_file(job: Job) -> tuple[str, np.ndarray, int]:
    """Score one file with a fresh detector (in a worker process)."""
    root, name, detector, params = job
    series = NabCorpus(Path(root)).series(name)
    det = make_detector(detector, warmup=probationary_length(len(series)), **params)
    scores = score_series(det, series.values)
    return name, scores, det.state_bytes()


def _cost(corpus: NabCorpus, detector: str, params: dict[str, Any]) -> tuple[float, int]:
    """Microseconds per point and state bytes of one detector on one long file, in this process."""
    values = corpus.series(TIMED_FILE).values
    best, state = float("inf"), 0
    for _ in range(3):
        det = make_detector(detector, warmup=probationary_length(len(values)), **params)
        start = time.perf_counter()
        score_series(det, values)
        best = min(best, time.perf_counter() - start)
        state = det.state_bytes()
    return 1e6 * best / len(values), state


def _summary(files: list[tuple[SweptFile, np.ndarray]], threshold: float, per_file: bool) -> None:
    """Windows detected and false positives at the standard profile's threshold."""
    cost = PROFILES["standard"]
    hits = windows = false_positives = 0
    for swept, scores in files:
        detected = (scores >= threshold) & swept.scored
        found = len({int(k) for k in swept.window[detected] if k >= 0})
        fps = int(np.sum(detected & (swept.window < 0)))
        hits, windows, false_positives = hits + found, windows + swept.n_windows, false_positives + fps
        if per_file:
            score = score_at_threshold(swept, scores, threshold, cost).score
            print(f"  {score:7.3f}  windows {found}/{swept.n_windows}  false positives {fps:<3} {swept.name}")
    print(f"standard profile at its threshold: {hits}/{windows} windows detected, {false_positives} false positives")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS))
    parser.add_argument("--param", action="append", default=[], help="detector parameter KEY=JSON, e.g. window=4000")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--files", default="", help="only the files whose name contains this")
    parser.add_argument("--per-file", action="store_true", help="print each file's standard-profile score")
    args = parser.parse_args(argv)

    corpus = NabCorpus.default()
    if not corpus.exists():
        print(f"NAB corpus not found in {corpus.root} (set EDGE_SHARED_DATA)", file=sys.stderr)
        return 2
    params = {key: json.loads(value) for key, value in (p.split("=", 1) for p in args.param)}
    names = [n for n in corpus.names() if args.files in n]
    names.sort(key=lambda n: -(corpus.root / "data" / n).stat().st_size)  # longest first
    wall = time.perf_counter()
    with multiprocessing.Pool(args.jobs) as pool:
        results = pool.map(_run_file, [(str(corpus.root), n, args.detector, params) for n in names], chunksize=1)
    wall = time.perf_counter() - wall
    results.sort(key=lambda r: r[0])
    files = [(corpus.swept(name, corpus.series(name).timestamps), scores) for name, scores, _ in results]
    ours: dict[str, CorpusScore] = {profile: nab_score_corpus(files, cost) for profile, cost in PROFILES.items()}

    points = sum(len(scores) for _, scores in files)
    print(f"detector {args.detector} {json.dumps(params)}: {len(files)} files, {points} points, {wall:.1f} s wall")
    print(f"| {'detector':<28} | standard | reward low FP | reward low FN |")
    print(f"|{'-' * 30}|---------:|-------------:|--------------:|")
    published = json.loads((corpus.root / "results" / "final_results.json").read_text())
    rows: list[tuple[str, dict[str, float]]] = [
        (f"**{args.detector} (this run)**", {p: s.normalised for p, s in ours.items()})
    ]
    rows += [(label, published[key]) for key, label in SCOREBOARD_NAMES.items() if key in published]
    for label, normalised in sorted(rows, key=lambda r: -r[1]["standard"]):
        print(
            f"| {label:<28} | {normalised['standard']:8.2f} | {normalised['reward_low_FP_rate']:12.2f} "
            f"| {normalised['reward_low_FN_rate']:13.2f} |"
        )
    for profile, s in ours.items():
        print(
            f"{profile}: threshold {s.threshold:.6f}, raw score {s.raw:.4f} "
            f"(null {s.null:.1f}, perfect {s.perfect:.1f})"
        )
    _summary(files, ours["standard"].threshold, args.per_file)
    per_point, state = _cost(corpus, args.detector, params)
    largest = max(r[2] for r in results)
    print(f"cost: {per_point:.1f} us per point (one process, {TIMED_FILE}, best of 3)")
    print(f"state: {state / 1000:.0f} KB per tag for that file; at most {largest / 1000:.0f} KB over the corpus")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
