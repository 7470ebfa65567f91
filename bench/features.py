"""Time the waveform features of one vibration window.

    python bench/features.py [--points 4096] [--rate 20000] [--repeat 2000]

Prints microseconds per call (median of 5 rounds) of the time-domain statistics, the spectrum and band
energies, and the whole bundle (with bearing envelope analysis), for a 4,096-point window by default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import Row, add_json_argument, write_rows
from edge_agent.maintenance.bearing import BearingGeometry
from edge_agent.maintenance.features import (
    band_energies,
    crest_factor,
    kurtosis,
    rms,
    skewness,
    spectrum,
    trend_slope,
    waveform_features,
)

BEARING = BearingGeometry(n_balls=9, ball_diameter=7.94, pitch_diameter=39.04)
SHAFT_HZ = 29.95


def _time(call: Callable[[], object], repeat: int) -> float:
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            call()
        rounds.append((time.perf_counter() - start) / repeat)
    return 1e6 * statistics.median(rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--rate", type=float, default=20_000.0, help="sample rate in Hz")
    parser.add_argument("--repeat", type=int, default=2000)
    add_json_argument(parser)
    args = parser.parse_args(argv)

    t = np.arange(args.points) / args.rate
    bpfo = BEARING.fault_frequencies(SHAFT_HZ).bpfo
    rng = np.random.default_rng(0)
    x = np.sin(2 * np.pi * 3000 * t) * (1 + 0.3 * np.sin(2 * np.pi * bpfo * t)) + 0.1 * rng.normal(size=args.points)
    edges = np.linspace(0, args.rate / 2, 9)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("numpy rfft alone (baseline)", lambda: np.fft.rfft(x)),
        ("rms + crest + kurtosis + skewness", lambda: (rms(x), crest_factor(x), kurtosis(x), skewness(x))),
        ("spectrum + 8 band energies", lambda: band_energies(spectrum(x, args.rate), edges)),
        ("trend slope (60 points)", lambda: trend_slope(x[:60])),
        ("waveform_features (no bearing)", lambda: waveform_features(x, args.rate)),
        (
            "waveform_features (bearing, envelope)",
            lambda: waveform_features(x, args.rate, bearing=BEARING, shaft_hz=SHAFT_HZ),
        ),
    ]
    print(f"features of a {args.points}-point window at {args.rate:g} Hz (numpy {np.__version__})")
    times: dict[str, float] = {}
    for label, call in cases:
        times[label] = _time(call, args.repeat)
        print(f"  {label:<40} {times[label]:8.1f} us per call")
    base = times["numpy rfft alone (baseline)"]
    rows = []
    for label in ("waveform_features (no bearing)", "waveform_features (bearing, envelope)"):
        rows.append(Row(f"features {label.removeprefix('waveform_features ')}",
                        f"waveform_features of a {args.points}-point window", round(times[label], 1), "us/call",
                        round(base, 1), "us/call (numpy rfft of the window)", round(times[label] / base, 1),
                        "< 1000 us", times[label] < 1000))
    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
