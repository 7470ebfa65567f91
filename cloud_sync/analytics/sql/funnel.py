"""The funnel in one SQL statement (SQLite or PostgreSQL); same answer as :func:`cloud_sync.analytics.funnel`.

The statement reads the window's candidate events once, then finds when each entity reached
each step, ``reached(entity, t1 .. tk)``, then counts and times the steps::

    ev = SELECT entity, ts, <matches step 1> AS m1, ..., <matches step k> AS mk
           FROM events WHERE <window> AND kind IN (...) AND <entity present>

    PostgreSQL, one window function per step over the entity's events (one sort, no joins,
    whose sizes the planner misjudges on derived tables and then loops over):
      t1 = MIN(CASE WHEN m1 THEN ts END) OVER (PARTITION BY entity)
      t2 = MIN(CASE WHEN m2 AND ts >= t1 [AND ts <= t1 + gap] THEN ts END) OVER (PARTITION BY entity) ...
    SQLite, one join per step (SQLite indexes the previous step's table; its window functions
    cost a sort per step):
      s1 = SELECT entity, MIN(ts) FROM ev WHERE m1 GROUP BY entity
      s2 = SELECT e.entity, MIN(e.ts) FROM ev e JOIN s1 p ON p.entity = e.entity AND e.ts >= p.t [...] ...

    per step: COUNT(tk) and the median and p90 of tk - t(k-1) (PostgreSQL: percentile_cont;
    SQLite: ranks and the same linear interpolation)
"""

from __future__ import annotations

from cloud_sync.analytics.api_models import FunnelRequest, FunnelResponse
from cloud_sync.analytics.funnel import funnel_response
from cloud_sync.analytics.sql.builder import Connection, Dialect, Sql, read_cursor

__all__ = ["funnel_sql", "sql_funnel"]


def _percentile_sqlite(q: Sql, table: str, fraction: float) -> str:
    f = q.p(fraction)
    lo = f"CAST((n - 1) * {f} AS INTEGER)"
    return (
        f"(SELECT lo_v + (h - lo) * (hi_v - lo_v) FROM (SELECT (n - 1) * {f} AS h, {lo} AS lo, "
        f"MAX(CASE WHEN i = {lo} THEN d END) AS lo_v, MAX(CASE WHEN i = MIN({lo} + 1, n - 1) THEN d END) AS hi_v "
        f"FROM {table}))"
    )


def _events(q: Sql, request: FunnelRequest) -> str:
    """The window's candidate events, once: ``entity, ts, m1 .. mk`` (whether the event is one of step i)."""
    entity, present = q.entity(request.entity_key)
    flags = ", ".join(f"({q.matches(step)}) AS m{i}" for i, step in enumerate(request.steps, 1))
    kinds = q.ps(sorted({step.kind for step in request.steps}))
    window = q.window(request.start, request.end, request.gateway)
    return f"SELECT {entity} AS entity, ts, {flags} FROM events WHERE {window} AND kind IN ({kinds}) AND {present}"


def _limit(q: Sql, request: FunnelRequest, i: int, ts: str, before: str) -> str:
    gap = request.gap(i - 1)
    return f" AND {ts} <= {before} + {q.p(gap)}" if gap is not None else ""


def _reached_by_windows(q: Sql, request: FunnelRequest) -> list[str]:
    """PostgreSQL: ``reached(entity, t1 .. tk)`` by one window function per step over the entity's events."""
    layer = "SELECT x0.*, MIN(CASE WHEN m1 THEN ts END) OVER (PARTITION BY entity) AS t1 FROM ev x0"
    for i in range(2, len(request.steps) + 1):
        where = " WHERE t1 IS NOT NULL" if i == 2 else ""  # entities that never reach step 1 count nowhere
        layer = (
            f"SELECT x{i - 1}.*, MIN(CASE WHEN m{i} AND ts >= t{i - 1}{_limit(q, request, i, 'ts', f't{i - 1}')} "
            f"THEN ts END) OVER (PARTITION BY entity) AS t{i} FROM ({layer}) x{i - 1}{where}"
        )
    columns = ", ".join(f"MIN(t{i}) AS t{i}" for i in range(1, len(request.steps) + 1))
    return [f"reached AS MATERIALIZED (SELECT entity, {columns} FROM ({layer}) x GROUP BY entity)"]


