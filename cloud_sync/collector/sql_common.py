"""What the SQLite and PostgreSQL stores share: the SQL and the logic around it.

The statements use ``?`` placeholders and ``{greatest}`` for the scalar maximum
(``MAX`` in SQLite, ``GREATEST`` in PostgreSQL); :meth:`SqlStore._sql` turns
them into the backend's dialect. A backend supplies transactions
(:meth:`SqlStore._transaction`) and the bulk insert of a batch's rows
(:meth:`SqlStore._insert_rows`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cache
from typing import Any, Protocol

import orjson

from cloud_sync.collector import twin
from cloud_sync.collector.migrations import Dialect
from cloud_sync.collector.store import EventQuery, KeyRecord, NotFound, SampleQuery, StoreError
from cloud_sync.schema import Batch, BatchAck

log = logging.getLogger("cloud_sync.collector.store")

INGEST_ATTEMPTS = 3
"""Tries of one ingest when the database reports a deadlock or serialization failure."""

INSERT_BATCH = (
    'INSERT INTO batches (batch_id, gateway_id, stream, first_seq, last_seq, "rows", received_at) '
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id) DO NOTHING"
)
UPSERT_GATEWAY = (
    "INSERT INTO gateways (gateway_id, first_seen, last_seen, last_batch_id, backlog, duplicate_batches, "
    "samples, events, batches) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 1) ON CONFLICT (gateway_id) DO UPDATE SET "
    "last_seen = {greatest}(gateways.last_seen, excluded.last_seen), last_batch_id = excluded.last_batch_id, "
    "backlog = excluded.backlog, samples = gateways.samples + excluded.samples, "
    "events = gateways.events + excluded.events, batches = gateways.batches + 1"
)
COUNT_DUPLICATE = (
    "INSERT INTO gateways (gateway_id, first_seen, last_seen, last_batch_id, backlog, duplicate_batches) "
    "VALUES (?, ?, ?, NULL, ?, 1) ON CONFLICT (gateway_id) DO UPDATE SET "
    "last_seen = {greatest}(gateways.last_seen, excluded.last_seen), backlog = excluded.backlog, "
    "duplicate_batches = gateways.duplicate_batches + 1"
)
SELECT_STATS = "SELECT gateway_id, samples, events, batches, duplicate_batches FROM gateways"
SELECT_GATEWAYS = (
    "SELECT g.gateway_id, g.first_seen, g.last_seen, g.backlog, g.samples, g.events, g.batches, "
    'g.duplicate_batches, b.batch_id, b.stream, b.first_seq, b.last_seq, b."rows", b.received_at '
    "FROM gateways g LEFT JOIN batches b ON b.batch_id = g.last_batch_id ORDER BY g.gateway_id"
)
KEY_COLUMNS = "key_id, gateway_id, salt, digest, note, created_at, revoked_at"
INSERT_KEY = f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
SELECT_KEY = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?"
LIST_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
REVOKE_KEY = "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"
UPSERT_DEVICE = (
    "INSERT INTO device_twins (gateway_id, device, last_seen, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (gateway_id, device) DO UPDATE SET "
    "last_seen = {greatest}(device_twins.last_seen, excluded.last_seen), updated_at = excluded.updated_at"
)
UPSERT_TAG = (
    "INSERT INTO device_twin_tags (gateway_id, device, tag, ts, value, quality) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (gateway_id, device, tag) DO UPDATE SET "
    "ts = excluded.ts, value = excluded.value, quality = excluded.quality WHERE excluded.ts >= device_twin_tags.ts"
)
UPSERT_DERIVED = (
    "INSERT INTO device_twin_derived (gateway_id, device, name, ts, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (gateway_id, device, name) DO UPDATE SET "
    "ts = excluded.ts, value = excluded.value WHERE excluded.ts >= device_twin_derived.ts"
)
GATEWAY_KNOWN = "SELECT 1 FROM gateways WHERE gateway_id = ?"
SELECT_DEVICE = "SELECT last_seen, updated_at FROM device_twins WHERE gateway_id = ? AND device = ?"
SELECT_DEVICES = "SELECT device, last_seen, updated_at FROM device_twins WHERE gateway_id = ? ORDER BY device"
SELECT_DEVICE_TAGS = (
    "SELECT tag, ts, value, quality FROM device_twin_tags WHERE gateway_id = ? AND device = ? ORDER BY tag"
)
SELECT_DEVICE_DERIVED = (
    "SELECT name, ts, value FROM device_twin_derived WHERE gateway_id = ? AND device = ? ORDER BY name"
)
SELECT_GATEWAY_SUMMARY = (
    "SELECT device, name, value FROM device_twin_derived "
    "WHERE gateway_id = ? AND name IN ('state', 'connection', 'alarms')"
)
COUNT_GATEWAY_TAGS = "SELECT device, COUNT(*) FROM device_twin_tags WHERE gateway_id = ? GROUP BY device"
SAMPLE_COLUMNS = ("gateway_id", "seq", "device", "tag", "ts", "value", "quality")
EVENT_COLUMNS = ("gateway_id", "seq", "event_id", "ts", "device", "kind", "attributes")


class Cursor(Protocol):
    """The part of a DB-API cursor the shared code uses (sqlite3 and psycopg both fit)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class RetryableStoreError(StoreError):
    """A transaction lost a race (deadlock, serialization failure) and may simply be run again."""


