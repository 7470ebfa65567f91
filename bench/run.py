"""``make bench``: run the hot-path benchmarks one after the other and collect one table.

    python bench/run.py [--quick] [--only NAME,NAME] [--out DIR] [--list]

Each benchmark is its own script, run in a child process with sizes that keep the whole suite
under 15 minutes on a two-core machine (``--quick``: a smoke run of about two minutes). A script
hands its rows to the runner with ``--json PATH`` (see ``bench/report.py``); scripts that only
print JSON (``twin_latency.py``) are parsed here. For every run the runner also measures the
child's CPU seconds (user + system, its waited-for children included) and its peak RSS, from
``wait4``. At the end it prints the table (Markdown) and writes
``<out>/<YYYY-MM-DD>.json``: the machine (cores, CPU model, Python, SQLite, library versions),
the date, the load average, the rows and the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import FIELDS, Row, check_row  # noqa: E402

BENCH_DIR = ROOT / "bench"
RESULTS = BENCH_DIR / "results"
LIBRARIES = ("pymodbus", "asyncua", "paho-mqtt", "httpx", "numpy", "orjson", "fastapi", "uvicorn", "psycopg")


def parse_twin(stdout: str) -> list[Row]:
    """Rows of ``twin_latency.py``, which prints one JSON document."""
    doc = json.loads(stdout[stdout.index("{"):])
    lat, cpu = doc["latency"], doc["cpu"]
    measured = f"value change to a parsed SSE twin message, {lat['changes']} changes"
    per10 = 100 * float(cpu["core_share_per_10_clients"])
    return [
        Row("twin latency p50", measured, lat["p50_ms"], "ms", target=""),
        Row("twin latency p99", measured, lat["p99_ms"], "ms", target="< 250 ms", met=lat["p99_ms"] < 250),
        Row("twin CPU per 10 clients", f"status server CPU with {cpu['clients']} live clients minus idle",
            round(per10, 2), "% of a core", round(100 * float(cpu["core_share_idle"]), 2), "% of a core, no client",
            target="< 5 %", met=per10 < 5),
    ]


@dataclass(frozen=True)
class Bench:
    """One script run: ``script`` (relative to the bench folder, or absolute) with ``args``."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] | None = None  # args of --quick (default: the same as args)
    parse: Callable[[str], list[Row]] | None = None  # rows from stdout instead of --json
    timeout_s: float = 300.0


SUITE: tuple[Bench, ...] = (
    Bench("ingest", "ingest.py", ("--samples", "300000", "--repeat", "3"), ("--samples", "50000", "--repeat", "1")),
    Bench("modbus", "modbus.py", ("--seconds", "2", "--rounds", "3"), ("--seconds", "1", "--rounds", "1")),
    Bench("opcua", "opcua.py", ("--seconds", "2", "--rounds", "3"), ("--seconds", "1", "--rounds", "1")),
    Bench("mqtt-qos0", "mqtt.py", ("--qos", "0", "--messages", "20000", "--rounds", "3"),
          ("--qos", "0", "--messages", "3000", "--rounds", "1")),
    Bench("mqtt-qos1", "mqtt.py", ("--qos", "1", "--messages", "20000", "--rounds", "3"),
          ("--qos", "1", "--messages", "3000", "--rounds", "1")),
    Bench("sync", "sync.py", ("--samples", "200000", "--repeat", "2"), ("--samples", "30000", "--repeat", "1")),
    Bench("collector-ingest", "collector_ingest.py", ("--batches", "10"), ("--batches", "3", "--no-pg")),
    Bench("oee", "oee.py", ("--days", "10", "--repeat", "2"), ("--days", "2", "--repeat", "1")),
    Bench("features", "features.py", ("--repeat", "300"), ("--repeat", "50")),
    Bench("twin-latency", "twin_latency.py", ("--changes", "300", "--clients", "20", "--seconds", "5"),
          ("--changes", "50", "--clients", "5", "--seconds", "2"), parse=parse_twin),
)


@dataclass
class Run:
    name: str
    command: list[str]
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    rows: list[Row] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "command": " ".join(self.command), "exit_code": self.exit_code,
                "wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2),
                "peak_rss_mb": round(self.peak_rss_mb, 1), "error": self.error}


