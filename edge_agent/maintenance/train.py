"""Train the shipped remaining-useful-life model on NASA C-MAPSS FD001 and write it as ``.tflite`` plus its card.

    python -m edge_agent.maintenance.train --out edge_agent/maintenance/models/ [--data DIR]

Needs the ``train`` extra (``pip install -e '.[train]'``: TensorFlow); the agent itself only needs a TFLite
interpreter. The protocol is the usual one for FD001:

* sensors: the 21 sensors less those constant on the training set (standard deviation below 0.01: s1, s5,
  s6, s10, s16, s18, s19), the operating settings dropped (FD001 has one operating condition);
* per-sensor normalisation fitted on the training set: min-max to [-1, 1] (default) or z-score;
* sliding windows of 30 cycles; target the RUL at the window's last cycle, capped at 125 (piecewise linear);
* an ensemble of small 1-D CNNs, one per fold of the 100 training engines: member ``k`` is trained on the
  other folds for a fixed number of epochs with a cosine-decayed learning rate, keeping the weights of the
  epoch with the lowest loss on the engines of fold ``k`` (never the test set); the shipped graph averages
  the members;
* scored on the last cycle of each of the 100 test engines (``test_FD001.txt``, ``RUL_FD001.txt``).

Seeds are fixed and TensorFlow's deterministic ops are on, so a run on the same versions reproduces the
model's figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.maintenance.datasets import shared_data_dir
from edge_agent.maintenance.rul import CARD_SUFFIX, DEFAULT_MODEL_NAME, RulModel, model_input
from edge_agent.maintenance.rul_data import (
    RUL_CAP,
    UnitHistory,
    nasa_score,
    read_cmapss,
    read_rul_file,
    rmse,
    rul_targets,
)

__all__ = ["HyperParameters", "choose_sensors", "main", "normalisation", "train", "training_command"]

MODEL_VERSION = "1.1.0"
CONSTANT_STD = 0.01
LR_SCHEDULES = ("constant", "cosine")
NORMALISATIONS = ("min-max", "z-score")
NORMALISATION_TEXT = {
    "min-max": "min-max to [-1, 1]: (value - offset) / scale, offset the mid-range and scale the half-range of "
    "the training set",
    "z-score": "z-score: (value - offset) / scale, the mean and standard deviation of the training set",
}


@dataclass(frozen=True)
class HyperParameters:
    window: int = 30
    members: int = 5
    conv_layers: int = 4
    filters: int = 10
    kernel: int = 10
    last_filters: int = 1
    dense: int = 100
    activation: str = "tanh"
    dropout: float = 0.5
    epochs: int = 100
    patience: int = 0
    batch_size: int = 256
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    final_lr_fraction: float = 0.01
    normalisation: str = "min-max"
    seed: int = 7
    rul_cap: float = RUL_CAP
    threads: int = 1

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, not {self.normalisation!r}")


def _require_tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError:
        sys.exit("training needs TensorFlow: pip install -e '.[train]' (the 'train' extra, tensorflow-cpu)")
    return tf


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def choose_sensors(units: list[UnitHistory]) -> list[str]:
    """The sensors that vary on the training set (standard deviation at least 0.01)."""
    names = [c for c in units[0].columns if c.startswith("s")]
    std = np.concatenate([u.select(names) for u in units]).std(axis=0)
    return [name for name, s in zip(names, std, strict=True) if s >= CONSTANT_STD]


def normalisation(
    units: list[UnitHistory], sensors: list[str], kind: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(offset, scale)`` of each sensor on the training units: the model's input is ``(value - offset) / scale``."""
    stacked = np.concatenate([u.select(sensors) for u in units])
    if kind == "z-score":
        return stacked.mean(axis=0), stacked.std(axis=0)
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    return (low + high) / 2.0, (high - low) / 2.0


