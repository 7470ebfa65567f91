"""Scale runs: the real agent process polling a simulated plant of N Modbus devices x 100 tags at 1 Hz.

    python bench/scale.py [--points 100,1000,10000,50000] [--seconds 60] [--no-collector]
                          [--plot PATH] [--json PATH]

For each point (total tags), in a temporary folder:

* a generated device profile of ``--tags-per-device`` uint16 holding registers (one read request
  per poll, since the planner merges them), and an agent config with ``tags / tags-per-device``
  devices polled every second (staggered as the connector does by default);
* a simulated plant in a child process: pymodbus TCP servers, each answering up to 100 unit ids
  (one per device), on loopback ports; the register values change every second;
* a collector (``edge-collector serve``, SQLite, rate limit off) unless ``--no-collector``: the
  agent then also syncs and prunes as in production;
* the real agent, ``python -m edge_agent run --config FILE``, in its own process.

After a warm-up (``--warmup`` s: connecting, first polls) the agent process is sampled every
``--every`` s for ``--seconds`` s: CPU seconds / wall seconds, peak RSS (and the RSS series), and
samples stored per second (the buffer's last sample sequence number from ``/api/v1/status``).
The plot (CPU %, peak RSS and samples/s against tags) goes to ``bench/results/scale-<date>.png``.
Targets: RSS <= 150 MB at 10,000 tags; CPU per 1,000 tags/s roughly constant across points.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import Row, add_json_argument, write_rows  # noqa: E402

RESULTS = ROOT / "bench" / "results"
UNITS_PER_PORT = 100
API_KEY = "bench-scale-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            alive = proc.is_alive() if hasattr(proc, "is_alive") else proc.poll() is None
            if time.monotonic() > deadline or not alive:
                raise SystemExit(f"{what} did not start on port {port}") from None
            time.sleep(0.05)


# --- the simulated plant -----------------------------------------------------------------------


def profile_text(tags: int) -> str:
    lines = [
        'protocol = "modbus"', "", "[profile]", 'name = "bench_block"', 'vendor = "bench"',
        f'model = "block of {tags} registers"', 'description = "generated for bench/scale.py"', "",
    ]
    for i in range(tags):
        lines += ["[[tags]]", f'name = "r{i:03d}"', 'type = "uint16"', 'table = "holding"', f"address = {i}", ""]
    return "\n".join(lines)


def layout(devices: int) -> list[tuple[int, int]]:
    """(port index, unit id) of each device: up to UNITS_PER_PORT units per port."""
    return [(i // UNITS_PER_PORT, i % UNITS_PER_PORT + 1) for i in range(devices)]


def serve_plant(ports: list[int], units: list[int], tags: int) -> None:
    """Child process: one pymodbus TCP server per port, ``units[k]`` unit ids on ``ports[k]``;
    every second each device's registers take new values (a counter plus the register index)."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice
    from pymodbus.simulator.simcore import SimCore

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    def device(unit: int) -> SimDevice:
        return SimDevice(unit, simdata=(
            [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=[(unit + i) % 65536 for i in range(tags)], datatype=DataType.REGISTERS)],
            [SimData(0, values=[0] * 16, datatype=DataType.REGISTERS)],
        ))

    async def main() -> None:
        servers = []
        for port, count in zip(ports, units, strict=True):
            devices = [device(unit) for unit in range(1, count + 1)]
            server = ModbusTcpServer(context=devices, address=("127.0.0.1", port))
            server.context = SimCore(devices)
            await server.serve_forever(background=True)
            servers.append((server, count))
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            for server, count in servers:
                for unit in range(1, count + 1):
                    await server.async_setValues(unit, 16, 0, [(tick + unit + i) % 65536 for i in range(tags)])

    asyncio.run(main())


def config_text(folder: Path, devices: int, ports: list[int], http_port: int, collector: str | None,
                max_rows: int, trend_points: int | None = None) -> str:
    out = [
        'gateway_id = "bench-scale"', f'data_dir = "{(folder / "data").as_posix()}"', 'log_level = "warning"', "",
        "[http]", f'listen = "127.0.0.1:{http_port}"', "",
        "[buffer]", f"max_rows = {max_rows}", 'on_full = "drop_oldest"', "retention_s = 60", "",
    ]
    if trend_points is not None:
        out += ["[twin]", f"trend_points = {trend_points}", ""]
    if collector:
        out += ["[collector]", f'url = "{collector}"', f'api_key = "{API_KEY}"', "batch_size = 5000",
                "interval_s = 2.0", ""]
    profile = (folder / "bench_block.toml").as_posix()
    for i, (port_index, unit) in enumerate(layout(devices)):
        out += [
            "[[devices]]", f'name = "dev-{i:04d}"', f'profile = "{profile}"',
            "[devices.connection]", 'host = "127.0.0.1"', f"port = {ports[port_index]}", f"unit_id = {unit}",
            "poll_interval_s = 1.0", "",
        ]
    return "\n".join(out)


