"""Remaining useful life (RUL) at the edge: the shipped TFLite model, its input pipeline, ``analyze rul``.

The model (``models/rul_fd001.tflite``) reads a window of the last ``window`` cycles of a machine's sensors and
returns its remaining useful life in cycles. Everything the input pipeline needs is in the model card next to
it (``models/rul_fd001.json``): the window length, the sensors in input order and their normalisation
constants, whether the cycle number is an input (and its scale) and whether the sensors are smoothed, plus how
the model was trained and how it scored. It was trained on NASA C-MAPSS FD001 by
:mod:`edge_agent.maintenance.train`, which builds its windows with the same :func:`input_rows` and
:func:`pad_front` as :func:`model_input` here and the agent's :mod:`~edge_agent.maintenance.edge_rul`.

The model runs through the TFLite interpreter of ``ai-edge-litert`` (preferred: it works with numpy 2) or of
``tflite-runtime`` (its predecessor, whose last release needs numpy 1.x). Neither installed raises
:class:`InterpreterNotInstalledError` naming both.

    model = RulModel.load()                      # the shipped model
    model.predict(model_input(unit, model.card)) # raw input rows, shape (window, len(card.inputs)) -> cycles
    model.predict_batch(windows)                 # shape (batch, window, len(card.inputs)) -> (batch,)
    predict_units(Path("test_FD001.txt"))        # [{"unit": 1, "rul": 112.3}, ...] (C-MAPSS or CSV export)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.maintenance.rul_data import RulError, RulInputError, UnitHistory, read_units

__all__ = [
    "CARD_SUFFIX",
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_NAME",
    "InterpreterNotInstalledError",
    "ModelCard",
    "RulError",
    "RulInputError",
    "RulModel",
    "RulModelError",
    "input_rows",
    "interpreter_class",
    "model_input",
    "pad_front",
    "predict_units",
]

DEFAULT_MODEL_NAME = "rul_fd001.tflite"
CARD_SUFFIX = ".json"
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / DEFAULT_MODEL_NAME


class InterpreterNotInstalledError(RulError):
    """No TFLite interpreter package is installed."""


class RulModelError(RulError):
    """The model file or its card is missing or unreadable, or the model is not what the card describes."""


INSTALL_HINT = (
    "no TFLite interpreter is installed: install 'ai-edge-litert' (pip install ai-edge-litert; works with "
    "numpy 2) or 'tflite-runtime' (pip install tflite-runtime; its last release, 2.14, needs numpy < 2)"
)


def interpreter_class() -> Callable[..., Any]:
    """The ``Interpreter`` class of ai-edge-litert, else of tflite-runtime; neither: InterpreterNotInstalledError."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise InterpreterNotInstalledError(INSTALL_HINT) from None
    return Interpreter


