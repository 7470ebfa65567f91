"""Reading what the store-agnostic analytics need: events, gateways, the fleet snapshot.

Segments and overview read only small, already rolled-up data (profiles, KPIs,
the latest state per device) and compute in Python with the pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cloud_sync.analytics.api_models import OverviewQuery, OverviewResponse, SegmentsQuery, SegmentsResponse, StepSpec
from cloud_sync.analytics.overview import STATE_KINDS, FleetSnapshot, GatewayRecord, overview
from cloud_sync.analytics.profiles import by_device
from cloud_sync.analytics.records import StoredEvent
from cloud_sync.analytics.segments import device_features, segments
from cloud_sync.analytics.sql.builder import Connection, Dialect, Sql, read_cursor
from edge_agent.behaviour import kinds as k

__all__ = ["read_events", "read_gateways", "read_snapshot", "sql_overview", "sql_segments"]

_COLUMNS = "gateway_id, event_id, ts, device, kind, attributes, seq"


def _attributes(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
    return value if isinstance(value, dict) else {}


def _event(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        gateway_id=row[0],
        event_id=row[1],
        ts=float(row[2]),
        device=row[3],
        kind=row[4],
        attributes=_attributes(row[5]),
        seq=int(row[6]),
    )


def read_events(
    conn: Connection,
    dialect: Dialect,
    steps: Sequence[StepSpec],
    start: float | None,
    end: float,
    gateway: str | None = None,
) -> list[StoredEvent]:
    """Events of any of ``steps`` (kind and filters) in ``[start, end)``, ordered by ``(ts, gateway_id, seq)``."""
    q = Sql(dialect)
    match = " OR ".join(f"({q.matches(step)})" for step in steps) or "1 = 0"
    where = f"{q.window(start, end, gateway)} AND ({match})"
    sql = f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY ts, gateway_id, seq"
    with read_cursor(conn, dialect) as cur:
        cur.execute(sql, q.params)
        return [_event(row) for row in cur.fetchall()]


def read_gateways(conn: Connection, dialect: Dialect, gateway: str | None = None) -> list[GatewayRecord]:
    """Every gateway of the ``gateways`` table (or just ``gateway``) with its last reported backlog."""
    q = Sql(dialect)
    where = f" WHERE gateway_id = {q.p(gateway)}" if gateway is not None else ""
    with read_cursor(conn, dialect) as cur:
        cur.execute(f"SELECT gateway_id, last_seen, backlog FROM gateways{where} ORDER BY gateway_id", q.params)
        rows = cur.fetchall()
    out = []
    for gateway_id, last_seen, backlog in rows:
        parsed = _attributes(backlog)
        counts = {str(name): int(n) for name, n in parsed.items() if isinstance(n, int) and not isinstance(n, bool)}
        out.append(GatewayRecord(gateway_id, float(last_seen), counts))
    return out


def _latest_state_events(conn: Connection, dialect: Dialect, query: OverviewQuery) -> list[StoredEvent]:
    q = Sql(dialect)
    state = q.p(k.STATE_CHANGED)
    sql = (
        f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY gateway_id, device, "
        f"CASE WHEN kind = {state} THEN 0 ELSE 1 END ORDER BY ts DESC, seq DESC) AS rn FROM events "
        f"WHERE {q.window(query.start, query.end, query.gateway)} AND kind IN ({q.ps(STATE_KINDS)})) latest "
        f"WHERE rn = 1"
    )
    with read_cursor(conn, dialect) as cur:
        cur.execute(sql, q.params)
        return [_event(row) for row in cur.fetchall()]


def read_snapshot(conn: Connection, dialect: Dialect, query: OverviewQuery) -> FleetSnapshot:
    """The gateways, the latest state events per device and the profiles and KPIs of ``query``'s window."""
    rolled = [
        StepSpec(kind=k.MACHINE_PROFILE, where={"period": query.period}),
        StepSpec(kind=k.ALARM_KPIS, where={"period": query.period}),
    ]
    events = _latest_state_events(conn, dialect, query)
    events += read_events(conn, dialect, rolled, query.start, query.end, query.gateway)
    return FleetSnapshot(read_gateways(conn, dialect, query.gateway), events)


def sql_segments(conn: Connection, dialect: Dialect, query: SegmentsQuery) -> SegmentsResponse:
    """Segments of the devices whose ``machine_profile`` events of ``query.period`` fall in the window."""
    step = StepSpec(kind=k.MACHINE_PROFILE, where={"period": query.period})
    profiles = read_events(conn, dialect, [step], query.start, query.end, query.gateway)
    return segments(device_features(by_device(profiles, query.period)), query)


def sql_overview(conn: Connection, dialect: Dialect, query: OverviewQuery) -> OverviewResponse:
    """The overview of ``query`` from the database (see :func:`cloud_sync.analytics.overview.overview`)."""
    return overview(read_snapshot(conn, dialect, query), query)
