"""Leak run: the agent's RSS with 100 simulated Modbus devices and 10,000 tags at 1 Hz for 10 minutes.

    python bench/memory.py [--minutes 10] [--tags 10000] [--every 5] [--no-collector] [--json PATH]
    python bench/memory.py --imports [--json PATH]
    python bench/memory.py --state [--tags 10000]

The set-up is one point of ``bench/scale.py`` (the real ``edge-agent run`` process, a simulated
plant of Modbus devices x 100 tags, a collector the agent syncs to). The agent's RSS is sampled
every ``--every`` s after a 10 s warm-up. Printed: the peak (the kernel's VmHWM included) and
the least-squares slope of RSS over the last half of the run in MB per minute.

Targets (issue "Operations"): peak <= 150 MB, and no growth in the last half: the verdict
counts a slope under 0.1 MB/min (6 MB/h, less than the sampling noise over a 5-minute half)
as no growth.

``--imports`` measures what the agent's code costs before it holds any data: a fresh interpreter
per step imports the packages of all earlier steps plus the step's own, in the order the agent
imports them, and reports its RSS (VmRSS); the difference to the step before is the step's cost.
Then each library a plain Modbus config does not load (numpy, asyncua, paho, protobuf, ...) is
measured the same way on top of the whole agent: what importing it eagerly would cost.

``--state`` measures, with ``tracemalloc`` in this process, the Python objects the per-tag state
takes: the config of ``--tags / 100`` devices (the same generated profile as the run), their
Modbus connectors, and the live view (twins, change debouncer) after three rounds of samples.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import Row, add_json_argument, write_rows  # noqa: E402
from bench.scale import measure  # noqa: E402

PEAK_MB = 150.0
SLOPE_MB_PER_MIN = 0.1

# what `python -m edge_agent run` imports for a Modbus-only config, in import order
IMPORT_STEPS: list[tuple[str, list[str]]] = [
    ("asyncio, ssl, sqlite3, tomllib, json", ["asyncio", "ssl", "sqlite3", "tomllib", "json"]),
    ("pydantic", ["pydantic"]),
    ("httpx", ["httpx"]),
    ("apscheduler", ["apscheduler.schedulers.asyncio"]),
    ("fastapi, starlette", ["fastapi"]),
    ("uvicorn", ["uvicorn"]),
    ("pymodbus", ["pymodbus.client"]),
    ("edge_agent: config, profiles, oee, behaviour, twin, status settings", ["edge_agent.config"]),
    ("edge_agent: supervisor, buffer, sync", ["edge_agent.supervisor"]),
    ("edge_agent: status page", ["edge_agent.status.app"]),
    ("edge_agent: Modbus connector", ["edge_agent.connectors.modbus.connector"]),
]
NOT_IMPORTED: list[tuple[str, list[str]]] = [
    ("numpy (predictive maintenance)", ["numpy"]),
    ("edge_agent.maintenance (with numpy)", ["edge_agent.maintenance.tracker"]),
    ("asyncua (OPC UA connector)", ["edge_agent.connectors.opcua.connector"]),
    ("paho (MQTT connector)", ["edge_agent.connectors.mqtt.connector"]),
    ("paho + protobuf (Sparkplug edge node)", ["edge_agent.edge_node.publisher"]),
]
RSS_PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(next(line for line in open('/proc/self/status') if line.startswith('VmRSS')).split()[1])
"""


