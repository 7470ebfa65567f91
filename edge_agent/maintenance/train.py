"""Train the shipped remaining-useful-life model on NASA C-MAPSS FD001 and write it as ``.tflite`` plus its card.

    python -m edge_agent.maintenance.train --out edge_agent/maintenance/models/ [--data DIR] [options]
    python -m edge_agent.maintenance.train --cv-only [options]    # cross-validation only, nothing written

Needs the ``train`` extra (``pip install -e '.[train]'``: TensorFlow); the agent itself only needs a TFLite
interpreter. The protocol is the usual one for FD001:

* sensors: the 21 sensors less those constant on the training set (standard deviation below 0.01: s1, s5,
  s6, s10, s16, s18, s19), the operating settings dropped (FD001 has one operating condition); with
  ``--cycle True`` the cycle number of each row is one more input; ``--smoothing A`` smooths the sensors
  (exponential moving average from the first cycle);
* per-input normalisation fitted on the training set: min-max to [-1, 1] (default) or z-score;
* one window of ``--window`` rows ending at every cycle from ``--min-history`` on, a short history padded in
  front with its first row exactly as the runtime pads it (:func:`~edge_agent.maintenance.rul.model_input`);
  target the RUL at the window's last cycle, capped at 125 (piecewise linear);
* an ensemble of small 1-D CNNs (the DCNN shape; ``--head gru`` for a GRU after the convolutions),
  ``--repeats`` per fold of the 100 training engines: the members of fold ``k`` are trained on the other folds
  for a fixed number of epochs with a cosine-decayed learning rate, keeping the weights of the epoch with the
  lowest loss on the engines of fold ``k`` (never the test set); the fold's figures are the cross-validation
  the recipe is chosen by; the shipped graph averages the members (``--refit True``: last-epoch weights, and
  the shipped members retrained on every training engine);
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
from edge_agent.maintenance.rul import CARD_SUFFIX, DEFAULT_MODEL_NAME, RulModel, input_rows, model_input, pad_front
from edge_agent.maintenance.rul_data import (
    RUL_CAP,
    UnitHistory,
    nasa_score,
    read_cmapss,
    read_rul_file,
    rmse,
    rul_targets,
)

__all__ = [
    "HyperParameters",
    "choose_sensors",
    "cross_validate",
    "main",
    "normalisation",
    "parse_args",
    "train",
    "training_command",
    "unit_rows",
    "windows_of",
]

MODEL_VERSION = "1.2.0"
CONSTANT_STD = 0.01
LR_SCHEDULES = ("constant", "cosine")
HEADS = ("dense", "gru")
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
    head: str = "dense"
    activation: str = "tanh"
    dropout: float = 0.5
    epochs: int = 100
    patience: int = 0
    batch_size: int = 256
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    final_lr_fraction: float = 0.01
    normalisation: str = "min-max"
    cycle: bool = False
    smoothing: float = 0.0
    min_history: int = 30
    repeats: int = 1
    refit: bool = False
    seed: int = 7
    rul_cap: float = RUL_CAP
    threads: int = 1

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, not {self.normalisation!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, not {self.head!r}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1) (0: none), not {self.smoothing}")
        if self.refit and self.patience:
            raise ValueError("refit trains for a fixed number of epochs: patience must be 0")
        if self.min_history < 1 or self.repeats < 1 or self.window < 1 or self.members < 2:
            raise ValueError("window, min_history and repeats must be at least 1, members (folds) at least 2")


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


def unit_rows(unit: UnitHistory, sensors: list[str], hp: HyperParameters) -> npt.NDArray[np.float64]:
    """A run-to-failure unit's raw input rows, built as the runtime builds them (:func:`~.rul.input_rows`)."""
    return input_rows(unit.select(sensors), 1, cycle=hp.cycle, smoothing=hp.smoothing)


