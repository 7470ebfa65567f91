"""Time the health tracker on the agent's hot path (``DeviceSink.emit``).

    python bench/health.py [--cycles 2000] [--samples 20000]

Prints microseconds per call (median of 5 rounds) of

* one machine cycle of the turbofan profile through ``HealthTracker.feed``: 15 samples, the cycle row, one RUL
  inference of the shipped TFLite model (60 x 15 window), the health index, rollups and the trigger; against
  ``RulModel.predict`` of one window alone (the baseline);
* one sample of an anomaly-monitored tag through ``AnomalyMonitor.feed`` and ``HealthTracker.feed``; against
  ``AnomalyMonitor.feed`` alone.
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
from edge_agent.maintenance.monitor import AnomalyMonitor
from edge_agent.maintenance.rul import RulModel
from edge_agent.maintenance.tracker import HealthTracker, health_tracker
from edge_agent.model import Sample
from edge_agent.profiles import MaintenanceSettings, load_profile, shipped_profiles_dir
from simulators.turbofan import CHANNELS, SyntheticEngine

T0 = 1_790_000_000.0


def _median_us(rounds: list[float]) -> float:
    return 1e6 * statistics.median(rounds)


def time_rul(cycles: int) -> tuple[float, float]:
    profile = load_profile(shipped_profiles_dir() / "turbofan_engine.toml")
    assert profile.maintenance is not None
    engine = SyntheticEngine("e", seed=1, life=cycles)
    batches = [
        [*(Sample("e", n, T0 + c, v) for n, v in engine.reading(c).items()), Sample("e", "cycle", T0 + c, c)]
        for c in range(1, cycles + 1)
    ]
    rounds = []
    for _ in range(5):
        tracker = health_tracker("e", profile.maintenance, None)
        for batch in batches[:30]:  # fill the window first: every timed cycle runs the model
            tracker.feed(batch)
        start = time.perf_counter()
        for batch in batches[30:]:
            tracker.feed(batch)
        rounds.append((time.perf_counter() - start) / (cycles - 30))
    model = RulModel.load()
    window = np.array([[engine.reading(c)[n] for n in CHANNELS] for c in range(1, 31)])
    base = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(cycles - 30):
            model.predict(window)
        base.append((time.perf_counter() - start) / (cycles - 30))
    return _median_us(rounds), _median_us(base)


def time_anomaly(samples: int) -> tuple[float, float]:
    settings = MaintenanceSettings(anomaly_tags=["x"], warmup=750)
    values = 10.0 + np.random.default_rng(0).normal(0.0, 0.1, samples)
    data = [Sample("m", "x", T0 + i, float(v)) for i, v in enumerate(values)]

    def run(with_tracker: bool) -> float:
        monitor = AnomalyMonitor("m", settings)
        tracker = HealthTracker("m", settings, monitor)
        feed: Callable[[Sample], object]
        if with_tracker:
            def feed(s: Sample) -> object:
                monitor.feed(s)
                return tracker.feed((s,))
        else:
            feed = monitor.feed
        start = time.perf_counter()
        for s in data:
            feed(s)
        return (time.perf_counter() - start) / samples

    return _median_us([run(True) for _ in range(5)]), _median_us([run(False) for _ in range(5)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=20_000)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    rul, predict = time_rul(args.cycles)
    print(f"  one cycle through HealthTracker.feed (RUL)   {rul:8.1f} us   (RulModel.predict alone {predict:.1f} us)")
    anomaly, monitor = time_anomaly(args.samples)
    print(f"  one sample, monitor + HealthTracker.feed      {anomaly:8.1f} us   (monitor alone {monitor:.1f} us)")
    rows = [
        Row("health tracker, RUL cycle", "HealthTracker.feed of one turbofan cycle (15 samples, one inference)",
            round(rul, 1), "us/cycle", round(predict, 1), "us/call (RulModel.predict of one window)",
            round(rul / predict, 2), "< 1000 us", rul < 1000),
        Row("health tracker, anomaly sample", "AnomalyMonitor.feed + HealthTracker.feed of one sample",
            round(anomaly, 1), "us/sample", round(monitor, 1), "us/sample (AnomalyMonitor.feed alone)",
            round(anomaly / monitor, 2), "", None),
    ]
    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
