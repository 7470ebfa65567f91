"""Remaining useful life: the shipped TFLite model, its card, the input pipeline and both input formats."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.maintenance.datasets import shared_data_dir
from edge_agent.maintenance.rul import (
    DEFAULT_MODEL,
    InterpreterNotInstalledError,
    ModelCard,
    RulInputError,
    RulModel,
    model_input,
    predict_units,
)
from edge_agent.maintenance.rul_data import (
    CMAPSS_COLUMNS,
    nasa_score,
    read_cmapss,
    read_export_csv,
    read_rul_file,
    read_units,
    rmse,
    rul_targets,
)
from edge_agent.maintenance.train import HyperParameters, choose_sensors, normalisation, training_command, unit_rows

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RMSE_BOUND = 12.61  # the goal of issue 7 (DCNN); shipped v1.2.0: 12.09 (v1.1.0: 13.53, v1.0.0: 14.06)
CARD = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def model() -> RulModel:
    return RulModel.load()


@pytest.fixture(scope="module")
def cmapss() -> Path:
    folder = shared_data_dir() / "cmapss"
    if not (folder / "test_FD001.txt").is_file():
        message = f"C-MAPSS FD001 not found in {folder} (set EDGE_SHARED_DATA)"
        if IN_CI:
            pytest.fail(message + " (CI=true: missing reference data is a failure)")
        pytest.skip(message)
    return folder


def _engine(unit: int, cycles: int, rng: np.random.Generator) -> list[list[float]]:
    """A made-up engine near FD001's healthy operating point: the card's offsets plus noise and a drift."""
    card = ModelCard.read(DEFAULT_MODEL.with_suffix(".json"))
    base = {name: 1.0 for name in CMAPSS_COLUMNS}
    base.update(zip(card.sensors, card.offset.tolist(), strict=True))
    rows = []
    for cycle in range(1, cycles + 1):
        values = [base[name] for name in CMAPSS_COLUMNS]
        values = [v + 0.001 * cycle * abs(v) + float(rng.normal(0, 0.0005 * abs(v))) for v in values]
        rows.append([unit, cycle, *values])
    return rows


def _write_cmapss(path: Path, rows: list[list[float]]) -> None:
    path.write_text("".join(" ".join(f"{v:.6g}" for v in row) + "  \n" for row in rows))


def _write_export(path: Path, rows: list[list[float]], drop: tuple[int, str] | None = None) -> None:
    """The same rows as the agent's CSV export: one sample per (cycle, sensor), device ``engine-<unit>``."""
    lines = ["ts,device,tag,value,quality"]
    for row in rows:
        unit, cycle = int(row[0]), int(row[1])
        ts = f"2026-01-01T00:{cycle // 60:02d}:{cycle % 60:02d}Z"
        for name, value in zip(CMAPSS_COLUMNS, row[2:], strict=True):
            if drop == (cycle, name):
                lines.append(f"{ts},engine-{unit},{name},99999,bad")  # a bad-quality sample is skipped
                continue
            lines.append(f"{ts},engine-{unit},{name},{value:.6g},good")
    path.write_text("\n".join(lines) + "\n")


def test_shipped_model_rmse_on_fd001_matches_its_card(model: RulModel, cmapss: Path) -> None:
    units = read_cmapss(cmapss / "test_FD001.txt")
    true = np.minimum(read_rul_file(cmapss / "RUL_FD001.txt"), model.card.rul_cap)
    predicted = model.predict_batch(np.stack([model_input(u, model.card) for u in units]))
    assert len(units) == 100
    assert rmse(predicted, true) == pytest.approx(CARD["metrics"]["rmse"], abs=1e-3)
    assert nasa_score(predicted, true) == pytest.approx(CARD["metrics"]["nasa_score"], abs=0.1)
    assert rmse(predicted, true) < RMSE_BOUND


def test_card_describes_the_shipped_file(model: RulModel) -> None:
    data = DEFAULT_MODEL.read_bytes()
    assert CARD["model_file"] == DEFAULT_MODEL.name
    assert CARD["metrics"]["model_bytes"] == len(data) < 1_000_000
    assert CARD["metrics"]["model_sha256"] == hashlib.sha256(data).hexdigest()
    assert len(CARD["training"]["data_sha256"]) == 64
    hp = HyperParameters(**CARD["training"]["hyper_parameters"])
    assert CARD["input"]["window"] == hp.window and len(CARD["input"]["sensors"]) == 14
    assert ("cycle" in CARD["input"]) == hp.cycle and CARD["input"].get("smoothing", 0.0) == hp.smoothing
    assert model.card.inputs == (*CARD["input"]["sensors"], *(["cycle"] if hp.cycle else []))
    folds = [m["validation_rmse_all_windows"] for m in CARD["training"]["members"]]
    assert len(folds) == hp.members
    if "cross_validation" in CARD["training"]:  # since v1.2.0: the figure the recipe was chosen by
        cv = CARD["training"]["cross_validation"]["cv_rmse"]
        assert cv == pytest.approx(np.sqrt(np.mean(np.square(folds))), abs=1e-3)


