"""Leak run: the agent's RSS with 100 simulated Modbus devices and 10,000 tags at 1 Hz for 10 minutes.

    python bench/memory.py [--minutes 10] [--tags 10000] [--every 5] [--no-collector] [--json PATH]

The set-up is one point of ``bench/scale.py`` (the real ``edge-agent run`` process, a simulated
plant of Modbus devices x 100 tags, a collector the agent syncs to). The agent's RSS is sampled
every ``--every`` s after a 10 s warm-up. Printed: the peak (the kernel's VmHWM included) and
the least-squares slope of RSS over the last half of the run in MB per minute.

Targets (issue "Operations"): peak <= 150 MB, and no growth in the last half: the verdict
counts a slope under 0.1 MB/min (6 MB/h, less than the sampling noise over a 5-minute half)
as no growth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import Row, add_json_argument, write_rows  # noqa: E402
from bench.scale import measure  # noqa: E402

PEAK_MB = 150.0
SLOPE_MB_PER_MIN = 0.1


def slope_per_minute(series: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute (0 with fewer than two points)."""
    if len(series) < 2:
        return 0.0
    n = len(series)
    mean_t = sum(t for t, _ in series) / n
    mean_v = sum(v for _, v in series) / n
    var = sum((t - mean_t) ** 2 for t, _ in series)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in series)
    return cov / var * 60.0


def last_half(series: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if not series:
        return []
    half = series[-1][0] / 2
    return [(t, v) for t, v in series if t >= half]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--every", type=float, default=5.0, help="RSS sampling period, seconds")
    parser.add_argument("--no-collector", action="store_true")
    parser.add_argument("--trend-points", type=int, default=None, help="[twin] trend_points (default: the agent's)")
    parser.add_argument("--progress", action="store_true", help="print each RSS sample to stderr")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    point = measure(args.tags, args.minutes * 60, every=args.every, collector=not args.no_collector,
                    progress=args.progress, trend_points=args.trend_points)
    half = last_half(point.series)
    slope = slope_per_minute(half)
    first, last = half[0][1], half[-1][1]
    peak_ok, slope_ok = point.rss_peak_mb <= PEAK_MB, slope < SLOPE_MB_PER_MIN
    print(f"agent, {point.devices} devices x {args.tags // point.devices} tags at 1 Hz "
          f"for {point.seconds / 60:.1f} min "
          f"({point.samples_per_s:,.0f} samples/s stored, {100 * point.cpu_fraction:.1f} % of a core):")
    print(f"  RSS peak {point.rss_peak_mb:.1f} MB (target <= {PEAK_MB:g}): {'met' if peak_ok else 'NOT MET'}")
    print(f"  last half: {first:.1f} -> {last:.1f} MB, slope {slope:+.3f} MB/min "
          f"(no growth: < {SLOPE_MB_PER_MIN} MB/min): {'met' if slope_ok else 'NOT MET'}")
    rows = [
        Row("memory: RSS peak", f"agent RSS, {args.tags:,} tags, {args.minutes:g} min", point.rss_peak_mb, "MB",
            target=f"<= {PEAK_MB:g} MB", met=peak_ok),
        Row("memory: RSS slope, last half", "least-squares slope of RSS over the last half", round(slope, 3),
            "MB/min", target=f"< {SLOPE_MB_PER_MIN} MB/min", met=slope_ok,
            extra={"first_mb": first, "last_mb": last}),
    ]
    write_rows(args.json, rows, extra={"point": point.as_dict()})
    return 0 if peak_ok and slope_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
