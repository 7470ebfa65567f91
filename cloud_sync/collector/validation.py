"""Turning a decoded request body into a :class:`Batch`, or into a list of problems.

Each problem is ``{"field": "rows[3]", "message": "..."}``: the field is a path
into the batch (``gateway_id``, ``rows[3]``, ``rows[3][1]``, ``backlog.samples``),
``body`` when the document as a whole is wrong.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from cloud_sync.schema import Batch

Problem = dict[str, str]

MAX_PROBLEMS = 50
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_ROW_PREFIX = re.compile(r"^(rows\[\d+\]):\s*(.*)$", re.DOTALL)
_FIELD_NAMES = re.compile(r"\b(" + "|".join(map(re.escape, Batch.model_fields)) + r")\b")


class InvalidBatch(Exception):
    """The body decoded, but it is not a valid batch."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))


def parse_batch(data: Any) -> Batch:
    """Validate decoded JSON as a batch, including the column types of its rows.

    Raises :class:`InvalidBatch` listing the schema errors, or the first bad row.
    """
    try:
        batch = Batch.model_validate(data)
    except ValidationError as exc:
        raise InvalidBatch(problems_of(exc)) from None
    if problem := first_bad_row(batch):
        raise InvalidBatch([problem])
    return batch


def problems_of(exc: ValidationError) -> list[Problem]:
    """One ``{"field", "message"}`` per pydantic error (at most :data:`MAX_PROBLEMS`)."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False)[:MAX_PROBLEMS]:
        message = str(err["msg"])
        field = _path(err["loc"])
        if not field:
            field, message = _field_from_message(message)
        problems.append({"field": field, "message": message})
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _field_from_message(message: str) -> tuple[str, str]:
    """Name the field of a model-level error (those carry no location of their own)."""
    message = message.removeprefix("Value error, ")
    if m := _ROW_PREFIX.match(message):
        return m.group(1), m.group(2)
    if m := _FIELD_NAMES.search(message):
        return m.group(1), message
    return "body", message


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int64(value: Any) -> bool:
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def first_bad_row(batch: Batch) -> Problem | None:
    """The first row whose columns do not have the stream's types, if any.

    Cheap checks only (exact ``type`` tests; bool is not accepted as a number
    except as a sample value). Also rejects integers SQLite cannot store.
    """
    if batch.last_seq > INT64_MAX:
        return {"field": "last_seq", "message": f"must be at most {INT64_MAX}"}
    check = _sample_row_problem if batch.stream == "samples" else _event_row_problem
    for i, row in enumerate(batch.rows):
        if message := check(row):
            return {"field": f"rows[{i}]", "message": message}
    return None


def _sample_row_problem(row: list[Any]) -> str | None:
    seq, device, tag, ts, value, quality = row
    if type(seq) is not int:
        return f"seq (column 0) must be an integer, got {_type_name(seq)}"
    if type(device) is not str:
        return f"device (column 1) must be a string, got {_type_name(device)}"
    if type(tag) is not str:
        return f"tag (column 2) must be a string, got {_type_name(tag)}"
    if type(ts) is not float and type(ts) is not int:
        return f"ts (column 3) must be a number, got {_type_name(ts)}"
    vt = type(value)
    if vt is int:
        if not INT64_MIN <= value <= INT64_MAX:
            return "value (column 4) is an integer outside the 64-bit range"
    elif vt is not float and vt is not str and vt is not bool and value is not None:
        return f"value (column 4) must be a number, string, boolean or null, got {_type_name(value)}"
    if not _is_int64(quality):
        return f"quality (column 5) must be an integer, got {_type_name(quality)}"
    return None


def _event_row_problem(row: list[Any]) -> str | None:
    seq, event_id, ts, device, kind, attributes = row
    if type(seq) is not int:
        return f"seq (column 0) must be an integer, got {_type_name(seq)}"
    if type(event_id) is not str:
        return f"event_id (column 1) must be a string, got {_type_name(event_id)}"
    if type(ts) is not float and type(ts) is not int:
        return f"ts (column 2) must be a number, got {_type_name(ts)}"
    if type(device) is not str:
        return f"device (column 3) must be a string, got {_type_name(device)}"
    if type(kind) is not str:
        return f"kind (column 4) must be a string, got {_type_name(kind)}"
    if type(attributes) is not dict:
        return f"attributes (column 5) must be an object, got {_type_name(attributes)}"
    return None