def test_card_records_the_training_data(cmapss: Path) -> None:
    digest = hashlib.sha256((cmapss / "train_FD001.txt").read_bytes()).hexdigest()
    assert CARD["training"]["data_sha256"] == digest
    hp = HyperParameters(**CARD["training"]["hyper_parameters"])
    assert CARD["training"]["command"] == training_command(hp)


def test_card_normalisation_is_the_one_fitted_on_the_training_set(cmapss: Path) -> None:
    units = read_cmapss(cmapss / "train_FD001.txt")
    card = ModelCard.read(DEFAULT_MODEL.with_suffix(".json"))
    assert list(card.sensors) == choose_sensors(units)
    hp = HyperParameters(**CARD["training"]["hyper_parameters"])
    kind = hp.normalisation
    offset, scale = normalisation(units, list(card.sensors), kind, hp)
    n = len(card.sensors)
    np.testing.assert_allclose(card.offset, offset[:n], rtol=1e-7)
    np.testing.assert_allclose(card.scale, scale[:n], rtol=1e-6)
    if card.cycle is not None:
        np.testing.assert_allclose(card.cycle, (offset[n], scale[n]), rtol=1e-7)
    scaled = card.normalise(np.concatenate([unit_rows(u, list(card.sensors), hp) for u in units]))
    if kind == "min-max":  # the training set spans [-1, 1] on every sensor
        np.testing.assert_allclose(scaled.min(axis=0), -1.0, atol=1e-5)
        np.testing.assert_allclose(scaled.max(axis=0), 1.0, atol=1e-5)
    else:
        np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-4)


def test_training_command_names_only_changed_options() -> None:
    base = "python -m edge_agent.maintenance.train --out edge_agent/maintenance/models/"
    assert training_command(HyperParameters()) == base
    assert training_command(HyperParameters(epochs=50, normalisation="z-score")) == (
        base + " --epochs 50 --normalisation z-score"
    )
    with pytest.raises(ValueError, match="normalisation"):
        HyperParameters(normalisation="robust")


class _MeanInterpreter:
    """A stand-in interpreter whose output is the mean of each input window (checks the normalisation)."""

    def __init__(self, model_path: str, num_threads: int = 1) -> None:
        card = ModelCard.read(Path(model_path).with_suffix(".json"))
        self.shape = [1, card.window, len(card.inputs)]
        self.value: Any = None

    def allocate_tensors(self) -> None:
        pass

    def get_input_details(self) -> list[dict[str, Any]]:
        return [{"index": 0, "shape": np.array(self.shape)}]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [{"index": 1}]

    def resize_tensor_input(self, index: int, shape: list[int]) -> None:
        self.shape = list(shape)

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        assert list(value.shape) == self.shape and value.dtype == np.float32
        self.value = value

    def invoke(self) -> None:
        pass

    def get_tensor(self, index: int) -> np.ndarray:
        return np.asarray(self.value.mean(axis=(1, 2)))[:, None]


def test_input_pipeline_on_a_tiny_hand_made_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    rows = _engine(7, 5, rng) + _engine(2, 70, rng)  # unit 7 is shorter than the window, unit 2 longer
    path = tmp_path / "tiny.txt"
    _write_cmapss(path, rows)
    units = read_units(path)
    assert [u.unit for u in units] == [7, 2] and [len(u) for u in units] == [5, 70]

    card = ModelCard.read(DEFAULT_MODEL.with_suffix(".json"))
    w, n = card.window, len(card.sensors)
    short = model_input(units[0], card)
    assert short.shape == (w, len(card.inputs))
    pad = w - 5
    np.testing.assert_array_equal(short[: pad + 1], np.repeat(short[:1], pad + 1, axis=0))  # its first cycle
    np.testing.assert_array_equal(short[pad:, :n], units[0].select(card.sensors))
    np.testing.assert_array_equal(model_input(units[1], card)[:, :n], units[1].select(card.sensors)[-w:])
    if card.cycle is not None:  # the cycle number of each row, counted from the unit's first cycle
        np.testing.assert_array_equal(short[pad:, n], [1, 2, 3, 4, 5])
        np.testing.assert_array_equal(model_input(units[1], card)[:, n], np.arange(71 - w, 71))

    monkeypatch.setattr("edge_agent.maintenance.rul.interpreter_class", lambda: _MeanInterpreter)
    fake = RulModel.load()
    offset, scale = card.offset, card.scale
    if card.cycle is not None:
        offset, scale = np.append(offset, card.cycle[0]), np.append(scale, card.cycle[1])
    assert fake.predict(np.tile(offset, (w, 1))) == pytest.approx(0.0, abs=1e-6)  # offset -> 0
    plus_one = np.tile(offset + scale, (w, 1))
    assert fake.predict(plus_one) == pytest.approx(1.0, abs=1e-5)  # offset + scale -> 1
    batch = np.stack([model_input(u, card) for u in units])
    np.testing.assert_allclose(fake.predict_batch(batch), [fake.predict(w) for w in batch], rtol=1e-6)