def _reached_by_joins(q: Sql, request: FunnelRequest) -> list[str]:
    """SQLite: ``s1(entity, t)``, then each step's earliest event after the previous one by a join
    (SQLite indexes the previous step's table for it), and ``reached(entity, t1 .. tk)``."""
    ctes = ["s1 AS MATERIALIZED (SELECT entity, MIN(ts) AS t FROM ev WHERE m1 GROUP BY entity)"]
    for i in range(2, len(request.steps) + 1):
        limit = _limit(q, request, i, "e.ts", "p.t")
        ctes.append(
            f"s{i} AS MATERIALIZED (SELECT e.entity, MIN(e.ts) AS t FROM ev e JOIN s{i - 1} p "
            f"ON p.entity = e.entity AND e.ts >= p.t{limit} WHERE e.m{i} GROUP BY e.entity, p.t)"
        )
    columns = ", ".join(f"s{i}.t AS t{i}" for i in range(1, len(request.steps) + 1))
    joins = " ".join(f"LEFT JOIN s{i} ON s{i}.entity = s1.entity" for i in range(2, len(request.steps) + 1))
    ctes.append(f"reached AS MATERIALIZED (SELECT s1.entity, {columns} FROM s1 {joins})")
    return ctes


def funnel_sql(request: FunnelRequest, dialect: Dialect) -> tuple[str, dict[str, object]]:
    """The statement and its parameters; rows are ``(step, entities, median_s, p90_s)`` in step order."""
    q = Sql(dialect)
    n = len(request.steps)
    ctes = [f"ev AS MATERIALIZED ({_events(q, request)})"]
    ctes += _reached_by_windows(q, request) if q.pg else _reached_by_joins(q, request)
    selects = ["SELECT 1 AS step, COUNT(t1) AS entities, NULL AS median_s, NULL AS p90_s FROM reached"]
    for i in range(2, n + 1):
        if q.pg:
            d = f"t{i} - t{i - 1}"
            selects.append(
                f"SELECT {i}, COUNT(t{i}), percentile_cont({q.p(0.5)}) WITHIN GROUP (ORDER BY {d}), "
                f"percentile_cont({q.p(0.9)}) WITHIN GROUP (ORDER BY {d}) FROM reached"
            )
        else:
            ctes.append(
                f"r{i} AS MATERIALIZED (SELECT t{i} - t{i - 1} AS d, ROW_NUMBER() OVER (ORDER BY t{i} - t{i - 1}) - 1 "
                f"AS i, COUNT(*) OVER () AS n FROM reached WHERE t{i} IS NOT NULL)"
            )
            selects.append(
                f"SELECT {i}, (SELECT COUNT(*) FROM r{i}), {_percentile_sqlite(q, f'r{i}', 0.5)}, "
                f"{_percentile_sqlite(q, f'r{i}', 0.9)}"
            )
    if q.pg:
        selects[0] = "SELECT 1 AS step, COUNT(t1) AS entities, NULL::float8, NULL::float8 FROM reached"
    sql = "WITH " + ",\n     ".join(ctes) + "\n" + "\nUNION ALL ".join(selects) + "\nORDER BY 1"
    return sql, q.params


def sql_funnel(conn: Connection, dialect: Dialect, request: FunnelRequest) -> FunnelResponse:
    """The funnel of ``request`` computed by the database over its ``events`` table."""
    sql, params = funnel_sql(request, dialect)
    with read_cursor(conn, dialect) as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    counts = [int(row[1]) for row in rows]
    stats = [(_float(row[2]), _float(row[3])) for row in rows]
    return funnel_response(request, counts, stats)


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