def normalisation(
    units: list[UnitHistory], sensors: list[str], kind: str, hp: HyperParameters | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(offset, scale)`` of each input on the training units: the model's input is ``(value - offset) / scale``.

    The inputs are the sensors, then the cycle number if ``hp.cycle``; sensors as smoothed by ``hp.smoothing``.
    """
    hp = hp or HyperParameters(normalisation=kind)
    stacked = np.concatenate([unit_rows(u, sensors, hp) for u in units])
    if kind == "z-score":
        return stacked.mean(axis=0), stacked.std(axis=0)
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    return (low + high) / 2.0, (high - low) / 2.0


def windows_of(
    units: list[UnitHistory], sensors: list[str], offset: npt.NDArray[np.float64], scale: npt.NDArray[np.float64],
    hp: HyperParameters,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The window ending at every cycle ``>= hp.min_history`` of every run-to-failure unit (padded in front as
    :func:`~.rul.model_input` pads a short history), the capped RUL at that cycle, and the number of windows
    of each unit (its last window is the unit's last cycle)."""
    xs, ys, counts = [], [], []
    for unit in units:
        if len(unit) < hp.min_history:
            counts.append(0)
            continue
        x = pad_front((unit_rows(unit, sensors, hp) - offset) / scale, hp.window)
        view = np.lib.stride_tricks.sliding_window_view(x, hp.window, axis=0).transpose(0, 2, 1)
        xs.append(view[hp.min_history - 1 :])
        ys.append(rul_targets(len(unit), hp.rul_cap)[hp.min_history - 1 :])
        counts.append(len(ys[-1]))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32), np.asarray(counts)


def build_member(tf: Any, hp: HyperParameters, n_sensors: int, name: str) -> Any:
    keras = tf.keras
    inputs = keras.Input((hp.window, n_sensors), name="window")
    x = inputs
    for i in range(hp.conv_layers):
        x = keras.layers.Conv1D(hp.filters, hp.kernel, padding="same", activation=hp.activation, name=f"conv{i}")(x)
    if hp.head == "gru":  # a GRU of ``dense`` units reads the convolutions' sequence
        x = keras.layers.GRU(hp.dense, name="gru")(x)
    else:  # the DCNN: a one-filter convolution, flattened
        x = keras.layers.Conv1D(hp.last_filters, 3, padding="same", activation=hp.activation, name="conv_last")(x)
        x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(hp.dropout)(x)
    x = keras.layers.Dense(hp.dense, activation=hp.activation)(x)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs, name=name)


def _log(message: str) -> None:
    print(message, flush=True)


def _tensorflow(hp: HyperParameters) -> Any:
    tf = _require_tensorflow()
    tf.keras.utils.set_random_seed(hp.seed)
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_intra_op_parallelism_threads(hp.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def fit_member(
    tf: Any,
    hp: HyperParameters,
    name: str,
    seed: int,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    validation: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None,
) -> tuple[Any, list[float]]:
    """One member trained on ``(x, y)``: the model and its loss on ``validation`` after each epoch.

    With ``validation`` and without ``hp.refit`` the weights of the epoch with the lowest validation loss are
    kept (``patience`` 0: no early stop); else those of the last epoch (``refit``: the epochs are fixed in
    advance, so the members trained on every training unit are made the same way as those cross-validated).
    """
    keras = tf.keras
    keras.utils.set_random_seed(seed)
    member = build_member(tf, hp, x.shape[2], name)
    learning_rate: Any = hp.learning_rate
    if hp.lr_schedule == "cosine":
        steps = hp.epochs * -(-len(x) // hp.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(hp.learning_rate, steps, alpha=hp.final_lr_fraction)
    member.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    callbacks = []
    if validation is not None and not hp.refit:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                patience=hp.patience or hp.epochs, restore_best_weights=True, start_from_epoch=0
            )
        )
    history = member.fit(
        x,
        y / hp.rul_cap,
        validation_data=None if validation is None else (validation[0], validation[1] / hp.rul_cap),
        epochs=hp.epochs,
        batch_size=hp.batch_size,
        callbacks=callbacks,
        verbose=0,
        shuffle=True,
    )
    return member, [float(v) for v in history.history.get("val_loss", [])]