@contextlib.contextmanager
def plant(folder: Path, tags: int, tags_per_device: int, collector: bool, max_rows: int,
          trend_points: int | None = None) -> Iterator[Path]:
    """Start the simulated plant (and a collector); yield the agent's config file."""
    devices = max(1, math.ceil(tags / tags_per_device))
    per_device = min(tags, tags_per_device)
    (folder / "bench_block.toml").write_text(profile_text(per_device))
    nports = math.ceil(devices / UNITS_PER_PORT)
    ports = [free_port() for _ in range(nports)]
    units = [min(UNITS_PER_PORT, devices - k * UNITS_PER_PORT) for k in range(nports)]
    server = multiprocessing.get_context("spawn").Process(target=serve_plant, args=(ports, units, per_device),
                                                          daemon=True)
    server.start()
    coll: subprocess.Popen[bytes] | None = None
    try:
        for port in ports:
            wait_port(port, server, "the Modbus plant")
        url = None
        if collector:
            cport = free_port()
            coll = subprocess.Popen(
                [sys.executable, "-m", "cloud_sync.collector", "serve", "--db",
                 f"sqlite:///{(folder / 'collector.sqlite').as_posix()}", "--listen", f"127.0.0.1:{cport}",
                 "--api-key", API_KEY, "--rate-limit-batches-per-s", "0"],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL, stderr=(folder / "collector.log").open("wb"))
            try:
                wait_port(cport, coll, "the collector")
            except SystemExit:
                raise SystemExit("the collector did not start:\n" + (folder / "collector.log").read_text()) from None
            url = f"http://127.0.0.1:{cport}"
        http_port = free_port()
        config = folder / "agent.toml"
        config.write_text(config_text(folder, devices, ports, http_port, url, max_rows, trend_points))
        yield config
    finally:
        if coll is not None:
            coll.terminate()
            coll.wait(10)
        server.terminate()
        server.join(5)


# --- measuring the agent -----------------------------------------------------------------------


@dataclass
class Point:
    tags: int
    devices: int
    seconds: float
    cpu_s: float = 0.0
    rss_peak_mb: float = 0.0
    stored: int = 0
    synced: bool = False
    sync_state: dict[str, Any] = field(default_factory=dict)  # mode, backlog and rows sent at the end
    memory: dict[str, Any] = field(default_factory=dict)  # the agent's own view at the end (status "memory")
    series: list[tuple[float, float]] = field(default_factory=list)  # (s since start of window, RSS MB)

    @property
    def cpu_fraction(self) -> float:
        return self.cpu_s / self.seconds

    @property
    def samples_per_s(self) -> float:
        return self.stored / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        """Share of a core per 1,000 samples/s stored."""
        return self.cpu_fraction / (self.samples_per_s / 1000) if self.stored else float("nan")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(cpu_fraction=self.cpu_fraction, samples_per_s=self.samples_per_s, cpu_per_1000=self.cpu_per_1000)
        return out


def last_seq(client: httpx.Client, url: str, tries: int = 1) -> int:
    """The buffer's last sample sequence number; ``tries`` attempts (a starved agent answers late)."""
    for attempt in range(tries):
        try:
            doc = client.get(url).raise_for_status().json()
            return int(doc["buffer"]["last_seq"].get("samples", 0))
        except httpx.HTTPError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def rss_mb(proc: psutil.Process) -> float:
    return float(proc.memory_info().rss) / 2**20


def run_agent(config: Path, seconds: float, warmup: float, every: float, tags: int, devices: int,
              progress: bool = False) -> Point:
    """Run ``edge-agent run`` on ``config``; measure it for ``seconds`` after ``warmup``."""
    log = open(config.parent / "agent.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log)
    ps = psutil.Process(proc.pid)
    listen = next(line for line in config.read_text().splitlines() if line.startswith("listen"))
    status = "http://" + listen.split('"')[1] + "/api/v1/status"
    point = Point(tags, devices, seconds)
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + max(warmup, 5.0) + 60
            while True:
                try:
                    last_seq(client, status)
                    break
                except (httpx.HTTPError, KeyError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"the agent did not start: see {config.parent / 'agent.log'}") from None
                    time.sleep(0.2)
            time.sleep(warmup)
            peak = rss_mb(ps)
            cpu0 = sum(ps.cpu_times()[:2])
            seq0 = last_seq(client, status, tries=3)
            t0 = time.monotonic()
            point.series.append((0.0, peak))
            while (now := time.monotonic()) - t0 < seconds:
                time.sleep(min(every, seconds - (now - t0)))
                rss = rss_mb(ps)
                peak = max(peak, rss)
                point.series.append((round(time.monotonic() - t0, 2), round(rss, 2)))
                if progress:
                    print(f"  t={time.monotonic() - t0:6.0f} s  RSS {rss:6.1f} MB", file=sys.stderr, flush=True)
            seq1 = last_seq(client, status, tries=3)
            wall = time.monotonic() - t0
            cpu1 = sum(ps.cpu_times()[:2])
            try:
                doc = client.get(status).json()
            except httpx.HTTPError:
                doc = {}
            point.synced = bool(doc.get("sync", {}).get("last_result") not in (None, "disabled"))
            point.sync_state = {k: doc.get("sync", {}).get(k) for k in ("mode", "backlog", "rows_sent", "last_result")}
            point.memory = doc.get("memory") or {}
            # the kernel's own peak (VmHWM) also sees spikes between two samples
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        point.seconds = wall
        point.cpu_s = cpu1 - cpu0
        point.rss_peak_mb = round(peak, 2)
        point.stored = seq1 - seq0
        return point
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def measure(tags: int, seconds: float, *, warmup: float = 10.0, every: float = 2.0, tags_per_device: int = 100,
            collector: bool = True, max_rows: int = 2_000_000, progress: bool = False, folder: Path | None = None,
            trend_points: int | None = None) -> Point:
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=folder) as tmp, \
            plant(Path(tmp), tags, tags_per_device, collector, max_rows, trend_points) as config:
        devices = max(1, math.ceil(tags / tags_per_device))
        return run_agent(config, seconds, warmup, every, tags, devices, progress)


