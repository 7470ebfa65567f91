"""Building parameterised SQL for two dialects: placeholders, JSON access, typed attribute filters.

:class:`Sql` collects the parameters while the text is assembled, so the text holds
only placeholders (``?`` for SQLite, ``%s`` for PostgreSQL) where request values go.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol, cast

import orjson

from cloud_sync.analytics.api_models import StepSpec

__all__ = ["Connection", "Dialect", "Sql", "UnknownDialect", "check_dialect", "read_cursor", "write_cursor"]

Dialect = Literal["sqlite", "postgresql"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class UnknownDialect(ValueError):
    """A dialect name other than ``sqlite`` and ``postgresql``."""


def check_dialect(name: str) -> Dialect:
    """``name`` as a :data:`Dialect`, or :class:`UnknownDialect`."""
    if name not in ("sqlite", "postgresql"):
        raise UnknownDialect(f"unknown SQL dialect {name!r}; expected 'sqlite' or 'postgresql'")
    return cast(Dialect, name)


class Cursor(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection used here (sqlite3 and psycopg both fit)."""

    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


def _manual(conn: Any, dialect: Dialect) -> bool:
    if dialect == "sqlite":
        return getattr(conn, "isolation_level", "") is None
    return bool(getattr(conn, "autocommit", False))


@contextmanager
def read_cursor(conn: Connection, dialect: Dialect) -> Iterator[Cursor]:
    """A cursor for reading; afterwards a transaction PostgreSQL opened for the reads is ended."""
    cur = conn.cursor()
    try:
        yield cur
    finally:
        if dialect == "postgresql" and not _manual(conn, dialect):
            conn.rollback()


@contextmanager
def write_cursor(conn: Connection, dialect: Dialect) -> Iterator[Cursor]:
    """A cursor inside one write transaction: committed on success, rolled back on an exception."""
    cur = conn.cursor()
    manual = _manual(conn, dialect)
    if manual:
        cur.execute("BEGIN IMMEDIATE" if dialect == "sqlite" else "BEGIN")
    try:
        yield cur
    except BaseException:
        if manual:
            cur.execute("ROLLBACK")
        else:
            conn.rollback()
        raise
    if manual:
        cur.execute("COMMIT")
    else:
        conn.commit()


def _name(name: str) -> str:
    if not _NAME.match(name):  # the request models already refuse these; never trust a caller twice
        raise ValueError(f"attribute name {name!r:.80} is not [A-Za-z_][A-Za-z0-9_]*")
    return name


class Sql:
    """Parameters collected while SQL text of one dialect is assembled."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.params: dict[str, Any] = {}

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    def p(self, value: Any) -> str:
        """A named placeholder bound to ``value`` (named, so the order of assembly does not matter)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s" if self.pg else f":{name}"

    def ps(self, values: Sequence[Any]) -> str:
        """Comma-separated placeholders for ``values``."""
        return ", ".join(self.p(v) for v in values)

    def json_param(self, value: Any) -> str:
        """A placeholder for ``value`` as JSON text, typed JSONB in PostgreSQL."""
        text = orjson.dumps(value).decode()
        return f"CAST({self.p(text)} AS JSONB)" if self.pg else self.p(text)

    def _path(self, name: str) -> str:
        return self.p(_name(name)) if self.pg else self.p(f'$."{_name(name)}"')

    def entity(self, key: str) -> tuple[str, str]:
        """``(expression, condition)``: the entity of an event under ``key`` (text) and when it has one."""
        if key == "device":
            return "gateway_id || '/' || device", "1 = 1"
        if key == "gateway":
            return "gateway_id", "1 = 1"
        if self.pg:
            path = self._path(key)
            value = f"attributes -> {path}"
            integer = f"(jsonb_typeof({value}) = 'number' AND attributes ->> {path} ~ '^-{{0,1}}[0-9]+$')"
            return f"attributes ->> {path}", f"(jsonb_typeof({value}) = 'string' OR {integer})"
        path = self._path(key)
        return (
            f"CAST(json_extract(attributes, {path}) AS TEXT)",
            f"json_type(attributes, {path}) IN ('text', 'integer')",
        )

    def matches(self, step: StepSpec) -> str:
        """A condition true for the events of ``step``: its kind and typed attribute filters."""
        parts = [f"kind = {self.p(step.kind)}"]
        for name, wanted in step.where.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            parts.append(f"({self._attribute_in(name, values)})")
        return " AND ".join(parts)

    def _attribute_in(self, name: str, values: Sequence[Any]) -> str:
        path = self._path(name)
        if self.pg:
            return f"attributes -> {path} IN ({', '.join(self.json_param(v) for v in values)})"
        texts = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        flags = sorted({"true" if v else "false" for v in values if isinstance(v, bool)})
        options = []
        if texts:
            options.append(f"json_extract(attributes, {path}) IN ({self.ps(texts)})")
        if numbers:
            options.append(
                f"(json_type(attributes, {path}) IN ('integer', 'real') "
                f"AND json_extract(attributes, {path}) IN ({self.ps(numbers)}))"
            )
        if flags:
            options.append(f"json_type(attributes, {path}) IN ({', '.join(repr(f) for f in flags)})")
        return " OR ".join(options)

    def floor(self, expr: str) -> str:
        """``floor(expr)`` as an integer (SQLite without its optional math functions)."""
        if self.pg:
            return f"CAST(floor({expr}) AS BIGINT)"
        return f"(CAST({expr} AS INTEGER) - (({expr}) < CAST({expr} AS INTEGER)))"

    def day(self, ts: str) -> str:
        """The UTC day number of ``ts`` (epoch seconds)."""
        divisor = "CAST(86400 AS DOUBLE PRECISION)" if self.pg else "86400.0"
        return self.floor(f"{ts} / {divisor}")

    def period(self, ts: str, period: str) -> str:
        """The day, ISO week or month number of ``ts`` (see :func:`cloud_sync.analytics.records.period_index`)."""
        day = self.day(ts)
        if period == "day":
            return day
        if period == "week":
            return f"(({day} + 3) / 7)"
        if self.pg:
            moment = f"(to_timestamp({day} * 86400) AT TIME ZONE 'UTC')"
            return f"CAST(EXTRACT(YEAR FROM {moment}) * 12 + EXTRACT(MONTH FROM {moment}) - 1 AS BIGINT)"
        moment = f"{day} * 86400, 'unixepoch'"
        return f"(CAST(strftime('%Y', {moment}) AS INTEGER) * 12 + CAST(strftime('%m', {moment}) AS INTEGER) - 1)"

    def window(self, start: float | None, end: float, gateway: str | None) -> str:
        """The time window (``start`` may be open) and gateway conditions."""
        parts = [f"ts < {self.p(end)}"]
        if start is not None:
            parts.insert(0, f"ts >= {self.p(start)}")
        if gateway is not None:
            parts.append(f"gateway_id = {self.p(gateway)}")
        return " AND ".join(parts)