class SqlStore:
    """The :class:`~cloud_sync.collector.store.Store` methods, written once over :class:`Cursor`."""

    dialect: Dialect

    # -- what a backend provides ---------------------------------------------------

    def _transaction(self, *, write: bool) -> AbstractContextManager[Cursor]:
        """A cursor inside one transaction, committed on normal exit, rolled back on an exception.

        Database errors are raised as :class:`StoreError` (:class:`RetryableStoreError` for lost races).
        """
        raise NotImplementedError

    def _insert_rows(self, cur: Cursor, batch: Batch) -> int:
        """Insert the batch's rows, skipping those already stored; return how many were new."""
        raise NotImplementedError

    def _upsert_twin(self, cur: Cursor, gateway: str, update: twin.TwinUpdate, now: float) -> None:
        """Merge a batch's :class:`~cloud_sync.collector.twin.TwinUpdate` into the twin tables."""
        raise NotImplementedError

    # -- SQL -----------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return _render(sql, self.dialect)

    # -- ingest ----------------------------------------------------------------------

    def ingest(self, batch: Batch) -> BatchAck:
        """Store ``batch`` in one transaction (see :mod:`cloud_sync.collector.store` for the rules).

        The rows must already have the column types of the schema (the HTTP layer
        checks them); a row the database cannot store fails the whole batch with
        :class:`StoreError` and nothing is committed.
        """
        for attempt in range(1, INGEST_ATTEMPTS + 1):
            try:
                return self._ingest_once(batch)
            except RetryableStoreError as exc:
                if attempt == INGEST_ATTEMPTS:
                    raise
                log.info("%s: %s; trying again", batch.batch_id, exc)
        raise AssertionError("unreachable")

    def _ingest_once(self, batch: Batch) -> BatchAck:
        now = time.time()
        gw = batch.gateway_id
        total = len(batch.rows)
        backlog = orjson.dumps(batch.backlog).decode()
        with self._transaction(write=True) as cur:
            cur.execute(
                self._sql(INSERT_BATCH),
                (batch.batch_id, gw, batch.stream, batch.first_seq, batch.last_seq, total, now),
            )
            if cur.rowcount == 0:
                cur.execute(self._sql(COUNT_DUPLICATE), (gw, now, now, backlog))
                return BatchAck(batch_id=batch.batch_id, accepted=0, duplicates=total, duplicate_batch=True)
            accepted = self._insert_rows(cur, batch) if total else 0
            if accepted:
                update = twin.from_samples(batch.rows) if batch.stream == "samples" else twin.from_events(batch.rows)
                if update:
                    self._upsert_twin(cur, gw, update, now)
            samples, events = (accepted, 0) if batch.stream == "samples" else (0, accepted)
            cur.execute(self._sql(UPSERT_GATEWAY), (gw, now, now, batch.batch_id, backlog, samples, events))
        return BatchAck(batch_id=batch.batch_id, accepted=accepted, duplicates=total - accepted, duplicate_batch=False)

    # -- reading -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Per-gateway counters (kept in the same transactions as the rows they count)."""
        with self._transaction(write=False) as cur:
            cur.execute(SELECT_STATS)
            rows = cur.fetchall()
        return {
            "gateways": {
                gw: {"samples": s, "events": e, "batches": b, "duplicate_batches": d} for gw, s, e, b, d in rows
            }
        }

    def gateways(self) -> list[dict[str, Any]]:
        """Every gateway with its last batch, the backlog it last reported and its counters."""
        with self._transaction(write=False) as cur:
            cur.execute(SELECT_GATEWAYS)
            rows = cur.fetchall()
        out = []
        for gw, first_seen, last_seen, backlog, s, e, b, d, bid, stream, first, last, n, received in rows:
            last_batch = None
            if bid is not None:
                last_batch = {
                    "batch_id": bid,
                    "stream": stream,
                    "first_seq": first,
                    "last_seq": last,
                    "rows": n,
                    "received_at": received,
                }
            out.append(
                {
                    "gateway_id": gw,
                    "first_seen": first_seen,
                    "last_seen": last_seen,
                    "backlog": orjson.loads(backlog),
                    "last_batch": last_batch,
                    "samples": s,
                    "events": e,
                    "batches": b,
                    "duplicate_batches": d,
                }
            )
        return out

    def samples(self, query: SampleQuery) -> list[dict[str, Any]]:
        """Samples matching ``query`` in ``(ts, gateway_id, seq)`` order."""
        filters = (("gateway_id", query.gateway), ("device", query.device), ("tag", query.tag))
        sql, params = _select("samples", SAMPLE_COLUMNS, filters, query, self.dialect)
        with self._transaction(write=False) as cur:
            cur.execute(self._sql(sql), params)
            rows = cur.fetchall()
        return [dict(zip(SAMPLE_COLUMNS, row, strict=True)) for row in rows]

    def events(self, query: EventQuery) -> list[dict[str, Any]]:
        """Events matching ``query`` in ``(ts, gateway_id, seq)`` order."""
        filters = (("gateway_id", query.gateway), ("device", query.device), ("kind", query.kind))
        sql, params = _select("events", EVENT_COLUMNS, filters, query, self.dialect)
        with self._transaction(write=False) as cur:
            cur.execute(self._sql(sql), params)
            rows = cur.fetchall()
        out = []
        for row in rows:
            event = dict(zip(EVENT_COLUMNS, row, strict=True))
            if isinstance(event["attributes"], str | bytes):  # SQLite keeps JSON as text
                event["attributes"] = orjson.loads(event["attributes"])
            out.append(event)
        return out

    # -- device twins ----------------------------------------------------------------------

    def device_twin(self, gateway: str, device: str) -> dict[str, Any]:
        """The latest twin of one device (see :mod:`cloud_sync.collector.twin`); :class:`NotFound` if unknown."""
        with self._transaction(write=False) as cur:
            cur.execute(self._sql(SELECT_DEVICE), (gateway, device))
            head = cur.fetchone()
            if head is None:
                cur.execute(self._sql(GATEWAY_KNOWN), (gateway,))
                if cur.fetchone() is None:
                    raise NotFound(f"unknown gateway {gateway!r:.140}")
                raise NotFound(f"gateway {gateway!r:.140} has no device {device!r:.140}")
            cur.execute(self._sql(SELECT_DEVICE_TAGS), (gateway, device))
            tags = cur.fetchall()
            cur.execute(self._sql(SELECT_DEVICE_DERIVED), (gateway, device))
            derived = {
                name: {"value": _json_value(value, self.dialect), "ts": ts} for name, ts, value in cur.fetchall()
            }
        summary = _summary({name: d["value"] for name, d in derived.items()})
        return {
            "gateway_id": gateway,
            "device": device,
            "last_seen": head[0],
            "updated_at": head[1],
            **summary,
            "reported": {tag: {"value": value, "ts": ts, "quality": quality} for tag, ts, value, quality in tags},
            "derived": derived,
        }

    def devices(self, gateway: str) -> list[dict[str, Any]]:
        """The devices of ``gateway`` with state, connection, active alarms and last seen; :class:`NotFound`."""
        with self._transaction(write=False) as cur:
            cur.execute(self._sql(GATEWAY_KNOWN), (gateway,))
            if cur.fetchone() is None:
                raise NotFound(f"unknown gateway {gateway!r:.140}")
            cur.execute(self._sql(SELECT_DEVICES), (gateway,))
            heads = cur.fetchall()
            cur.execute(self._sql(SELECT_GATEWAY_SUMMARY), (gateway,))
            figures: dict[str, dict[str, Any]] = {}
            for device, name, value in cur.fetchall():
                figures.setdefault(device, {})[name] = _json_value(value, self.dialect)
            cur.execute(self._sql(COUNT_GATEWAY_TAGS), (gateway,))
            tag_counts = dict(cur.fetchall())
        return [
            {
                "device": device,
                **_summary(figures.get(device, {})),
                "tags": tag_counts.get(device, 0),
                "last_seen": last_seen,
                "updated_at": updated_at,
            }
            for device, last_seen, updated_at in heads
        ]

    # -- API keys ----------------------------------------------------------------------------

    def add_key(self, record: KeyRecord) -> None:
        """Store a new key record (its id must be new)."""
        with self._transaction(write=True) as cur:
            cur.execute(
                self._sql(INSERT_KEY),
                (
                    record.key_id,
                    record.gateway_id,
                    record.salt,
                    record.digest,
                    record.note,
                    record.created_at,
                    record.revoked_at,
                ),
            )

    def get_key(self, key_id: str) -> KeyRecord | None:
        """The record of ``key_id``, revoked or not."""
        with self._transaction(write=False) as cur:
            cur.execute(self._sql(SELECT_KEY), (key_id,))
            row = cur.fetchone()
        return None if row is None else KeyRecord(*row)

    def list_keys(self) -> list[KeyRecord]:
        """Every key record, oldest first."""
        with self._transaction(write=False) as cur:
            cur.execute(LIST_KEYS)
            return [KeyRecord(*row) for row in cur.fetchall()]

    def revoke_key(self, key_id: str, at: float) -> KeyRecord | None:
        """Revoke ``key_id`` at ``at`` unless it already is; the record afterwards, ``None`` if unknown."""
        with self._transaction(write=True) as cur:
            cur.execute(self._sql(REVOKE_KEY), (at, key_id))
            cur.execute(self._sql(SELECT_KEY), (key_id,))
            row = cur.fetchone()
        return None if row is None else KeyRecord(*row)


