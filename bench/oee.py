"""Benchmark: offline OEE of one device over 30 days of 1 Hz state and counter samples.

Writes a samples CSV (``ts,device,tag,value``; state, good and scrap counters
every second, as the agent exports them) into a temporary folder, then times

* reading it with the standard csv module and doing nothing else, and
* the whole offline analysis (``edge-agent analyze oee`` without the printing):
  parse, track and compute OEE over the 30 days with a two-shift calendar,

and prints one line with both times and their ratio (target: below 3x). Each is
timed ``--repeat`` times, alternating, and the fastest run counts, so that
other load on the machine disturbs the ratio as little as possible.

    python bench/oee.py [--days N] [--seed N] [--repeat N]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import Row, add_json_argument, write_rows
from edge_agent.oee import calendar_from_data, compute, read_samples_csv
from edge_agent.profiles import OeeSignals

START = datetime(2025, 3, 3, tzinfo=UTC)
DEVICE = "cnc-1"
SIGNALS = OeeSignals(
    state_tag="state",
    state_codes={"0": "excluded", "1": "running", "2": "unplanned_stop", "4": "planned_stop", "5": "changeover"},
    good_counter="good_count",
    scrap_counter="scrap_count",
    ideal_cycle_time_s=12.0,
)
CALENDAR = {
    "timezone": "Europe/Berlin",
    "shifts": [
        {"name": "early", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00", "end": "14:00",
         "breaks": [{"start": "09:00", "end": "09:15"}]},
        {"name": "late", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "14:00", "end": "22:00",
         "breaks": [{"start": "18:00", "end": "18:30"}]},
    ],
}
# (state, weight, shortest s, longest s) of the stretches that follow a running stretch
STOPS = ((2, 70, 10, 300), (4, 10, 600, 1200), (5, 10, 600, 1800), (0, 10, 120, 480))


def write_csv(path: Path, days: int, seed: int) -> int:
    """Write ``days`` of 1 Hz samples of one machine; return the number of data rows."""
    rng = random.Random(seed)
    seconds = days * 86_400
    good, scrap = 4_294_000_000, 65_000  # the good counter wraps at 2**32 after a few days
    state, state_end, next_part = 1, rng.uniform(60, 900), rng.uniform(12, 16)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["ts", "device", "tag", "value"])
        clock = START
        second = timedelta(seconds=1)
        for t in range(seconds):
            while t >= state_end:
                if state == 1:
                    state, _, lo, hi = rng.choices(STOPS, [s[1] for s in STOPS])[0]
                    state_end += rng.uniform(lo, hi)
                else:
                    state, state_end = 1, state_end + rng.expovariate(1 / 600)
            if state == 1:
                next_part -= 1
                if next_part <= 0:
                    next_part += rng.uniform(12, 16)
                    if rng.random() < 0.03:
                        scrap += 1
                    else:
                        good = (good + 1) % (1 << 32)
            ts = clock.isoformat()
            out.writerows(((ts, DEVICE, "state", state), (ts, DEVICE, "good_count", good),
                           (ts, DEVICE, "scrap_count", scrap)))
            rows += 3
            clock += second
    return rows


def read_only(path: Path) -> int:
    """The baseline: iterate the rows with the csv module."""
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle))


def analyze(path: Path, days: int) -> float:
    calendar = calendar_from_data(CALENDAR, "bench-calendar", "")
    samples = read_samples_csv(path, SIGNALS, device=DEVICE)
    if samples.problems:
        raise SystemExit(f"unexpected problems: {samples.problems[:3]}")
    end = START + timedelta(days=days)
    return compute(samples.device_tracks(DEVICE), calendar, START, end).oee


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    read_s = oee_s = float("inf")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "samples.csv"
        rows = write_csv(path, args.days, args.seed)
        read_only(path)  # warm the page cache so both timings read from memory
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            read_only(path)
            t1 = time.perf_counter()
            value = analyze(path, args.days)
            t2 = time.perf_counter()
            read_s, oee_s = min(read_s, t1 - t0), min(oee_s, t2 - t1)
    print(f"oee {args.days} days 1 Hz, {rows:,} rows: analysis {oee_s:.2f} s, csv read {read_s:.2f} s, "
          f"ratio {oee_s / read_s:.2f}x (target < 3x), oee={value:.4f}")
    write_rows(args.json, [
        Row("OEE offline", f"analysis of {args.days} days of 1 Hz samples ({rows:,} CSV rows), two-shift calendar",
            round(oee_s, 3), "s", round(read_s, 3), "s (reading the CSV with the csv module)",
            round(oee_s / read_s, 2), "< 3x the read time", oee_s / read_s < 3),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
