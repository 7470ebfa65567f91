"""Storing posted events in the ``events`` table, each once.

Gateways number their own events 1, 2, 3... (``seq``, see :mod:`cloud_sync.schema`).
Events posted through the API are numbered downwards from -1 per gateway, so
they never take a number a gateway's batch will bring. A posted event whose id
the same gateway already posted is a duplicate: it is reported, not stored
again. Per gateway, one transaction at a time numbers and stores (SQLite: the
write lock; PostgreSQL: an advisory lock on the gateway), so concurrent posts
from several collector processes cannot collide.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from cloud_sync.analytics.sql.builder import Connection, Cursor, Dialect, Sql, write_cursor
from edge_agent.behaviour.envelope import EventEnvelope, stored_attributes

__all__ = ["insert_events"]

_CHUNK = 500


def _existing(cur: Cursor, dialect: Dialect, gateway: str, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        q = Sql(dialect)
        sql = (
            f"SELECT event_id FROM events WHERE gateway_id = {q.p(gateway)} AND seq < 0 "
            f"AND event_id IN ({q.ps(ids[i : i + _CHUNK])})"
        )
        cur.execute(sql, q.params)
        found.update(row[0] for row in cur.fetchall())
    return found


def _insert_gateway(cur: Cursor, dialect: Dialect, gateway: str, events: Sequence[EventEnvelope]) -> list[bool]:
    if dialect == "postgresql":
        q = Sql(dialect)
        cur.execute(
            f"SELECT pg_advisory_xact_lock(hashtextextended({q.p('edge posted events ' + gateway)}, 0))", q.params
        )
    stored = _existing(cur, dialect, gateway, sorted({e.id for e in events}))
    q = Sql(dialect)
    cur.execute(f"SELECT COALESCE(MIN(seq), 0) FROM events WHERE gateway_id = {q.p(gateway)} AND seq < 0", q.params)
    seq = min(0, int(cur.fetchall()[0][0]))
    fresh: list[bool] = []
    for event in events:
        if event.id in stored:
            fresh.append(False)
            continue
        stored.add(event.id)
        seq -= 1
        q = Sql(dialect)
        attributes = orjson.dumps(stored_attributes(event)).decode()
        values = [q.p(gateway), q.p(seq), q.p(event.id), q.p(event.ts), q.p(event.device), q.p(event.kind)]
        json_value = f"CAST({q.p(attributes)} AS JSONB)" if dialect == "postgresql" else q.p(attributes)
        cur.execute(
            "INSERT INTO events (gateway_id, seq, event_id, ts, device, kind, attributes) "
            f"VALUES ({', '.join(values)}, {json_value})",
            q.params,
        )
        fresh.append(True)
    return fresh


def insert_events(conn: Connection, dialect: Dialect, events: Sequence[EventEnvelope]) -> list[bool]:
    """Store checked events (``gateway`` set) in one transaction; per event, whether it was new
    (``False``: a duplicate of an event already posted with that id for that gateway)."""
    by_gateway: dict[str, list[tuple[int, EventEnvelope]]] = defaultdict(list)
    for index, event in enumerate(events):
        if event.gateway is None:
            raise ValueError(f"events[{index}] has no gateway; check them with check_events first")
        by_gateway[event.gateway].append((index, event))
    fresh: list[Any] = [None] * len(events)
    with write_cursor(conn, dialect) as cur:
        for gateway in sorted(by_gateway):  # the same lock order in every transaction
            indexed = by_gateway[gateway]
            for (index, _), new in zip(
                indexed, _insert_gateway(cur, dialect, gateway, [e for _, e in indexed]), strict=True
            ):
                fresh[index] = new
    return [bool(x) for x in fresh]
