"""Rows of the benchmark table: what each script hands to ``bench/run.py``.

Every benchmark script keeps its own printout and, given ``--json PATH``, also writes
``{"rows": [...], ...}`` to PATH, one :class:`Row` per figure:

    benchmark, measured, figure, unit, baseline, baseline_unit, ratio, target, met

``baseline`` is the raw path measured in the same run (``None`` when there is none), ``ratio``
is figure / baseline unless the script says otherwise, ``target`` is the goal as text and
``met`` True, False or None (no pass/fail target). ``extra`` holds any other figures.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FIELDS = ("benchmark", "measured", "figure", "unit", "baseline", "baseline_unit", "ratio", "target", "met")


@dataclass
class Row:
    benchmark: str
    measured: str
    figure: float | None
    unit: str
    baseline: float | None = None
    baseline_unit: str | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("figure", "baseline", "ratio"):
            value = out[key]
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the table rows of this benchmark to PATH (JSON)")


def write_rows(path: Path | None, rows: list[Row], extra: dict[str, Any] | None = None) -> None:
    """Write ``rows`` (and ``extra``) to ``path`` as JSON; nothing when ``path`` is None."""
    if path is None:
        return
    doc: dict[str, Any] = {"rows": [row.as_dict() for row in rows]}
    if extra:
        doc.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def check_row(doc: Any) -> list[str]:
    """Problems of one row as read back from JSON (empty when it is well formed)."""
    if not isinstance(doc, dict):
        return [f"a row is {type(doc).__name__}, not an object"]
    problems = [f"missing {key!r}" for key in FIELDS if key not in doc]
    name = doc.get("benchmark")
    if not isinstance(name, str) or not name:
        problems.append("benchmark must be a non-empty string")
    for key in ("figure", "baseline", "ratio"):
        if doc.get(key) is not None and not isinstance(doc[key], int | float):
            problems.append(f"{key} must be a number or null")
    if doc.get("met") not in (True, False, None):
        problems.append("met must be true, false or null")
    return [f"{name or '?'}: {p}" for p in problems]
