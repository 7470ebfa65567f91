"""bench/analytics.py runs (on a few thousand events, SQLite only) and its queries agree with the library."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "analytics.py"


def test_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_analytics", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_analytics"] = module
    spec.loader.exec_module(module)
    assert module.main(["--events", "3000", "--backends", "sqlite", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:]] == ["funnel", "cohort"]
    assert all("same answer" in line for line in lines[1:])