def rss_after_import(modules: list[str]) -> float:
    """VmRSS in MB of a fresh interpreter after importing ``modules`` (the median of three)."""
    values = sorted(
        int(subprocess.run([sys.executable, "-c", RSS_PROBE, *modules], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout) / 1024
        for _ in range(3)
    )
    return values[1]


def import_costs() -> tuple[list[tuple[str, float, float]], list[tuple[str, float]]]:
    """(step, RSS after it, its cost) in import order, and (library, cost on top of the agent)."""
    steps: list[tuple[str, float, float]] = []
    done: list[str] = []
    before = rss_after_import([])
    steps.append(("python itself", before, before))
    for label, modules in IMPORT_STEPS:
        done += modules
        after = rss_after_import(done)
        steps.append((label, after, after - before))
        before = after
    extra = [(label, rss_after_import(done + modules) - before) for label, modules in NOT_IMPORTED]
    return steps, extra


def state_costs(tags: int) -> list[tuple[str, float]]:
    """(part, MB of Python objects) for ``tags`` tags in devices of 100, as traced by tracemalloc."""
    import gc
    import tempfile
    import tracemalloc

    from bench.scale import config_text, profile_text
    from edge_agent.config import load_config
    from edge_agent.connectors.modbus.connector import ModbusConnector
    from edge_agent.model import Sample
    from edge_agent.status.live import LiveView
    from edge_agent.status.settings import settings_from

    async def no_history(device: str, tag: str, start: float, end: float, limit: int) -> list[tuple[float, float]]:
        return []

    devices = max(1, tags // 100)
    parts: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        (folder / "bench_block.toml").write_text(profile_text(min(tags, 100)))
        (folder / "agent.toml").write_text(config_text(folder, devices, [1502], 8080, None, 100_000))
        tracemalloc.start()
        gc.collect()
        mark = tracemalloc.get_traced_memory()[0]

        def step(label: str) -> None:
            nonlocal mark
            gc.collect()
            now = tracemalloc.get_traced_memory()[0]
            parts.append((label, (now - mark) / 2**20))
            mark = now

        config = load_config(folder / "agent.toml")
        step(f"config: {devices} devices, each with its own copy of the profile")
        connectors = [ModbusConnector(d, "bench") for d in config.devices]
        step("Modbus connectors: read plans and decoders")
        live = LiveView(config.devices, settings_from(config), history=no_history)
        step("live view: twins, specs, alarms (empty)")
        for t in range(3):
            live.on_samples([Sample(d.name, f"r{i:03d}", 1000.0 + t, (i + t) % 65536)
                             for d in config.devices for i in range(100)])
        step("live view: values, rates, debouncer after 3 rounds of samples")
        tracemalloc.stop()
        del connectors, live
    return parts


def main_state(tags: int) -> int:
    parts = state_costs(tags)
    print(f"Python objects of the per-tag state, {tags:,} tags (tracemalloc):")
    for label, mb in parts:
        print(f"  {label:<66} {mb:6.1f} MB")
    print(f"  {'total':<66} {sum(mb for _, mb in parts):6.1f} MB")
    return 0


def main_imports(json_path: Path | None) -> int:
    steps, extra = import_costs()
    print(f"{'imported (fresh interpreter each, cumulative)':<70} {'RSS MB':>7} {'cost MB':>8}")
    for label, rss, cost in steps:
        print(f"{label:<70} {rss:>7.1f} {cost:>+8.1f}")
    print("not imported by a Modbus-only agent (cost if imported on top of it):")
    for label, cost in extra:
        print(f"  {label:<68} {cost:>+8.1f}")
    rows = [Row("memory: imports", "RSS of a fresh interpreter after importing the agent (Modbus config)",
                round(steps[-1][1], 1), "MB",
                extra={"steps": [{"step": label, "rss_mb": round(rss, 1), "cost_mb": round(cost, 1)}
                                 for label, rss, cost in steps],
                       "not_imported": {label: round(cost, 1) for label, cost in extra}})]
    write_rows(json_path, rows)
    return 0


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
    parser.add_argument("--imports", action="store_true",
                        help="only measure the RSS cost of the agent's imports, package by package")
    parser.add_argument("--state", action="store_true",
                        help="only measure the Python objects of the per-tag state (tracemalloc)")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    if args.imports:
        return main_imports(args.json)
    if args.state:
        return main_state(args.tags)
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
    held, used = point.memory.get("allocator_held_mb"), point.memory.get("allocator_in_use_mb")
    if held is not None:
        print(f"  at the end: C allocator holds {held:.1f} MB, {used:.1f} MB of it in use")
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