def windows_of(
    units: list[UnitHistory], sensors: list[str], offset: npt.NDArray[np.float64], scale: npt.NDArray[np.float64],
    window: int, cap: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Every full window of every run-to-failure unit and the capped RUL at its last cycle."""
    xs, ys = [], []
    for unit in units:
        x = (unit.select(sensors) - offset) / scale
        y = rul_targets(len(unit), cap)
        if len(unit) < window:
            continue
        view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0).transpose(0, 2, 1)
        xs.append(view)
        ys.append(y[window - 1:])
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32)


def build_member(tf: Any, hp: HyperParameters, n_sensors: int, name: str) -> Any:
    keras = tf.keras
    inputs = keras.Input((hp.window, n_sensors), name="window")
    x = inputs
    for i in range(hp.conv_layers):
        x = keras.layers.Conv1D(hp.filters, hp.kernel, padding="same", activation=hp.activation, name=f"conv{i}")(x)
    x = keras.layers.Conv1D(hp.last_filters, 3, padding="same", activation=hp.activation, name="conv_last")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(hp.dropout)(x)
    x = keras.layers.Dense(hp.dense, activation=hp.activation)(x)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs, name=name)


def _log(message: str) -> None:
    print(message, flush=True)


def train(
    data_dir: Path, out_dir: Path, hp: HyperParameters, log: Any = _log, command: str = ""
) -> dict[str, Any]:
    """Train, convert, evaluate and write ``<out_dir>/rul_fd001.tflite`` and its card; returns the card.

    ``command`` is recorded in the card (how the model was made).
    """
    tf = _require_tensorflow()
    tf.keras.utils.set_random_seed(hp.seed)
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_intra_op_parallelism_threads(hp.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras = tf.keras

    train_file = data_dir / "train_FD001.txt"
    test_file = data_dir / "test_FD001.txt"
    rul_file = data_dir / "RUL_FD001.txt"
    units = read_cmapss(train_file)
    sensors = choose_sensors(units)
    offset, scale = normalisation(units, sensors, hp.normalisation)
    log(f"sensors {sensors}")

    rng = np.random.default_rng(hp.seed)
    order = rng.permutation(len(units))
    folds = [order[k :: hp.members] for k in range(hp.members)]
    members = []
    member_reports = []
    started = time.monotonic()
    for k, fold in enumerate(folds):
        held = set(fold.tolist())
        fit_units = [u for i, u in enumerate(units) if i not in held]
        val_units = [u for i, u in enumerate(units) if i in held]
        x, y = windows_of(fit_units, sensors, offset, scale, hp.window, hp.rul_cap)
        xv, yv = windows_of(val_units, sensors, offset, scale, hp.window, hp.rul_cap)
        keras.utils.set_random_seed(hp.seed + k)
        member = build_member(tf, hp, len(sensors), f"member{k}")
        learning_rate: Any = hp.learning_rate
        if hp.lr_schedule == "cosine":
            steps = hp.epochs * -(-len(x) // hp.batch_size)
            learning_rate = keras.optimizers.schedules.CosineDecay(hp.learning_rate, steps, alpha=hp.final_lr_fraction)
        member.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        # keeps the weights of the epoch with the lowest validation loss; patience 0: no early stop
        stop = keras.callbacks.EarlyStopping(
            patience=hp.patience or hp.epochs, restore_best_weights=True, start_from_epoch=0
        )
        history = member.fit(
            x, y / hp.rul_cap, validation_data=(xv, yv / hp.rul_cap), epochs=hp.epochs, batch_size=hp.batch_size,
            callbacks=[stop], verbose=0, shuffle=True,
        )
        val_pred = member.predict(xv, verbose=0)[:, 0] * hp.rul_cap
        last = np.cumsum([len(u) - hp.window + 1 for u in val_units]) - 1
        report = {
            "fold": k,
            "validation_units": sorted(int(u.unit) for u in val_units),
            "epochs": len(history.history["loss"]),
            "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
            "validation_rmse_all_windows": round(rmse(val_pred, yv), 3),
            "validation_rmse_last_cycle": round(rmse(val_pred[last], yv[last]), 3),
        }
        log(f"member {k}: {report} ({time.monotonic() - started:.0f} s)")
        member_reports.append(report)
        members.append(member)

    inputs = keras.Input((hp.window, len(sensors)), name="window")
    outputs = [m(inputs) for m in members]
    mean = keras.layers.Average()(outputs) if len(outputs) > 1 else outputs[0]
    rul = keras.layers.ReLU(name="rul")(keras.layers.Rescaling(hp.rul_cap)(mean))
    ensemble = keras.Model(inputs, rul, name="rul_fd001")

    converter = tf.lite.TFLiteConverter.from_keras_model(ensemble)
    flat = converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    quantised = converter.convert()

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / DEFAULT_MODEL_NAME
    model_path.write_bytes(flat)
    card: dict[str, Any] = {
        "name": "rul_fd001",
        "version": MODEL_VERSION,
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "task": "remaining useful life (cycles) of a turbofan engine from its last window of sensor readings",
        "model_file": model_path.name,
        "format": "tflite, float32, dynamic batch size",
        "input": {
            "window": hp.window,
            "sensors": sensors,
            "normalisation": NORMALISATION_TEXT[hp.normalisation],
            "offset": [round(float(v), 8) for v in offset],
            "scale": [round(float(v), 8) for v in scale],
            "short_history": "a unit with fewer cycles than the window is padded by repeating its first cycle",
        },
        "output": {"unit": "cycles", "rul_cap": hp.rul_cap},
        "training": {
            "data": "NASA C-MAPSS FD001, train_FD001.txt",
            "data_sha256": sha256(train_file),
            "protocol": "piecewise-linear RUL target capped at 125; constant sensors dropped (std < 0.01); "
            f"{hp.normalisation} normalisation fitted on the training set; sliding windows; one member per fold "
            "of the training engines, trained on the other folds, weights of its best epoch on its own fold kept",
            "command": command,
            "hyper_parameters": asdict(hp),
            "members": member_reports,
            "tensorflow": tf.__version__,
            "seconds": round(time.monotonic() - started, 1),
        },
        "metrics": {},
    }
    card_path = model_path.with_suffix(CARD_SUFFIX)
    card_path.write_text(json.dumps(card, indent=2) + "\n")

    metrics = evaluate(model_path, test_file, rul_file, hp.rul_cap)
    with tempfile.TemporaryDirectory() as tmp:
        qpath = Path(tmp) / DEFAULT_MODEL_NAME
        qpath.write_bytes(quantised)
        qpath.with_suffix(CARD_SUFFIX).write_text(json.dumps(card))
        qmetrics = evaluate(qpath, test_file, rul_file, hp.rul_cap)
    card["metrics"] = {
        "test_data": "test_FD001.txt + RUL_FD001.txt, last cycle of each of the 100 test engines",
        "test_data_sha256": sha256(test_file),
        "rul_data_sha256": sha256(rul_file),
        **metrics,
        "model_bytes": len(flat),
        "model_sha256": hashlib.sha256(flat).hexdigest(),
        "dynamic_range_quantised": {
            "shipped": False,
            "model_bytes": len(quantised),
            **{k: v for k, v in qmetrics.items() if k.startswith(("rmse", "nasa"))},
        },
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    log(json.dumps(card["metrics"], indent=2))
    return card


def evaluate(model_path: Path, test_file: Path, rul_file: Path, cap: float) -> dict[str, float]:
    """RMSE and NASA score of a model on the last cycle of each test unit, through the TFLite interpreter.

    ``rmse`` and ``nasa_score`` compare with the true RUL capped at ``cap`` (the piecewise-linear target, as
    in the published FD001 results); the ``_uncapped`` figures with the true RUL as given.
    """
    model = RulModel.load(model_path)
    units = read_cmapss(test_file)
    true = read_rul_file(rul_file)
    pred = model.predict_batch(np.stack([model_input(u, model.card) for u in units]))
    capped = np.minimum(true, cap)
    return {
        "rmse": round(rmse(pred, capped), 4),
        "nasa_score": round(nasa_score(pred, capped), 2),
        "rmse_uncapped": round(rmse(pred, true), 4),
        "nasa_score_uncapped": round(nasa_score(pred, true), 2),
    }


def training_command(hp: HyperParameters) -> str:
    """The command that trains the shipped model with ``hp`` (only the options that differ from the defaults)."""
    words = ["python", "-m", "edge_agent.maintenance.train", "--out", "edge_agent/maintenance/models/"]
    default = asdict(HyperParameters())
    for field, value in asdict(hp).items():
        if value != default[field]:
            words += [f"--{field.replace('_', '-')}", str(value)]
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for rul_fd001.tflite and rul_fd001.json")
    parser.add_argument("--data", type=Path, default=None, help="C-MAPSS folder (default: the shared data's cmapss/)")
    for field, default in asdict(HyperParameters()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    hp = HyperParameters(**{field: getattr(args, field) for field in asdict(HyperParameters())})
    data = args.data or shared_data_dir() / "cmapss"
    train(data, args.out, hp, command=training_command(hp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
