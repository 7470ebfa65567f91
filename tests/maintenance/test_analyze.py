"""``score_csv``: the engine of ``edge-agent analyze anomaly``, on the CSV layouts it accepts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from edge_agent.errors import EdgeError
from edge_agent.maintenance.analyze import AnomalyInputError, ScoredPoint, score_csv, write_scores
from edge_agent.maintenance.anomaly import GaussianDetector
from edge_agent.maintenance.datasets import NabCorpus


def series(n: int = 600, spike: int = 500) -> list[float]:
    values = (20.0 + np.random.default_rng(0).normal(size=n)).round(3)
    values[spike] += 12.0
    return [float(v) for v in values]


def test_timestamp_value_file(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    values = series()
    path.write_text(
        "timestamp,value\n" + "".join(f"2024-01-01 00:{i // 60:02d}:{i % 60:02d},{v}\n" for i, v in enumerate(values))
    )
    points = score_csv(path)
    assert len(points) == len(values)
    assert points[0] == ScoredPoint("2024-01-01 00:00:00", values[0], 0.0)
    assert max(points, key=lambda p: p.anomaly_score).timestamp == "2024-01-01 00:08:20"  # row 500
    out = io.StringIO()
    write_scores(points[:2], out)
    assert out.getvalue().splitlines() == [
        "timestamp,value,anomaly_score",
        f"2024-01-01 00:00:00,{values[0]!r},0.000000",
        f"2024-01-01 00:00:01,{values[1]!r},0.000000",
    ]


def test_long_file_selects_a_tag(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    values = series()
    lines = ["device,tag,ts,value,quality"]
    for i, v in enumerate(values):
        lines.append(f"cnc-1,spindle_temp,{1_700_000_000 + i},{v},0")
        lines.append(f"cnc-1,good_count,{1_700_000_000 + i},{i},0")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnomalyInputError, match="cnc-1/good_count, cnc-1/spindle_temp"):
        score_csv(path)
    points = score_csv(path, tag="cnc-1/spindle_temp")
    assert [p.value for p in points] == values
    assert score_csv(path, tag="spindle_temp") == points
    with pytest.raises(AnomalyInputError, match="no rows of tag 'nope'"):
        score_csv(path, tag="nope")


def test_wide_file_selects_a_column_and_takes_a_detector(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    values = series()
    path.write_text("time,a,b\n" + "".join(f"{i},{v},\n" for i, v in enumerate(values)))
    with pytest.raises(AnomalyInputError, match="several columns"):
        score_csv(path)
    points = score_csv(path, tag="b")  # an empty column: all gaps
    assert all(np.isnan(p.value) and p.anomaly_score == 0.0 for p in points)
    gaussian = score_csv(path, tag="a", detector=GaussianDetector(warmup=100, window=200))
    assert gaussian[500].anomaly_score > 0.9999
    named = score_csv(path, tag="a", detector="gaussian", warmup=100, window=200)
    assert named == gaussian


def test_bad_input_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n1,2.0\n2,hot\n")
    with pytest.raises(AnomalyInputError, match=r"bad.csv:3: value 'hot' is not a number") as info:
        score_csv(path)
    assert isinstance(info.value, EdgeError)
    path.write_text("when,value\n1,2\n")
    with pytest.raises(AnomalyInputError, match="no time column"):
        score_csv(path)
    path.write_text("timestamp,value\n1,2\n")
    with pytest.raises(AnomalyInputError, match="unknown detector"):
        score_csv(path, detector="nope")
    with pytest.raises(AnomalyInputError):
        score_csv(tmp_path / "missing.csv")


def test_nab_file_scores_the_machine_temperature_failures(nab: NabCorpus) -> None:
    name = "realKnownCause/machine_temperature_system_failure.csv"
    points = score_csv(nab.root / "data" / name)
    series = nab.series(name)
    swept = nab.swept(name, series.timestamps)
    alerts = np.array([p.anomaly_score for p in points]) >= 0.44
    detected = {int(k) for k in swept.window[alerts & swept.scored] if k >= 0}
    assert len(detected) >= 3  # of the 4 labelled failures
