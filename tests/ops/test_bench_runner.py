"""The `make bench` runner: its table and results JSON, with tiny fake benchmarks instead of the real ones."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bench.memory import last_half, slope_per_minute
from bench.report import FIELDS, Row, check_row
from bench.run import SUITE, Bench, parse_twin, run_suite

FAKE = textwrap.dedent("""
    import argparse, sys
    from pathlib import Path
    from bench.report import Row, add_json_argument, write_rows

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10)
    add_json_argument(parser)
    args = parser.parse_args()
    blob = bytearray(args.size * 1024 * 1024)  # resident: the runner must see it in the peak RSS
    for i in range(0, len(blob), 4096):
        blob[i] = 1
    print(f"fake: {args.size} MB")
    write_rows(args.json, [
        Row("fake ratio", "a fake path vs a fake raw path", 800.0, "things/s", 1000.0, "things/s (raw)", 0.8,
            ">= 0.5", True, extra={"size": args.size}),
        Row("fake figure", "a figure with no baseline", 3, "ms"),
    ])
""")

BROKEN = "import sys\nprint('about to fail')\nsys.exit(3)\n"


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    (tmp_path / "fake.py").write_text(FAKE)
    (tmp_path / "broken.py").write_text(BROKEN)
    return tmp_path


def test_table_and_json_of_a_fake_suite(scripts: Path, tmp_path: Path) -> None:
    benches = [Bench("fake", "fake.py", ("--size", "40"), quick=("--size", "1")), Bench("broken", "broken.py")]
    path, text, doc = run_suite(benches, tmp_path / "results", bench_dir=scripts, command="test", echo=False)

    assert path.name == f"{doc['date']}.json" and path.parent == tmp_path / "results"
    assert json.loads(path.read_text()) == doc
    lines = text.splitlines()
    assert lines[0].startswith("| benchmark | measured | figure | raw baseline (same run) | ratio | target | met |")
    assert len(lines) == 2 + 3  # header, rule, two fake rows, one failure row
    row = "| fake ratio | a fake path vs a fake raw path | 800 things/s | 1,000 things/s (raw) | 0.80 | >= 0.5 | yes |"
    assert row in text
    assert "| broken | FAILED: exit 3" in text

    m = doc["machine"]
    assert m["cores"] >= 1 and m["python"] and m["sqlite"]
    assert set(m["libraries"]) >= {"pymodbus", "asyncua", "paho-mqtt", "httpx", "numpy"}
    assert doc["command"] == "test" and len(doc["load_average"]["start"]) == 3

    rows = doc["rows"]
    assert [r["benchmark"] for r in rows] == ["fake ratio", "fake figure", "broken"]
    for row in rows:
        assert check_row(row) == []
        assert set(FIELDS) <= set(row)
    fake, figure, broken = rows
    assert (fake["figure"], fake["baseline"], fake["ratio"], fake["met"]) == (800.0, 1000.0, 0.8, True)
    assert fake["extra"] == {"size": 40}
    assert figure["baseline"] is None and figure["met"] is None
    assert broken["met"] is False and broken["figure"] is None

    runs = {r["name"]: r for r in doc["runs"]}
    assert runs["fake"]["exit_code"] == 0 and runs["broken"]["exit_code"] == 3
    assert runs["fake"]["peak_rss_mb"] >= 40  # the child's own peak, from wait4
    assert runs["fake"]["cpu_s"] > 0 and runs["fake"]["wall_s"] > 0
    assert fake["run_peak_rss_mb"] == runs["fake"]["peak_rss_mb"]


def test_quick_arguments_are_used(scripts: Path, tmp_path: Path) -> None:
    bench = Bench("fake", "fake.py", ("--size", "40"), quick=("--size", "1"))
    _, _, doc = run_suite([bench], tmp_path, quick=True, bench_dir=scripts, echo=False)
    assert doc["rows"][0]["extra"] == {"size": 1}
    assert doc["runs"][0]["command"].endswith("fake.py --size 1")


def test_malformed_rows_are_a_failure(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(textwrap.dedent("""
        import json, sys
        path = sys.argv[sys.argv.index("--json") + 1]
        json.dump({"rows": [{"benchmark": "bad", "figure": "fast"}]}, open(path, "w"))
    """))
    _, text, doc = run_suite([Bench("bad", "bad.py")], tmp_path / "out", bench_dir=tmp_path, echo=False)
    assert doc["rows"][0]["met"] is False
    assert "missing 'unit'" in doc["runs"][0]["error"] and "figure must be a number" in doc["runs"][0]["error"]
    assert "FAILED" in text


def test_check_row_and_non_finite_numbers() -> None:
    assert Row("x", "y", float("nan"), "u", float("inf")).as_dict()["figure"] is None
    assert check_row([]) == ["a row is list, not an object"]
    assert check_row({**Row("x", "y", 1, "u").as_dict(), "met": "yes"}) == ["x: met must be true, false or null"]


def test_twin_output_is_parsed() -> None:
    out = "connected\n" + json.dumps({
        "latency": {"changes": 300, "received": 300, "p50_ms": 0.8, "p99_ms": 300.0, "max_ms": 400.0},
        "cpu": {"clients": 20, "core_share_idle": 0.01, "core_share_with_clients": 0.02,
                "core_share_per_10_clients": 0.005},
    }, indent=2)
    p50, p99, cpu = parse_twin(out)
    assert (p50.figure, p50.unit) == (0.8, "ms")
    assert p99.met is False  # 300 ms is over the 250 ms target
    assert cpu.figure == 0.5 and cpu.met is True


def test_the_suite_covers_the_hot_paths_and_each_script_exists() -> None:
    names = {b.name for b in SUITE}
    assert {"ingest", "modbus", "opcua", "mqtt-qos0", "mqtt-qos1", "sync", "collector-ingest", "oee", "features",
            "twin-latency"} <= names
    root = Path(__file__).resolve().parents[2] / "bench"
    for bench in SUITE:
        assert (root / bench.script).is_file(), bench.script


def test_memory_slope() -> None:
    series = [(float(t), 100.0 + 0.5 * t / 60) for t in range(0, 601, 5)]  # +0.5 MB per minute
    assert slope_per_minute(last_half(series)) == pytest.approx(0.5)
    flat = [(float(t), 120.0 + (t % 10) * 0.01) for t in range(0, 601, 5)]
    assert abs(slope_per_minute(last_half(flat))) < 0.01
    assert last_half(series)[0][0] == 300.0
    assert slope_per_minute([(0.0, 1.0)]) == 0.0
