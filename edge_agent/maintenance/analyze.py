"""Score a CSV file with an anomaly detector: the engine of ``edge-agent analyze anomaly``.

Accepted layouts (the header row names the columns):

* ``timestamp,value`` (NAB's data files);
* long: one row per sample with ``tag`` (and optionally ``device``), a time column (``timestamp``, ``ts``
  or ``time``) and ``value``: ``--tag`` selects the rows of one tag (``TAG`` or ``DEVICE/TAG``);
* wide: a time column and one column per tag: ``--tag`` selects the column.

Rows keep their order; an empty or ``nan`` value is a gap, scored 0 and not learned from.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from edge_agent.errors import EdgeError
from edge_agent.maintenance.anomaly import DEFAULT_DETECTOR, Detector, make_detector
from edge_agent.maintenance.nab import probationary_length

__all__ = ["AnomalyInputError", "ScoredPoint", "read_series_csv", "score_csv", "score_values", "write_scores"]

TIME_COLUMNS = ("timestamp", "ts", "time")


class AnomalyInputError(EdgeError):
    """The input file cannot be scored (missing columns, unknown tag, a value that is not a number)."""


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    """One output row: ``timestamp,value,anomaly_score``."""

    timestamp: str
    value: float
    anomaly_score: float


def _parse(text: str, where: str) -> float:
    text = text.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise AnomalyInputError(f"{where}: value {text!r} is not a number") from None


def read_series_csv(path: Path, tag: str | None = None) -> list[tuple[str, float]]:
    """The ``(timestamp, value)`` rows of one series of a CSV file (see the module docstring)."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise AnomalyInputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        time_column = next((c for c in TIME_COLUMNS if c in columns), None)
        if time_column is None:
            raise AnomalyInputError(f"{path}: no time column (one of {', '.join(TIME_COLUMNS)})")
        if "tag" in columns:
            return _read_long(path, reader, time_column, tag)
        return _read_wide(path, reader, columns, time_column, tag)


def _read_long(path: Path, reader: csv.DictReader[str], time_column: str, tag: str | None) -> list[tuple[str, float]]:
    if "value" not in reader.fieldnames:  # type: ignore[operator]
        raise AnomalyInputError(f"{path}: a file with a 'tag' column needs a 'value' column")
    rows: list[tuple[str, float]] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        name = row["tag"]
        full = f"{row['device']}/{name}" if row.get("device") else name
        seen.add(full)
        if tag is None or tag in (name, full):
            rows.append((row[time_column], _parse(row["value"] or "", f"{path}:{line}")))
    if tag is None and len(seen) > 1:
        raise AnomalyInputError(f"{path}: several tags, choose one with --tag: {', '.join(sorted(seen))}")
    if tag is not None and not rows:
        raise AnomalyInputError(f"{path}: no rows of tag {tag!r} (tags: {', '.join(sorted(seen)) or 'none'})")
    return rows


def _read_wide(
    path: Path, reader: csv.DictReader[str], columns: list[str], time_column: str, tag: str | None
) -> list[tuple[str, float]]:
    candidates = [c for c in columns if c != time_column]
    if tag is None:
        column = "value" if "value" in candidates else (candidates[0] if len(candidates) == 1 else None)
        if column is None:
            raise AnomalyInputError(f"{path}: several columns, choose one with --tag: {', '.join(candidates)}")
    elif tag in candidates:
        column = tag
    else:
        raise AnomalyInputError(f"{path}: no column {tag!r} (columns: {', '.join(candidates)})")
    return [(row[time_column], _parse(row[column] or "", f"{path}:{line}")) for line, row in enumerate(reader, start=2)]


def score_values(values: Iterable[float], detector: Detector) -> Iterator[float]:
    """The detector's score for each value in turn."""
    update = detector.update
    for value in values:
        yield update(value)


def score_csv(
    path: Path | str,
    tag: str | None = None,
    detector: str | Detector = DEFAULT_DETECTOR,
    **params: Any,
) -> list[ScoredPoint]:
    """Score every row of one series of a CSV file with a fresh detector (or the one given).

    With a detector name, ``params`` configure it; its ``warmup`` defaults to NAB's probationary period
    for the file (15% of the rows, at most 750).
    """
    rows = read_series_csv(Path(path), tag)
    if isinstance(detector, str):
        params.setdefault("warmup", probationary_length(len(rows)))
        try:
            detector = make_detector(detector, **params)
        except (ValueError, TypeError) as exc:
            raise AnomalyInputError(f"detector: {exc}") from None
    scores = score_values((v for _, v in rows), detector)
    return [ScoredPoint(ts, value, score) for (ts, value), score in zip(rows, scores, strict=True)]


def write_scores(points: Iterable[ScoredPoint], out: TextIO) -> None:
    """Write ``timestamp,value,anomaly_score`` CSV (with its header) to ``out``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score"])
    for p in points:
        writer.writerow([p.timestamp, repr(p.value), f"{p.anomaly_score:.6f}"])
