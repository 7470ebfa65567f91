"""Turning a decoded request body into a :class:`Batch`, or into a list of problems.

Each problem is ``{"field": "rows[3]", "message": "..."}``: the field is a path
into the batch (``gateway_id``, ``rows[3]``, ``rows[3][1]``, ``backlog.samples``),
``body`` when the document as a whole is wrong.

Beyond the schema model, rows are checked for what every storage backend can
keep the same way: column types, 64-bit integers, finite timestamps, strings
without NUL characters (PostgreSQL text cannot hold them), event attributes
nested at most :data:`MAX_NESTING` deep, and sequence numbers in strictly
increasing order (a batch is one contiguous range of its stream, so a seq can
occur only once).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import ValidationError

from cloud_sync.schema import Batch

Problem = dict[str, str]

MAX_PROBLEMS = 50
MAX_NESTING = 32
"""Deepest nesting of lists and objects accepted in event attributes."""
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NUL = "\x00"

_ROW_PREFIX = re.compile(r"^(rows\[\d+\]):\s*(.*)$", re.DOTALL)
_FIELD_NAMES = re.compile(r"\b(" + "|".join(map(re.escape, Batch.model_fields)) + r")\b")


class InvalidBatch(Exception):
    """The body decoded, but it is not a valid batch."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))


def parse_batch(data: Any) -> Batch:
    """Validate decoded JSON as a batch, including the column types of its rows.

    The envelope goes through the :class:`Batch` model; the rows, which are
    most of the work, are checked here once, in one pass, and attached to the
    validated envelope as they are. Raises :class:`InvalidBatch` listing the
    schema errors, or the first bad row.
    """
    rows = data.get("rows") if isinstance(data, dict) else None
    try:
        if not isinstance(rows, list):  # let the model say what is wrong with the document
            batch = Batch.model_validate(data)
            rows = batch.rows
        else:
            batch = Batch.model_validate({**data, "rows": []})
    except ValidationError as exc:
        raise InvalidBatch(problems_of(exc)) from None
    if problem := first_bad_row(batch, rows):
        raise InvalidBatch([problem])
    return batch.model_copy(update={"rows": rows})


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


def first_bad_row(batch: Batch, rows: list[Any] | None = None) -> Problem | None:
    """The first of ``rows`` (default: the batch's) that breaks the rules of the module docstring, if any.

    Cheap checks only (exact ``type`` tests; bool is not accepted as a number
    except as a sample value); a row that passes the fast test is not looked at again.
    """
    if batch.last_seq > INT64_MAX:
        return {"field": "last_seq", "message": f"must be at most {INT64_MAX}"}
    samples = batch.stream == "samples"
    fast = _sample_row_ok if samples else _event_row_ok
    previous, first, last = 0, batch.first_seq, batch.last_seq
    for i, row in enumerate(batch.rows if rows is None else rows):
        if fast(row) and previous < row[0] <= last and first <= row[0]:
            previous = row[0]
            continue
        return {"field": f"rows[{i}]", "message": _row_problem(row, samples, previous, first, last)}
    return None


def _sample_row_ok(row: Any) -> bool:
    """The fast test of one sample row (no messages: :func:`_row_problem` explains a failure)."""
    if type(row) is not list or len(row) != 6:
        return False
    seq, device, tag, ts, value, quality = row
    if type(seq) is not int or type(device) is not str or type(tag) is not str or NUL in device or NUL in tag:
        return False
    if not ((type(ts) is float and math.isfinite(ts)) or (type(ts) is int and INT64_MIN <= ts <= INT64_MAX)):
        return False
    if type(quality) is not int or not INT64_MIN <= quality <= INT64_MAX:
        return False
    vt = type(value)
    if vt is float:
        return math.isfinite(value)
    if vt is int:
        return INT64_MIN <= value <= INT64_MAX
    if vt is str:
        return NUL not in value
    return vt is bool or value is None


def _event_row_ok(row: Any) -> bool:
    return type(row) is list and len(row) == 6 and _event_row_problem(row) is None


def _row_problem(row: Any, samples: bool, previous: int, first: int, last: int) -> str:
    """Why a row failed the fast test."""
    if type(row) is not list:
        return f"expected a list of 6 columns, got {_type_name(row)}"
    if len(row) != 6:
        return f"expected 6 columns, got {len(row)}"
    if message := (_sample_row_problem(row) if samples else _event_row_problem(row)):
        return message
    seq = row[0]
    if not first <= seq <= last:
        return f"seq {seq!r} outside {first}..{last}"
    return f"seq {seq} does not follow seq {previous}: rows must be in increasing seq order"


def _text_problem(name: str, value: Any) -> str | None:
    if type(value) is not str:
        return f"{name} must be a string, got {_type_name(value)}"
    if NUL in value:
        return f"{name} must not contain NUL characters"
    return None


def _ts_problem(name: str, ts: Any) -> str | None:
    if type(ts) is float:
        if math.isfinite(ts):
            return None
        return f"{name} must be a finite number"
    if type(ts) is int:
        return None if INT64_MIN <= ts <= INT64_MAX else f"{name} is an integer outside the 64-bit range"
    return f"{name} must be a number, got {_type_name(ts)}"


def _sample_row_problem(row: list[Any]) -> str | None:
    seq, device, tag, ts, value, quality = row
    if type(seq) is not int:
        return f"seq (column 0) must be an integer, got {_type_name(seq)}"
    if problem := _text_problem("device (column 1)", device) or _text_problem("tag (column 2)", tag):
        return problem
    if problem := _ts_problem("ts (column 3)", ts):
        return problem
    vt = type(value)
    if vt is int:
        if not INT64_MIN <= value <= INT64_MAX:
            return "value (column 4) is an integer outside the 64-bit range"
    elif vt is str:
        if NUL in value:
            return "value (column 4) must not contain NUL characters"
    elif vt is float:
        if not math.isfinite(value):
            return "value (column 4) must be a finite number"
    elif vt is not bool and value is not None:
        return f"value (column 4) must be a number, string, boolean or null, got {_type_name(value)}"
    if not _is_int64(quality):
        return f"quality (column 5) must be an integer, got {_type_name(quality)}"
    return None


def _event_row_problem(row: list[Any]) -> str | None:
    seq, event_id, ts, device, kind, attributes = row
    if type(seq) is not int:
        return f"seq (column 0) must be an integer, got {_type_name(seq)}"
    if problem := _text_problem("event_id (column 1)", event_id):
        return problem
    if problem := _ts_problem("ts (column 2)", ts):
        return problem
    if problem := _text_problem("device (column 3)", device) or _text_problem("kind (column 4)", kind):
        return problem
    if type(attributes) is not dict:
        return f"attributes (column 5) must be an object, got {_type_name(attributes)}"
    return _document_problem(attributes)


def _document_problem(doc: dict[str, Any]) -> str | None:
    """What in a JSON object the stores could not keep as it is: NUL, deep nesting, huge or non-finite numbers."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"attributes (column 5) are nested deeper than {MAX_NESTING} levels"
        items: Any = node.items() if type(node) is dict else enumerate(node)
        for key, value in items:
            if type(key) is str and NUL in key:
                return "attributes (column 5) must not contain NUL characters"
            vt = type(value)
            if vt is dict or vt is list:
                stack.append((value, depth + 1))
            elif vt is str and NUL in value:
                return "attributes (column 5) must not contain NUL characters"
            elif vt is int and not INT64_MIN <= value <= INT64_MAX:
                return "attributes (column 5) hold an integer outside the 64-bit range"
            elif vt is float and not math.isfinite(value):
                return "attributes (column 5) hold a number that is not finite"
    return None