def _json_value(value: Any, dialect: Dialect) -> Any:
    """A ``{json}`` column as Python: SQLite keeps JSON as text, psycopg decodes JSONB itself."""
    return orjson.loads(value) if dialect == "sqlite" else value


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The headline of a twin: state category, connection state, number of active alarms (``None``: unknown)."""
    def field(name: str, key: str, kind: type) -> Any:
        figure = figures.get(name)
        value = figure.get(key) if isinstance(figure, dict) else None
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    return {
        "state": field("state", "category", str),
        "connection": field("connection", "state", str),
        "alarms_active": field("alarms", "active", int),
    }


def render_sql(sql: str, dialect: Dialect) -> str:
    """``sql`` (``?`` placeholders, ``{greatest}``) in the dialect of a backend."""
    return _render(sql, dialect)


@cache
def _render(sql: str, dialect: Dialect) -> str:
    if dialect == "postgresql":
        return sql.replace("?", "%s").replace("{greatest}", "GREATEST")
    return sql.replace("{greatest}", "MAX")


def _select(
    table: str,
    columns: Sequence[str],
    filters: Sequence[tuple[str, str | None]],
    query: SampleQuery | EventQuery,
    dialect: Dialect,
) -> tuple[str, list[Any]]:
    """A filtered, time-ordered ``SELECT`` (columns and table are ours, values are parameters).

    In SQLite the equality filters are written ``+column = ?``, which keeps the
    planner from scanning a whole gateway through the primary key and sorting
    it: it walks the ``ts`` index instead and stops at the limit.
    """
    hint = "+" if dialect == "sqlite" else ""
    where: list[str] = []
    params: list[Any] = []
    for column, value in filters:
        if value is not None:
            # ``kind`` has its own (kind, ts) index, which serves both the filter and the order
            where.append(f"{'' if column == 'kind' else hint}{column} = ?")
            params.append(value)
    if query.start is not None:
        where.append("ts >= ?")
        params.append(query.start)
    if query.after is not None:  # keyset paging: rows after (ts, gateway_id, seq), still through the ts index
        ts, gateway, seq = query.after
        where.append("ts >= ? AND (ts > ? OR gateway_id > ? OR (gateway_id = ? AND seq > ?))")
        params.extend((ts, ts, gateway, gateway, seq))
    if query.end is not None:
        where.append("ts < ?")
        params.append(query.end)
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts, gateway_id, seq LIMIT ?"
    params.append(query.limit)
    return sql, params
