"""Where the public reference data sets live, and readers for their file formats.

The data sets (NAB, C-MAPSS) are not shipped with the package. They are found in ``$EDGE_SHARED_DATA``
or, by default, in ``../shared/data`` next to the repository root.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_agent.maintenance.anomaly import Detector
from edge_agent.maintenance.nab import SweptFile, probationary_length, sweep, window_bounds

__all__ = ["NabCorpus", "Series", "read_timestamp_value_csv", "run_on_corpus", "score_series", "shared_data_dir"]

ENV_VAR = "EDGE_SHARED_DATA"


def shared_data_dir() -> Path:
    """The reference data folder: ``$EDGE_SHARED_DATA`` or ``<repo>/../shared/data``."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass(frozen=True, slots=True)
class Series:
    """One scalar time series: timestamps and values of equal length."""

    timestamps: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.values)


def read_timestamp_value_csv(path: Path, value_column: str = "value") -> Series:
    """Read a ``timestamp,value[,...]`` CSV with a header (NAB data and results files)."""
    stamps: list[str] = []
    values: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            stamps.append(row["timestamp"])
            values.append(float(row[value_column]))
    return Series(np.array(stamps, dtype="datetime64[ns]"), np.array(values, dtype=np.float64))


@dataclass(frozen=True)
class NabCorpus:
    """The NAB corpus in ``root`` (``data/``, ``labels/combined_windows.json``, ``results/``)."""

    root: Path

    @classmethod
    def default(cls) -> NabCorpus:
        return cls(shared_data_dir() / "nab")

    def exists(self) -> bool:
        return (self.root / "labels" / "combined_windows.json").is_file()

    @cached_property
    def windows(self) -> dict[str, list[tuple[str, str]]]:
        """Labelled windows per file, keyed ``category/name.csv``."""
        raw = json.loads((self.root / "labels" / "combined_windows.json").read_text())
        return {name: [(str(a), str(b)) for a, b in spans] for name, spans in sorted(raw.items())}

    def names(self) -> list[str]:
        return list(self.windows)

    def series(self, name: str) -> Series:
        return read_timestamp_value_csv(self.root / "data" / name)

    def swept(self, name: str, timestamps: npt.NDArray[np.datetime64]) -> SweptFile:
        """NAB position weights of file ``name`` given its timestamps."""
        bounds = window_bounds(timestamps, self.windows[name])
        return sweep(name, len(timestamps), bounds, probationary_length(len(timestamps)))

    def results(self, detector: str, name: str) -> Series:
        """A published detector's scores for file ``name`` (its ``anomaly_score`` column)."""
        category, file_name = name.split("/")
        path = self.root / "results" / detector / category / f"{detector}_{file_name}"
        return read_timestamp_value_csv(path, value_column="anomaly_score")

    def iter_series(self) -> Iterator[tuple[str, Series]]:
        for name in self.names():
            yield name, self.series(name)


def score_series(detector: Detector, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The detector's score for every value of a series, in order."""
    update = detector.update
    return np.fromiter((update(v) for v in values.tolist()), dtype=np.float64, count=len(values))


def run_on_corpus(
    corpus: NabCorpus, make: Callable[[int], Detector], names: Sequence[str] | None = None
) -> list[tuple[SweptFile, npt.NDArray[np.float64]]]:
    """Score each NAB file with a fresh detector ``make(warmup)``, the warm-up being NAB's probationary period.

    Returns ``(swept file, scores)`` pairs ready for :func:`edge_agent.maintenance.nab.score_corpus`.
    """
    files = []
    for name in names if names is not None else corpus.names():
        series = corpus.series(name)
        scores = score_series(make(probationary_length(len(series))), series.values)
        files.append((corpus.swept(name, series.timestamps), scores))
    return files