def run_one(bench: Bench, *, quick: bool = False, bench_dir: Path = BENCH_DIR, echo: bool = True) -> Run:
    """Run one benchmark script in a child process; its rows and its CPU and peak RSS."""
    script = Path(bench.script) if Path(bench.script).is_absolute() else bench_dir / bench.script
    args = bench.quick if quick and bench.quick is not None else bench.args
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "rows.json"
        command = [sys.executable, str(script), *args]
        full = command if bench.parse else [*command, "--json", str(out)]
        log_path = Path(tmp) / "output.txt"
        with log_path.open("wb") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(full, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
            timer = threading.Timer(bench.timeout_s, _kill_group, (proc.pid,))
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - started
        output = log_path.read_text(errors="replace")
        run = Run(bench.name, [Path(sys.executable).name, str(script.relative_to(ROOT) if script.is_relative_to(ROOT)
                                                              else script), *args],
                  proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
        if echo:
            print(f"== {bench.name}: {' '.join(run.command)}", flush=True)
            print("   " + output.rstrip().replace("\n", "\n   "), flush=True)
        try:
            if bench.parse is not None:
                run.rows = bench.parse(output)
            else:
                doc = json.loads(out.read_text())
                problems = [p for row in doc["rows"] for p in check_row(row)]
                if problems:
                    raise ValueError("; ".join(problems))
                run.rows = [Row(**{k: row[k] for k in (*FIELDS, "extra") if k in row}) for row in doc["rows"]]
            if not run.rows:
                raise ValueError("no rows")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            last = output.strip().splitlines()[-1:] or [""]
            run.error = f"exit {run.exit_code}: {exc}; {last[0][:200]}"
            run.rows = [Row(bench.name, f"FAILED: {run.error}", None, "", target="runs", met=False)]
    return run


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "platform": platform.platform(), "libraries": versions}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(runs: Sequence[Run]) -> str:
    """The Markdown table of every row, with the CPU and peak RSS of the run it came from."""
    head = ["benchmark", "measured", "figure", "raw baseline (same run)", "ratio", "target", "met",
            "run CPU s / wall s", "run peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        for row in run.rows:
            figure = f"{_fmt(row.figure)} {row.unit}".strip()
            baseline = f"{_fmt(row.baseline)} {row.baseline_unit or ''}".strip()
            met = "" if row.met is None else _fmt(row.met)
            cells = [row.benchmark, row.measured.replace("|", "/"), figure, baseline, _fmt(row.ratio), row.target,
                     met, f"{run.cpu_s:.1f} / {run.wall_s:.1f}", f"{run.peak_rss_mb:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_doc(runs: Sequence[Run], *, command: str, started: dt.datetime, load: Sequence[float]) -> dict[str, Any]:
    rows = []
    for run in runs:
        for row in run.rows:
            rows.append({**row.as_dict(), "run": run.name, "run_cpu_s": round(run.cpu_s, 2),
                         "run_wall_s": round(run.wall_s, 2), "run_peak_rss_mb": round(run.peak_rss_mb, 1)})
    return {"date": started.date().isoformat(), "started": started.isoformat(timespec="seconds"),
            "command": command, "machine": machine(),
            "load_average": {"start": list(load), "end": list(os.getloadavg())},
            "rows": rows, "runs": [run.as_dict() for run in runs]}


def run_suite(benches: Sequence[Bench], out_dir: Path, *, quick: bool = False, bench_dir: Path = BENCH_DIR,
              command: str = "", echo: bool = True) -> tuple[Path, str, dict[str, Any]]:
    """Run ``benches``; write ``out_dir/<date>.json``; return its path, the table and the document."""
    started = dt.datetime.now(dt.UTC)
    load = os.getloadavg()
    runs = [run_one(bench, quick=quick, bench_dir=bench_dir, echo=echo) for bench in benches]
    doc = results_doc(runs, command=command, started=started, load=load)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{doc['date']}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path, table(runs), doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the whole suite")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (see --list)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results JSON")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and their arguments")
    args = parser.parse_args(argv)
    benches = list(SUITE)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {b.name for b in SUITE}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        benches = [b for b in SUITE if b.name in wanted]
    if args.list:
        for b in benches:
            print(f"{b.name:<18} {b.script} {' '.join(b.quick if args.quick and b.quick else b.args)}")
        return 0
    command = "python bench/run.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    t0 = time.perf_counter()
    path, text, doc = run_suite(benches, args.out, quick=args.quick, command=command)
    m = doc["machine"]
    print(f"\n{doc['date']}, {m['cores']} cores ({m['cpu']}), Python {m['python']}, SQLite {m['sqlite']}, "
          f"load average {doc['load_average']['start'][0]:.1f} -> {doc['load_average']['end'][0]:.1f}, "
          f"{time.perf_counter() - t0:.0f} s in all\n")
    print(text)
    print(f"\nwritten: {path}")
    failed = [r["run"] for r in doc["rows"] if str(r["measured"]).startswith("FAILED")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