def test_real_model_on_the_tiny_file(tmp_path: Path, model: RulModel) -> None:
    path = tmp_path / "tiny.txt"
    rng = np.random.default_rng(4)
    _write_cmapss(path, _engine(1, 12, rng) + _engine(2, 31, rng))
    result = predict_units(path)
    assert [r["unit"] for r in result] == [1, 2]
    assert all(0.0 <= r["rul"] <= 200.0 for r in result)
    windows = np.stack([model_input(u, model.card) for u in read_cmapss(path)])
    np.testing.assert_allclose(model.predict_batch(windows), [model.predict(w) for w in windows], atol=1e-3)


def test_agent_csv_export_gives_the_same_rul_as_the_cmapss_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = _engine(1, 34, rng) + _engine(2, 20, rng)
    text, export = tmp_path / "units.txt", tmp_path / "export.csv"
    _write_cmapss(text, rows)
    _write_export(export, rows, drop=(10, "s7"))
    units = read_units(export)
    assert [u.unit for u in units] == ["engine-1", "engine-2"]
    s7 = units[0].select(["s7"])[:, 0]
    assert s7[9] == s7[8]  # the bad-quality sample was skipped and its cycle kept the last value
    from_text, from_csv = predict_units(text), predict_units(export)
    assert [r["unit"] for r in from_csv] == ["engine-1", "engine-2"]
    assert [r["rul"] for r in from_csv] == pytest.approx([r["rul"] for r in from_text], abs=0.2)


def test_export_of_real_test_engines(tmp_path: Path, cmapss: Path, model: RulModel) -> None:
    raw = np.loadtxt(cmapss / "test_FD001.txt")
    rows = raw[raw[:, 0] <= 3].tolist()
    export = tmp_path / "export.csv"
    _write_export(export, rows)
    from_csv = [r["rul"] for r in predict_units(export)]
    from_text = [r["rul"] for r in model.predict_units(read_cmapss(cmapss / "test_FD001.txt")[:3])]
    assert from_csv == pytest.approx(from_text, abs=0.2)


def test_clear_error_when_no_interpreter_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    with pytest.raises(InterpreterNotInstalledError) as excinfo:
        RulModel.load()
    assert "ai-edge-litert" in str(excinfo.value) and "tflite-runtime" in str(excinfo.value)


def test_input_errors(tmp_path: Path, model: RulModel) -> None:
    w, n = model.window, len(model.card.inputs)
    with pytest.raises(RulInputError, match=rf"\({w}, {n}\)"):
        model.predict(np.zeros((w - 1, n)))
    export = tmp_path / "export.csv"
    export.write_text("ts,device,tag,value\n1,pump,s2,640.0\n")
    with pytest.raises(RulInputError, match="no data for s3"):
        predict_units(export)
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,device,tag,value\n1,pump,s2,abc\n")
    with pytest.raises(RulInputError, match=r"bad.csv:2: value 'abc'"):
        read_export_csv(bad)
    with pytest.raises(RulInputError, match="columns per row"):
        (tmp_path / "short.txt").write_text("1 1 0.1 0.2\n")
        read_cmapss(tmp_path / "short.txt")


def test_piecewise_linear_target_and_nasa_score() -> None:
    np.testing.assert_array_equal(rul_targets(4, cap=2.0), [2.0, 2.0, 1.0, 0.0])
    assert nasa_score([10.0], [0.0]) == pytest.approx(np.e - 1)  # late by 10: exp(1) - 1
    assert nasa_score([0.0], [13.0]) == pytest.approx(np.e - 1)  # early by 13: exp(1) - 1
    assert rmse([1.0, 3.0], [1.0, 1.0]) == pytest.approx(np.sqrt(2.0))


def test_analyze_rul_command_prints_one_json_line_per_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edge_agent.cli import main

    rng = np.random.default_rng(5)
    path = tmp_path / "two_units.txt"
    _write_cmapss(path, _engine(1, 60, rng) + _engine(2, 45, rng))
    assert main(["analyze", "rul", "--input", str(path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["unit"] for row in lines] == [1, 2]
    assert all(isinstance(row["rul"], float) and row["rul"] >= 0 for row in lines)
    assert main(["analyze", "rul", "--input", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