def cross_validate(
    tf: Any, units: list[UnitHistory], sensors: list[str], offset: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64], hp: HyperParameters, log: Any = _log,
) -> tuple[list[Any], list[dict[str, Any]], dict[str, float]]:
    """Train the members on the folds of the training units: ``(members, per-fold reports, CV summary)``.

    The units are split in ``hp.members`` folds; for each fold ``hp.repeats`` members (seeds) are trained on the
    other folds, each keeping the weights of its epoch with the lowest loss on the fold's units. A fold's
    validation prediction is the mean of its members. The summary's ``cv_rmse`` is the root mean square over
    the folds of the RMSE on every validation window (every cycle ``>= min_history`` of the fold's units: the
    test's randomly cut histories, each cut equally likely); ``cv_rmse_last_cycle`` the same on the last cycle.
    """
    rng = np.random.default_rng(hp.seed)
    order = rng.permutation(len(units))
    folds = [order[k :: hp.members] for k in range(hp.members)]
    members: list[Any] = []
    reports: list[dict[str, Any]] = []
    started = time.monotonic()
    for k, fold in enumerate(folds):
        held = set(fold.tolist())
        fit_units = [u for i, u in enumerate(units) if i not in held]
        val_units = [u for i, u in enumerate(units) if i in held]
        x, y, _ = windows_of(fit_units, sensors, offset, scale, hp)
        xv, yv, counts = windows_of(val_units, sensors, offset, scale, hp)
        predictions, best_epochs = [], []
        for r in range(hp.repeats):
            name = f"member{k}" + (f"_{r}" if r else "")
            member, val_loss = fit_member(tf, hp, name, hp.seed + k + 1000 * r, x, y, (xv, yv))
            predictions.append(member.predict(xv, verbose=0)[:, 0] * hp.rul_cap)
            best_epochs.append(int(np.argmin(val_loss)) + 1)
            members.append(member)
        val_pred = np.mean(predictions, axis=0)
        last = np.cumsum(counts[counts > 0]) - 1
        report = {
            "fold": k,
            "validation_units": sorted(int(u.unit) for u in val_units),
            "epochs": hp.epochs,
            "best_epoch": best_epochs[0] if hp.repeats == 1 else best_epochs,
            "validation_rmse_all_windows": round(rmse(val_pred, yv), 3),
            "validation_rmse_last_cycle": round(rmse(val_pred[last], yv[last]), 3),
        }
        if hp.repeats > 1:  # each member alone, beside their mean above
            report["validation_rmse_each_member"] = [round(rmse(p, yv), 3) for p in predictions]
        log(f"fold {k}: {report} ({time.monotonic() - started:.0f} s)")
        reports.append(report)
    summary: dict[str, float] = {
        "cv_rmse": round(float(np.sqrt(np.mean([r["validation_rmse_all_windows"] ** 2 for r in reports]))), 3),
        "cv_rmse_last_cycle": round(
            float(np.sqrt(np.mean([r["validation_rmse_last_cycle"] ** 2 for r in reports]))), 3
        ),
        "seconds": round(time.monotonic() - started, 1),
    }
    if hp.repeats > 1:
        alone = [m for r in reports for m in r["validation_rmse_each_member"]]
        summary["cv_rmse_one_member"] = round(float(np.sqrt(np.mean(np.square(alone)))), 3)
    log(f"cross-validation: {summary}")
    return members, reports, summary


