"""The RUL model's input is built identically by the training code, ``analyze rul`` and the agent: for every
cycle of a unit, the training window, the offline input and the edge window are the same numbers (with and
without the cycle-number input and the exponential smoothing a card may ask for)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_agent.maintenance.edge_rul import EdgeRul
from edge_agent.maintenance.rul import DEFAULT_MODEL, ModelCard, RulModelError, input_rows, model_input, pad_front
from edge_agent.maintenance.rul_data import CMAPSS_COLUMNS, UnitHistory
from edge_agent.maintenance.train import HyperParameters, normalisation, windows_of
from edge_agent.model import Sample
from edge_agent.profiles import RulSettings

SHIPPED = ModelCard.read(DEFAULT_MODEL.with_suffix(".json"))
SENSORS = list(SHIPPED.sensors)


def _unit(cycles: int, seed: int) -> UnitHistory:
    """A made-up run-to-failure unit: the shipped card's offsets plus noise and a drift."""
    rng = np.random.default_rng(seed)
    base = {name: 1.0 for name in CMAPSS_COLUMNS} | dict(zip(SENSORS, SHIPPED.offset.tolist(), strict=True))
    values = np.array(
        [[base[n] * (1 + 0.0005 * c) + rng.normal(0, 0.01) for n in CMAPSS_COLUMNS] for c in range(cycles)]
    )
    return UnitHistory(seed, CMAPSS_COLUMNS, values)


