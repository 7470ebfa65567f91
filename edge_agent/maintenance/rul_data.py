"""Sensor histories for remaining-useful-life estimation: readers, the C-MAPSS protocol and its metrics.

Two input formats give one :class:`UnitHistory` per machine (a C-MAPSS "unit", an agent "device"):

* the C-MAPSS text format: space-separated ``unit cycle setting1 setting2 setting3 s1 ... s21`` rows;
* the agent's CSV export ``ts,device,tag,value`` (any column order, extra columns ignored, rows whose
  ``quality`` is ``bad``/``2`` skipped): one cycle per distinct ``ts`` of a device, the tags named like the
  C-MAPSS columns (``s2`` ... ``s21``, ``setting1`` ...). A tag missing at some ``ts`` keeps its last value.

The C-MAPSS protocol (NASA's turbofan degradation data, subset FD001): the target is the remaining useful
life capped piecewise-linearly at 125 cycles, and a model is scored on the last cycle of each test engine by
RMSE and by the NASA score ``sum(exp(-d/13) - 1)`` for ``d < 0``, ``sum(exp(d/10) - 1)`` for ``d >= 0``,
``d = predicted - true``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_agent.errors import EdgeError

__all__ = [
    "CMAPSS_COLUMNS",
    "RUL_CAP",
    "RulError",
    "RulInputError",
    "UnitHistory",
    "nasa_score",
    "read_cmapss",
    "read_export_csv",
    "read_rul_file",
    "read_units",
    "rmse",
    "rul_targets",
]

SETTINGS = ("setting1", "setting2", "setting3")
SENSORS = tuple(f"s{i}" for i in range(1, 22))
CMAPSS_COLUMNS: tuple[str, ...] = SETTINGS + SENSORS
"""The columns after ``unit cycle`` in a C-MAPSS file, by the names the agent's tags use."""
RUL_CAP = 125.0
BAD_QUALITY = frozenset({"bad", "2"})


class RulError(EdgeError):
    """Base of the remaining-useful-life errors."""


class RulInputError(RulError):
    """A sensor history cannot be read (unknown format, missing column or tag, a value that is not a number)."""


@dataclass(frozen=True)
class UnitHistory:
    """The history of one machine: ``values[i, j]`` is column ``columns[j]`` at its ``i``-th cycle, oldest first."""

    unit: int | str
    columns: tuple[str, ...]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def select(self, names: Sequence[str]) -> npt.NDArray[np.float64]:
        """The columns ``names``, in that order (shape ``(cycles, len(names))``)."""
        index = {name: i for i, name in enumerate(self.columns)}
        missing = [name for name in names if name not in index]
        if missing:
            raise RulInputError(f"unit {self.unit}: no data for {', '.join(missing)}")
        return self.values[:, [index[name] for name in names]]


def read_cmapss(path: Path) -> list[UnitHistory]:
    """The units of a C-MAPSS text file, in the order they first appear, each sorted by cycle."""
    try:
        raw = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except OSError as exc:
        raise RulInputError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RulInputError(f"{path}: not a C-MAPSS text file ({exc})") from None
    width = 2 + len(CMAPSS_COLUMNS)
    if raw.size == 0:
        raise RulInputError(f"{path}: no rows")
    if raw.shape[1] != width:
        raise RulInputError(
            f"{path}: {raw.shape[1]} columns per row, C-MAPSS has {width} (unit, cycle, 3 settings, 21 sensors)"
        )
    units: list[UnitHistory] = []
    order = dict.fromkeys(raw[:, 0].astype(np.int64).tolist())
    for unit in order:
        rows = raw[raw[:, 0] == unit]
        rows = rows[np.argsort(rows[:, 1], kind="stable")]
        units.append(UnitHistory(int(unit), CMAPSS_COLUMNS, rows[:, 2:].copy()))
    return units


def _instant(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_export_csv(path: Path) -> list[UnitHistory]:
    """The devices of an agent CSV export (``ts,device,tag,value``), each a unit with one cycle per ``ts``."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise RulInputError(f"{path}: {exc.strerror or exc}") from None
    # device -> ts -> tag -> value; the ts are sorted afterwards (numbers or ISO 8601 times)
    devices: dict[str, dict[float, dict[str, float]]] = {}
    with handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        missing = [c for c in ("ts", "device", "tag", "value") if c not in columns]
        if missing:
            raise RulInputError(f"{path}: missing column(s) {', '.join(missing)} (expected ts,device,tag,value)")
        for line, row in enumerate(reader, start=2):
            if (row.get("quality") or "").strip().lower() in BAD_QUALITY:
                continue
            where = f"{path}:{line}"
            try:
                ts = _instant(row["ts"].strip())
            except (ValueError, AttributeError):
                raise RulInputError(f"{where}: ts {row['ts']!r} is neither a number nor an ISO 8601 time") from None
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                raise RulInputError(f"{where}: value {row['value']!r} is not a number") from None
            devices.setdefault(row["device"].strip(), {}).setdefault(ts, {})[row["tag"].strip()] = value
    if not devices:
        raise RulInputError(f"{path}: no rows")
    units = []
    for device, cycles in devices.items():
        tags = sorted({tag for sample in cycles.values() for tag in sample})
        index = {tag: j for j, tag in enumerate(tags)}
        values = np.full((len(cycles), len(tags)), np.nan)
        for i, ts in enumerate(sorted(cycles)):
            for tag, value in cycles[ts].items():
                values[i, index[tag]] = value
        _forward_fill(values)
        units.append(UnitHistory(device, tuple(tags), values))
    return units


def _forward_fill(values: npt.NDArray[np.float64]) -> None:
    """Fill each NaN with the last value above it in its column; leading NaNs take the first value below."""
    for column in values.T:
        known = ~np.isnan(column)
        if not known.any():
            continue
        last = np.where(known, np.arange(len(column)), 0)
        np.maximum.accumulate(last, out=last)
        first = int(np.argmax(known))
        last[:first] = first
        column[:] = column[last]


def read_units(path: Path) -> list[UnitHistory]:
    """The units of a C-MAPSS text file or an agent CSV export, told apart by the first line."""
    try:
        with path.open() as handle:
            first = handle.readline()
    except OSError as exc:
        raise RulInputError(f"{path}: {exc.strerror or exc}") from None
    if "," in first and any(ch.isalpha() for ch in first):
        return read_export_csv(path)
    return read_cmapss(path)


def read_rul_file(path: Path) -> npt.NDArray[np.float64]:
    """The true RUL of each test unit at its last cycle (``RUL_FD001.txt``: one number per line)."""
    return np.loadtxt(path, dtype=np.float64, ndmin=1)


def rul_targets(cycles: int, cap: float = RUL_CAP) -> npt.NDArray[np.float64]:
    """Piecewise-linear target of a run-to-failure history of ``cycles`` cycles: ``min(cycles - 1 - i, cap)``."""
    return np.minimum(np.arange(cycles - 1, -1, -1, dtype=np.float64), cap)


def rmse(predicted: npt.ArrayLike, true: npt.ArrayLike) -> float:
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return math.sqrt(float(np.mean(d * d)))


def nasa_score(predicted: npt.ArrayLike, true: npt.ArrayLike) -> float:
    """The PHM08 / C-MAPSS asymmetric score: late predictions (``d >= 0``) cost more than early ones."""
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))