def plot(points: list[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tags = [p.tags for p in points]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=80)
    charts = [
        ("CPU, % of one core", [100 * p.cpu_fraction for p in points], None),
        ("peak RSS, MB", [p.rss_peak_mb for p in points], 150.0),
        ("samples stored per s", [p.samples_per_s for p in points], None),
    ]
    for ax, (title, values, target) in zip(axes, charts, strict=True):
        ax.plot(tags, values, marker="o")
        if title.startswith("samples"):
            ax.plot(tags, tags, color="grey", linestyle=":", linewidth=1, label="offered (tags x 1 Hz)")
            ax.legend(loc="upper left", fontsize=8)
            ax.set_yscale("log")
        if target is not None:
            ax.axhline(target, color="red", linestyle="--", linewidth=1, label=f"target {target:g}")
            ax.legend(loc="upper left", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("tags at 1 Hz")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"edge-agent scale run, {dt.date.today().isoformat()} "
                 f"({points[0].seconds:.0f} s per point, {os.cpu_count()} cores shared)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def load_points(path: Path) -> list[Point]:
    """The points of a results JSON written with ``--json`` (to plot them again)."""
    doc = json.loads(path.read_text())
    names = {f.name for f in fields(Point)}
    return [Point(**{k: v for k, v in p.items() if k in names}) for p in doc["points"]]


def rows_of(points: list[Point]) -> list[Row]:
    rows: list[Row] = []
    base = next((p for p in points if p.tags == 1000), points[0])
    for p in points:
        rows.append(Row(f"scale {p.tags:,} tags", f"agent process, {p.devices} Modbus devices at 1 Hz, "
                        "CPU share per 1,000 samples/s (vs the 1,000-tag point)",
                        round(100 * p.cpu_per_1000, 2), "% core per 1k samples/s",
                        round(100 * base.cpu_per_1000, 2), "% core per 1k samples/s at 1,000 tags",
                        target="roughly constant", met=None,
                        extra={"cpu_percent": round(100 * p.cpu_fraction, 1), "rss_peak_mb": p.rss_peak_mb,
                               "samples_per_s": round(p.samples_per_s)}))
        if p.tags == 10_000:
            rows.append(Row("scale RSS at 10,000 tags", "peak RSS of the agent process", p.rss_peak_mb, "MB",
                            None, None, target="<= 150 MB", met=p.rss_peak_mb <= 150))
    for row in rows:
        if row.baseline and row.figure is not None:
            row.ratio = round(row.figure / row.baseline, 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", default="100,1000,10000,50000", help="total tags of each point")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per point")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=2.0, help="RSS sampling period")
    parser.add_argument("--tags-per-device", type=int, default=100)
    parser.add_argument("--no-collector", action="store_true", help="no collector: the agent only buffers")
    parser.add_argument("--trend-points", type=int, default=None, help="[twin] trend_points (default: the agent's)")
    parser.add_argument("--plot", type=Path, default=RESULTS / f"scale-{dt.date.today().isoformat()}.png")
    parser.add_argument("--replot", type=Path, default=None, metavar="JSON",
                        help="only draw the plot again from a results JSON of an earlier run")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    if args.replot:
        plot(load_points(args.replot), args.plot)
        print(f"plot: {args.plot}")
        return 0
    points: list[Point] = []
    print(f"{'tags':>7} {'devices':>7} {'CPU %':>7} {'RSS peak MB':>12} {'samples/s':>10} {'% core per 1k/s':>16}")
    for tags in (int(x) for x in args.points.split(",")):
        p = measure(tags, args.seconds, warmup=args.warmup, every=args.every, tags_per_device=args.tags_per_device,
                    collector=not args.no_collector, trend_points=args.trend_points)
        points.append(p)
        print(f"{p.tags:>7,} {p.devices:>7} {100 * p.cpu_fraction:>7.1f} {p.rss_peak_mb:>12.1f} "
              f"{p.samples_per_s:>10,.0f} {100 * p.cpu_per_1000:>16.2f}", flush=True)
    write_rows(args.json, rows_of(points), extra={"points": [p.as_dict() for p in points]})
    if args.plot:
        try:
            plot(points, args.plot)
        except ImportError as exc:  # matplotlib is optional: the figures are in the table and the JSON
            print(f"plot skipped: {exc}")
        else:
            print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