class _Recorder:
    """A predictor that records the windows the agent gives it."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.windows: list[np.ndarray] = []

    def predict(self, window: np.ndarray) -> float:
        self.windows.append(np.asarray(window))
        return 50.0


def _card(hp: HyperParameters, units: list[UnitHistory]) -> ModelCard:
    offset, scale = normalisation(units, SENSORS, hp.normalisation, hp)
    n = len(SENSORS)
    return replace(
        SHIPPED,
        window=hp.window,
        offset=offset[:n],
        scale=scale[:n],
        cycle=(float(offset[-1]), float(scale[-1])) if hp.cycle else None,
        smoothing=hp.smoothing,
    )


@pytest.mark.parametrize(
    "hp",
    [
        HyperParameters(window=30, min_history=30),
        HyperParameters(window=40, min_history=5, cycle=True),
        HyperParameters(window=20, min_history=1, cycle=True, smoothing=0.3),
    ],
    ids=["sensors", "cycle-padded", "cycle-smoothed"],
)
def test_training_offline_and_edge_inputs_are_identical(hp: HyperParameters) -> None:
    units = [_unit(45, 1), _unit(60, 2)]
    card = _card(hp, units)
    assert len(card.inputs) == len(SENSORS) + hp.cycle
    unit = units[1]
    x, y, counts = windows_of([unit], SENSORS, *normalisation(units, SENSORS, hp.normalisation, hp), hp)
    assert list(counts) == [len(unit) - hp.min_history + 1] and len(x) == len(y) == counts[0]

    settings = RulSettings.model_validate(
        {"sensors": {s: f"t_{s}" for s in SENSORS}, "cycle_tag": "cycle", "horizon": 30.0, "min_cycles": 1}
    )
    recorder = _Recorder(card)
    edge = EdgeRul(settings, recorder)  # type: ignore[arg-type]
    names = [c for c in unit.columns if c.startswith("s")]
    for i, row in enumerate(unit.select(names)):
        edge.feed([Sample("engine", f"t_{n}", 1000.0 + i, float(v)) for n, v in zip(names, row, strict=True)])
        edge.feed([Sample("engine", "cycle", 1000.0 + i, i + 1)])
    assert len(recorder.windows) == len(unit)
    assert len(edge.cycles.rows) <= hp.window  # bounded: the window, not the whole history

    for cycles in range(hp.min_history, len(unit) + 1):
        prefix = UnitHistory(unit.unit, unit.columns, unit.values[:cycles])
        offline = model_input(prefix, card)
        at_edge = recorder.windows[cycles - 1]
        assert offline.shape == at_edge.shape == (hp.window, len(card.inputs))
        np.testing.assert_array_equal(at_edge, offline)
        np.testing.assert_array_equal(card.normalise(offline), x[cycles - hp.min_history])
    assert y[-1] == 0.0


def test_input_rows_cycle_numbers_smoothing_and_padding() -> None:
    rows = input_rows([[1.0], [3.0], [5.0]], 7, cycle=True, smoothing=0.5)
    np.testing.assert_array_equal(rows, [[1.0, 7.0], [2.0, 8.0], [3.5, 9.0]])
    np.testing.assert_array_equal(input_rows([[1.0], [3.0]]), [[1.0], [3.0]])
    padded = pad_front(rows, 5)
    np.testing.assert_array_equal(padded[-5:, 1], [7.0, 7.0, 7.0, 8.0, 9.0])  # the first row repeated


def test_card_with_a_cycle_input_normalises_it() -> None:
    card = replace(SHIPPED, cycle=(10.0, 5.0))
    assert card.inputs == (*SHIPPED.sensors, "cycle")
    raw = np.append(SHIPPED.offset + SHIPPED.scale, 20.0)
    np.testing.assert_allclose(card.normalise(raw), [1.0] * len(SENSORS) + [2.0], rtol=1e-6)


def test_cards_without_a_cycle_input_and_bad_cycle_or_smoothing(tmp_path: Path) -> None:
    raw = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    path = tmp_path / "card.json"
    raw["input"].pop("cycle", None)
    raw["input"].pop("smoothing", None)
    path.write_text(json.dumps(raw))  # a v1.0/v1.1 card: the sensors only
    card = ModelCard.read(path)
    assert card.inputs == card.sensors and card.cycle is None and card.smoothing == 0.0
    raw["input"]["cycle"] = {"offset": 10.0, "scale": 0.0}
    path.write_text(json.dumps(raw))
    with pytest.raises(RulModelError, match=r"card.json: input.cycle.scale must be positive"):
        ModelCard.read(path)
    raw["input"]["cycle"] = 5
    path.write_text(json.dumps(raw))
    with pytest.raises(RulModelError, match=r"card.json: not a valid model card"):
        ModelCard.read(path)
    raw["input"].pop("cycle")
    raw["input"]["smoothing"] = 1.5
    path.write_text(json.dumps(raw))
    with pytest.raises(RulModelError, match=r"input.smoothing must be in \[0, 1\], not 1.5"):
        ModelCard.read(path)


def test_edge_cycle_number_is_the_cycle_tag_so_a_restarted_agent_keeps_the_machine_age() -> None:
    """An agent (re)started on a machine at cycle 101 gives the model the machine's cycle numbers, as the
    offline input of the whole history does for the same window; counting from the agent's start would not."""
    hp = HyperParameters(window=20, min_history=1, cycle=True)
    unit = _unit(130, 3)
    card = _card(hp, [unit])
    settings = RulSettings.model_validate(
        {"sensors": {s: f"t_{s}" for s in SENSORS}, "cycle_tag": "cycle", "horizon": 30.0, "min_cycles": 1}
    )
    recorder = _Recorder(card)
    edge = EdgeRul(settings, recorder)  # type: ignore[arg-type]
    names = [c for c in unit.columns if c.startswith("s")]
    for i, row in enumerate(unit.select(names)):
        if i < 100:
            continue  # the agent was not running yet
        edge.feed([Sample("engine", f"t_{n}", 1000.0 + i, float(v)) for n, v in zip(names, row, strict=True)])
        edge.feed([Sample("engine", "cycle", 1000.0 + i, i + 1)])
    np.testing.assert_array_equal(recorder.windows[-1], model_input(unit, card))
    assert recorder.windows[-1][-1, -1] == 130.0

    by_interval = RulSettings.model_validate(
        {"sensors": {s: f"t_{s}" for s in SENSORS}, "cycle_interval_s": 1.0, "horizon": 30.0, "min_cycles": 1}
    )
    counting = EdgeRul(by_interval, _Recorder(card))  # type: ignore[arg-type]
    for i, row in enumerate(unit.select(names)[100:]):
        counting.feed([Sample("engine", f"t_{n}", 2000.0 + i, float(v)) for n, v in zip(names, row, strict=True)])
    assert counting.cycles.numbers[-1] == counting.cycles.cycles  # no cycle tag: cycles since the agent started
