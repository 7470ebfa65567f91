"""The cohort matrix in one SQL statement (SQLite or PostgreSQL); same answer as
:func:`cloud_sync.analytics.cohort`.

Shape of the statement::

    WITH f AS (SELECT <entity> AS entity, MIN(ts) AS t0 FROM events
               WHERE <first step> AND ts < :to AND <entity present> GROUP BY 1),  -- first event, ever
         c AS MATERIALIZED (SELECT entity, t0, <period of t0> AS p0 FROM f WHERE t0 >= :from),
         r AS (SELECT <entity> AS entity, ts, event_id FROM events WHERE <return step> AND <window> ...)
    SELECT p0, -1, COUNT(*), 0 FROM c GROUP BY p0                       -- cohort sizes
    UNION ALL
    SELECT c.p0, <period of r.ts> - c.p0, COUNT(DISTINCT r.entity), COUNT(DISTINCT r.event_id)
      FROM c JOIN r ON r.entity = c.entity AND r.ts >= c.t0 GROUP BY 1, 2
"""

from __future__ import annotations

from cloud_sync.analytics.api_models import CohortRequest, CohortResponse
from cloud_sync.analytics.cohort import cohort_response
from cloud_sync.analytics.sql.builder import Connection, Dialect, Sql, read_cursor

__all__ = ["cohort_sql", "sql_cohort"]


def cohort_sql(request: CohortRequest, dialect: Dialect) -> tuple[str, dict[str, object]]:
    """The statement and its parameters; rows are ``(p0, offset, entities, events)``, offset -1 for sizes."""
    q = Sql(dialect)
    entity, present = q.entity(request.entity_key)
    gateway = f" AND gateway_id = {q.p(request.gateway)}" if request.gateway is not None else ""
    end = q.p(request.end)
    sql = (
        f"WITH f AS (SELECT {entity} AS entity, MIN(ts) AS t0 FROM events "
        f"WHERE {q.matches(request.first)} AND ts < {end}{gateway} AND {present} GROUP BY 1),\n"
        f"c AS MATERIALIZED (SELECT entity, t0, {q.period('t0', request.period)} AS p0 FROM f "
        f"WHERE t0 >= {q.p(request.start)}),\n"
        f"r AS MATERIALIZED (SELECT {entity} AS entity, ts, event_id FROM events "
        f"WHERE {q.matches(request.returning)} AND {q.window(request.start, request.end, request.gateway)} "
        f"AND {present}),\n"
        f"cells AS (SELECT c.p0 AS p0, {q.period('r.ts', request.period)} - c.p0 AS k, "
        f"COUNT(DISTINCT r.entity) AS entities, COUNT(DISTINCT r.event_id) AS events "
        f"FROM c JOIN r ON r.entity = c.entity AND r.ts >= c.t0 GROUP BY 1, 2)\n"
        f"SELECT p0, -1, COUNT(*), 0 FROM c GROUP BY p0\n"
        f"UNION ALL SELECT p0, k, entities, events FROM cells WHERE k < {q.p(request.periods)}"
    )
    return sql, q.params


def sql_cohort(conn: Connection, dialect: Dialect, request: CohortRequest) -> CohortResponse:
    """The cohort matrix of ``request`` computed by the database over its ``events`` table."""
    sql, params = cohort_sql(request, dialect)
    with read_cursor(conn, dialect) as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    sizes = {int(p0): int(n) for p0, k, n, _ in rows if int(k) == -1}
    cells = {(int(p0), int(k)): (int(n), int(e)) for p0, k, n, e in rows if int(k) >= 0}
    return cohort_response(request, sizes, cells)
