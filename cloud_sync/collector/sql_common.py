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

from cloud_sync.collector.migrations import Dialect
from cloud_sync.collector.store import EventQuery, KeyRecord, SampleQuery, StoreError
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
            where.append(f"{hint}{column} = ?")
            params.append(value)
    if query.start is not None:
        where.append("ts >= ?")
        params.append(query.start)
    if query.end is not None:
        where.append("ts < ?")
        params.append(query.end)
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts, gateway_id, seq LIMIT ?"
    params.append(query.limit)
    return sql, params