@dataclass(frozen=True)
class ModelCard:
    """The parts of the model card the input pipeline uses; ``raw`` is the whole card.

    ``cycle`` is ``(offset, scale)`` of the cycle-number input when the model takes one (the card's
    ``input.cycle``), else None; ``smoothing`` the exponential smoothing of the sensors (``input.smoothing``,
    0 for none). Cards without them (v1.x up to 1.1) take the sensors only.
    """

    window: int
    sensors: tuple[str, ...]
    offset: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    rul_cap: float
    raw: dict[str, Any]
    cycle: tuple[float, float] | None = None
    smoothing: float = 0.0

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        try:
            raw = json.loads(path.read_text())
            spec = raw["input"]
            cycle = spec.get("cycle")
            card = cls(
                window=int(spec["window"]),
                sensors=tuple(str(s) for s in spec["sensors"]),
                offset=np.asarray(spec["offset"], dtype=np.float64),
                scale=np.asarray(spec["scale"], dtype=np.float64),
                rul_cap=float(raw["output"]["rul_cap"]),
                raw=raw,
                cycle=None if cycle is None else (float(cycle["offset"]), float(cycle["scale"])),
                smoothing=float(spec.get("smoothing", 0.0)),
            )
        except OSError as exc:
            raise RulModelError(f"{path}: model card unreadable: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RulModelError(f"{path}: not a valid model card ({type(exc).__name__}: {exc})") from None
        n = len(card.sensors)
        if card.window < 1 or card.offset.shape != (n,) or card.scale.shape != (n,) or not np.all(card.scale > 0):
            raise RulModelError(f"{path}: window, sensors, offset and scale do not agree")
        if card.cycle is not None and not card.cycle[1] > 0:
            raise RulModelError(f"{path}: input.cycle.scale must be positive")
        if not 0.0 <= card.smoothing <= 1.0:
            raise RulModelError(f"{path}: input.smoothing must be in [0, 1], not {card.smoothing}")
        return card

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the model's input columns: the sensors, then ``cycle`` if it takes the cycle number."""
        return self.sensors + (("cycle",) if self.cycle is not None else ())

    def normalise(self, raw: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Raw input rows (last axis: :attr:`inputs` in order) to the model's input scale."""
        offset, scale = self.offset, self.scale
        if self.cycle is not None:
            offset, scale = np.append(offset, self.cycle[0]), np.append(scale, self.cycle[1])
        return ((np.asarray(raw, dtype=np.float64) - offset) / scale).astype(np.float32)


def input_rows(
    values: npt.ArrayLike, first_cycle: int = 1, *, cycle: bool = False, smoothing: float = 0.0
) -> npt.NDArray[np.float64]:
    """A history's raw model input rows: its sensor values, oldest first, plus the cycle number of each row.

    ``cycle``: a last column holds each row's cycle number, ``first_cycle`` for the first row (the machine's
    cycles counted from the first one seen). ``smoothing`` (``alpha`` in (0, 1], 0 for none): each sensor
    becomes its exponential moving average ``a_i = alpha * x_i + (1 - alpha) * a_{i-1}`` from the first row
    (``a_0 = x_0``). The training code and both runtimes (offline and at the edge) build rows with this.
    """
    rows = np.array(values, dtype=np.float64, ndmin=2)
    if 0.0 < smoothing < 1.0:
        for i in range(1, len(rows)):
            rows[i] = smoothing * rows[i] + (1.0 - smoothing) * rows[i - 1]
    if cycle:
        numbers = np.arange(first_cycle, first_cycle + len(rows), dtype=np.float64)
        rows = np.concatenate([rows, numbers[:, np.newaxis]], axis=1)
    return rows


def pad_front(rows: npt.NDArray[np.float64], window: int) -> npt.NDArray[np.float64]:
    """``rows`` with ``window - 1`` copies of its first row in front: the window ending at row ``i`` is
    ``padded[i : i + window]``, and a history shorter than the window repeats its first row in front."""
    return np.concatenate([np.repeat(rows[:1], window - 1, axis=0), rows])


def model_input(unit: UnitHistory, card: ModelCard) -> npt.NDArray[np.float64]:
    """The model's raw input for a unit's last cycle: the last ``window`` rows of :func:`input_rows` (the card's
    sensors, then the cycle number if the card has a cycle input); a shorter history repeats its first row."""
    values = unit.select(card.sensors)
    if len(values) == 0:
        raise RulInputError(f"unit {unit.unit}: no cycles")
    if np.isnan(values).any():
        raise RulInputError(f"unit {unit.unit}: a sensor has no value at all")
    rows = input_rows(values, 1, cycle=card.cycle is not None, smoothing=card.smoothing)
    return pad_front(rows, card.window)[-card.window :]


class RulModel:
    """The TFLite model and its card; one interpreter per instance (not thread-safe)."""

    def __init__(self, interpreter: Any, card: ModelCard, path: Path) -> None:
        self.card = card
        self.path = path
        self._interpreter = interpreter
        detail = interpreter.get_input_details()[0]
        self._input = detail["index"]
        self._output = interpreter.get_output_details()[0]["index"]
        shape = tuple(int(d) for d in detail["shape"])
        if shape[1:] != (card.window, len(card.inputs)):
            raise RulModelError(
                f"{path}: model input {shape[1:]} but the card says window {card.window} x {len(card.inputs)} inputs"
            )
        self._batch = shape[0]

    @classmethod
    def load(cls, path: Path | str | None = None, *, num_threads: int = 1) -> RulModel:
        """Load a ``.tflite`` model (default: the shipped one) and the card next to it (same name, ``.json``)."""
        model_path = Path(path) if path is not None else DEFAULT_MODEL
        card = ModelCard.read(model_path.with_suffix(CARD_SUFFIX))
        interpreter_type = interpreter_class()
        if not model_path.is_file():
            raise RulModelError(f"{model_path}: model file not found")
        try:
            interpreter = interpreter_type(model_path=str(model_path), num_threads=num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RulModelError(f"{model_path}: the TFLite interpreter cannot load it: {exc}") from None
        return cls(interpreter, card, model_path)

    @property
    def window(self) -> int:
        return self.card.window

    @property
    def sensors(self) -> tuple[str, ...]:
        return self.card.sensors

    def predict(self, window: npt.ArrayLike) -> float:
        """RUL in cycles of one window of raw input rows, shape ``(window, len(card.inputs))``."""
        array = np.asarray(window, dtype=np.float64)
        expected = (self.card.window, len(self.card.inputs))
        if array.shape != expected:
            inputs = ", ".join(self.card.inputs)
            raise RulInputError(f"window of shape {array.shape}, the model takes {expected} ({inputs})")
        return float(self.predict_batch(array[np.newaxis])[0])

    def predict_batch(self, windows: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """RUL in cycles of each window of raw input rows, shape ``(batch, window, len(card.inputs))``."""
        array = np.asarray(windows, dtype=np.float64)
        expected = (self.card.window, len(self.card.inputs))
        if array.ndim != 3 or array.shape[1:] != expected:
            shape = f"(batch, {expected[0]}, {expected[1]})"
            raise RulInputError(f"windows of shape {array.shape}, the model takes {shape}")
        if array.shape[0] == 0:
            return np.zeros(0)
        if not np.isfinite(array).all():
            raise RulInputError("a window holds NaN or infinite values")
        batch = array.shape[0]
        interpreter = self._interpreter
        if batch != self._batch:
            interpreter.resize_tensor_input(self._input, [batch, *expected])
            interpreter.allocate_tensors()
            self._batch = batch
        interpreter.set_tensor(self._input, self.card.normalise(array))
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(self._output), dtype=np.float64).reshape(batch)

    def predict_units(self, units: list[UnitHistory]) -> list[dict[str, Any]]:
        """``{"unit", "rul"}`` of each unit's latest window, RUL rounded to 0.1 cycle."""
        if not units:
            return []
        predictions = self.predict_batch(np.stack([model_input(u, self.card) for u in units]))
        return [{"unit": u.unit, "rul": round(float(r), 1)} for u, r in zip(units, predictions, strict=True)]


def predict_units(path: Path | str, model: Path | str | None = None) -> list[dict[str, Any]]:
    """RUL of every unit of a C-MAPSS text file or an agent CSV export: the engine of ``edge-agent analyze rul``."""
    units = read_units(Path(path))
    return RulModel.load(model).predict_units(units)
