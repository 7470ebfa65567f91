"""`edge-agent analyze anomaly`: per-row scores as CSV; the anomaly scores highest."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from edge_agent.cli import main


def test_scores_every_row_and_the_spike_stands_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "series.csv"
    rows = ["timestamp,value"]
    for i in range(3000):
        value = 50 + 5 * math.sin(i / 20) + (40 if i == 2500 else 0)
        rows.append(f"2026-11-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},{value:.4f}")
    path.write_text("\n".join(rows) + "\n")
    assert main(["analyze", "anomaly", "--input", str(path)]) == 0
    out = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert out[0] == ["timestamp", "value", "anomaly_score"]
    assert len(out) == 3001
    scores = [float(r[2]) for r in out[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    peak = max(range(len(scores)), key=scores.__getitem__)
    assert 2500 <= peak <= 2510  # at the spike (the running-mean views may peak a few rows later)
    assert scores[2500] > max(scores[:2500])  # and nothing before it scored as high


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "anomaly", "--input", str(tmp_path / "missing.csv")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    assert main(["analyze", "anomaly", "--input", str(tmp_path / "x.csv"), "--detector", "magic"]) == 2
    assert "unknown detector 'magic'" in capsys.readouterr().err