def train(
    data_dir: Path, out_dir: Path | None, hp: HyperParameters, log: Any = _log, command: str = ""
) -> dict[str, Any]:
    """Train, convert, evaluate and write ``<out_dir>/rul_fd001.tflite`` and its card; returns the card.

    ``command`` is recorded in the card (how the model was made). ``out_dir`` None: cross-validation only
    (nothing converted, written or tested; returns ``{"cross_validation": summary, "folds": reports}``).
    """
    tf = _tensorflow(hp)
    keras = tf.keras

    train_file = data_dir / "train_FD001.txt"
    test_file = data_dir / "test_FD001.txt"
    rul_file = data_dir / "RUL_FD001.txt"
    units = read_cmapss(train_file)
    sensors = choose_sensors(units)
    offset, scale = normalisation(units, sensors, hp.normalisation, hp)
    log(f"sensors {sensors}")
    started = time.monotonic()
    members, member_reports, summary = cross_validate(tf, units, sensors, offset, scale, hp, log)
    if out_dir is None:
        return {"cross_validation": summary, "folds": member_reports}
    if hp.refit:  # the shipped members: as many, trained the same way on every training unit
        x, y, _ = windows_of(units, sensors, offset, scale, hp)
        members = []
        for i in range(hp.members * hp.repeats):
            members.append(fit_member(tf, hp, f"member{i}", hp.seed + 5000 + i, x, y, None)[0])
            log(f"refit member {i} on every training unit ({time.monotonic() - started:.0f} s)")

    n_inputs = len(offset)
    inputs = keras.Input((hp.window, n_inputs), name="window")
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
            "offset": [round(float(v), 8) for v in offset[: len(sensors)]],
            "scale": [round(float(v), 8) for v in scale[: len(sensors)]],
            "short_history": "a unit with fewer cycles than the window is padded by repeating its first cycle",
        },
        "output": {"unit": "cycles", "rul_cap": hp.rul_cap},
        "training": {
            "data": "NASA C-MAPSS FD001, train_FD001.txt",
            "data_sha256": sha256(train_file),
            "protocol": "piecewise-linear RUL target capped at 125; constant sensors dropped (std < 0.01); "
            f"{hp.normalisation} normalisation fitted on the training set; a window ending at every cycle from "
            f"cycle {hp.min_history} on, padded in front as a short test history is; {hp.repeats} member(s) per "
            "fold of the training engines, trained on the other folds, "
            + (
                "weights of their last epoch; the shipped members trained the same way on every training engine"
                if hp.refit
                else "weights of their best epoch on their own fold kept"
            )
            + "; cross-validation figures from those folds only",
            "command": command,
            "hyper_parameters": asdict(hp),
            "cross_validation": summary,
            "members": member_reports,
            "tensorflow": tf.__version__,
            "seconds": round(time.monotonic() - started, 1),
        },
        "metrics": {},
    }
    if hp.cycle:
        card["input"]["cycle"] = {
            "offset": round(float(offset[-1]), 8),
            "scale": round(float(scale[-1]), 8),
            "meaning": "the last input column: the cycle number of each row, the first cycle of the history 1",
        }
    if hp.smoothing:
        card["input"]["smoothing"] = hp.smoothing
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


def _flag(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, HyperParameters]:
    """The command line: its options and the hyper-parameters they give (a bad value: argparse's error)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="folder for rul_fd001.tflite and rul_fd001.json")
    target.add_argument(
        "--cv-only", action="store_true", help="cross-validate on the training engines only; write nothing"
    )
    parser.add_argument("--data", type=Path, default=None, help="C-MAPSS folder (default: the shared data's cmapss/)")
    for field, default in asdict(HyperParameters()).items():
        kind = _flag if isinstance(default, bool) else type(default)
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=default)
    args = parser.parse_args(argv)
    try:
        hp = HyperParameters(**{field: getattr(args, field) for field in asdict(HyperParameters())})
    except ValueError as exc:
        parser.error(str(exc))
    return args, hp


def main(argv: list[str] | None = None) -> int:
    args, hp = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = args.data or shared_data_dir() / "cmapss"
    result = train(data, None if args.cv_only else args.out, hp, command=training_command(hp))
    if args.cv_only:
        print(json.dumps({"hyper_parameters": asdict(hp), **result}))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
